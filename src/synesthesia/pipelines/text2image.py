"""Text-to-image diffusion, in pixel space or in an autoencoder's latent space (chapter 13.3).

>>> from synesthesia.pipelines import TextToImagePipeline
>>> # pipe = TextToImagePipeline.from_pretrained("runs/text2image/checkpoint")
>>> # images = pipe("a thick, right-slanted seven", negative_prompt="thin", guidance_scale=3.0,
>>> #               generator=torch.Generator().manual_seed(0), num_images_per_prompt=4)

One class serves both spaces (Rombach et al. 2022): with an autoencoder in the folder, the
sampler starts from latent noise of the autoencoder's latent shape and the images are decoded
at the end (latents are scaled by the autoencoder's measured ``scaling_factor`` on encode and
unscaled on decode); without one it samples pixels. The sampling loop, classifier-free
guidance and output types are the pipeline base's (:mod:`synesthesia.pipelines.base`).

Prompts. The tokenizer's vocabulary is saved in ``config.json``; an unknown word becomes
``[UNK]`` with a warning naming it; a prompt longer than the text encoder's context is an
error. The empty prompt is the null condition (the model was trained with caption dropout
to it); a negative prompt takes the unconditional branch's place, as in diffusers.

Folder: ``model.safetensors`` (text encoder ``text_encoder.*``, U-Net ``unet.*`` and, for a
latent model, autoencoder ``autoencoder.*``) and ``config.json``
(``{"kind": "text2image", "unet", "text_encoder", "vocabulary", "autoencoder", "schedule",
"prediction", "guidance_scale", ...}``). A training run's ``checkpoint/`` is such a folder.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from synesthesia.diffusion import NoiseSchedule
from synesthesia.errors import InputError
from synesthesia.nets.encoders import TextEncoder, TextEncoderConfig
from synesthesia.nets.text_unet import TextConditionedUNet
from synesthesia.nets.tokenizer import WordTokenizer, split_words
from synesthesia.nets.unet import UNet, UNetConfig
from synesthesia.pipelines.base import (
    DiffusionPipeline,
    PipelineConfig,
    build_schedule,
    check_call_options,
    load_weights,
    to_output,
)

#: The ``"kind"`` of a text-to-image checkpoint (pixel or latent).
KIND = "text2image"
#: Guidance scale used when a call gives none and the config stores none.
DEFAULT_GUIDANCE = 3.0


class UnknownWordWarning(UserWarning):
    """A prompt word outside the vocabulary: it is encoded as ``[UNK]`` and carries no meaning."""


@dataclass
class TextToImageConfig(PipelineConfig):
    """config.json of a text-to-image pipeline."""

    kind: str = KIND
    schedule: dict = field(default_factory=dict)
    unet: dict = field(default_factory=dict)
    text_encoder: dict = field(default_factory=dict)
    vocabulary: list = field(default_factory=list)
    freeze_text: bool = False
    autoencoder: dict | None = None  # AutoencoderConfig (scaling_factor included) or None
    guidance_scale: float = DEFAULT_GUIDANCE
    required = ("kind", "schedule", "prediction", "unet", "text_encoder", "vocabulary")


def build_text_model(config: TextToImageConfig) -> TextConditionedUNet:
    """The network of a config (weights random): text encoder + U-Net (+ autoencoder)."""
    autoencoder = None
    if config.autoencoder is not None:
        from synesthesia.nets.autoencoder import AutoencoderConfig, AutoencoderKL

        autoencoder = AutoencoderKL(AutoencoderConfig.from_dict(config.autoencoder))
    text = TextEncoder(TextEncoderConfig(**config.text_encoder))
    unet = UNet(UNetConfig.from_dict(config.unet))
    return TextConditionedUNet(unet, text, config.freeze_text, autoencoder)


class TextToImagePipeline(DiffusionPipeline):
    """Generate images from prompts with a text-conditioned U-Net and classifier-free guidance.

    Args:
        model: a :class:`~synesthesia.nets.text_unet.TextConditionedUNet` (with its
            autoencoder for a latent model).
        tokenizer: the :class:`~synesthesia.nets.tokenizer.WordTokenizer` it was trained with.
        schedule: the noise schedule it was trained with.
        prediction: what the U-Net predicts: "eps", "x0" or "v".
        guidance_scale: the default guidance scale of a call.
        extra: the rest of the checkpoint's config (training provenance; kept on save).
        precision: "auto" (bf16 only where native and measured faster), "fp32" or "bf16".
    """

    kind = KIND
    config_class = TextToImageConfig

    def __init__(
        self,
        model: TextConditionedUNet,
        tokenizer: WordTokenizer,
        schedule: NoiseSchedule,
        prediction: str = "v",
        guidance_scale: float = DEFAULT_GUIDANCE,
        extra: dict | None = None,
        precision: str = "auto",
    ) -> None:
        from synesthesia.diffusion.objectives import check_prediction

        check_prediction(prediction)
        try:
            guidance_scale = float(guidance_scale)
        except (TypeError, ValueError):
            raise ValueError(f"guidance_scale must be a number, got {guidance_scale!r}") from None
        if not math.isfinite(guidance_scale) or guidance_scale < 0:
            raise ValueError(f"guidance_scale must be a finite number >= 0, got {guidance_scale}")
        if len(tokenizer) != model.text_encoder.config.vocab_size:
            raise ValueError(
                f"tokenizer has {len(tokenizer)} tokens, the text encoder "
                f"{model.text_encoder.config.vocab_size}"
            )
        super().__init__(model, schedule, prediction, extra, precision)
        self.tokenizer = tokenizer
        self.guidance_scale = float(guidance_scale)

    @property
    def model(self) -> TextConditionedUNet:
        return self.network

    @property
    def unet(self) -> UNet:
        return self.model.unet

    @property
    def autoencoder(self):
        """The latent model's autoencoder, or None for a pixel model."""
        return self.model.autoencoder

    @property
    def latent(self) -> bool:
        return self.autoencoder is not None

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of what the sampler draws: latents for a latent model, else pixels."""
        cfg = self.unet.config
        return (cfg.in_channels, cfg.image_size, cfg.image_size)

    @property
    def config(self) -> TextToImageConfig:
        ae = self.autoencoder
        return TextToImageConfig(
            schedule=self.schedule.to_config(),
            prediction=self.prediction,
            unet=self.unet.config.to_dict(),
            text_encoder=dict(vars(self.model.text_encoder.config)),
            vocabulary=list(self.tokenizer.vocabulary),
            freeze_text=self.model.freeze_text,
            autoencoder=None if ae is None else ae.config.to_dict(),
            guidance_scale=self.guidance_scale,
            extra=self.extra,
        )

    # ------------------------------------------------------------------ prompts
    def check_prompts(self, prompts: Sequence[str], what: str = "prompt") -> None:
        """One clear error for a prompt that cannot be encoded; a warning for unknown words."""
        limit = self.tokenizer.max_length
        for text in prompts:
            if not isinstance(text, str):
                raise InputError(f"{what} must be a string, got {type(text).__name__}: {text!r}")
            words = split_words(text)
            if len(words) + 1 > limit:
                raise InputError(
                    f"{what} {text!r} has {len(words)} words; the text encoder reads at most "
                    f"{limit - 1}"
                )
            unknown = self.tokenizer.unknown_words(text)
            if unknown:
                warnings.warn(
                    f"{what} {text!r}: {', '.join(repr(w) for w in unknown)} not in the "
                    "vocabulary; encoded as [UNK] (no meaning)",
                    UnknownWordWarning,
                    stacklevel=3,
                )

    def encode_prompts(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """``{"context", "context_mask", "pooled"}`` of a list of prompts (one batch, float32)."""
        ids, mask = self.tokenizer(list(prompts))
        ids, mask = ids.to(self.device), mask.to(self.device)
        with torch.no_grad():
            cond = self.network_call(self.model.encode_text)(ids, mask)
        return cond

    def denoiser(self) -> Callable[..., torch.Tensor]:
        """The U-Net as a sampler denoiser ``(x_t, t, context, context_mask, pooled)``."""
        return self.network_call(
            lambda x, t, context, context_mask, pooled: self.model(
                x, t, context=context, context_mask=context_mask, pooled=pooled
            )
        )

    # ------------------------------------------------------------------ generate
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | Sequence[str],
        negative_prompt: str | Sequence[str] | None = None,
        guidance_scale: float | None = None,
        num_inference_steps: int = 20,
        method: str = "dpmpp_2m",
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_images_per_prompt: int = 1,
        guidance_rescale: float = 0.0,
        output_type: str = "pil",
        eta: float = 0.0,
        batch_size: int = 128,
        progress: bool = False,
    ):
        """Images for ``prompt`` (a string or a list), ``num_images_per_prompt`` each.

        ``guidance_scale`` w (None: the model's stored default): 1 is the plain conditional
        model, 0 the unconditional one, > 1 guides (Ho & Salimans 2022). ``negative_prompt``
        (one string, or one per prompt) replaces the empty prompt in the unconditional
        branch. ``generator``: one, or a list of one per image (a batched call then gives the
        same images as one call per prompt with the same generators). ``output_type``: "pt"
        gives a float tensor (N, 1, 28, 28) in [-1, 1], "np" an array (N, H, W, C) in [0, 1],
        "pil" a list of PIL images.
        """
        guidance = self.guidance_scale if guidance_scale is None else guidance_scale
        check_call_options(
            guidance, num_inference_steps, num_images_per_prompt, output_type, batch_size
        )
        if not isinstance(prompt, (str, list, tuple)):
            raise InputError(
                f"prompt must be a string or a list of strings, got {type(prompt).__name__}"
            )
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts:
            raise InputError("prompt is an empty list: give at least one prompt")
        self.check_prompts(prompts)
        if negative_prompt is None:
            negatives = [""] * len(prompts)
        elif isinstance(negative_prompt, str):
            negatives = [negative_prompt] * len(prompts)
        else:
            negatives = list(negative_prompt)
            if len(negatives) != len(prompts):
                raise InputError(
                    f"negative_prompt has {len(negatives)} entries for {len(prompts)} prompts; "
                    "give one string, or one per prompt"
                )
        self.check_prompts(negatives, "negative_prompt")
        k = num_images_per_prompt
        prompts = [p for p in prompts for _ in range(k)]
        negatives = [p for p in negatives for _ in range(k)]
        n = len(prompts)
        # prompts and negatives in one tokenizer call: one padded length for both branches
        both = self.encode_prompts(prompts + negatives)
        cond = {key: v[:n] for key, v in both.items()}
        uncond = {key: v[n:] for key, v in both.items()}
        if negative_prompt is None:
            uncond = {key: v[:1] for key, v in uncond.items()}  # one null prompt, broadcast
        samples = self.generate(
            self.denoiser(),
            (n, *self.sample_shape),
            cond=cond,
            uncond=uncond,
            guidance_scale=guidance,
            num_inference_steps=num_inference_steps,
            method=method,
            generator=generator,
            batch_size=batch_size,
            eta=eta,
            clip_x0=self.sample_clip,
            progress=progress,
            guidance_rescale=guidance_rescale,
        )
        images = self.decode(samples, batch_size) if self.latent else self.from_sampled(samples)
        return to_output(images.clamp(-1.0, 1.0), output_type)

    @property
    def sample_clip(self) -> float | None:
        """The sampler's clipping of its x0 estimate: [-1, 1] for pixels, none for latents."""
        return None if self.latent else 1.0

    def from_sampled(self, samples: torch.Tensor) -> torch.Tensor:
        """Pixels from what the sampler returns (for this pipeline: the same)."""
        return samples

    def decode(self, latents: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
        """Images from scaled latents (the autoencoder's decoder, in batches)."""
        decode = self.network_call(self.autoencoder.decode_latents)
        return torch.cat(
            [decode(latents[i : i + batch_size]) for i in range(0, len(latents), batch_size)]
        )

    # ------------------------------------------------------------------ persistence
    @classmethod
    def _from_parts(
        cls, config: TextToImageConfig, state: dict[str, torch.Tensor], folder: Path
    ) -> TextToImagePipeline:
        where = folder / "config.json"
        try:
            model = build_text_model(config)
            tokenizer = WordTokenizer(config.vocabulary, model.text_encoder.config.max_length)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: bad text-to-image config ({exc})") from exc
        if config.autoencoder is None and any(k.startswith("autoencoder.") for k in state):
            raise InputError(f"{where}: the weights hold an autoencoder the config does not name")
        if config.autoencoder is not None and not any(k.startswith("autoencoder.") for k in state):
            raise InputError(
                f"{folder / 'model.safetensors'}: a latent model without its autoencoder's "
                "weights; retrain with --latent AUTOENCODER"
            )
        ae = model.autoencoder
        if ae is not None and tuple(ae.config.latent_shape) != (
            model.unet.config.in_channels,
            model.unet.config.image_size,
            model.unet.config.image_size,
        ):
            raise InputError(
                f"{where}: the U-Net draws {model.unet.config.in_channels} x "
                f"{model.unet.config.image_size} x {model.unet.config.image_size}, the "
                f"autoencoder's latents are {' x '.join(map(str, ae.config.latent_shape))}"
            )
        load_weights(model, state, folder / "model.safetensors")
        schedule = build_schedule(config, str(where))
        try:
            return cls(
                model,
                tokenizer,
                schedule,
                config.prediction,
                config.guidance_scale,
                config.extra,
            )
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: bad text-to-image config ({exc})") from exc
