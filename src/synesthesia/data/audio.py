"""Audio features: resampling and log-mel spectrograms, so 8 kHz and 22.05 kHz speech meet.

Resampling is polyphase filtering (:func:`scipy.signal.resample_poly`). The mel filterbank is
librosa's (:func:`librosa.filters.mel`, Slaney mel scale and area normalisation by default);
the short-time Fourier transform is :func:`torch.stft` so batches stay on torch. A test checks
:func:`log_mel` against :func:`librosa.feature.melspectrogram`.

The default band is 20 Hz - 4 kHz: the Free Spoken Digit recordings are sampled at 8 kHz and
hold nothing above 4 kHz, so features of synthetic (22.05 kHz) and real speech cover the same
band.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import torch


@dataclass(frozen=True)
class LogMelConfig:
    """Settings of :func:`log_mel` (defaults: 25 ms Hann windows every 10 ms at 16 kHz)."""

    sample_rate: int = 16_000
    n_fft: int = 512
    win_length: int = 400
    hop: int = 160
    n_mels: int = 40
    f_min: float = 20.0
    f_max: float | None = 4_000.0  # None: sample_rate / 2
    htk: bool = False  # mel scale: False = Slaney (librosa's default), True = HTK
    center: bool = True
    pad_mode: str = "constant"
    eps: float = 1e-6  # log(mel power + eps): the floor that silence maps to

    def __post_init__(self) -> None:
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length ({self.win_length}) must be <= n_fft ({self.n_fft})")
        top = self.sample_rate / 2 if self.f_max is None else self.f_max
        if not 0 <= self.f_min < top <= self.sample_rate / 2:
            raise ValueError(
                f"need 0 <= f_min < f_max <= sample_rate / 2, got f_min={self.f_min}, "
                f"f_max={self.f_max}, sample_rate={self.sample_rate}"
            )
        if self.hop < 1 or self.n_mels < 1:
            raise ValueError(f"hop and n_mels must be >= 1, got {self.hop}, {self.n_mels}")

    def to_dict(self) -> dict:
        """The settings as a JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LogMelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"LogMelConfig: unknown keys {sorted(unknown)}")
        return cls(**d)

    @property
    def floor(self) -> float:
        """The value of a silent bin, ``log(eps)``; :func:`fix_length` pads with it."""
        return math.log(self.eps)


@lru_cache(maxsize=16)
def _antialias_filter(up: int, down: int) -> np.ndarray:
    """resample_poly's own default low-pass filter (Kaiser beta 5, 10 zero crossings per
    side), designed once per rate pair instead of on every call."""
    from scipy.signal import firwin

    max_rate = max(up, down)
    return firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))


def resample(waveform: torch.Tensor | np.ndarray, orig_sr: int, target_sr: int) -> torch.Tensor:
    """Resample along the last axis from ``orig_sr`` to ``target_sr`` Hz (polyphase, float32)."""
    from scipy.signal import resample_poly

    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    x = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else waveform
    x = np.asarray(x, dtype=np.float32)
    if orig_sr == target_sr:
        return torch.from_numpy(x.copy())
    g = math.gcd(int(orig_sr), int(target_sr))
    up, down = int(target_sr) // g, int(orig_sr) // g
    y = resample_poly(x, up, down, axis=-1, window=_antialias_filter(up, down))
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))


@lru_cache(maxsize=16)
def _filterbank(config: LogMelConfig) -> torch.Tensor:
    import librosa.filters

    fb = librosa.filters.mel(
        sr=config.sample_rate,
        n_fft=config.n_fft,
        n_mels=config.n_mels,
        fmin=config.f_min,
        fmax=config.f_max,
        htk=config.htk,
        norm="slaney",
        dtype=np.float32,
    )
    return torch.from_numpy(fb)


def mel_filterbank(config: LogMelConfig = LogMelConfig()) -> torch.Tensor:
    """The mel filterbank, ``n_mels x (n_fft // 2 + 1)`` (librosa, Slaney-normalised)."""
    return _filterbank(config).clone()


