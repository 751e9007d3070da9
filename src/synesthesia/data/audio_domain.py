"""The domain audio diffusion runs in: the raw waveform, or log-mel frames and a vocoder back.

:class:`AudioDomain` maps fixed-length clips (N, samples) in [-1, 1] to what the 1-D U-Net
draws, (N, channels, length) in [-1, 1], and back:

- ``"wave"``: the waveform itself, one channel (as DiffWave, Kong et al. 2021, at 8 kHz);
- ``"mel"``: log-mel power (:func:`synesthesia.data.audio.log_mel`: Hann windows, Slaney mel
  filterbank) with mel bins as channels and frames as the length axis, floored at
  ``mel_max - dynamic_range`` and scaled to [-1, 1]; back to a waveform by Griffin-Lim
  (Griffin & Lim 1984) after a non-negative least-squares inversion of the filterbank, both
  :func:`librosa.feature.inverse.mel_to_audio` (its random initial phase seeded, so a clip
  always decodes to the same samples).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch

from synesthesia.data.audio import LogMelConfig, log_mel
from synesthesia.errors import InputError

DOMAINS: tuple[str, ...] = ("mel", "wave")


@dataclass(frozen=True)
class AudioDomain:
    """A domain and its settings (saved in a pipeline's config.json)."""

    kind: str = "mel"
    sample_rate: int = 8_000
    samples: int = 8_000
    n_fft: int = 512
    win_length: int = 256
    hop: int = 128
    n_mels: int = 64
    f_min: float = 20.0
    f_max: float = 4_000.0
    mel_max: float = 3.0  # natural-log mel power that maps to +1 (see fit_level)
    dynamic_range: float = 11.5  # natural-log units below mel_max kept (50 dB)
    griffin_lim_iters: int = 32

    def __post_init__(self) -> None:
        if self.kind not in DOMAINS:
            raise InputError(f"audio domain must be one of {DOMAINS}, got {self.kind!r}")
        if self.sample_rate < 1 or self.samples < 1 or self.griffin_lim_iters < 1:
            raise InputError(f"sample_rate, samples and griffin_lim_iters must be >= 1: {self}")
        if not (math.isfinite(self.mel_max) and self.dynamic_range > 0):
            raise InputError(f"mel_max must be finite and dynamic_range > 0: {self}")
        if self.kind == "mel":
            self.mel_config()  # validates the STFT settings

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AudioDomain:
        """The inverse of :meth:`to_dict`; unknown keys raise InputError."""
        if not isinstance(d, dict):
            raise InputError(f"an audio domain is a JSON object, got {d!r}")
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise InputError(f"unknown audio domain keys {unknown}")
        return cls(**d)

    def mel_config(self) -> LogMelConfig:
        """The :class:`LogMelConfig` of the mel domain (at the clips' own rate)."""
        try:
            return LogMelConfig(
                sample_rate=self.sample_rate,
                n_fft=self.n_fft,
                win_length=self.win_length,
                hop=self.hop,
                n_mels=self.n_mels,
                f_min=self.f_min,
                f_max=self.f_max,
            )
        except ValueError as exc:
            raise InputError(f"bad mel settings of the audio domain ({exc})") from None

    @property
    def channels(self) -> int:
        return self.n_mels if self.kind == "mel" else 1

    @property
    def length(self) -> int:
        """Frames (mel, ``1 + samples // hop``) or samples (wave) of one clip."""
        return 1 + self.samples // self.hop if self.kind == "mel" else self.samples

    @property
    def shape(self) -> tuple[int, int]:
        """(channels, length) of what the sampler draws."""
        return (self.channels, self.length)

    def log_mel(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Log-mel power (N, n_mels, frames) of clips (N, samples) at :attr:`sample_rate`."""
        return log_mel(waveforms.float(), self.sample_rate, self.mel_config())

    def encode(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Clips (N, samples) in [-1, 1] -> (N, channels, length) in [-1, 1]."""
        if waveforms.ndim != 2 or waveforms.shape[1] != self.samples:
            raise InputError(
                f"clips must be (N, {self.samples}) samples, got {tuple(waveforms.shape)}"
            )
        if self.kind == "wave":
            return waveforms.float().clamp(-1, 1)[:, None]
        lo = self.mel_max - self.dynamic_range
        m = self.log_mel(waveforms).clamp(lo, self.mel_max)
        return 2.0 * (m - lo) / self.dynamic_range - 1.0

    def to_log_mel(self, x: torch.Tensor) -> torch.Tensor:
        """Mel-domain samples (N, n_mels, frames) in [-1, 1] -> natural-log mel power."""
        lo = self.mel_max - self.dynamic_range
        return (x.float().clamp(-1, 1) + 1.0) / 2.0 * self.dynamic_range + lo

    def decode(self, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """(N, channels, length) -> clips (N, samples) in [-1, 1] (Griffin-Lim for mel)."""
        if x.ndim != 3 or tuple(x.shape[1:]) != self.shape:
            raise InputError(f"expected (N, {self.channels}, {self.length}), got {tuple(x.shape)}")
        if self.kind == "wave":
            return x[:, 0].float().clamp(-1, 1)
        power = torch.exp(self.to_log_mel(x)).double().cpu().numpy()
        clips = [self.vocode(p, seed) for p in power]
        return torch.from_numpy(np.stack(clips)).clamp(-1, 1)

    def vocode(self, mel_power: np.ndarray, seed: int = 0) -> np.ndarray:
        """One clip (samples,) float32 from its mel power (n_mels, frames): Griffin-Lim."""
        import librosa
        import librosa.feature.inverse

        stft = librosa.feature.inverse.mel_to_stft(
            mel_power,
            sr=self.sample_rate,
            n_fft=self.n_fft,
            power=2.0,
            fmin=self.f_min,
            fmax=self.f_max,
            htk=False,
            norm="slaney",
        )
        y = librosa.griffinlim(
            stft,
            n_iter=self.griffin_lim_iters,
            hop_length=self.hop,
            win_length=self.win_length,
            n_fft=self.n_fft,
            window="hann",
            center=True,
            pad_mode="constant",
            length=self.samples,
            random_state=np.random.default_rng(seed),
        )
        return np.asarray(y, dtype=np.float32)


def fit_level(domain: AudioDomain, waveforms: torch.Tensor, quantile: float = 0.999) -> AudioDomain:
    """``domain`` with ``mel_max`` set to the ``quantile`` of the log-mel power of
    ``waveforms`` (rounded up to 0.1), so the loudest bins of the training clips map to +1."""
    from dataclasses import replace

    if domain.kind != "mel":
        return domain
    m = domain.log_mel(waveforms[:2000]).flatten().double().numpy()
    top = float(np.quantile(m, quantile))
    return replace(domain, mel_max=math.ceil(top * 10) / 10)
