"""Text-to-video diffusion on moving digits (chapter 13.4.1): the pipeline, GIFs, frame strips.

>>> from synesthesia.pipelines.text2video import TextToVideoPipeline
>>> # pipe = TextToVideoPipeline.from_pretrained("runs/video/checkpoint")
>>> # videos = pipe("a 3 moving left", guidance_scale=3.0, num_inference_steps=20,
>>> #               generator=torch.Generator().manual_seed(0), output_type="pt")
>>> # videos.shape == (1, 8, 1, 32, 32)

The network is a :class:`~synesthesia.nets.video_unet.TextConditionedVideoUNet` (the
project's text encoder + a factorised space-time U-Net, or the Conv3d baseline). Prompts,
negative prompts, classifier-free guidance, batching and per-item generators are those of
:class:`~synesthesia.pipelines.text2image.TextToImagePipeline`, which this class extends: the
sampler draws (N, C, F, H, W) instead of (N, C, H, W). Output types: ``"pt"`` a float tensor
(N, F, 1, H, W) in [-1, 1]; ``"np"`` an array (N, F, H, W, 1) in [0, 1]; ``"pil"`` a list of
N lists of F PIL images. :func:`save_gif` and :func:`save_frame_strip` write them.

Folder: ``model.safetensors`` (``text_encoder.*``, ``unet.*``) and ``config.json``
(``{"kind": "text2video", "video_unet", "text_encoder", "vocabulary", "schedule",
"prediction", "guidance_scale", "data", "world", ...}``); a training run's ``checkpoint/``.
"""

from __future__ import annotations

import inspect
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from synesthesia.diffusion.frame_noise import FrameCorrelatedDenoiser, mix_frames
from synesthesia.errors import InputError
from synesthesia.nets.encoders import TextEncoder, TextEncoderConfig
from synesthesia.nets.tokenizer import WordTokenizer
from synesthesia.nets.video_unet import (
    TextConditionedVideoUNet,
    VideoUNetConfig,
    build_video_unet,
)
from synesthesia.pipelines.base import (
    OUTPUT_TYPES,
    PipelineConfig,
    build_schedule,
    load_weights,
    to_output,
)
from synesthesia.pipelines.text2image import DEFAULT_GUIDANCE, TextToImagePipeline

#: The call every text-conditioned pipeline shares (its arguments, their order, defaults).
_IMAGE_CALL = inspect.signature(TextToImagePipeline.__call__)

#: The ``"kind"`` of a text-to-video checkpoint.
KIND = "text2video"


@dataclass
class TextToVideoConfig(PipelineConfig):
    """config.json of a text-to-video pipeline."""

    kind: str = KIND
    schedule: dict = field(default_factory=dict)
    video_unet: dict = field(default_factory=dict)
    text_encoder: dict = field(default_factory=dict)
    vocabulary: list = field(default_factory=list)
    freeze_text: bool = False
    guidance_scale: float = DEFAULT_GUIDANCE
    required = ("kind", "schedule", "prediction", "video_unet", "text_encoder", "vocabulary")


def build_video_model(config: TextToVideoConfig) -> TextConditionedVideoUNet:
    """The network of a config (weights random): text encoder + video U-Net."""
    text = TextEncoder(TextEncoderConfig(**config.text_encoder))
    unet = build_video_unet(VideoUNetConfig.from_dict(config.video_unet))
    return TextConditionedVideoUNet(unet, text, config.freeze_text)