def _log_mel_batch(x: torch.Tensor, config: LogMelConfig) -> torch.Tensor:
    window = torch.hann_window(config.win_length, periodic=True, dtype=x.dtype)
    spec = torch.stft(
        x,
        n_fft=config.n_fft,
        hop_length=config.hop,
        win_length=config.win_length,
        window=window,
        center=config.center,
        pad_mode=config.pad_mode,
        return_complex=True,
    )
    power = spec.real.square() + spec.imag.square()
    mel = torch.matmul(_filterbank(config).to(x.dtype), power)
    return torch.log(mel + config.eps)


def log_mel(
    waveforms: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray],
    sample_rate: int,
    config: LogMelConfig = LogMelConfig(),
) -> torch.Tensor | list[torch.Tensor]:
    """Log-mel spectrogram(s), ``log(mel power + eps)``, after resampling to
    ``config.sample_rate``.

    A 1-D waveform gives ``n_mels x frames``; a 2-D batch (rows of equal length) gives
    ``B x n_mels x frames``; a list of 1-D waveforms of any lengths gives a list of
    ``n_mels x frames_i``. Frames: ``1 + len // hop`` with ``center=True``.
    """
    if isinstance(waveforms, (list, tuple)):
        return _log_mel_list(waveforms, sample_rate, config)
    x = resample(waveforms, sample_rate, config.sample_rate)
    if x.ndim not in (1, 2):
        raise ValueError(
            f"waveforms must be 1-D (samples) or 2-D (batch x samples), got {tuple(x.shape)}"
        )
    min_len = config.n_fft // 2 + 1 if config.center else config.n_fft
    if x.shape[-1] < min_len:
        pad = [0, min_len - x.shape[-1]]
        x = torch.nn.functional.pad(x, pad)
    return _log_mel_batch(x, config)


def _log_mel_list(
    waveforms: Sequence[torch.Tensor | np.ndarray], sample_rate: int, config: LogMelConfig
) -> list[torch.Tensor]:
    """Clips of different lengths, zero-padded into batches of equal length (one STFT call per
    batch; exact, since ``pad_mode="constant"`` pads each clip with the same zeros)."""
    if config.pad_mode != "constant" or not config.center:
        return [log_mel(w, sample_rate, config) for w in waveforms]
    clips = [resample(w, sample_rate, config.sample_rate) for w in waveforms]
    for i, c in enumerate(clips):
        if c.ndim != 1:
            raise ValueError(f"waveform {i} must be 1-D, got shape {tuple(c.shape)}")
    min_len = config.n_fft // 2 + 1
    order = np.argsort([len(c) for c in clips], kind="stable")
    results: dict[int, torch.Tensor] = {}
    batch = 256
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        longest = max(min_len, max(len(clips[i]) for i in idx))
        x = torch.zeros(len(idx), longest)
        for row, i in enumerate(idx):
            x[row, : len(clips[i])] = clips[i]
        feats = _log_mel_batch(x, config)
        for row, i in enumerate(idx):
            frames = 1 + max(len(clips[i]), min_len) // config.hop
            results[int(i)] = feats[row, :, :frames].clone()
    return [results[i] for i in range(len(clips))]


def fix_length(
    features: torch.Tensor, frames: int, pad_value: float | None = None, align: str = "start"
) -> torch.Tensor:
    """Pad or crop the last axis (frames) of ``features`` to exactly ``frames``.

    Pads with ``pad_value`` (default: ``LogMelConfig().floor``, the log of silence). ``align``
    "start" keeps the beginning and pads at the end; "center" crops / pads both ends equally.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if align not in ("start", "center"):
        raise ValueError(f"align must be 'start' or 'center', got {align!r}")
    if pad_value is None:
        pad_value = LogMelConfig().floor
    n = features.shape[-1]
    if n >= frames:
        start = (n - frames) // 2 if align == "center" else 0
        return features[..., start : start + frames].clone()
    missing = frames - n
    before = missing // 2 if align == "center" else 0
    return torch.nn.functional.pad(features, [before, missing - before], value=pad_value)
