"""The modality registry: one entry says everything the joint model needs to know of a modality.

A modality is one :class:`Modality` given to :func:`register_modality`; nothing else is edited.
The entry says

- ``name`` and ``settings``: a dataclass holding the modality's config fields (the encoder's
  config and whatever else its tower needs: a vocabulary, log-mel settings, a clip length),
  saved in ``config.json`` under ``towers[name]``;
- ``build_encoder(settings)``: its encoder, an ``nn.Module`` with an ``out_dim`` attribute
  (the model adds a projection head into the joint space);
- ``complete(settings)``: the settings with derived fields filled in (a default vocabulary
  and the vocabulary size, default log-mel settings), before the encoder is built and saved;
- ``prepare_input(settings)``: a function ``(raw inputs, device) -> encoder arguments``;
- ``world_options(settings, request)``: what :meth:`~synesthesia.data.digit_world.DigitWorld
  .build` needs so that the world's data fits the tower (``request`` holds the user's data
  options: ``n_speech``, ``fsdd_folder``, ...);
- ``bank(world, split, options)``: what training draws this modality's items from, for one
  split of the world; ``check_bank(bank, labels)`` refuses a bank that cannot serve the items;
- ``draw(bank, index, labels, generator, augment)``: the inputs of one batch (the dataset items
  ``index`` with their ``labels``), drawn with the trainer's generator;
- ``positives(inputs, labels)``: which (anchor item i, item j of this modality) pairs of a batch
  belong together (the default: the same label);
- ``augment``: its default augmentation settings (a dataclass instance, or None);
- ``float32``: run the tower outside any autocast (tiny towers that bf16 only slows down).

The built-in modalities, registered at import: ``"image"`` (the anchor: the digit world's
28 x 28 digits), ``"text"`` (one of the image's own captions; positives are identical caption
strings) and ``"speech"`` (a spoken clip of the same digit, log-mel features; positives are
clips of the same digit). A video or audio model registers its own entry the same way.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from synesthesia.errors import InputError
from synesthesia.multimodal.augment import randint, shift_images, spec_augment
from synesthesia.nets.encoders import (
    AudioEncoder,
    AudioEncoderConfig,
    ImageEncoder,
    ImageEncoderConfig,
    TextEncoder,
    TextEncoderConfig,
)
from synesthesia.nets.tokenizer import WordTokenizer

#: Words a prompt may use beyond the caption vocabulary (digits and number words included).
PROMPT_WORDS = (
    "zero one two three four five six seven eight nine 0 1 2 3 4 5 6 7 8 9 "
    "a an the of number digit numeral handwritten written spoken image photo picture drawing "
    "thin medium thick upright left-slanted right-slanted small large and"
)


def _unchanged(settings: Any) -> Any:
    return settings


def _no_check(bank: Any, labels: torch.Tensor) -> None:
    return None


def _no_world_options(settings: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    return {}


def tensor_input(settings: Any) -> Callable[[Any, torch.device], tuple]:
    """The default ``prepare_input``: a float tensor moved to the model's device."""

    def prepare(inputs: torch.Tensor, device: torch.device) -> tuple:
        return (inputs.float().to(device),)

    return prepare


def same_label(inputs: Any, labels: torch.Tensor) -> torch.Tensor:
    """Positives ``B x B``: anchor item i and item j share a label (j says which class, not
    which member of it: a spoken "seven" belongs with every image of a seven)."""
    key = labels.cpu()
    return key[:, None] == key[None, :]


def same_item(inputs: Any, labels: torch.Tensor) -> torch.Tensor:
    """Positives ``B x B``: only item j = i (the item's own image, its own recording)."""
    return torch.eye(len(labels), dtype=torch.bool)


