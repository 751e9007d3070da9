"""Scores of a text-to-image model: does the image show the digit, and the attribute, asked for?

- :func:`attribute_agreement`: the attribute a prompt names, measured on the generated image by
  :func:`~synesthesia.data.captions.measure_attributes`, the measurement that writes the training
  captions;
- :func:`prompt_alignment`: image-prompt cosine and R-precision in the project's joint
  embedding space (a :class:`~synesthesia.multimodal.model.JointEmbeddingModel`);
- :func:`score_prompts`: generates for a prompt set (:mod:`synesthesia.data.prompts`) and
  reports, per group (plain / attribute / held-out), class accuracy under the digit evaluator,
  attribute agreement, classifier-FID and the alignment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from synesthesia.data.captions import (
    SIZE_THRESHOLDS_PER_CLASS,
    THICKNESS_THRESHOLDS,
    captions_for,
    measure_attributes,
)
from synesthesia.data.images import ImageSet
from synesthesia.data.prompts import ATTRIBUTE_POLES, GROUPS, PromptSpec
from synesthesia.errors import InputError
from synesthesia.metrics.evaluator import classifier_fid, evaluator_accuracy, sample_accuracy

#: Boundary between "thin" and "thick": the midpoint of the caption thresholds (pixels).
THICKNESS_BOUNDARY: float = 0.5 * (THICKNESS_THRESHOLDS[0] + THICKNESS_THRESHOLDS[1])
#: Boundary between "small" and "large" per digit class: the midpoint of its area thresholds.
SIZE_BOUNDARY_PER_CLASS: tuple[float, ...] = tuple(
    0.5 * (lo + hi) for lo, hi in SIZE_THRESHOLDS_PER_CLASS
)
#: Scores this close (in cosine) count as tied in :func:`prompt_alignment`.
TIE_TOLERANCE: float = 1e-6


def _check_images(images: torch.Tensor, n: int, what: str) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 1:
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise InputError(f"images must be a tensor N x 1 x H x W in [-1, 1], got {shape}")
    if images.shape[0] != n:
        raise InputError(f"{images.shape[0]} images but {n} {what}")
    return images.detach().float().cpu()


def _binary_side(attribute: str, value: str, attrs: dict[str, np.ndarray], i: int, label: int):
    # which side of the boundary between the two poles the measurement lies on (NaN: neither)
    if attribute == "thickness_word":
        x, boundary = attrs["thickness"][i], THICKNESS_BOUNDARY
    elif attribute == "slant_word":
        x, boundary = attrs["slant"][i], 0.0
    else:
        x, boundary = attrs["area"][i], SIZE_BOUNDARY_PER_CLASS[label]
    high = ATTRIBUTE_POLES[attribute][1]
    if not np.isfinite(x) or x == boundary:
        return False
    return bool(x > boundary) if value == high else bool(x < boundary)


def _rates(binary: list[bool], strict: list[bool]) -> dict[str, float]:
    n = len(binary)
    return {
        "binary": float(np.mean(binary)) if n else float("nan"),
        "strict": float(np.mean(strict)) if n else float("nan"),
        "n": n,
    }


def attribute_agreement(images: torch.Tensor, specs: Sequence[PromptSpec]) -> dict[str, Any]:
    """How often the generated image has the attribute its prompt names.

    ``images`` (N, 1, H, W) in [-1, 1], one per spec in ``specs``; plain specs (no attribute)
    are skipped. Each image is measured by :func:`measure_attributes` with the spec's digit as
    label (for the per-class size thresholds). Two rates:

    - ``binary``: the measurement lies strictly on the named side of the boundary between the
      two poles: thickness above (thick) or below (thin) the midpoint of
      ``THICKNESS_THRESHOLDS`` (:data:`THICKNESS_BOUNDARY`); slant above 0 (right-slanted, the
      top leans right) or below 0 (left-slanted); bounding-box area above (large) or below
      (small) the midpoint of the digit's ``SIZE_THRESHOLDS_PER_CLASS``
      (:data:`SIZE_BOUNDARY_PER_CLASS`). A chance image scores about 0.5.
    - ``strict``: the measured word equals the prompt's word (a "medium", "upright" or
      unmentioned size counts as a miss), i.e. the caption written for the image would use it.

    An image without ink (NaN measurements) disagrees in both. Returns ``binary``, ``strict``,
    ``n`` over all attribute specs, ``per_attribute`` (by key: "thickness_word", "slant_word",
    "size_word") and ``per_value`` (by word: "thin", "thick", ...), each with the same three
    entries; rates are NaN where n is 0.
    """
    specs = list(specs)
    images = _check_images(images, len(specs), "prompt specs")
    idx = [i for i, s in enumerate(specs) if s.attribute is not None]
    binary: list[bool] = []
    strict: list[bool] = []
    by_attr: dict[str, tuple[list[bool], list[bool]]] = {k: ([], []) for k in ATTRIBUTE_POLES}
    by_value: dict[str, tuple[list[bool], list[bool]]] = {
        w: ([], []) for poles in ATTRIBUTE_POLES.values() for w in poles
    }
    if idx:
        labels = np.asarray([specs[i].label for i in idx], dtype=np.int64)
        attrs = measure_attributes(images[idx], labels)
        for j, i in enumerate(idx):
            s = specs[i]
            b = _binary_side(s.attribute, s.value, attrs, j, s.label)
            st = attrs[s.attribute][j] == s.value  # an empty image gets the middle words
            for target in (binary, by_attr[s.attribute][0], by_value[s.value][0]):
                target.append(b)
            for target in (strict, by_attr[s.attribute][1], by_value[s.value][1]):
                target.append(bool(st))
    return {
        **_rates(binary, strict),
        "per_attribute": {k: _rates(*v) for k, v in by_attr.items()},
        "per_value": {k: _rates(*v) for k, v in by_value.items()},
    }


@torch.no_grad()
def prompt_alignment(
    images: torch.Tensor,
    texts: Sequence[str],
    clip_model,
    distractors: Sequence[str],
    n_candidates: int = 100,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Image-prompt cosine and R-precision in a joint embedding space.

    ``clip_model`` has ``embed_images(images) -> (N, D)`` and ``embed_texts(list) -> (M, D)``
    (a :class:`~synesthesia.multimodal.model.JointEmbeddingModel`); embeddings are
    L2-normalised here again. ``cosine``: the mean cosine between each image and its own prompt
    ``texts[i]``. ``r_precision``: R-precision with R = 1 as in AttnGAN (Xu et al. 2018, sec.
    4) and the DALL-E evaluations: for each image, its prompt and ``n_candidates - 1``
    distractors drawn without replacement (with ``generator``) from the distinct captions of
    ``distractors`` that differ from the prompt are ranked by cosine; the image scores 1 when
    its prompt ranks first. Ties (cosines within :data:`TIE_TOLERANCE`) are broken at random in
    expectation: a prompt tied with k candidates at the top scores 1 / (k + 1), so a model that
    maps everything to one point scores exactly 1 / n_candidates. Note that a distractor with
    other words but the same meaning ("the number 7" for "a seven") competes too.
    """
    if isinstance(distractors, str) or isinstance(texts, str):
        raise InputError("texts and distractors must be lists of strings, got one string")
    texts = [str(t) for t in texts]
    images = _check_images(images, len(texts), "texts")
    if n_candidates < 2:
        raise InputError(f"n_candidates must be >= 2, got {n_candidates}")
    if not texts:
        return {
            "cosine": float("nan"),
            "r_precision": float("nan"),
            "n": 0,
            "n_candidates": n_candidates,
        }
    pool = list(dict.fromkeys(str(d) for d in distractors))  # distinct, in first-seen order
    vocab = list(dict.fromkeys(texts + pool))
    where = {t: k for k, t in enumerate(vocab)}
    pool_idx = torch.tensor([where[d] for d in pool], dtype=torch.long)
    own_idx = torch.tensor([where[t] for t in texts], dtype=torch.long)
    eligible = pool_idx[None, :] != own_idx[:, None]  # (N, P): distractor differs from prompt
    short_rows = (eligible.sum(1) < n_candidates - 1).nonzero()
    if len(short_rows):
        i = int(short_rows[0])
        raise InputError(
            f"only {int(eligible[i].sum())} distinct distractors differ from the prompt "
            f"{texts[i]!r}; n_candidates={n_candidates} needs {n_candidates - 1}: pass more "
            "captions or a smaller n_candidates"
        )
    img = F.normalize(clip_model.embed_images(images).double().cpu(), dim=-1)
    txt = F.normalize(clip_model.embed_texts(vocab).double().cpu(), dim=-1)
    own = (img * txt[own_idx]).sum(-1)  # (N,)
    dist = img @ txt[pool_idx].T  # (N, P)
    # draw n_candidates - 1 eligible distractors per image: the smallest uniform keys
    keys = torch.rand(eligible.shape, generator=generator, dtype=torch.float64)
    keys = keys.masked_fill(~eligible, 2.0)
    drawn = keys.topk(n_candidates - 1, dim=1, largest=False).indices
    cand = dist.gather(1, drawn)  # (N, n_candidates - 1)
    above = (cand > own[:, None] + TIE_TOLERANCE).sum(1)
    tied = ((cand - own[:, None]).abs() <= TIE_TOLERANCE).sum(1)
    hit = (above == 0).double() / (tied + 1).double()
    return {
        "cosine": float(own.mean()),
        "r_precision": float(hit.mean()),
        "n": len(texts),
        "n_candidates": int(n_candidates),
    }


