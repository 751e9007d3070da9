"""Text-to-audio diffusion: a spoken digit from a prompt (chapter 13.4.2).

>>> from synesthesia.pipelines.text2audio import TextToAudioPipeline
>>> # pipe = TextToAudioPipeline.from_pretrained("runs/audio/checkpoint")
>>> # clips = pipe("seven", generator=torch.Generator().manual_seed(0), num_images_per_prompt=4)
>>> # clips.shape == (4, pipe.samples); pipe.sample_rate == 8000

The network is the project's text encoder and a 1-D U-Net
(:class:`~synesthesia.nets.audio_unet.AudioUNet`) joined by
:class:`~synesthesia.nets.text_unet.TextConditionedUNet`; it draws in the domain of
:class:`~synesthesia.data.audio_domain.AudioDomain` (log-mel frames decoded by Griffin-Lim,
or the raw waveform). The call (prompts, negative prompts, batched classifier-free guidance)
is the text-to-image pipeline's, which this class extends; sampling is the pipeline base's
(:mod:`synesthesia.pipelines.base`).

Prompts. A prompt names one digit, as a number word or a numeral ("seven", "the word three",
"7"); every word must be in the vocabulary saved in ``config.json`` (the training captions'
words), or the call raises :class:`~synesthesia.errors.InputError` naming the word. The empty
prompt is the null condition of classifier-free guidance (training dropped captions to it);
a negative prompt takes its place in the unconditional branch.

Folder: ``model.safetensors`` (``text_encoder.*``, ``unet.*``) and ``config.json``
(``{"kind": "text2audio", "unet", "text_encoder", "vocabulary", "domain", "schedule",
"prediction", "guidance_scale", ...}``). A training run's ``checkpoint/`` is such a folder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from synesthesia.data.audio_domain import AudioDomain
from synesthesia.diffusion import NoiseSchedule
from synesthesia.errors import InputError, short
from synesthesia.nets.audio_unet import AudioUNet, AudioUNetConfig
from synesthesia.nets.encoders import TextEncoder, TextEncoderConfig
from synesthesia.nets.text_unet import TextConditionedUNet
from synesthesia.nets.tokenizer import WordTokenizer, split_words
from synesthesia.pipelines.base import PipelineConfig, build_schedule, load_weights
from synesthesia.pipelines.text2image import TextToImagePipeline

#: The ``"kind"`` of a text-to-audio checkpoint.
KIND = "text2audio"
#: Guidance scale used when a call gives none and the config stores none.
DEFAULT_GUIDANCE = 2.0
AUDIO_OUTPUT_TYPES = ("np", "pt")


@dataclass
class TextToAudioConfig(PipelineConfig):
    """config.json of a text-to-audio pipeline."""

    kind: str = KIND
    schedule: dict = field(default_factory=dict)
    unet: dict = field(default_factory=dict)
    text_encoder: dict = field(default_factory=dict)
    vocabulary: list = field(default_factory=list)
    domain: dict = field(default_factory=dict)
    guidance_scale: float = DEFAULT_GUIDANCE
    required = ("kind", "schedule", "prediction", "unet", "text_encoder", "vocabulary", "domain")


def build_audio_model(unet: AudioUNetConfig, text: TextEncoderConfig) -> TextConditionedUNet:
    """The network (weights random): the text encoder and the 1-D U-Net, as one module."""
    return TextConditionedUNet(AudioUNet(unet), TextEncoder(text))


class TextToAudioPipeline(TextToImagePipeline):
    """Generate spoken digits from prompts with a text-conditioned 1-D U-Net and CFG.

    The call is the text-to-image pipeline's (prompts, negative prompts, batched
    classifier-free guidance, one generator per clip); what differs is what the sampler draws
    (:attr:`sample_shape`: the domain's channels x length), how prompts are checked
    (:meth:`check_prompts`) and the decoding into clips (:attr:`domain`).

    ``model`` is a :class:`~synesthesia.nets.text_unet.TextConditionedUNet` around an
    :class:`~synesthesia.nets.audio_unet.AudioUNet` (no autoencoder), ``domain`` the
    :class:`~synesthesia.data.audio_domain.AudioDomain` it draws in; the other arguments are
    :class:`~synesthesia.pipelines.text2image.TextToImagePipeline`'s.
    """

    kind = KIND
    config_class = TextToAudioConfig

    def __init__(
        self,
        model: TextConditionedUNet,
        tokenizer: WordTokenizer,
        domain: AudioDomain,
        schedule: NoiseSchedule,
        prediction: str = "v",
        guidance_scale: float = DEFAULT_GUIDANCE,
        extra: dict | None = None,
        precision: str = "auto",
    ) -> None:
        if model.autoencoder is not None:
            raise ValueError("a text-to-audio model has no autoencoder")
        if model.unet.config.in_channels != domain.channels:
            raise ValueError(
                f"the U-Net reads {model.unet.config.in_channels} channels, the {domain.kind} "
                f"domain has {domain.channels}"
            )
        super().__init__(model, tokenizer, schedule, prediction, guidance_scale, extra, precision)
        self.domain = domain

    @property
    def sample_rate(self) -> int:
        """Samples per second of the generated clips."""
        return self.domain.sample_rate

    @property
    def samples(self) -> int:
        """Samples of one generated clip."""
        return self.domain.samples

    @property
    def sample_shape(self) -> tuple[int, int]:
        """(channels, length) of what the sampler draws (mel bins x frames, or 1 x samples)."""
        return self.domain.shape

    @property
    def config(self) -> TextToAudioConfig:
        return TextToAudioConfig(
            schedule=self.schedule.to_config(),
            prediction=self.prediction,
            unet=self.model.unet.config.to_dict(),
            text_encoder=dict(vars(self.model.text_encoder.config)),
            vocabulary=list(self.tokenizer.vocabulary),
            domain=self.domain.to_dict(),
            guidance_scale=self.guidance_scale,
            extra=self.extra,
        )

    def check_prompts(self, prompts: Sequence[str], what: str = "prompt") -> None:
        """One clear error for a prompt that is not a string, uses a word outside the
        vocabulary, is too long, or (``what="prompt"``) does not name exactly one digit."""
        from synesthesia.data.spoken_digits import prompt_digits

        for text in prompts:
            if not isinstance(text, str):
                raise InputError(
                    f"{what} must be a string, got {type(text).__name__}: {short(text)}"
                )
            unknown = self.tokenizer.unknown_words(text)
            if unknown:
                raise InputError(
                    f"{what} {short(text)}: {', '.join(repr(w) for w in unknown)} not in the "
                    "model's vocabulary; name a digit, e.g. 'seven', '7' or 'the word seven'"
                )
            if len(split_words(text)) + 1 > self.tokenizer.max_length:
                raise InputError(
                    f"{what} {short(text)} is too long: the text encoder reads at most "
                    f"{self.tokenizer.max_length - 1} words"
                )
            digits = set(prompt_digits(text))
            if what == "prompt" and len(digits) != 1:
                raise InputError(
                    f"prompt {short(text)} must name one digit (zero..nine or 0..9), "
                    f"it names {len(digits)}"
                )

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
        output_type: str = "np",
        eta: float = 0.0,
        batch_size: int = 64,
        progress: bool = False,
    ) -> np.ndarray | torch.Tensor:
        """Clips for ``prompt`` (a string or a list), ``num_images_per_prompt`` each.

        ``guidance_scale`` w (None: the model's stored default): 1 is the conditional model,
        0 the unconditional one, > 1 guides (Ho & Salimans 2022). ``negative_prompt`` (one
        string, or one per prompt) replaces the empty prompt in the unconditional branch.
        ``generator``: one, or a list of one per clip (a batched call then gives the same
        clips as one call per prompt). ``output_type`` "np" gives a float32 array
        (N, samples) in [-1, 1], "pt" a tensor; the rate is :attr:`sample_rate`.
        """
        if output_type not in AUDIO_OUTPUT_TYPES:
            raise InputError(
                f"output_type must be one of {AUDIO_OUTPUT_TYPES}, got {short(output_type)}"
            )
        x = super().__call__(
            prompt,
            negative_prompt=negative_prompt,
            guidance_scale=guidance_scale,
            num_inference_steps=num_inference_steps,
            method=method,
            generator=generator,
            num_images_per_prompt=num_images_per_prompt,
            output_type="pt",
            eta=eta,
            batch_size=batch_size,
            progress=progress,
        )
        clips = self.domain.decode(x.cpu())
        return clips if output_type == "pt" else clips.numpy().astype(np.float32)

    # ------------------------------------------------------------------ persistence
    @classmethod
    def _from_parts(
        cls, config: TextToAudioConfig, state: dict[str, torch.Tensor], folder: Path
    ) -> TextToAudioPipeline:
        where = folder / "config.json"
        try:
            domain = AudioDomain.from_dict(config.domain)
            model = build_audio_model(
                AudioUNetConfig.from_dict(config.unet), TextEncoderConfig(**config.text_encoder)
            )
            tokenizer = WordTokenizer(config.vocabulary, model.text_encoder.config.max_length)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: bad text-to-audio config ({exc})") from exc
        load_weights(model, state, folder / "model.safetensors")
        schedule = build_schedule(config, str(where))
        try:
            return cls(
                model,
                tokenizer,
                domain,
                schedule,
                config.prediction,
                config.guidance_scale,
                config.extra,
            )
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: bad text-to-audio config ({exc})") from exc


# ---------------------------------------------------------------------- WAV files and figures
def wav_bytes(clip: np.ndarray | torch.Tensor, sample_rate: int) -> bytes:
    """A mono 16-bit PCM WAV file of ``clip`` (samples,) in [-1, 1] (soundfile)."""
    import io

    import soundfile as sf

    x = np.asarray(clip.detach().cpu() if isinstance(clip, torch.Tensor) else clip, np.float32)
    if x.ndim != 1:
        raise InputError(f"a clip is one channel (samples,), got shape {x.shape}")
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1.0, 1.0), int(sample_rate), subtype="PCM_16", format="WAV")
    return buf.getvalue()


def save_wav(path: str | Path, clip: np.ndarray | torch.Tensor, sample_rate: int) -> Path:
    """Write ``clip`` as a 16-bit WAV file at ``path`` (atomically); returns the path."""
    from synesthesia.io import atomic_write_bytes

    return atomic_write_bytes(path, wav_bytes(clip, sample_rate))


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """``(samples float32 in [-1, 1], sample rate)`` of a mono WAV file; clear errors."""
    import soundfile as sf

    try:
        x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, sf.LibsndfileError) as exc:
        raise InputError(f"{path}: cannot read WAV ({' '.join(str(exc).split())})") from None
    return x.mean(axis=1) if x.shape[1] > 1 else x[:, 0], int(rate)


def plot_spectrogram(
    clip: np.ndarray | torch.Tensor,
    sample_rate: int,
    ax=None,  # noqa: ANN001 - a matplotlib Axes
    domain: AudioDomain | None = None,
    title: str | None = None,
):
    """The log-mel spectrogram of one clip (time in seconds, mel band index) on ``ax``; returns
    ``ax``. ``domain`` gives the mel settings (default: :class:`AudioDomain`'s at this rate)."""
    import matplotlib.pyplot as plt

    x = torch.as_tensor(np.asarray(clip, dtype=np.float32))
    if x.ndim != 1:
        raise InputError(f"a clip is one channel (samples,), got shape {tuple(x.shape)}")
    domain = domain or AudioDomain(sample_rate=sample_rate, samples=len(x))
    if domain.sample_rate != sample_rate:
        raise InputError(f"the domain is at {domain.sample_rate} Hz, the clip at {sample_rate} Hz")
    from synesthesia.data.audio import log_mel

    m = log_mel(x, sample_rate, domain.mel_config()).numpy() / math.log(10) * 10  # dB
    ax = ax or plt.gca()
    ax.imshow(
        np.maximum(m, m.max() - 60),
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0, len(x) / sample_rate, 0, m.shape[0]),
    )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel band")
    if title:
        ax.set_title(title)
    return ax


__all__ = [
    "KIND",
    "TextToAudioConfig",
    "TextToAudioPipeline",
    "build_audio_model",
    "plot_spectrogram",
    "read_wav",
    "save_wav",
    "wav_bytes",
]