@dataclass(frozen=True)
class Modality:
    """One modality of the joint model; see the module docstring for each field."""

    name: str
    settings: type
    build_encoder: Callable[[Any], nn.Module]
    bank: Callable[[Any, str, Mapping[str, Any]], Any]
    draw: Callable[[Any, torch.Tensor, torch.Tensor, torch.Generator, Any], Any]
    positives: Callable[[Any, torch.Tensor], torch.Tensor] = same_label
    complete: Callable[[Any], Any] = _unchanged
    prepare_input: Callable[[Any], Callable[[Any, torch.device], tuple]] = tensor_input
    check_bank: Callable[[Any, torch.Tensor], None] = _no_check
    world_options: Callable[[Any, Mapping[str, Any]], dict[str, Any]] = _no_world_options
    augment: Any = None
    float32: bool = False
    description: str = ""


_REGISTRY: dict[str, Modality] = {}


def register_modality(entry: Modality, replace: bool = False) -> Modality:
    """Add ``entry`` to the registry (``replace=True`` to swap an existing one); returns it."""
    if not isinstance(entry, Modality):
        raise TypeError(f"register a Modality, got {type(entry).__name__}")
    name = entry.name
    if not (isinstance(name, str) and name.isidentifier() and name == name.lower()):
        raise ValueError(
            f"a modality name is one lower-case word (it is a config key and a CLI list "
            f"item), got {name!r}"
        )
    if name in _REGISTRY and not replace:
        raise ValueError(f"modality {name!r} is already registered; pass replace=True")
    if not (isinstance(entry.settings, type) and dataclasses.is_dataclass(entry.settings)):
        raise TypeError(f"modality {name!r}: settings must be a dataclass type")
    _REGISTRY[name] = entry
    return entry


def unregister_modality(name: str) -> None:
    """Remove a registered modality (plugins and tests; the built-ins stay importable)."""
    _REGISTRY.pop(name, None)


def modality_names() -> tuple[str, ...]:
    """The registered modalities, in registration order."""
    return tuple(_REGISTRY)


def get_modality(name: str) -> Modality:
    """The registered entry of ``name``; :class:`InputError` naming the registered ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        known = ", ".join(_REGISTRY)
        raise InputError(
            f"unknown modality {name!r} (registered: {known}); a modality of another package "
            "must be registered (synesthesia.multimodal.register_modality) before use"
        ) from None


def settings_from_dict(cls: type, data: Any, where: str) -> Any:
    """An instance of the dataclass ``cls`` from a JSON dict (nested dataclasses and tuples
    rebuilt); unknown or malformed fields raise :class:`InputError` naming ``where``."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected an object of {cls.__name__} fields, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    extra = sorted(set(data) - set(fields))
    if extra:
        raise InputError(f"{where}: unknown {cls.__name__} fields {extra}; known: {list(fields)}")
    kwargs = {}
    for name, value in data.items():
        hint = hints.get(name)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            value = settings_from_dict(hint, value, f"{where}.{name}")
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {exc}") from None