class TextToVideoPipeline(TextToImagePipeline):
    """Generate moving-digit videos from prompts ("a 3 moving left", "a seven moving up fast").

    Args: as :class:`~synesthesia.pipelines.text2image.TextToImagePipeline`, with a
    :class:`~synesthesia.nets.video_unet.TextConditionedVideoUNet` as ``model``.
    """

    kind = KIND
    config_class = TextToVideoConfig

    @property
    def video_config(self) -> VideoUNetConfig:
        """The video U-Net's config (frames, layout, temporal layers, the spatial U-Net)."""
        return self.model.unet.config

    @property
    def frames(self) -> int:
        return self.video_config.frames

    @property
    def latent(self) -> bool:
        return False

    @property
    def frame_noise_correlation(self) -> float:
        """The correlation of the frames' noise the model was trained with (0: white noise;
        :mod:`synesthesia.diffusion.frame_noise`)."""
        recipe = (self.extra or {}).get("recipe") or {}
        return float(recipe.get("frame_noise_correlation", 0.0))

    def denoiser(self):
        """The U-Net as a sampler denoiser; with frame-correlated noise, of ``y = M^-1 x``."""
        net = super().denoiser()
        rho = self.frame_noise_correlation
        return FrameCorrelatedDenoiser(net, rho) if rho > 0 else net

    @property
    def sample_clip(self) -> float | None:
        # the sampler works on y = M^-1 x, whose range is not [-1, 1]
        return None if self.frame_noise_correlation > 0 else 1.0

    def from_sampled(self, samples: torch.Tensor) -> torch.Tensor:
        """Videos from the sampler's ``y``: ``x = M y`` (the identity for white noise)."""
        rho = self.frame_noise_correlation
        return mix_frames(samples, rho) if rho > 0 else samples

    @property
    def sample_shape(self) -> tuple[int, int, int, int]:
        """(C, F, H, W) of what the sampler draws."""
        cfg = self.video_config
        return (cfg.in_channels, cfg.frames, cfg.image_size, cfg.image_size)

    @property
    def config(self) -> TextToVideoConfig:
        return TextToVideoConfig(
            schedule=self.schedule.to_config(),
            prediction=self.prediction,
            video_unet=self.video_config.to_dict(),
            text_encoder=dict(vars(self.model.text_encoder.config)),
            vocabulary=list(self.tokenizer.vocabulary),
            freeze_text=self.model.freeze_text,
            guidance_scale=self.guidance_scale,
            extra=self.extra,
        )

    @torch.no_grad()
    def __call__(self, *args, **kwargs):
        """Videos for ``prompt`` (a string or a list), ``num_images_per_prompt`` each.

        The call of :meth:`TextToImagePipeline.__call__`, the same arguments in the same
        order: ``prompt, negative_prompt=None, guidance_scale=None, num_inference_steps=20,
        method="dpmpp_2m", generator=None, num_images_per_prompt=1, guidance_rescale=0.0,
        output_type="pil", eta=0.0, batch_size=32, progress=False`` (``batch_size`` counts
        videos). ``output_type``: "pt" (N, F, 1, H, W) in [-1, 1], "np" (N, F, H, W, 1) in
        [0, 1], "pil" a list of N lists of F PIL images.
        """
        try:
            bound = _IMAGE_CALL.bind(self, *args, **kwargs)
        except TypeError as exc:
            raise InputError(f"TextToVideoPipeline call: {exc}") from None
        bound.arguments.setdefault("batch_size", 32)
        bound.apply_defaults()
        output_type = bound.arguments["output_type"]
        if output_type not in OUTPUT_TYPES:
            raise InputError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        bound.arguments["output_type"] = "pt"
        # (N, C, F, H, W) -> (N, F, C, H, W)
        videos = TextToImagePipeline.__call__(*bound.args, **bound.kwargs).transpose(1, 2)
        if output_type == "pt":
            return videos
        if output_type == "np":
            return np.stack([to_output(v, "np") for v in videos])
        return [to_output(v, "pil") for v in videos]

    @classmethod
    def _from_parts(
        cls, config: TextToVideoConfig, state: dict[str, torch.Tensor], folder: Path
    ) -> TextToVideoPipeline:
        where = folder / "config.json"
        try:
            model = build_video_model(config)
            tokenizer = WordTokenizer(config.vocabulary, model.text_encoder.config.max_length)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: bad text-to-video config ({exc})") from exc
        load_weights(model, state, folder / "model.safetensors")
        schedule = build_schedule(config, str(where))
        try:
            return cls(
                model, tokenizer, schedule, config.prediction, config.guidance_scale, config.extra
            )
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: bad text-to-video config ({exc})") from exc


# ---------------------------------------------------------------------- files
def _frames_first(video: torch.Tensor) -> torch.Tensor:
    if not isinstance(video, torch.Tensor) or video.ndim != 4:
        shape = tuple(video.shape) if hasattr(video, "shape") else type(video).__name__
        raise InputError(f"a video must be a tensor (F, C, H, W) in [-1, 1], got {shape}")
    return video


def save_gif(video: torch.Tensor, path: str | Path, fps: float = 6.0, scale: int = 3) -> Path:
    """Write one video (F, C, H, W) in [-1, 1] as a looping GIF of F frames (Pillow).

    Pillow stores identical consecutive frames once, with their durations added: a video
    that stands still for k frames plays for as long, with fewer frames in the file.
    """
    from PIL import Image

    from synesthesia.io import atomic_write_bytes

    frames = [
        im.resize((im.width * scale, im.height * scale), Image.NEAREST)
        for im in to_output(_frames_first(video).clamp(-1, 1), "pil")
    ]
    buf = io.BytesIO()
    frames[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=int(round(1000 / fps)),
        loop=0,
        disposal=1,
        optimize=False,
    )
    return atomic_write_bytes(Path(path), buf.getvalue())


def save_videos_gif(
    videos: torch.Tensor, path: str | Path, nrow: int | None = None, fps: float = 6.0
) -> Path:
    """Write videos (N, F, C, H, W) as one GIF: frame k shows every video's frame k in a grid."""
    import math

    from synesthesia.pipelines.image import image_grid

    if videos.ndim != 5:
        raise InputError(f"videos must be (N, F, C, H, W), got shape {tuple(videos.shape)}")
    nrow = nrow or math.ceil(math.sqrt(videos.shape[0]))
    grids = [image_grid(videos[:, k], nrow) for k in range(videos.shape[1])]
    arr = torch.from_numpy(np.stack([np.asarray(g, dtype=np.float32) for g in grids]))
    arr = arr / 127.5 - 1.0
    arr = arr[..., None] if arr.ndim == 3 else arr
    return save_gif(arr.permute(0, 3, 1, 2), path, fps, scale=2)


def save_frame_strip(videos: torch.Tensor, path: str | Path, scale: int = 2) -> Path:
    """Write videos (N, F, C, H, W) as a PNG: one row per video, its frames left to right."""
    from synesthesia.pipelines.image import save_image_grid

    if not isinstance(videos, torch.Tensor) or videos.ndim != 5:
        shape = tuple(videos.shape) if hasattr(videos, "shape") else type(videos).__name__
        raise InputError(f"videos must be a tensor (N, F, C, H, W), got {shape}")
    n, f = videos.shape[:2]
    return save_image_grid(videos.reshape(n * f, *videos.shape[2:]), path, nrow=f, scale=scale)


__all__ = [
    "KIND",
    "TextToVideoConfig",
    "TextToVideoPipeline",
    "build_video_model",
    "save_frame_strip",
    "save_gif",
    "save_videos_gif",
]
