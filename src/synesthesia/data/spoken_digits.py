"""Spoken digits at one fixed length and loudness: what audio diffusion trains on and is scored by.

Two sources, each with held-out speakers:

- ``"espeak"``: the digit world's synthetic digits (:func:`synesthesia.data.speech
  .synthesize_digits`, eSpeak NG at 22,050 Hz); the voices of
  :data:`~synesthesia.data.speech.VAL_VARIANTS` / :data:`~synesthesia.data.speech
  .VAL_LANGUAGES` are only in ``"val"``;
- ``"fsdd"``: the Free Spoken Digit Dataset from a folder (:func:`synesthesia.data.fsdd
  .load_fsdd`, real recordings at 8 kHz); the speakers of
  :data:`synesthesia.data.digit_world.FSDD_VAL_SPEAKERS` (``nicolas``) are only in ``"val"``.

Every clip is resampled to ``sample_rate`` (8 kHz), its leading and trailing silence cut
(:func:`synesthesia.data.speech.trim_silence`, 40 dB below the loudest frame), centred in
``seconds`` of silence (or cropped about its centre), and loudness-normalised: scaled to an
RMS of ``target_dbfs`` over its speech, then scaled down if its peak would exceed ``peak``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from synesthesia.data.audio import fix_length, resample
from synesthesia.data.speech import SpeechSet, trim_silence, voice_split
from synesthesia.errors import InputError

SOURCES: tuple[str, ...] = ("espeak", "fsdd")
SPLITS: tuple[str, ...] = ("train", "val")
CLIP_SAMPLE_RATE = 8_000


@dataclass(frozen=True)
class ClipConfig:
    """How every clip is shaped: rate, length, silence trimming and loudness."""

    sample_rate: int = CLIP_SAMPLE_RATE
    seconds: float = 1.0
    trim_db: float = 40.0
    target_dbfs: float = -20.0  # RMS of the trimmed speech, dB relative to full scale
    peak: float = 0.95  # the loudest sample after normalisation is at most this

    @property
    def samples(self) -> int:
        return round(self.sample_rate * self.seconds)


@dataclass
class SpokenDigits(torch.utils.data.Dataset):
    """Fixed-length clips ``waveforms`` (N, samples) in [-1, 1] with ``labels`` (N,), the
    ``speakers`` (a voice or an FSDD speaker) and ``sources`` ("espeak" or "fsdd") of each."""

    waveforms: torch.Tensor
    labels: torch.Tensor
    speakers: list[str]
    sources: list[str]
    sample_rate: int = CLIP_SAMPLE_RATE
    name: str = ""
    held_out: dict = field(default_factory=dict)  # source -> the speakers of the val split

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.waveforms[i], self.labels[i]

    def subset(self, index: torch.Tensor | np.ndarray | Sequence[int]) -> SpokenDigits:
        """The clips at ``index`` (integer indices or a boolean mask)."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        t = torch.as_tensor(idx, dtype=torch.long)
        return SpokenDigits(
            self.waveforms[t],
            self.labels[t],
            [self.speakers[i] for i in idx],
            [self.sources[i] for i in idx],
            self.sample_rate,
            self.name,
            self.held_out,
        )

    @staticmethod
    def concat(parts: Sequence[SpokenDigits], name: str = "") -> SpokenDigits:
        """One set holding every clip of ``parts`` (same sample rate and length)."""
        if not parts:
            raise ValueError("concat needs at least one set")
        rates = {p.sample_rate for p in parts}
        if len(rates) != 1:
            raise ValueError(f"sets at different sample rates {sorted(rates)}")
        return SpokenDigits(
            torch.cat([p.waveforms for p in parts]),
            torch.cat([p.labels for p in parts]),
            [s for p in parts for s in p.speakers],
            [s for p in parts for s in p.sources],
            parts[0].sample_rate,
            name or "+".join(p.name for p in parts),
            {k: v for p in parts for k, v in p.held_out.items()},
        )


def normalize_loudness(x: np.ndarray, target_dbfs: float = -20.0, peak: float = 0.95) -> np.ndarray:
    """``x`` scaled to an RMS of ``target_dbfs`` (20 log10 RMS), limited to ``|x| <= peak``."""
    x = np.asarray(x, dtype=np.float64)
    rms = np.sqrt(np.mean(x**2)) if x.size else 0.0
    if rms <= 0:
        return x.astype(np.float32)
    y = x * (10 ** (target_dbfs / 20) / rms)  # dBFS = 20 log10(RMS / full scale)
    top = np.max(np.abs(y))
    if top > peak:
        y *= peak / top
    return y.astype(np.float32)


def shape_clip(
    waveform: torch.Tensor | np.ndarray, sample_rate: int, config: ClipConfig
) -> torch.Tensor:
    """One clip resampled, trimmed, loudness-normalised and centred in ``config.samples``."""
    x = resample(waveform, sample_rate, config.sample_rate).numpy()
    speech = trim_silence(x, config.trim_db, frame_length=256, hop=64)
    if speech.size == 0:
        speech = x
    y = torch.from_numpy(normalize_loudness(speech, config.target_dbfs, config.peak))
    return fix_length(y, config.samples, pad_value=0.0, align="center")


