"""Captions for digit images, from templates and from attributes measured on the image itself.

Every caption names the digit (as a word, "seven", or a numeral, "7") and, when attributes are
given, describes how it is written: stroke thickness, slant and size, each measured on the
pixels by :func:`measure_attributes`. Because the attributes are stored with each sample,
grounding can be tested: does a thick digit retrieve "thick" captions above "thin" ones?

Measurements (images ``N x 1 x H x W`` in [-1, 1]; ink = (pixel + 1) / 2 in [0, 1]; x to the
right, y downwards, in pixels):

- ``thickness``: mean stroke width, ``2 * ink mass / perimeter``. A ribbon of length L and width
  w has area L*w and perimeter about 2L, so the ratio is w. The perimeter is the crack length
  (number of ink/background pixel edges) of the ink mask ``ink > 0.5``; holes count, as the
  ribbon's inner side.
- ``slant``: the shear of the ink distribution from its second central moments,
  ``-mu11 / mu02`` (the deskewing measure of LeCun et al., 1998 / Simard et al.), positive when
  the top of the digit leans to the right; ``slant_deg = degrees(atan(slant))``.
- ``width``, ``height``: the bounding box of the ink mask, in pixels; ``cx``, ``cy``: its centre.
- ``area``: width * height; ``mass``: total ink.

Words (thresholds are quantiles of the built-in 5,000 MNIST digits, stored below as constants and
re-derived by :func:`attribute_thresholds`; a test checks that they agree):

- ``thickness_word``: "thin" below the 1/3 quantile of thickness, "thick" above the 2/3
  quantile, "medium" between.
- ``slant_word``: "upright" when ``|slant|`` is below its 1/3 quantile (about 7.5 degrees),
  otherwise "right-slanted" (top leans right) or "left-slanted".
- ``size_word``: "small" below the 20% quantile of the bounding-box area *of the same digit
  class* (MNIST scales every digit into a 20-pixel box, so absolute area mostly says which digit
  it is: a one is narrow), "large" above the 80% quantile, "" (not mentioned) between. Without
  labels, the quantiles of all digits are used.

The vocabulary, :data:`VOCABULARY`, is every token that :func:`tokenize` can produce from any
caption; :data:`CAPTION_TEMPLATES` lists the templates. A caption without attributes
(``attrs_row=None``) is a plain class prompt, e.g. "a seven", "the number 7".
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np
import torch

NUMBER_WORDS: tuple[str, ...] = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
)
THICKNESS_WORDS: tuple[str, ...] = ("thin", "medium", "thick")
SLANT_WORDS: tuple[str, ...] = ("upright", "left-slanted", "right-slanted")
SIZE_WORDS: tuple[str, ...] = ("small", "large", "")

#: Caption templates. ``{word}`` is the number word, ``{digit}`` the numeral, ``{adj}`` the
#: adjectives before the noun ("thick, right-slanted " or ""), ``{post}`` a phrase after it
#: (", written thick, right-slanted and small" or ""). "a" becomes "an" before a vowel sound.
CAPTION_TEMPLATES: tuple[str, ...] = (
    "a {adj}{word}",
    "the number {digit}{post}",
    "a {adj}handwritten {word}",
    "the digit {word}{post}",
    "a {adj}{digit}",
    "an image of a {adj}{word}",
    "an image of the number {digit}{post}",
    "the {adj}number {word}",
)

#: Thickness (mean stroke width, pixels): 1/3 and 2/3 quantiles of the built-in digits.
THICKNESS_THRESHOLDS: tuple[float, float] = (1.73243, 2.12594)
#: ``|slant|`` below this (the 1/3 quantile of the built-in digits) is "upright".
SLANT_THRESHOLD: float = 0.13083
#: Bounding-box area (pixels^2): 20% and 80% quantiles over all built-in digits.
SIZE_THRESHOLDS: tuple[float, float] = (240.0, 360.0)
#: Bounding-box area: 20% and 80% quantiles per digit class 0..9 of the built-in digits.
SIZE_THRESHOLDS_PER_CLASS: tuple[tuple[float, float], ...] = (
    (300.0, 380.0),
    (100.0, 240.0),
    (280.0, 364.8),
    (280.0, 360.0),
    (260.0, 360.0),
    (280.0, 360.0),
    (240.0, 320.0),
    (240.0, 360.0),
    (240.0, 360.0),
    (220.0, 320.0),
)

_TOKEN_RE = re.compile(r"[a-z0-9]+(?:-[a-z]+)?|[^\sa-z0-9]")
# "an" before a vowel sound: "an eight", "an 8", "an upright seven", but "a one" (a "w" sound)
_VOWEL_START = re.compile(r"\b(a) (?=(?!one\b)(?:[aeiou]|8\b|eight|eleven|upright)[\w-]*)")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens ("right-slanted" stays one token) and punctuation marks."""
    return _TOKEN_RE.findall(text.lower())


