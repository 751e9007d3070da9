"""Prompt sets for scoring text-to-image models, and the combinations held out of training.

Every prompt is worded by :func:`synesthesia.data.captions.caption`, so it reads exactly as a
training caption does. Three groups:

- ``plain``: a digit without attributes ("a seven", "the number 7"), every caption template;
- ``attribute``: a digit and one pole of one binary attribute, every template: thin / thick
  (``thickness_word``), left- / right-slanted (``slant_word``), small / large (``size_word``),
  e.g. "a thick seven", "the number 3, written thin"; the held-out combinations are left out;
- ``held_out``: the held-out combinations only, every template.

Compositional generalisation: :data:`HELD_OUT_COMBINATIONS` lists (digit, attribute key, word)
triples never shown in training. Training drops every image of such a combination (measured by
:func:`~synesthesia.data.captions.measure_attributes`, with the per-class size thresholds), so
the model sees thick digits and sevens, but no thick seven; :func:`held_out_prompts` then asks
for them. One combination per attribute, each on a different digit:

- every thick seven (``thickness_word == "thick"``);
- every left-slanted two (``slant_word == "left-slanted"``);
- every small four (``size_word == "small"``).

On the built-in ``mnist5k`` split this removes 272 of the 4,000 training digits (134 of the 400
sevens, 59 of the 400 twos, 79 of the 400 fours) and marks 67 of the 1,000 validation digits
(28, 21 and 18).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from synesthesia.data.captions import CAPTION_TEMPLATES, caption
from synesthesia.errors import InputError, short

#: The binary attributes and their two poles, as :func:`measure_attributes` words them.
ATTRIBUTE_POLES: dict[str, tuple[str, str]] = {
    "thickness_word": ("thin", "thick"),
    "slant_word": ("left-slanted", "right-slanted"),
    "size_word": ("small", "large"),
}

#: (digit, attribute key, word) combinations held out of text-to-image training.
HELD_OUT_COMBINATIONS: tuple[tuple[int, str, str], ...] = (
    (7, "thickness_word", "thick"),
    (2, "slant_word", "left-slanted"),
    (4, "size_word", "small"),
)

GROUPS: tuple[str, ...] = ("plain", "attribute", "held_out")


@dataclass(frozen=True)
class PromptSpec:
    """One prompt: its text, the digit it asks for and the attribute pole it names.

    ``attribute`` is a key of :data:`ATTRIBUTE_POLES` ("thickness_word", "slant_word",
    "size_word") and ``value`` one of its two words; both None for a plain prompt. ``group`` is
    "plain", "attribute" or "held_out".
    """

    text: str
    label: int
    attribute: str | None = None
    value: str | None = None
    group: str = "plain"

    def __post_init__(self) -> None:
        if not 0 <= int(self.label) <= 9:
            raise InputError(f"PromptSpec label must be a digit 0..9, got {short(self.label)}")
        if self.group not in GROUPS:
            raise InputError(f"PromptSpec group must be one of {GROUPS}, got {short(self.group)}")
        if (self.attribute is None) != (self.value is None):
            raise InputError("PromptSpec needs both attribute and value, or neither")
        if self.attribute is not None:
            _check_pole(self.attribute, self.value, "PromptSpec")


def _check_pole(key: str, word: object, what: str) -> None:
    if key not in ATTRIBUTE_POLES:
        raise InputError(f"{what}: attribute must be one of {tuple(ATTRIBUTE_POLES)}, got {key!r}")
    if word not in ATTRIBUTE_POLES[key]:
        raise InputError(f"{what}: {key} must be one of {ATTRIBUTE_POLES[key]}, got {short(word)}")


def _check_combinations(combinations: Iterable[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
    out = []
    for combo in combinations:
        if len(combo) != 3:
            raise InputError(f"a held-out combination is (digit, key, word), got {short(combo)}")
        digit, key, word = combo
        if not 0 <= int(digit) <= 9:
            raise InputError(f"held-out combination {short(combo)}: digit must be 0..9")
        _check_pole(key, word, f"held-out combination {short(combo)}")
        out.append((int(digit), key, word))
    return out


def held_out_mask(
    labels: torch.Tensor | np.ndarray | Sequence[int],
    attrs: dict[str, np.ndarray],
    combinations: Iterable[tuple[int, str, str]] = HELD_OUT_COMBINATIONS,
) -> np.ndarray:
    """True for each image that training must leave out: its label is a held-out digit and its
    measured word (``attrs``, the output of :func:`measure_attributes` for the same images, with
    labels) equals the held-out word for that digit."""
    lab = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels, dtype=np.int64)
    combos = _check_combinations(combinations)
    mask = np.zeros(lab.shape[0], dtype=bool)
    for digit, key, word in combos:
        if key not in attrs:
            raise InputError(f"attrs has no {key!r}; pass the output of measure_attributes")
        words = np.asarray(attrs[key], dtype=object)
        if words.shape != lab.shape:
            raise InputError(
                f"attrs[{key!r}] has {words.shape[0]} rows for {lab.shape[0]} labels; "
                "measure the same images"
            )
        mask |= (lab == digit) & (words == word)
    return mask


def _templates(templates: Sequence[int] | None) -> list[int]:
    out = list(range(len(CAPTION_TEMPLATES))) if templates is None else [int(t) for t in templates]
    for t in out:
        if not 0 <= t < len(CAPTION_TEMPLATES):
            raise InputError(f"template must be 0..{len(CAPTION_TEMPLATES) - 1}, got {t}")
    return out


def _row(key: str, word: str) -> dict[str, str]:
    row = dict.fromkeys(ATTRIBUTE_POLES, "")
    row[key] = word
    return row


def plain_prompts(templates: Sequence[int] | None = None) -> list[PromptSpec]:
    """Every digit 0..9 in every caption template (or those indexed by ``templates``), without
    attributes: ``group="plain"``."""
    return [
        PromptSpec(caption(d, None, t), d, group="plain")
        for d in range(10)
        for t in _templates(templates)
    ]


def attribute_prompts(
    templates: Sequence[int] | None = None,
    combinations: Iterable[tuple[int, str, str]] = HELD_OUT_COMBINATIONS,
) -> list[PromptSpec]:
    """Every digit with each pole of each binary attribute, in every template, except the
    held-out ``combinations``: ``group="attribute"``."""
    held = set(_check_combinations(combinations))
    return [
        PromptSpec(caption(d, _row(key, word), t), d, key, word, "attribute")
        for d in range(10)
        for key, poles in ATTRIBUTE_POLES.items()
        for word in poles
        if (d, key, word) not in held
        for t in _templates(templates)
    ]


def held_out_prompts(
    templates: Sequence[int] | None = None,
    combinations: Iterable[tuple[int, str, str]] = HELD_OUT_COMBINATIONS,
) -> list[PromptSpec]:
    """The held-out ``combinations`` in every template: ``group="held_out"``."""
    return [
        PromptSpec(caption(d, _row(key, word), t), d, key, word, "held_out")
        for d, key, word in _check_combinations(combinations)
        for t in _templates(templates)
    ]


def all_prompts(
    templates: Sequence[int] | None = None,
    combinations: Iterable[tuple[int, str, str]] = HELD_OUT_COMBINATIONS,
) -> list[PromptSpec]:
    """The three groups together: plain, attribute and held-out prompts."""
    combos = _check_combinations(combinations)
    return (
        plain_prompts(templates)
        + attribute_prompts(templates, combos)
        + held_out_prompts(templates, combos)
    )