# ----------------------------------------------------------------------------- banks
class LabelPool:
    """Items drawn by class: ``items[j]`` with ``labels[j]``; a batch item of label c gets a
    uniformly drawn pool item of label c (a spoken clip of the same digit)."""

    def __init__(self, items: torch.Tensor, labels: torch.Tensor) -> None:
        self.items = items
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        if self.labels.shape != (len(items),):
            raise ValueError(
                f"a pool needs one label per item, got {tuple(self.labels.shape)} labels for "
                f"{len(items)} items"
            )
        self.by_label = {
            int(c): (self.labels == c).nonzero().flatten() for c in self.labels.unique()
        }

    def __len__(self) -> int:
        return len(self.items)

    def pick(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Indices into :attr:`items`: one uniformly drawn item of each label."""
        pools = [self.by_label[int(c)] for c in labels.cpu()]
        pick = randint(torch.tensor([len(p) for p in pools]), (len(pools),), generator)
        return torch.stack([p[int(k)] for p, k in zip(pools, pick)])


# ----------------------------------------------------------------------------- image
@dataclass
class ImageSettings:
    """Config fields of the image tower."""

    encoder: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)


@dataclass
class ImageAugment:
    """Random shifts of up to ``shift`` pixels (see :func:`~synesthesia.multimodal.augment
    .shift_images`)."""

    shift: int = 2


def _image_bank(world: Any, split: str, options: Mapping[str, Any]) -> torch.Tensor:
    return world.images[split].images


def _image_check(bank: torch.Tensor, labels: torch.Tensor) -> None:
    if bank.ndim != 4 or len(bank) != len(labels):
        raise ValueError(
            f"images must be N x 1 x H x W with N labels, got {tuple(bank.shape)} and "
            f"{tuple(labels.shape)}"
        )


def _image_draw(bank, index, labels, generator, augment: ImageAugment) -> torch.Tensor:
    return shift_images(bank[index.cpu()], augment.shift, generator)


IMAGE = Modality(
    name="image",
    settings=ImageSettings,
    build_encoder=lambda s: ImageEncoder(s.encoder),
    bank=_image_bank,
    draw=_image_draw,
    positives=same_item,
    check_bank=_image_check,
    augment=ImageAugment(),
    description="28 x 28 digits in [-1, 1] (the anchor); a batch item's own image",
)


# ----------------------------------------------------------------------------- text
def default_vocabulary() -> tuple[str, ...]:
    """The caption vocabulary of :mod:`synesthesia.data.captions` plus :data:`PROMPT_WORDS`."""
    from synesthesia.data.captions import VOCABULARY

    return tuple(dict.fromkeys([*VOCABULARY, *PROMPT_WORDS.split()]))


@dataclass
class TextSettings:
    """Config fields of the text tower: the encoder and the tokenizer's vocabulary."""

    encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    vocabulary: tuple[str, ...] = ()  # () -> default_vocabulary()


def _text_complete(settings: TextSettings) -> TextSettings:
    vocabulary = tuple(settings.vocabulary) or default_vocabulary()
    tokenizer = WordTokenizer(vocabulary, settings.encoder.max_length)
    encoder = dataclasses.replace(
        settings.encoder, vocab_size=len(tokenizer), pad_id=tokenizer.pad_id
    )
    return TextSettings(encoder=encoder, vocabulary=vocabulary)


class TextInput:
    """Texts (a list of strings, or ``(ids, mask)``) to the text encoder's arguments."""

    def __init__(self, settings: TextSettings) -> None:
        self.tokenizer = WordTokenizer(settings.vocabulary, settings.encoder.max_length)

    def __call__(self, inputs: Any, device: torch.device) -> tuple:
        if isinstance(inputs, tuple):
            ids, mask = inputs
        else:
            ids, mask = self.tokenizer(list(inputs))
        return ids.to(device), mask.to(device)


def _text_bank(world: Any, split: str, options: Mapping[str, Any]) -> list[list[str]]:
    return world.captions[split]


def _text_check(bank: list[list[str]], labels: torch.Tensor) -> None:
    if len(bank) != len(labels) or any(not c for c in bank):
        raise ValueError(f"captions must hold one non-empty list per item ({len(labels)})")


def _text_draw(bank, index, labels, generator, augment) -> list[str]:
    caps = [bank[int(i)] for i in index.cpu()]
    pick = randint(torch.tensor([len(c) for c in caps]), (len(caps),), generator)
    return [c[int(k)] for c, k in zip(caps, pick)]


def same_text(texts: Sequence[str], labels: torch.Tensor) -> torch.Tensor:
    """Positives ``B x B``: item j's caption is the very string drawn for item i (two images
    captioned "a thick seven" both match that caption)."""
    ids = {t: k for k, t in enumerate(dict.fromkeys(texts))}
    key = torch.tensor([ids[t] for t in texts])
    return key[:, None] == key[None, :]


TEXT = Modality(
    name="text",
    settings=TextSettings,
    build_encoder=lambda s: TextEncoder(s.encoder),
    bank=_text_bank,
    draw=_text_draw,
    positives=same_text,
    complete=_text_complete,
    prepare_input=TextInput,
    check_bank=_text_check,
    float32=True,  # the text tower is tiny and slower in bf16 on CPU
    description="one of the image's own captions, drawn afresh each step",
)


# ----------------------------------------------------------------------------- speech
def default_log_mel(n_mels: int = 40) -> dict[str, Any]:
    """Log-mel settings of the speech tower: 16 kHz, 25 ms windows every 20 ms, 20 Hz - 4 kHz.

    A 20 ms hop (50 frames per second) halves the cost of the speech tower against the usual
    10 ms and still resolves the syllables of a spoken digit.
    """
    from synesthesia.data.audio import LogMelConfig

    return LogMelConfig(hop=320, n_mels=n_mels).to_dict()


@dataclass
class SpeechSettings:
    """Config fields of the speech tower: the encoder, its log-mel features, the clip length."""

    encoder: AudioEncoderConfig = field(default_factory=AudioEncoderConfig)
    log_mel: dict[str, Any] = field(default_factory=dict)  # LogMelConfig fields ({}: defaults)
    frames: int = 48  # log-mel frames every clip is padded / cropped to (0.96 s at 50/s)


@dataclass
class SpeechAugment:
    """Time shift and SpecAugment masks (see :func:`~synesthesia.multimodal.augment
    .spec_augment`)."""

    shift: int = 8
    time_masks: int = 2
    time_mask: int = 8
    freq_masks: int = 2
    freq_mask: int = 5


def _speech_complete(settings: SpeechSettings) -> SpeechSettings:
    from synesthesia.data.audio import LogMelConfig

    n_mels = settings.encoder.n_mels
    try:
        mel = LogMelConfig.from_dict(settings.log_mel or default_log_mel(n_mels))
    except (TypeError, ValueError) as exc:
        raise InputError(f"towers.speech.log_mel: {exc}") from None
    if mel.n_mels != n_mels:
        raise InputError(
            f"log_mel n_mels={mel.n_mels} differs from the speech encoder's n_mels={n_mels}; "
            "make them equal"
        )
    if not (isinstance(settings.frames, int) and settings.frames >= 1):
        raise InputError(
            f"towers.speech.frames must be a positive integer, got {settings.frames!r}"
        )
    return dataclasses.replace(settings, log_mel=mel.to_dict())


def _speech_world_options(settings: SpeechSettings, request: Mapping[str, Any]) -> dict:
    from synesthesia.data.audio import LogMelConfig

    return {
        "n_speech": request.get("n_speech", 2000),
        "fsdd_folder": request.get("fsdd_folder"),
        "log_mel_config": LogMelConfig.from_dict(settings.log_mel),
        "frames": settings.frames,
    }


def _speech_bank(world: Any, split: str, options: Mapping[str, Any]) -> LabelPool:
    pool = world.speech_pool(options.get("speech_source", "synthetic"), split)
    return LabelPool(pool.features, pool.clips.labels)


def _speech_check(bank: LabelPool, labels: torch.Tensor) -> None:
    if bank.items.ndim != 3:
        raise ValueError(f"speech must be M x n_mels x frames, got {tuple(bank.items.shape)}")
    missing = sorted(set(labels.tolist()) - set(bank.by_label))
    if missing:
        raise ValueError(f"no speech clip for labels {missing}; add clips of them")


def _speech_draw(bank: LabelPool, index, labels, generator, augment: SpeechAugment):
    feats = bank.items[bank.pick(labels, generator)]
    a = augment
    return spec_augment(
        feats, generator, a.shift, a.time_masks, a.time_mask, a.freq_masks, a.freq_mask
    )


SPEECH = Modality(
    name="speech",
    settings=SpeechSettings,
    build_encoder=lambda s: AudioEncoder(s.encoder),
    bank=_speech_bank,
    draw=_speech_draw,
    positives=same_label,
    complete=_speech_complete,
    check_bank=_speech_check,
    world_options=_speech_world_options,
    augment=SpeechAugment(),
    description="a spoken clip of the same digit (log-mel features), drawn afresh each step",
)

for _entry in (IMAGE, TEXT, SPEECH):
    register_modality(_entry)