def _ink(images: torch.Tensor | np.ndarray) -> np.ndarray:
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"images must be N x 1 x H x W in [-1, 1], got shape {tuple(x.shape)}")
    return np.clip((x[:, 0].astype(np.float64) + 1.0) / 2.0, 0.0, 1.0)


def _first_last(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    first = mask.argmax(axis=1)
    last = mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1)
    return first, last


def measure_attributes(
    images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Measure thickness, slant, size and position of each digit; add the words for them.

    ``images`` is ``N x 1 x H x W`` in [-1, 1]. ``labels`` (optional, N ints 0..9) selects the
    per-class size thresholds (see the module docstring). Returns float arrays ``thickness``,
    ``slant``, ``slant_deg``, ``width``, ``height``, ``cx``, ``cy``, ``area``, ``mass`` and
    string arrays ``thickness_word``, ``slant_word``, ``size_word``. An image without ink gets
    NaN measurements and the middle words.
    """
    ink = _ink(images)
    n, h, w = ink.shape
    mask = ink > 0.5
    mass = ink.sum(axis=(1, 2))
    # crack perimeter: ink/background transitions between 4-neighbours, image border included
    pad = np.pad(mask, ((0, 0), (1, 1), (1, 1)))
    perimeter = (pad[:, 1:, :] != pad[:, :-1, :]).sum(axis=(1, 2)) + (
        pad[:, :, 1:] != pad[:, :, :-1]
    ).sum(axis=(1, 2))
    empty = perimeter == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        # ribbon approximation: area = L w, perimeter = 2 L  =>  w = 2 area / perimeter
        thickness = np.where(empty, np.nan, 2.0 * mass / np.maximum(perimeter, 1))
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        msafe = np.where(mass > 0, mass, 1.0)
        mx = (ink * xs).sum(axis=(1, 2)) / msafe
        my = (ink * ys).sum(axis=(1, 2)) / msafe
        dx = xs[None] - mx[:, None, None]
        dy = ys[None] - my[:, None, None]
        mu11 = (ink * dx * dy).sum(axis=(1, 2)) / msafe
        mu02 = (ink * dy * dy).sum(axis=(1, 2)) / msafe
        # shear dx/dy from second central moments (deskewing, LeCun et al. 1998); y points down
        slant = np.where(empty | (mu02 <= 0), np.nan, -mu11 / np.where(mu02 > 0, mu02, 1.0))
    r0, r1 = _first_last(mask.any(axis=2))
    c0, c1 = _first_last(mask.any(axis=1))
    height = np.where(empty, np.nan, (r1 - r0 + 1).astype(np.float64))
    width = np.where(empty, np.nan, (c1 - c0 + 1).astype(np.float64))
    cx = np.where(empty, np.nan, (c0 + c1) / 2.0)
    cy = np.where(empty, np.nan, (r0 + r1) / 2.0)
    area = width * height

    lo, hi = THICKNESS_THRESHOLDS
    thickness_word = np.where(thickness < lo, "thin", np.where(thickness > hi, "thick", "medium"))
    slant_word = np.where(
        np.abs(slant) < SLANT_THRESHOLD,
        "upright",
        np.where(slant > 0, "right-slanted", "left-slanted"),
    )
    slant_word = np.where(np.isnan(slant), "upright", slant_word)
    if labels is None:
        size_lo = np.full(n, SIZE_THRESHOLDS[0])
        size_hi = np.full(n, SIZE_THRESHOLDS[1])
    else:
        lab = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
        if lab.shape != (n,) or lab.size and (lab.min() < 0 or lab.max() > 9):
            raise ValueError(f"labels must be {n} digit classes 0..9, got shape {lab.shape}")
        table = np.asarray(SIZE_THRESHOLDS_PER_CLASS)
        size_lo, size_hi = table[lab.astype(np.int64), 0], table[lab.astype(np.int64), 1]
    size_word = np.where(area < size_lo, "small", np.where(area > size_hi, "large", ""))
    return {
        "thickness": thickness,
        "slant": slant,
        "slant_deg": np.degrees(np.arctan(slant)),
        "width": width,
        "height": height,
        "cx": cx,
        "cy": cy,
        "area": area,
        "mass": mass,
        "thickness_word": thickness_word.astype(object),
        "slant_word": slant_word.astype(object),
        "size_word": size_word.astype(object),
    }


def attribute_thresholds(
    images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray
) -> dict[str, object]:
    """Recompute the word thresholds from a set of digits (the constants come from mnist5k)."""
    attrs = measure_attributes(images)
    lab = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    per_class = tuple(
        tuple(float(q) for q in np.quantile(attrs["area"][lab == c], [0.2, 0.8])) for c in range(10)
    )
    return {
        "thickness": tuple(float(q) for q in np.nanquantile(attrs["thickness"], [1 / 3, 2 / 3])),
        "slant": float(np.nanquantile(np.abs(attrs["slant"]), 1 / 3)),
        "size": tuple(float(q) for q in np.nanquantile(attrs["area"], [0.2, 0.8])),
        "size_per_class": per_class,
    }


def attributes_row(attrs: dict[str, np.ndarray], i: int) -> dict[str, object]:
    """Row ``i`` of :func:`measure_attributes`' output as a plain dict (floats and strings)."""
    return {k: (v[i] if isinstance(v[i], str) else float(v[i])) for k, v in attrs.items()}


def _join(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _fix_articles(text: str) -> str:
    return _VOWEL_START.sub("an ", text)


def caption(
    label: int,
    attrs_row: dict[str, object] | None = None,
    template: int | None = None,
    rng: np.random.Generator | None = None,
    drop_prob: float = 0.0,
) -> str:
    """One caption of digit ``label`` (0..9) from a template.

    ``attrs_row`` holds ``thickness_word``, ``slant_word`` and ``size_word`` (e.g. one row of
    :func:`measure_attributes`, see :func:`attributes_row`); None gives a plain class prompt.
    ``template`` indexes :data:`CAPTION_TEMPLATES`; None draws one with ``rng``. Each attribute
    is left out with probability ``drop_prob`` (drawn with ``rng``).
    """
    if not 0 <= int(label) <= 9:
        raise ValueError(f"label must be a digit 0..9, got {label}")
    if rng is None:
        rng = np.random.default_rng(0)
    if template is None:
        template = int(rng.integers(len(CAPTION_TEMPLATES)))
    if not 0 <= template < len(CAPTION_TEMPLATES):
        raise ValueError(f"template must be 0..{len(CAPTION_TEMPLATES) - 1}, got {template}")
    words: list[str] = []
    if attrs_row is not None:
        for key in ("thickness_word", "slant_word", "size_word"):
            if key not in attrs_row:
                raise ValueError(f"attrs_row has no {key!r}; pass a row of measure_attributes")
            word = str(attrs_row[key])
            if word and (drop_prob <= 0.0 or rng.random() >= drop_prob):
                words.append(word)
    adj = ", ".join(words) + " " if words else ""
    post = ", written " + _join(words) if words else ""
    text = CAPTION_TEMPLATES[template].format(
        word=NUMBER_WORDS[int(label)], digit=str(int(label)), adj=adj, post=post
    )
    return _fix_articles(text)


def class_prompts(label: int) -> list[str]:
    """Every template rendered without attributes: prompts for zero-shot classification."""
    return [caption(label, None, t) for t in range(len(CAPTION_TEMPLATES))]


def captions_for(
    labels: torch.Tensor | np.ndarray | Sequence[int],
    attrs: dict[str, np.ndarray] | None,
    per_image: int = 1,
    seed: int = 0,
    drop_prob: float = 0.0,
) -> list[list[str]]:
    """``per_image`` captions for each image (templates drawn with ``seed``; reproducible).

    ``attrs`` is the output of :func:`measure_attributes` for the same images (None: plain
    class captions). Within one image the templates differ while there are enough of them.
    """
    lab = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels, dtype=np.int64)
    if per_image < 1:
        raise ValueError(f"per_image must be >= 1, got {per_image}")
    if attrs is not None and len(attrs["thickness_word"]) != len(lab):
        raise ValueError(
            f"attrs has {len(attrs['thickness_word'])} rows for {len(lab)} labels; "
            "measure the same images"
        )
    rng = np.random.default_rng(seed)
    out = []
    for i, label in enumerate(lab):
        row = None if attrs is None else attributes_row(attrs, i)
        order = rng.permutation(len(CAPTION_TEMPLATES))
        caps = [
            caption(int(label), row, int(order[k % len(order)]), rng, drop_prob)
            for k in range(per_image)
        ]
        out.append(caps)
    return out


def _vocabulary() -> tuple[str, ...]:
    tokens: set[str] = set()
    choices = [THICKNESS_WORDS, SLANT_WORDS, SIZE_WORDS]
    for label in range(10):
        for t in range(len(CAPTION_TEMPLATES)):
            for combo in itertools.product(*[(*c, "") for c in choices]):
                row = dict(zip(("thickness_word", "slant_word", "size_word"), combo))
                tokens.update(tokenize(caption(label, row, t)))
    return tuple(sorted(tokens))


#: Every token (under :func:`tokenize`) that any caption can contain, sorted.
VOCABULARY: tuple[str, ...] = _vocabulary()
