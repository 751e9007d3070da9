"""What a user calls to generate: class-to-image, text-to-image (pixel or latent).

Each pipeline builds on :class:`~synesthesia.pipelines.base.DiffusionPipeline`: a
diffusers-like call, a dataclass config saved as JSON, ``save_pretrained`` /
``from_pretrained`` of one atomic folder (safetensors + JSON), and one resolved precision.
"""

from synesthesia.pipelines.base import DiffusionPipeline, PipelineConfig, to_output
from synesthesia.pipelines.image import (
    ClassToImageConfig,
    ClassToImagePipeline,
    ImagePipeline,
    ImageRecipe,
    image_grid,
    save_image_grid,
)
from synesthesia.pipelines.text2image import TextToImageConfig, TextToImagePipeline

__all__ = [
    "ClassToImageConfig",
    "ClassToImagePipeline",
    "DiffusionPipeline",
    "PipelineConfig",
    "to_output",
    "ImagePipeline",
    "ImageRecipe",
    "image_grid",
    "save_image_grid",
    "TextToImageConfig",
    "TextToImagePipeline",
]
