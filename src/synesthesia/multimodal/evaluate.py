"""Evaluation of a joint embedding model on the digit world's held-out split.

:func:`evaluate_clip` measures, on validation images, held-out eSpeak voices and held-out FSDD
speakers:

- ``zero_shot``: image classification from text prompts (template ensemble, and the bare
  number word alone for comparison), from spoken prompts (the mean embedding of the held-out
  voices' clips of each digit), and classification of speech (synthetic and FSDD) from text
  prompts;
- ``retrieval``: speech <-> image (relevant = same digit), image <-> caption with attribute
  captions (relevant = the identical caption text; "consistent": a caption of the same digit
  whose attribute words all hold for the image; looser, any caption of the same digit);
- ``grounding``: for each attribute (thickness, slant, size), how often an image scores the
  caption with its own word above the same caption with the opposite word ("a thick seven" vs
  "a thin seven", same template), averaged over templates; 0.5 is chance;
- ``baselines``: a linear probe on the frozen image embeddings and logistic regression on raw
  pixels (both trained on the 4,000 training images), which zero-shot should beat.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synesthesia.multimodal.probes import linear_probe_accuracy, raw_pixel_accuracy
from synesthesia.multimodal.retrieval import bidirectional_retrieval, relevance_from_labels
from synesthesia.multimodal.zeroshot import DIGIT_TEMPLATES, ZeroShotClassifier

#: (attribute key, word, opposite word) pairs checked by the grounding test.
GROUNDING_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("thickness_word", "thick", "thin"),
    ("thickness_word", "thin", "thick"),
    ("slant_word", "left-slanted", "right-slanted"),
    ("slant_word", "right-slanted", "left-slanted"),
    ("size_word", "small", "large"),
    ("size_word", "large", "small"),
)


def build_world_for(model, fsdd_folder: str | Path | None = None, n_speech: int = 2000, **kw):
    """The digit world with each modality's data made as ``model``'s towers expect it (for
    speech: its log-mel settings and number of frames; ``n_speech`` and ``fsdd_folder`` are
    used only when the model has a speech tower). ``kw`` goes to ``DigitWorld.build``."""
    from synesthesia.data.digit_world import DigitWorld
    from synesthesia.multimodal.modalities import get_modality

    config = model.config
    request = {"n_speech": n_speech, "fsdd_folder": fsdd_folder}
    options: dict[str, Any] = {"n_speech": 0, "fsdd_folder": None}
    for m in config.modalities:
        options.update(get_modality(m).world_options(config.tower(m), request))
    return DigitWorld.build(**options, **kw)


def fsdd_note(train_speakers: Sequence[str], held_out: Sequence[str]) -> str | None:
    """The statement owed when every FSDD speaker is in training (None otherwise)."""
    if train_speakers and not held_out:
        return (
            f"every FSDD speaker ({', '.join(train_speakers)}) is in training: no held-out FSDD "
            "speaker is scored"
        )
    return None


def grounding_scores(
    model,
    images: torch.Tensor,
    labels: torch.Tensor,
    attrs: dict[str, np.ndarray],
    pairs: tuple[tuple[str, str, str], ...] = GROUNDING_PAIRS,
) -> dict[str, dict[str, float]]:
    """For each (key, word, opposite): among images whose ``attrs[key] == word``, the fraction
    whose similarity to captions with ``word`` (mean over templates) beats those with
    ``opposite``; plus the mean similarity margin."""
    from synesthesia.data.captions import CAPTION_TEMPLATES, caption

    emb = model.embed_images(images)
    out: dict[str, dict[str, float]] = {}
    plain = {"thickness_word": "", "slant_word": "", "size_word": ""}
    templates = range(len(CAPTION_TEMPLATES))
    for key, word, opposite in pairs:
        idx = np.flatnonzero(np.asarray(attrs[key]) == word)
        if len(idx) == 0:
            continue
        lab = labels[torch.from_numpy(idx)]
        e = emb[torch.from_numpy(idx)]
        # one caption per (digit, template) and word: embed the 10 x T of each, then look up
        margins = torch.zeros(len(idx))
        for w, sign in ((word, 1.0), (opposite, -1.0)):
            texts = [caption(c, {**plain, key: w}, t) for c in range(10) for t in templates]
            table = model.embed_texts(texts).reshape(10, len(templates), -1).mean(1)
            margins += sign * (e * table[lab]).sum(1)
        out[f"{word}_vs_{opposite}"] = {
            "accuracy": float((margins > 0).float().mean()),
            "mean_margin": float(margins.mean()),
            "n": len(idx),
        }
    # balanced over the two directions: a model that prefers one word for every image scores 0.5
    for key, word, opposite in pairs:
        a, b = out.get(f"{word}_vs_{opposite}"), out.get(f"{opposite}_vs_{word}")
        name = f"balanced_{key.removesuffix('_word')}"
        if a is not None and b is not None and name not in out:
            out[name] = {"accuracy": 0.5 * (a["accuracy"] + b["accuracy"]), "n": a["n"] + b["n"]}
    return out


def consistent_captions(
    labels: torch.Tensor, attrs: dict[str, np.ndarray], captions: list[str]
) -> torch.Tensor:
    """``N x M`` relevance: caption j names image i's digit and every attribute word it uses
    ("thick", "right-slanted", "small", ...) is one of image i's measured words."""
    from synesthesia.data.captions import (
        NUMBER_WORDS,
        SIZE_WORDS,
        SLANT_WORDS,
        THICKNESS_WORDS,
        tokenize,
    )

    attribute_words = {w for w in (*THICKNESS_WORDS, *SLANT_WORDS, *SIZE_WORDS) if w}
    numbers = {w: d for d, w in enumerate(NUMBER_WORDS)} | {str(d): d for d in range(10)}
    cap_digit, cap_words = [], []
    for text in captions:
        tokens = tokenize(text)
        digits = {numbers[t] for t in tokens if t in numbers}
        cap_digit.append(digits.pop() if len(digits) == 1 else -1)
        cap_words.append({t for t in tokens if t in attribute_words})
    own = [
        {str(attrs[k][i]) for k in ("thickness_word", "slant_word", "size_word")}
        for i in range(len(labels))
    ]
    rel = torch.zeros(len(labels), len(captions), dtype=torch.bool)
    for j, (d, words) in enumerate(zip(cap_digit, cap_words)):
        for i in (labels == d).nonzero().flatten().tolist():
            rel[i, j] = words <= own[i]
    return rel