def from_speech_set(
    speech: SpeechSet, source: str, split_of: Sequence[str], config: ClipConfig = ClipConfig()
) -> dict[str, SpokenDigits]:
    """``{"train": ..., "val": ...}`` of a :class:`SpeechSet`, shaped by ``config``;
    ``split_of[i]`` says which split clip ``i`` belongs to."""
    clips = torch.stack([shape_clip(w, speech.sample_rate, config) for w in speech.waveforms])
    splits = np.asarray(split_of)
    held = sorted({s for s, sp in zip(speech.speakers, splits) if sp == "val"})
    whole = SpokenDigits(
        clips,
        speech.labels.clone(),
        list(speech.speakers),
        [source] * len(speech),
        config.sample_rate,
        source,
        {source: held},
    )
    out = {}
    for split in SPLITS:
        part = whole.subset(splits == split)
        part.name = f"{source}-{split}"
        out[split] = part
    return out


def espeak_digits(
    n_clips: int = 2000,
    seed: int = 0,
    config: ClipConfig = ClipConfig(),
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> dict[str, SpokenDigits]:
    """The digit world's synthetic spoken digits, split by voice (held-out voices in "val")."""
    from synesthesia.data.speech import synthesize_digits

    speech = synthesize_digits(n_clips, seed=seed, cache_dir=cache_dir, progress=progress)
    return from_speech_set(speech, "espeak", [voice_split(v) for v in speech.speakers], config)


def fsdd_digits(
    folder: str | Path,
    config: ClipConfig = ClipConfig(),
    val_speakers: Sequence[str] | None = None,
) -> dict[str, SpokenDigits]:
    """The FSDD recordings in ``folder``, split by speaker (``val_speakers``, default
    :data:`~synesthesia.data.digit_world.FSDD_VAL_SPEAKERS`, only in "val")."""
    from synesthesia.data.digit_world import FSDD_VAL_SPEAKERS
    from synesthesia.data.fsdd import load_fsdd

    speech = load_fsdd(folder)
    held = tuple(FSDD_VAL_SPEAKERS if val_speakers is None else val_speakers)
    unknown = sorted(set(held) - set(speech.speakers))
    if unknown:
        raise InputError(
            f"held-out FSDD speakers {unknown} are not in {folder} "
            f"(it has {sorted(set(speech.speakers))})"
        )
    if set(held) >= set(speech.speakers):
        raise InputError(f"{folder}: every speaker is held out; keep one for training")
    split = ["val" if s in held else "train" for s in speech.speakers]
    return from_speech_set(speech, "fsdd", split, config)


def spoken_digits(
    sources: Sequence[str] = ("espeak",),
    fsdd_folder: str | Path | None = None,
    n_espeak: int = 2000,
    seed: int = 0,
    config: ClipConfig = ClipConfig(),
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> dict[str, SpokenDigits]:
    """``{"train": ..., "val": ...}`` of the chosen ``sources`` ("espeak", "fsdd"), joined.

    "fsdd" needs ``fsdd_folder`` (a missing folder raises naming it, with where to get it).
    """
    sources = tuple(dict.fromkeys(sources))
    bad = [s for s in sources if s not in SOURCES]
    if bad or not sources:
        raise InputError(f"sources must be some of {SOURCES}, got {list(sources)}")
    parts: dict[str, list[SpokenDigits]] = {s: [] for s in SPLITS}
    if "fsdd" in sources:  # first: a missing folder is reported before any synthesis
        if fsdd_folder is None:
            raise InputError("source 'fsdd' needs the FSDD folder (--fsdd FOLDER)")
        for k, v in fsdd_digits(fsdd_folder, config).items():
            parts[k].append(v)
    if "espeak" in sources:
        for k, v in espeak_digits(n_espeak, seed, config, cache_dir, progress).items():
            parts[k].append(v)
    name = "+".join(sources)
    return {k: SpokenDigits.concat(v, f"{name}-{k}") for k, v in parts.items()}


# ---------------------------------------------------------------------------------------------
# prompts of spoken digits
# ---------------------------------------------------------------------------------------------
#: How a training clip of digit ``d`` is captioned (``{word}`` "seven", ``{digit}`` "7").
AUDIO_TEMPLATES: tuple[str, ...] = (
    "{word}",
    "{digit}",
    "the word {word}",
    "say {word}",
    "the number {word}",
    "a spoken {word}",
    "someone saying {word}",
    "the digit {digit}, spoken",
)


def audio_vocabulary() -> tuple[str, ...]:
    """Every word of :data:`AUDIO_TEMPLATES` with every digit: what a prompt may use."""
    from synesthesia.data.captions import NUMBER_WORDS
    from synesthesia.nets.tokenizer import split_words

    words: dict[str, None] = {}
    for d, w in enumerate(NUMBER_WORDS):
        for template in AUDIO_TEMPLATES:
            words.update(dict.fromkeys(split_words(template.format(word=w, digit=d))))
    return tuple(words)


def audio_caption(label: int, template: int) -> str:
    """The caption of digit ``label`` by template number ``template``."""
    from synesthesia.data.captions import NUMBER_WORDS

    return AUDIO_TEMPLATES[template].format(word=NUMBER_WORDS[int(label)], digit=int(label))


def prompt_digits(text: str) -> list[int]:
    """The digits a prompt names, in order ("the word three" -> [3], "7" -> [7])."""
    from synesthesia.data.captions import NUMBER_WORDS
    from synesthesia.nets.tokenizer import split_words

    index = {w: d for d, w in enumerate(NUMBER_WORDS)} | {str(d): d for d in range(10)}
    return [index[w] for w in split_words(text) if w in index]