def _class_matched(val: ImageSet, labels: torch.Tensor) -> torch.Tensor:
    keep = torch.isin(val.labels, labels.unique())
    return val.images[keep]


def score_prompts(
    generate: Callable[[list[str], torch.Generator], torch.Tensor],
    specs: Sequence[PromptSpec],
    evaluator,
    val: ImageSet,
    n_per_prompt: int = 4,
    seed: int = 0,
    clip_model=None,
    n_candidates: int = 100,
    batch_size: int = 256,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate ``n_per_prompt`` images for every spec and score them per prompt group.

    ``generate(texts, generator) -> images (len(texts), 1, 28, 28) in [-1, 1]`` is called on
    consecutive batches of at most ``batch_size`` texts (spec order, each spec repeated
    ``n_per_prompt`` times) with one ``torch.Generator`` seeded with ``seed``, so the result is
    deterministic from ``seed`` (and ``batch_size``). For each group present ("plain",
    "attribute", "held_out") and for "all":

    - ``class_accuracy``: :func:`sample_accuracy` under ``evaluator`` (the asked digit);
    - ``attributes``: :func:`attribute_agreement` (groups with attribute prompts);
    - ``classifier_fid``: :func:`classifier_fid` in the evaluator's features against the
      ``val`` images of the classes the group asks for (all of ``val`` for "all"); compare it
      across models or guidance scales, not across groups of different sizes;
    - ``alignment`` (with ``clip_model``): :func:`prompt_alignment` against ``n_candidates``
      captions, the distractors being one caption per ``val`` image (measured attributes,
      templates drawn with ``seed``).

    Also returned: ``evaluator_accuracy`` on ``val`` (trust the scores only at
    :data:`~synesthesia.metrics.evaluator.TRUSTED_ACCURACY` or above), ``reference_alignment``
    (the real ``val`` images against their own captions: the ceiling the embedding allows),
    ``num_samples`` and ``generate_s`` (wall time of the generation).
    """
    from tqdm.auto import tqdm

    specs = list(specs)
    if not specs:
        raise InputError(
            "no prompt specs to score; pass e.g. synesthesia.data.prompts.all_prompts()"
        )
    if n_per_prompt < 1:
        raise InputError(f"n_per_prompt must be >= 1, got {n_per_prompt}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    expanded = [s for s in specs for _ in range(n_per_prompt)]
    texts = [s.text for s in expanded]
    labels = torch.tensor([s.label for s in expanded], dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    chunks = []
    start = time.perf_counter()
    for b in tqdm(range(0, len(texts), batch_size), desc="generate", disable=not progress):
        batch = texts[b : b + batch_size]
        out = generate(batch, gen)
        chunks.append(_check_images(out, len(batch), "prompts in the batch"))
    seconds = time.perf_counter() - start
    images = torch.cat(chunks)

    distractors = None
    result: dict[str, Any] = {}
    if clip_model is not None:
        val_attrs = measure_attributes(val.images, val.labels)
        distractors = [c[0] for c in captions_for(val.labels, val_attrs, 1, seed=seed)]
        result["reference_alignment"] = prompt_alignment(
            val.images,
            distractors,
            clip_model,
            distractors,
            n_candidates,
            torch.Generator().manual_seed(seed + 1),
        )
    groups: dict[str, Any] = {}
    present = [g for g in GROUPS if any(s.group == g for s in expanded)]
    for g in [*present, "all"]:
        keep = [i for i, s in enumerate(expanded) if g == "all" or s.group == g]
        idx = torch.tensor(keep, dtype=torch.long)
        imgs, labs = images[idx], labels[idx]
        gspecs = [expanded[i] for i in keep]
        ref = val.images if g == "all" else _class_matched(val, labs)
        entry: dict[str, Any] = {
            "num_samples": len(keep),
            "class_accuracy": sample_accuracy(evaluator, imgs, labs),
            "classifier_fid": classifier_fid(evaluator, imgs, ref),
        }
        if any(s.attribute is not None for s in gspecs):
            entry["attributes"] = attribute_agreement(imgs, gspecs)
        if clip_model is not None:
            entry["alignment"] = prompt_alignment(
                imgs,
                [s.text for s in gspecs],
                clip_model,
                distractors,
                n_candidates,
                torch.Generator().manual_seed(seed + 2),
            )
        groups[g] = entry
    result.update(
        groups=groups,
        evaluator_accuracy=evaluator_accuracy(evaluator, val),
        num_samples=len(expanded),
        n_per_prompt=n_per_prompt,
        seed=seed,
        generate_s=seconds,
    )
    return result