def _speech_classifier(model, features: torch.Tensor, labels: torch.Tensor) -> ZeroShotClassifier:
    emb = model.embed_speech_features(features)
    groups = [emb[labels == c] for c in range(10)]
    return ZeroShotClassifier.from_embeddings(groups, [str(c) for c in range(10)])


def evaluate_clip(
    model,
    world,
    templates: tuple[str, ...] = DIGIT_TEMPLATES,
    baselines: bool = True,
    plot_path: str | Path | None = None,
) -> dict[str, Any]:
    """Every number of the module docstring, as a JSON-ready nested dict."""
    model.eval()
    mods = model.config.modalities
    val_images = world.images["val"]
    results: dict[str, Any] = {"zero_shot": {}, "retrieval": {}}
    img_emb = model.embed_images(val_images.images) if "image" in mods else None
    text_clf = None
    if "text" in mods:
        text_clf = ZeroShotClassifier.from_prompts(model, templates=templates)
        bare = ZeroShotClassifier.from_prompts(model, templates=None)
    if img_emb is not None and text_clf is not None:
        zs = results["zero_shot"]
        zs["image_from_text_prompts"] = text_clf.accuracy(img_emb, val_images.labels)
        zs["image_from_bare_word"] = bare.accuracy(img_emb, val_images.labels)
        caps = [c[0] for c in world.captions["val"]]
        cap_emb = model.embed_texts(caps)
        same_text = torch.tensor([[a == b for b in caps] for a in caps])
        results["retrieval"]["image_caption_exact"] = bidirectional_retrieval(
            img_emb, cap_emb, same_text, names=("image", "caption")
        )
        results["retrieval"]["image_caption_digit"] = bidirectional_retrieval(
            img_emb,
            cap_emb,
            relevance_from_labels(val_images.labels, val_images.labels),
            names=("image", "caption"),
        )
        results["retrieval"]["image_caption_consistent"] = bidirectional_retrieval(
            img_emb,
            cap_emb,
            consistent_captions(val_images.labels, world.attrs["val"], caps),
            names=("image", "caption"),
        )
        results["grounding"] = grounding_scores(
            model, val_images.images, val_images.labels, world.attrs["val"]
        )
    if "speech" in mods and "synthetic" in world.speech:
        pool = world.speech["synthetic"]["val"]
        speech_emb = model.embed_speech_features(pool.features)
        slab = pool.clips.labels
        results["n_val_speech"] = len(pool)
        results["val_voices"] = sorted(set(pool.clips.speakers))
        if img_emb is not None:
            # images of digits that no held-out clip says have nothing to retrieve: left out
            keep = torch.isin(val_images.labels, slab.unique())
            results["retrieval"]["speech_image"] = bidirectional_retrieval(
                speech_emb,
                img_emb[keep],
                relevance_from_labels(slab, val_images.labels[keep]),
                names=("speech", "image"),
            )
            results["retrieval"]["speech_image_n_images"] = int(keep.sum())
            if len(set(slab.tolist())) == 10:  # a spoken prompt for every digit
                sp_clf = _speech_classifier(model, pool.features, slab)
                results["zero_shot"]["image_from_speech_prompts"] = sp_clf.accuracy(
                    img_emb, val_images.labels
                )
        if text_clf is not None:
            results["zero_shot"]["speech_from_text_prompts"] = text_clf.accuracy(speech_emb, slab)
    if "speech" in mods and "fsdd" in world.speech:
        fsdd: dict[str, Any] = {}
        for split in ("train", "val"):
            pool = world.speech["fsdd"][split]
            if len(pool) == 0:
                continue
            emb = model.embed_speech_features(pool.features)
            entry: dict[str, Any] = {"speakers": sorted(set(pool.clips.speakers)), "n": len(pool)}
            if text_clf is not None:
                entry["from_text_prompts"] = text_clf.accuracy(emb, pool.clips.labels)
            if img_emb is not None:
                protos = ZeroShotClassifier.from_embeddings(
                    [img_emb[val_images.labels == c] for c in range(10)],
                    [str(c) for c in range(10)],
                )
                entry["from_image_prototypes"] = protos.accuracy(emb, pool.clips.labels)
            fsdd[split] = entry
        results["zero_shot"]["fsdd"] = fsdd
        trained = sorted(set(world.speech["fsdd"]["train"].clips.speakers))
        held_out = sorted(set(world.speech["fsdd"]["val"].clips.speakers))
        results["fsdd_held_out_speakers"] = held_out
        note = fsdd_note(trained, held_out)
        if note:
            results.setdefault("notes", []).append(note)
    if baselines and img_emb is not None:
        train = world.images["train"]
        train_emb = model.embed_images(train.images)
        results["baselines"] = {
            "linear_probe": linear_probe_accuracy(
                train_emb, train.labels, img_emb, val_images.labels
            ),
            "raw_pixel_logistic_regression": raw_pixel_accuracy(
                train.images, train.labels, val_images.images, val_images.labels
            ),
        }
    if plot_path is not None:
        results["plot"] = str(plot_joint_space_png(model, world, plot_path, text_clf))
    return results


