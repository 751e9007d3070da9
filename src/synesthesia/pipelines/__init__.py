"""What a user calls to generate: class-to-image (and later text, latent, video, audio).

Each pipeline has a diffusers-like call and ``save_pretrained`` / ``from_pretrained``
(safetensors + JSON).
"""

from synesthesia.pipelines.image import (
    ClassToImagePipeline,
    ImagePipeline,
    ImageRecipe,
    image_grid,
    save_image_grid,
)

__all__ = [
    "ClassToImagePipeline",
    "ImagePipeline",
    "ImageRecipe",
    "image_grid",
    "save_image_grid",
]
