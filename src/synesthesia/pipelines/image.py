"""Class-conditional image diffusion: the pipeline users call, its training recipe, and grids.

>>> from synesthesia.pipelines import ClassToImagePipeline
>>> # pipe = ClassToImagePipeline.from_pretrained("runs/demo/checkpoint")
>>> # images = pipe(class_labels=[3, 7], guidance_scale=2.0, num_inference_steps=20,
>>> #               generator=torch.Generator().manual_seed(0), output_type="pil")

A checkpoint folder holds ``model.safetensors`` (the U-Net's EMA weights) and ``config.json``:
``{"kind": "image", "unet": UNetConfig, "schedule": NoiseSchedule config, "prediction": ...,
"recipe": ImageRecipe, ...}``. The trainer writes exactly this folder, so a training run's
``checkpoint/`` is also a pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from synesthesia.diffusion import NoiseSchedule, diffusion_loss
from synesthesia.errors import InputError
from synesthesia.nets.unet import UNet, UNetConfig, unet_preset
from synesthesia.pipelines.base import (
    DiffusionPipeline,
    PipelineConfig,
    build_schedule,
    check_call_options,
    load_weights,
    to_output,
    to_pil,
)

#: The ``"kind"`` of an image-diffusion checkpoint (``synesthesia eval`` dispatches on it).
KIND = "image"


@dataclass
class ImageRecipe:
    """How an image-diffusion model is trained (saved in its config.json)."""

    schedule: str = "cosine"
    num_timesteps: int = 1000
    prediction: str = "v"  # v-prediction (Salimans & Ho 2022) works well with few sampler steps
    min_snr_gamma: float | None = 5.0  # Min-SNR-gamma loss weights (Hang et al. 2023)
    cond_drop: float = 0.1  # probability of the null class during training (for CFG)

    def __post_init__(self) -> None:
        if not 0.0 <= self.cond_drop < 1.0:
            raise ValueError(f"cond_drop must lie in [0, 1), got {self.cond_drop}")

    @classmethod
    def from_dict(cls, d: dict) -> ImageRecipe:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown ImageRecipe keys {unknown}; known: {sorted(known)}")
        return cls(**d)


@dataclass
class ClassToImageConfig(PipelineConfig):
    """config.json of a class-to-image pipeline: the U-Net's config besides the base fields."""

    kind: str = KIND
    schedule: dict = field(default_factory=dict)
    unet: dict = field(default_factory=dict)
    required = ("kind", "schedule", "prediction", "unet")


class ClassToImagePipeline(DiffusionPipeline):
    """Generate images of given classes with a class-conditional U-Net and CFG.

    Args:
        unet: a :class:`~synesthesia.nets.unet.UNet` with ``num_classes`` set.
        schedule: the noise schedule it was trained with.
        prediction: what the U-Net predicts: "eps", "x0" or "v".
        extra: the rest of the checkpoint's config (training provenance; kept on save).
        precision: "auto" (bf16 only where native and measured faster), "fp32" or "bf16".
    """

    kind = KIND
    config_class = ClassToImageConfig

    def __init__(
        self,
        unet: UNet,
        schedule: NoiseSchedule,
        prediction: str = "v",
        extra: dict | None = None,
        precision: str = "auto",
    ) -> None:
        if unet.config.num_classes is None:
            raise ValueError("ClassToImagePipeline needs a class-conditional U-Net (num_classes)")
        super().__init__(unet, schedule, prediction, extra, precision)

    @property
    def unet(self) -> UNet:
        return self.network

    @property
    def num_classes(self) -> int:
        return int(self.unet.config.num_classes)

    @property
    def config(self) -> ClassToImageConfig:
        return ClassToImageConfig(
            schedule=self.schedule.to_config(),
            prediction=self.prediction,
            unet=self.unet.config.to_dict(),
            extra=self.extra,
        )

    # ------------------------------------------------------------------ generate
    def denoiser(self) -> Callable[..., torch.Tensor]:
        """The U-Net as a sampler denoiser ``(x_t, t, labels) -> prediction`` (float32 out),
        at the pipeline's precision."""
        return self.network_call(lambda x, t, labels: self.unet(x, t, labels=labels))

    @torch.no_grad()
    def __call__(
        self,
        class_labels: int | list[int] | torch.Tensor,
        guidance_scale: float = 2.0,
        num_inference_steps: int = 20,
        method: str = "dpmpp_2m",
        generator: torch.Generator | None = None,
        num_images_per_prompt: int = 1,
        output_type: str = "pt",
        eta: float = 0.0,
        batch_size: int = 128,
        progress: bool = False,
    ):
        """Images for ``class_labels`` (each repeated ``num_images_per_prompt`` times).

        ``guidance_scale`` w: 1 is the plain conditional model, 0 the unconditional one, > 1
        guides (Ho & Salimans 2022). ``method``/``num_inference_steps`` pick the sampler
        (heun uses about two evaluations per step). ``output_type``: "pt" gives a float tensor
        (N, C, H, W) in [-1, 1]; "np" a float32 array (N, H, W, C) in [0, 1]; "pil" a list of
        PIL images. The U-Net runs at :attr:`precision`.
        """
        check_call_options(
            guidance_scale, num_inference_steps, num_images_per_prompt, output_type, batch_size
        )
        labels = torch.as_tensor(class_labels, dtype=torch.long).reshape(-1)
        if labels.numel() == 0:
            raise InputError("class_labels is empty: name at least one class")
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise InputError(
                f"class_labels must lie in [0, {self.num_classes - 1}], got {labels.tolist()}"
            )
        labels = labels.repeat_interleave(num_images_per_prompt).to(self.device)
        cfg = self.unet.config
        null = torch.tensor([self.unet.null_class], device=self.device)
        images = self.generate(
            self.denoiser(),
            (labels.shape[0], cfg.in_channels, cfg.image_size, cfg.image_size),
            cond={"labels": labels},
            uncond={"labels": null},
            guidance_scale=guidance_scale,
            num_inference_steps=num_inference_steps,
            method=method,
            generator=generator,
            batch_size=batch_size,
            eta=eta,
            progress=progress,
        )
        return to_output(images.clamp(-1.0, 1.0), output_type)

    # ------------------------------------------------------------------ persistence
    @classmethod
    def _from_parts(
        cls, config: ClassToImageConfig, state: dict[str, torch.Tensor], folder: Path
    ) -> ClassToImagePipeline:
        where = folder / "config.json"
        try:
            unet = UNet(UNetConfig.from_dict(config.unet))
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: bad U-Net config ({exc})") from exc
        load_weights(unet, state, folder / "model.safetensors")
        return cls(unet, build_schedule(config, str(where)), config.prediction, config.extra)