def quick_zero_shot(model, world) -> dict[str, Any]:
    """:func:`evaluate_clip` without the (slower) supervised baselines and plot."""
    return evaluate_clip(model, world, baselines=False)


def plot_joint_space_png(model, world, path: str | Path, text_clf=None, per_class: int = 30):
    """Write a PNG of the joint space (PCA): val images, held-out speech, class text prompts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synesthesia.multimodal.plots import plot_joint_space

    embeddings, labels = {}, {}
    mods = model.config.modalities
    if "image" in mods:
        lab = world.images["val"].labels
        idx = torch.cat([(lab == c).nonzero().flatten()[:per_class] for c in range(10)])
        embeddings["image"] = model.embed_images(world.images["val"].images[idx])
        labels["image"] = lab[idx]
    if "speech" in mods and "synthetic" in world.speech:
        pool = world.speech["synthetic"]["val"]
        lab = pool.clips.labels
        idx = torch.cat([(lab == c).nonzero().flatten()[:per_class] for c in range(10)])
        embeddings["speech"] = model.embed_speech_features(pool.features[idx])
        labels["speech"] = lab[idx]
    if "text" in mods and text_clf is not None:
        embeddings["text"] = text_clf.class_embeddings
        labels["text"] = torch.arange(10)
    fig, ax = plt.subplots(figsize=(6.5, 6))
    plot_joint_space(
        embeddings, labels, method="pca", ax=ax, class_names=[str(d) for d in range(10)]
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def format_table(results: dict[str, Any]) -> str:
    """The headline numbers of :func:`evaluate_clip` as an aligned text table."""
    rows: list[tuple[str, str]] = []

    def pct(x: float) -> str:
        return f"{100 * x:6.2f} %"

    zs = results.get("zero_shot", {})
    for key, name in (
        ("image_from_text_prompts", "zero-shot images, text prompts (ensemble)"),
        ("image_from_bare_word", "zero-shot images, bare number word"),
        ("image_from_speech_prompts", "zero-shot images, spoken prompts (held-out voices)"),
        ("speech_from_text_prompts", "zero-shot speech (held-out voices), text prompts"),
    ):
        if key in zs:
            rows.append((name, pct(zs[key])))
    for split, entry in zs.get("fsdd", {}).items():
        who = ",".join(entry["speakers"])
        if "from_text_prompts" in entry:
            rows.append(
                (f"zero-shot FSDD {split} ({who}), text prompts", pct(entry["from_text_prompts"]))
            )
    ret = results.get("retrieval", {})
    for key, direction, name in (
        ("speech_image", "speech_to_image", "speech -> image R@1 (same digit)"),
        ("speech_image", "image_to_speech", "image -> speech R@1 (same digit)"),
        ("image_caption_exact", "image_to_caption", "image -> caption R@1 (exact caption)"),
        ("image_caption_exact", "caption_to_image", "caption -> image R@1 (exact caption)"),
        ("image_caption_consistent", "image_to_caption", "image -> caption R@1 (consistent)"),
        ("image_caption_consistent", "caption_to_image", "caption -> image R@1 (consistent)"),
        ("image_caption_digit", "image_to_caption", "image -> caption R@1 (same digit)"),
    ):
        if key in ret:
            m = ret[key][direction]
            rows.append(
                (name, f"{pct(m['R@1'])}  R@5 {pct(m['R@5'])}  median rank {m['median_rank']:.0f}")
            )
    for key, entry in results.get("grounding", {}).items():
        if key.startswith("balanced_"):
            name = f"grounding {key.removeprefix('balanced_')} words (balanced, chance 50 %)"
        else:
            name = f"  {key.replace('_vs_', ' > ')}"
        rows.append((name, pct(entry["accuracy"])))
    for key, value in results.get("baselines", {}).items():
        rows.append((f"baseline: {key.replace('_', ' ')}", pct(value)))
    width = max((len(r[0]) for r in rows), default=0)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines += [f"note: {note}" for note in results.get("notes", [])]
    return "\n".join(lines)
