"""The digit world: every digit as an image, as captions and as speech, with held-out splits.

:meth:`DigitWorld.build` gathers

- images: the 5,000 built-in MNIST digits with their fixed split (4,000 train / 1,000 val,
  :func:`synesthesia.data.images.mnist5k_splits`), the attributes measured on each image
  (:func:`synesthesia.data.captions.measure_attributes`) and ``captions_per_image`` captions
  each;
- synthetic speech: ``n_speech`` spoken digits from eSpeak NG
  (:func:`synesthesia.data.speech.synthesize_digits`); the voices of
  :data:`~synesthesia.data.speech.VAL_VARIANTS` / :data:`~synesthesia.data.speech.VAL_LANGUAGES`
  are only in "val";
- real speech (optional): the Free Spoken Digit Dataset from ``fsdd_folder``; the speakers in
  :data:`FSDD_VAL_SPEAKERS` are only in "val".

Speech is stored as waveforms and as log-mel features of a fixed number of frames
(:func:`synesthesia.data.audio.log_mel`, then :func:`~synesthesia.data.audio.fix_length`,
centred).

:meth:`DigitWorld.pairs` makes a :class:`PairedDataset` of any combination of "image", "text"
and "speech". Digits are paired by class: an image's speech partner is a clip of the same digit
from the same split, drawn afresh for each epoch (:meth:`PairedDataset.set_epoch`), and its
text is one of its own captions. Without images, the text is a caption of the class without
attributes ("a seven", "the number 7").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from synesthesia.data.audio import LogMelConfig, fix_length, log_mel
from synesthesia.data.captions import (
    CAPTION_TEMPLATES,
    attributes_row,
    caption,
    captions_for,
    measure_attributes,
)
from synesthesia.data.images import ImageSet, mnist5k_splits
from synesthesia.data.speech import SpeechSet, voice_split
from synesthesia.errors import InputError

#: FSDD speakers held out for validation (the other three are for training).
FSDD_VAL_SPEAKERS: tuple[str, ...] = ("nicolas",)
MODALITIES: tuple[str, ...] = ("image", "text", "speech")
SPLITS: tuple[str, ...] = ("train", "val")
SPEECH_SOURCES: tuple[str, ...] = ("synthetic", "fsdd", "both")
#: Attributes copied into each item that holds an image.
ITEM_ATTRIBUTES: tuple[str, ...] = (
    "thickness",
    "slant",
    "width",
    "height",
    "cx",
    "cy",
    "thickness_word",
    "slant_word",
    "size_word",
)


@dataclass(frozen=True)
class DigitWorldConfig:
    """How a :class:`DigitWorld` was built (saved with models trained on it)."""

    seed: int = 0
    n_speech: int = 2000
    captions_per_image: int = 5
    caption_drop_prob: float = 0.25  # each attribute word is left out of a caption this often
    frames: int = 100  # log-mel frames per clip: 1 s at the default 10 ms hop
    log_mel: dict = field(default_factory=lambda: LogMelConfig().to_dict())
    fsdd_val_speakers: tuple[str, ...] = FSDD_VAL_SPEAKERS

    def to_dict(self) -> dict:
        """JSON-able dict."""
        d = asdict(self)
        d["fsdd_val_speakers"] = list(self.fsdd_val_speakers)
        return d


@dataclass
class SpeechPool:
    """Speech clips of one source and split: the clips and their fixed-length log-mels."""

    clips: SpeechSet
    features: torch.Tensor  # N x n_mels x frames
    source: str  # "synthetic" or "fsdd"

    def __len__(self) -> int:
        return len(self.clips)


def _check(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


class DigitWorld:
    """Images, captions, attributes and speech of the ten digits, split into train and val.

    Attributes: ``images[split]`` (:class:`ImageSet`), ``attrs[split]`` (the output of
    :func:`measure_attributes`), ``captions[split]`` (a list of captions per image),
    ``speech[source][split]`` (:class:`SpeechPool`, source "synthetic" or "fsdd"), ``config``.
    """

    def __init__(
        self,
        images: dict[str, ImageSet],
        attrs: dict[str, dict[str, np.ndarray]],
        captions: dict[str, list[list[str]]],
        speech: dict[str, dict[str, SpeechPool]],
        config: DigitWorldConfig,
    ) -> None:
        self.images = images
        self.attrs = attrs
        self.captions = captions
        self.speech = speech
        self.config = config

    @property
    def log_mel_config(self) -> LogMelConfig:
        """The feature settings used for speech."""
        return LogMelConfig.from_dict(self.config.log_mel)

    @classmethod
    def build(
        cls,
        seed: int = 0,
        n_speech: int = 2000,
        fsdd_folder: str | Path | None = None,
        cache_dir: str | Path | None = None,
        captions_per_image: int = 5,
        caption_drop_prob: float = 0.25,
        frames: int = 100,
        log_mel_config: LogMelConfig | None = None,
        fsdd_val_speakers: Sequence[str] = FSDD_VAL_SPEAKERS,
        progress: bool = True,
    ) -> DigitWorld:
        """Build the digit world (speech synthesis is cached under ``cache_dir``; see
        :func:`synesthesia.data.speech.synthesize_digits`). ``n_speech=0`` leaves synthetic
        speech out; ``fsdd_folder`` adds the real recordings (FSDD layout)."""
        from synesthesia.data.fsdd import load_fsdd
        from synesthesia.data.speech import synthesize_digits

        if n_speech < 0:
            raise ValueError(f"n_speech must be >= 0, got {n_speech}")
        if captions_per_image < 1:
            raise ValueError(f"captions_per_image must be >= 1, got {captions_per_image}")
        mel_cfg = log_mel_config or LogMelConfig()
        config = DigitWorldConfig(
            seed=seed,
            n_speech=n_speech,
            captions_per_image=captions_per_image,
            caption_drop_prob=caption_drop_prob,
            frames=frames,
            log_mel=mel_cfg.to_dict(),
            fsdd_val_speakers=tuple(fsdd_val_speakers),
        )
        train, val = mnist5k_splits()
        images = {"train": train, "val": val}
        attrs = {s: measure_attributes(images[s].images, images[s].labels) for s in SPLITS}
        captions = {
            s: captions_for(
                images[s].labels,
                attrs[s],
                per_image=captions_per_image,
                seed=seed + (0 if s == "train" else 1),
                drop_prob=caption_drop_prob,
            )
            for s in SPLITS
        }
        speech: dict[str, dict[str, SpeechPool]] = {}
        fsdd = None
        if fsdd_folder is not None:  # first: a bad recording is found before the synthesis
            fsdd = load_fsdd(fsdd_folder)
            unknown = sorted(set(fsdd_val_speakers) - set(fsdd.speakers))
            if unknown:
                raise InputError(
                    f"fsdd_val_speakers {unknown} are not in {fsdd_folder} "
                    f"(it has {sorted(set(fsdd.speakers))})"
                )
        if n_speech > 0:
            synth = synthesize_digits(n_speech, seed=seed, cache_dir=cache_dir, progress=progress)
            split_of = np.array([voice_split(v) for v in synth.speakers])
            speech["synthetic"] = cls._pools(synth, split_of, "synthetic", mel_cfg, frames)
        if fsdd is not None:
            split_of = np.array(
                ["val" if s in set(fsdd_val_speakers) else "train" for s in fsdd.speakers]
            )
            speech["fsdd"] = cls._pools(fsdd, split_of, "fsdd", mel_cfg, frames)
        return cls(images, attrs, captions, speech, config)

    @staticmethod
    def _pools(
        clips: SpeechSet, split_of: np.ndarray, source: str, cfg: LogMelConfig, frames: int
    ) -> dict[str, SpeechPool]:
        feats = log_mel(clips.waveforms, clips.sample_rate, cfg)
        stacked = torch.stack([fix_length(f, frames, cfg.floor, align="center") for f in feats])
        return {
            s: SpeechPool(
                clips.subset(split_of == s), stacked[torch.from_numpy(split_of == s)], source
            )
            for s in SPLITS
        }

    def speech_pool(self, source: str = "synthetic", split: str = "train") -> SpeechPool:
        """The speech of ``source`` ("synthetic", "fsdd" or "both") in ``split`` ("train",
        "val" or "all")."""
        _check("source", source, SPEECH_SOURCES)
        _check("split", split, (*SPLITS, "all"))
        sources = ("synthetic", "fsdd") if source == "both" else (source,)
        missing = [s for s in sources if s not in self.speech]
        if missing:
            hint = {
                "synthetic": "build with n_speech > 0",
                "fsdd": "build with fsdd_folder=... (the Free Spoken Digit Dataset recordings)",
            }
            raise ValueError(f"this digit world has no {missing[0]} speech: {hint[missing[0]]}")
        splits = SPLITS if split == "all" else (split,)
        pools = [self.speech[src][s] for src in sources for s in splits]
        if len(pools) == 1:
            return pools[0]
        first = pools[0].clips
        if any(p.clips.sample_rate != first.sample_rate for p in pools):
            # mixed sources: keep the features, resample the waveforms to the first rate
            from synesthesia.data.audio import resample

            waves = [
                resample(w, p.clips.sample_rate, first.sample_rate)
                if p.clips.sample_rate != first.sample_rate
                else w
                for p in pools
                for w in p.clips.waveforms
            ]
        else:
            waves = [w for p in pools for w in p.clips.waveforms]
        clips = SpeechSet(
            waves,
            first.sample_rate,
            torch.cat([p.clips.labels for p in pools]),
            [s for p in pools for s in p.clips.speakers],
            [{**m, "source": p.source} for p in pools for m in p.clips.meta],
            first.words,
            "+".join(sorted({p.source for p in pools})),
        )
        return SpeechPool(clips, torch.cat([p.features for p in pools]), source)

    def pairs(
        self,
        modalities: Sequence[str] = ("image", "text", "speech"),
        split: str = "train",
        speech_source: str = "synthetic",
        seed: int = 0,
    ) -> PairedDataset:
        """Paired examples of ``modalities`` (any of "image", "text", "speech") in ``split``.

        With "image", there is one item per image; otherwise one per speech clip (with "speech")
        or ten class captions (text alone). ``speech_source`` is "synthetic", "fsdd" or "both".
        """
        mods = tuple(dict.fromkeys(modalities))
        if not mods:
            raise ValueError("modalities must name at least one of 'image', 'text', 'speech'")
        for m in mods:
            _check("modality", m, MODALITIES)
        _check("split", split, SPLITS)
        pool = self.speech_pool(speech_source, split) if "speech" in mods else None
        return PairedDataset(
            mods,
            split,
            self.images[split] if "image" in mods else None,
            self.attrs[split] if "image" in mods else None,
            self.captions[split] if "image" in mods else None,
            pool,
            seed,
        )


class PairedDataset(torch.utils.data.Dataset):
    """Items ``{"label": int, "image": 1x28x28, "text": str, "speech": n_mels x frames, ...}``
    holding the chosen modalities of one digit, plus ``image_index`` / ``speech_index`` (into
    the split's images / speech pool), ``speaker`` and the image's attributes
    (:data:`ITEM_ATTRIBUTES`). Partners and caption choices depend on ``(seed, epoch, index)``
    only, so the dataset is reproducible and :meth:`set_epoch` redraws them.
    """

    def __init__(
        self,
        modalities: tuple[str, ...],
        split: str,
        images: ImageSet | None,
        attrs: dict[str, np.ndarray] | None,
        captions: list[list[str]] | None,
        speech: SpeechPool | None,
        seed: int = 0,
    ) -> None:
        self.modalities = modalities
        self.split = split
        self.images = images
        self.attrs = attrs
        self.captions = captions
        self.speech = speech
        self.seed = seed
        self.epoch = 0
        if images is not None:
            self.labels = images.labels.clone()
        elif speech is not None:
            self.labels = speech.clips.labels.clone()
        else:
            self.labels = torch.arange(10)
        if speech is not None:
            speech_labels = speech.clips.labels.numpy()
            self._by_label = [np.flatnonzero(speech_labels == c) for c in range(10)]
            if images is not None:
                empty = [c for c in range(10) if len(self._by_label[c]) == 0]
                if empty:
                    raise ValueError(
                        f"the {speech.source} speech of split {split!r} has no clip of digits "
                        f"{empty}; build the world with more speech"
                    )

    def __len__(self) -> int:
        return len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        """Draw new speech partners and captions (as a function of ``(seed, epoch)``)."""
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index = int(index) % len(self)
        rng = self._rng(index)
        label = int(self.labels[index])
        item: dict = {"label": label}
        if self.images is not None:
            item["image"] = self.images.images[index]
            item["image_index"] = index
            row = attributes_row(self.attrs, index)
            item.update({k: row[k] for k in ITEM_ATTRIBUTES})
        if "text" in self.modalities:
            if self.captions is not None:
                options = self.captions[index]
                item["text"] = options[int(rng.integers(len(options)))]
            else:
                item["text"] = caption(label, None, int(rng.integers(len(CAPTION_TEMPLATES))))
        if self.speech is not None:
            if self.images is not None:
                candidates = self._by_label[label]
                j = int(candidates[int(rng.integers(len(candidates)))])
            else:
                j = index
            item["speech"] = self.speech.features[j]
            item["speech_index"] = j
            item["speaker"] = self.speech.clips.speakers[j]
        return item

    def waveform(self, speech_index: int) -> tuple[torch.Tensor, int]:
        """The raw waveform and sample rate of speech clip ``speech_index``."""
        if self.speech is None:
            raise ValueError("this dataset has no speech")
        return self.speech.clips.waveforms[speech_index], self.speech.clips.sample_rate
