"""Spoken digits and syllables: the :class:`SpeechSet` container and offline synthesis.

Synthesis drives eSpeak NG (the library and voice data shipped by the PyPI package
``espeakng-loader``) through ctypes; see :func:`synthesize_digits`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from synesthesia.data.audio import LogMelConfig, fix_length, log_mel


@dataclass
class SpeechSet(torch.utils.data.Dataset):
    """Clips of speech with labels; a torch Dataset whose items are ``(waveform, label)``.

    ``waveforms``: 1-D float32 tensors in [-1, 1] (lengths differ), all at ``sample_rate`` Hz;
    ``labels``: int64, one per clip; ``speakers``: a voice / speaker id per clip; ``meta``: a
    dict per clip (for synthetic speech: voice, pitch, rate, noise_snr_db, word).
    """

    waveforms: list[torch.Tensor]
    sample_rate: int
    labels: torch.Tensor
    speakers: list[str]
    meta: list[dict] = field(default_factory=list)
    words: tuple[str, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        n = len(self.waveforms)
        self.labels = torch.as_tensor(self.labels, dtype=torch.int64)
        if self.labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(self.labels.shape)}")
        if len(self.speakers) != n:
            raise ValueError(f"speakers has {len(self.speakers)} entries for {n} waveforms")
        if not self.meta:
            self.meta = [{} for _ in range(n)]
        if len(self.meta) != n:
            raise ValueError(f"meta has {len(self.meta)} entries for {n} waveforms")
        for i, w in enumerate(self.waveforms):
            if w.ndim != 1:
                raise ValueError(f"waveform {i} must be 1-D, got shape {tuple(w.shape)}")

    def __len__(self) -> int:
        return len(self.waveforms)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.waveforms[i], self.labels[i]

    def durations(self) -> np.ndarray:
        """Length of each clip in seconds."""
        return np.array([len(w) / self.sample_rate for w in self.waveforms])

    def subset(self, index: torch.Tensor | np.ndarray | list[int]) -> SpeechSet:
        """The clips at ``index`` (integer indices or a boolean mask)."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return SpeechSet(
            [self.waveforms[i] for i in idx],
            self.sample_rate,
            self.labels[torch.as_tensor(idx, dtype=torch.int64)],
            [self.speakers[i] for i in idx],
            [self.meta[i] for i in idx],
            self.words,
            self.name,
        )

    def log_mels(
        self, config: LogMelConfig | None = None, frames: int | None = None
    ) -> torch.Tensor | list[torch.Tensor]:
        """Log-mel features of every clip: a list, or ``N x n_mels x frames`` if ``frames``."""
        config = config or LogMelConfig()
        feats = log_mel(self.waveforms, self.sample_rate, config)
        if frames is None:
            return feats
        return torch.stack([fix_length(f, frames, config.floor) for f in feats])

    def save(self, folder: str | Path) -> Path:
        """Write ``speech.safetensors`` (all samples, concatenated) and ``speech.json``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        lengths = [len(w) for w in self.waveforms]
        audio = torch.cat(self.waveforms) if self.waveforms else torch.zeros(0)
        tensors = {
            "audio": audio.to(torch.float32).contiguous(),
            "lengths": torch.tensor(lengths, dtype=torch.int64),
            "labels": self.labels.contiguous(),
        }
        info = {
            "sample_rate": self.sample_rate,
            "speakers": self.speakers,
            "meta": self.meta,
            "words": list(self.words),
            "name": self.name,
        }
        tmp = folder / f".speech.{os.getpid()}.tmp"
        save_file(tensors, str(tmp))
        os.replace(tmp, folder / "speech.safetensors")
        tmp.with_suffix(".json").write_text(json.dumps(info))
        os.replace(tmp.with_suffix(".json"), folder / "speech.json")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> SpeechSet:
        """Read what :meth:`save` wrote; a missing or damaged file raises naming the file."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder)
        tpath, jpath = folder / "speech.safetensors", folder / "speech.json"
        for p in (tpath, jpath):
            if not p.is_file():
                raise FileNotFoundError(f"{p}: no such file (a SpeechSet folder needs it)")
        try:
            tensors = load_file(str(tpath))
        except (SafetensorError, OSError) as exc:
            raise ValueError(f"{tpath}: cannot read safetensors ({exc}); delete it") from exc
        try:
            info = json.loads(jpath.read_text())
        except (json.JSONDecodeError, OSError) as exc:
            raise ValueError(f"{jpath}: cannot read JSON ({exc}); delete it") from exc
        lengths = tensors["lengths"].tolist()
        if sum(lengths) != tensors["audio"].numel():
            raise ValueError(f"{tpath}: lengths do not add up to the audio; delete it")
        return cls(
            list(torch.split(tensors["audio"], lengths)),
            int(info["sample_rate"]),
            tensors["labels"],
            list(info["speakers"]),
            list(info["meta"]),
            tuple(info["words"]),
            info.get("name", ""),
        )
