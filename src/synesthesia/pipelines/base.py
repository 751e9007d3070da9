"""The pipeline base every generative model shares: config, persistence, precision, the call.

A pipeline is a denoising network + a noise schedule + what the network predicts, and a
diffusers-style call (``guidance_scale``, ``num_inference_steps``, ``generator``,
``num_images_per_prompt``, ``output_type``). What differs between class-to-image,
text-to-image, latent, video and audio is the network, the conditioning and the output;
everything else lives here once:

- :class:`PipelineConfig`: a dataclass saved as ``config.json`` (flat JSON, ``"kind"``
  first); fields a subclass does not know are kept in ``extra`` and written back unchanged
  (training provenance: recipe, data, preset, ...).
- :meth:`DiffusionPipeline.save_pretrained` writes the whole folder atomically
  (:func:`synesthesia.io.save_pretrained`); :meth:`DiffusionPipeline.from_pretrained` checks
  the kind and gives one clear error naming the file for anything wrong.
- :attr:`DiffusionPipeline.precision`: resolved once by
  :func:`synesthesia.training.precision.resolve_precision` ("auto": bf16 only where it is
  native and measured faster); every network call runs under
  :func:`synesthesia.training.precision.autocast`.
- :meth:`DiffusionPipeline.generate`: the sampler loop in batches, with classifier-free
  guidance, and :func:`to_output` for ``output_type``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from synesthesia.diffusion import NoiseSchedule, cfg_denoiser, sample
from synesthesia.diffusion.objectives import PREDICTIONS
from synesthesia.errors import InputError
from synesthesia.training.precision import autocast, resolve_precision

OUTPUT_TYPES = ("pt", "np", "pil")
#: Upper bound of a guidance scale: far beyond any useful value (1-10), and finite samples.
MAX_GUIDANCE = 100.0


@dataclass
class PipelineConfig:
    """The JSON config of a pipeline folder. Subclasses add their network's config fields."""

    kind: str
    schedule: dict
    prediction: str = "v"
    extra: dict = field(default_factory=dict)
    #: Keys config.json must have (a subclass adds its network's).
    required: ClassVar[tuple[str, ...]] = ("kind", "schedule", "prediction")

    def to_dict(self) -> dict:
        """Flat JSON: the fields, then ``extra``'s entries at top level."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**self.extra, **d}

    @classmethod
    def from_dict(cls, d: dict, where: str = "config.json") -> PipelineConfig:
        """The inverse of :meth:`to_dict`: unknown keys go to ``extra``; clear errors."""
        if not isinstance(d, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        missing = [k for k in cls.required if k not in d]
        if missing:
            raise InputError(f"{where}: incomplete config, missing {', '.join(missing)}")
        known = {k: v for k, v in d.items() if k in names}
        return cls(**known, extra={k: v for k, v in d.items() if k not in names})


def to_output(images: torch.Tensor, output_type: str) -> Any:
    """``images`` (N, C, H, W) in [-1, 1] as "pt" (as is), "np" (N, H, W, C) in [0, 1] or "pil"."""
    if output_type == "pt":
        return images
    arr = ((images.detach().float().cpu() + 1.0) / 2.0).permute(0, 2, 3, 1).numpy()
    arr = arr.astype(np.float32)
    if output_type == "np":
        return arr
    return [to_pil(a) for a in arr]


def to_pil(arr: np.ndarray):
    """A PIL image from an (H, W, C) float array in [0, 1]."""
    from PIL import Image

    a = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)


def check_call_options(
    guidance_scale: float,
    num_inference_steps: int,
    num_images_per_prompt: int,
    output_type: str,
    batch_size: int,
) -> None:
    """One clear error for a bad call option (shared by every pipeline's ``__call__``)."""
    if output_type not in OUTPUT_TYPES:
        raise InputError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
    g = float(guidance_scale)
    if not (math.isfinite(g) and 0.0 <= g <= MAX_GUIDANCE):
        raise InputError(f"guidance_scale must lie in [0, {MAX_GUIDANCE:g}], got {guidance_scale}")
    for name, value in (
        ("num_inference_steps", num_inference_steps),
        ("num_images_per_prompt", num_images_per_prompt),
        ("batch_size", batch_size),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name} must be an integer >= 1, got {value!r}")


class DiffusionPipeline:
    """Base of every generative pipeline: a denoising network, a schedule, a precision.

    Subclasses set :attr:`kind` and :attr:`config_class`, build themselves from a config and
    a state dict in :meth:`_from_parts`, and say which module holds the weights
    (:attr:`network`). ``precision`` ("auto", "fp32" or "bf16") is resolved on first use for
    the pipeline's device.
    """

    kind: ClassVar[str] = ""
    config_class: ClassVar[type[PipelineConfig]] = PipelineConfig

    def __init__(
        self,
        network: torch.nn.Module,
        schedule: NoiseSchedule,
        prediction: str = "v",
        extra: dict | None = None,
        precision: str = "auto",
    ) -> None:
        self.network = network.eval()
        self.schedule = schedule
        self.prediction = prediction
        self.extra = dict(extra or {})
        self._precision_mode = precision
        self._precision: tuple[str, str] | None = None

    # ------------------------------------------------------------------ device, precision
    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def to(self, device: str | torch.device) -> DiffusionPipeline:
        """Move the network to ``device``; returns self."""
        self.network.to(device)
        return self

    @property
    def precision(self) -> str:
        """The resolved precision on the current device: "bf16" or "no" (float32)."""
        key = str(self.device)
        if self._precision is None or self._precision[0] != key:
            self._precision = (key, resolve_precision(self._precision_mode, self.device))
        return self._precision[1]

    @property
    def channels_last(self) -> bool:
        """Whether 4-D sampling runs the network in channels-last memory format.

        A fixed rule, not a timing, so that a seed gives the same samples on the same machine:
        channels-last in float32 on a CPU (1.04-1.22x faster per image for the small U-Net at
        batch 32-250), the default layout under bf16 (there channels-last measured 0.6x;
        ``benchmarks/bench_sampling_layout.py`` -> ``benchmarks/out/image/sampling_layout.json``).
        """
        return self.device.type == "cpu" and self.precision == "no"

    def set_precision(self, precision: str) -> DiffusionPipeline:
        """Use ``precision`` ("auto", "fp32" or "bf16") from now on; returns self."""
        resolve_precision(precision, self.device)  # validates
        self._precision_mode, self._precision = precision, None
        return self

    def network_call(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` (a network call) run at the pipeline's precision, float32 out (a tensor, or
        a dict whose floating-point tensors are cast)."""
        precision, device = self.precision, self.device

        def call(*args: Any, **kwargs: Any) -> Any:
            with autocast(precision, device):
                out = fn(*args, **kwargs)
            if isinstance(out, dict):
                return {k: v.float() if v.is_floating_point() else v for k, v in out.items()}
            return out.float()

        return call

    # ------------------------------------------------------------------ generate
    def generate(
        self,
        denoiser: Callable[..., torch.Tensor],
        shape: tuple[int, ...],
        cond: dict[str, torch.Tensor],
        uncond: dict[str, torch.Tensor] | None,
        guidance_scale: float,
        num_inference_steps: int,
        method: str,
        generator: torch.Generator | list[torch.Generator] | None,
        batch_size: int,
        eta: float = 0.0,
        clip_x0: float | None = 1.0,
        progress: bool = False,
        guidance_rescale: float = 0.0,
    ) -> torch.Tensor:
        """Run the sampler over ``shape[0]`` items in batches of ``batch_size``.

        ``cond`` holds per-item tensors (split with the batch); ``uncond`` the null condition
        for classifier-free guidance, used when ``guidance_scale != 1``: tensors of batch 1
        (broadcast) or of ``shape[0]`` items (split with the batch, e.g. negative prompts).
        ``generator``: one generator, or a list of one per item (then item i depends only on
        generator i, so a batched call equals one call per item).
        """
        n = shape[0]
        if isinstance(generator, (list, tuple)) and len(generator) != n:
            raise InputError(f"got {len(generator)} generators for {n} images; give one or {n}")
        if len(shape) == 4 and self.channels_last:
            denoiser = _channels_last(denoiser, self.network)
        chunks = []
        for lo in range(0, n, batch_size):
            part = {k: v[lo : lo + batch_size] for k, v in cond.items()}
            size = min(batch_size, n - lo)
            guided = denoiser
            if guidance_scale != 1.0 and uncond is not None:
                null = {
                    k: v[lo : lo + batch_size] if v.shape[0] == n and n > 1 else v
                    for k, v in uncond.items()
                }
                guided = cfg_denoiser(denoiser, guidance_scale, null, guidance_rescale)
            gen = (
                generator[lo : lo + batch_size]
                if isinstance(generator, (list, tuple))
                else generator
            )
            chunks.append(
                sample(
                    guided,
                    (size, *shape[1:]),
                    self.schedule,
                    method=method,
                    steps=num_inference_steps,
                    eta=eta,
                    prediction=self.prediction,
                    generator=gen,
                    cond=part,
                    clip_x0=clip_x0,
                    progress=progress,
                    device=self.device,
                )
            )
        return torch.cat(chunks)

    # ------------------------------------------------------------------ persistence
    @property
    def config(self) -> PipelineConfig:
        """The pipeline's config (a :class:`PipelineConfig` subclass); override to add fields."""
        return self.config_class(
            kind=self.kind,
            schedule=self.schedule.to_config(),
            prediction=self.prediction,
            extra=self.extra,
        )

    def to_config(self) -> dict:
        """The JSON config saved next to the weights."""
        return self.config.to_dict()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The weights saved in ``model.safetensors``."""
        return {k: v.detach().cpu().contiguous() for k, v in self.network.state_dict().items()}

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write ``model.safetensors`` + ``config.json`` as one atomic folder."""
        from synesthesia.io import save_pretrained

        return save_pretrained(folder, self.state_dict(), self.to_config())

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, device: str | torch.device = "cpu", precision: str = "auto"
    ) -> DiffusionPipeline:
        """Load a folder written by :meth:`save_pretrained` (or a training checkpoint)."""
        from synesthesia.io import load_pretrained

        folder = Path(folder)
        state, raw = load_pretrained(folder)
        where = str(folder / "config.json")
        if raw.get("kind") != cls.kind:
            raise InputError(
                f"{where}: kind is {raw.get('kind')!r}, not a {cls.__name__} checkpoint "
                f"({cls.kind!r})"
            )
        config = cls.config_class.from_dict(raw, where)
        if config.prediction not in PREDICTIONS:
            raise InputError(
                f"{where}: prediction must be one of {PREDICTIONS}, got {config.prediction!r}"
            )
        try:
            pipe = cls._from_parts(config, state, folder)
        except (KeyError, TypeError) as exc:
            raise InputError(f"{where}: incomplete or malformed config ({exc})") from exc
        pipe._precision_mode = precision
        return pipe.to(device)

    @classmethod
    def _from_parts(
        cls, config: PipelineConfig, state: dict[str, torch.Tensor], folder: Path
    ) -> DiffusionPipeline:
        raise NotImplementedError


def _channels_last(
    denoiser: Callable[..., torch.Tensor], network: torch.nn.Module
) -> Callable[..., torch.Tensor]:
    """``denoiser`` with its network and 4-D inputs in channels-last format (output contiguous)."""
    network.to(memory_format=torch.channels_last)

    def call(x: torch.Tensor, t: torch.Tensor, **cond: Any) -> torch.Tensor:
        out = denoiser(x.contiguous(memory_format=torch.channels_last), t, **cond)
        return out.contiguous()

    return call


def load_weights(module: torch.nn.Module, state: dict[str, torch.Tensor], where: Path) -> None:
    """``module.load_state_dict(state)`` with one clear error naming the weights file."""
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise InputError(f"{where}: weights do not fit config.json ({first})") from exc


def build_schedule(config: PipelineConfig, where: str) -> NoiseSchedule:
    """The noise schedule of a config, with one clear error naming the file."""
    try:
        return NoiseSchedule.from_config(config.schedule)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: bad noise schedule ({exc})") from exc