#: Alias with the name diffusers users may look for.
ImagePipeline = ClassToImagePipeline


# ---------------------------------------------------------------------- training recipe
def image_loss_fn(
    recipe: ImageRecipe, schedule: NoiseSchedule, null_class: int
) -> Callable[..., torch.Tensor]:
    """The trainer's ``loss_fn(model, batch, generator)``: diffusion loss with label dropout."""

    def loss_fn(model, batch, generator: torch.Generator):
        x0, labels = batch
        if recipe.cond_drop > 0:
            drop = torch.rand(labels.shape, generator=generator, device=generator.device)
            labels = torch.where(drop.to(labels.device) < recipe.cond_drop, null_class, labels)
        return diffusion_loss(
            model,
            x0,
            schedule,
            prediction=recipe.prediction,
            min_snr_gamma=recipe.min_snr_gamma,
            generator=generator,
            cond={"labels": labels},
        )

    return loss_fn


def build_model_config(unet_config: UNetConfig, recipe: ImageRecipe, data: str, **extra) -> dict:
    """The checkpoint config.json for a class-conditional image model (what the trainer saves,
    so that a run's checkpoint is a pipeline folder)."""
    schedule = NoiseSchedule(recipe.schedule, recipe.num_timesteps)
    config = ClassToImageConfig(
        schedule=schedule.to_config(),
        prediction=recipe.prediction,
        unet=unet_config.to_dict(),
        extra={"recipe": asdict(recipe), "data": data, **extra},
    )
    return config.to_dict()


def default_unet_config(preset: str, images: torch.Tensor, num_classes: int) -> UNetConfig:
    """The preset's U-Net, fitted to the data's channels and image size."""
    _, c, h, w = images.shape
    if h != w:
        raise ValueError(f"the U-Net needs square images, got {h} x {w}")
    return unet_preset(preset, in_channels=c, image_size=h, num_classes=num_classes)


# ---------------------------------------------------------------------- grids
def image_grid(images: torch.Tensor, nrow: int, padding: int = 2, scale: int = 1):
    """A PIL image of ``images`` (N, C, H, W) in [-1, 1] laid out ``nrow`` per row.

    ``scale`` enlarges each pixel (nearest neighbour) for viewing.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    n, c, h, w = images.shape
    rows = math.ceil(n / nrow)
    arr = ((images.detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
    grid = np.ones(
        (rows * (h + padding) + padding, nrow * (w + padding) + padding, c), dtype=np.float32
    )
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y : y + h, x : x + w] = arr[i]
    img = to_pil(grid)
    if scale > 1:
        from PIL import Image

        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def save_image_grid(
    images: torch.Tensor, path: str | Path, nrow: int, padding: int = 2, scale: int = 1
) -> Path:
    """Save :func:`image_grid` as a PNG (written to a temporary file, then renamed)."""
    import io

    from synesthesia.io import atomic_write_bytes

    buf = io.BytesIO()
    image_grid(images, nrow, padding, scale).save(buf, format="PNG")
    return atomic_write_bytes(Path(path), buf.getvalue())
