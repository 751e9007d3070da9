"""The joint-embedding tab: a caption, or a recorded or uploaded spoken digit, embedded by a
``synesthesia train clip`` checkpoint; the nearest validation images, the zero-shot scores of
the ten digits, and the joint-space map with the query in it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from synesthesia.app.common import (
    Checkpoints,
    Kind,
    checkpoint_row,
    choice,
    enlarged,
    figure,
    page_errors,
    text,
    to_image,
    whole,
)
from synesthesia.errors import InputError

#: Optimiser steps of "train a small one" (images, captions and synthesised speech).
SMALL_STEPS = 150
#: Synthesised spoken digits of the small model's digit world.
SMALL_SPEECH = 200
QUERIES = ("caption", "spoken digit")
#: Longest spoken query (seconds): a digit is under one.
MAX_SECONDS = 10.0
MAX_NEAREST = 32
#: Validation images per digit on the map.
MAP_PER_CLASS = 20
_INDEX: dict[int, dict] = {}
_INDEX_LOCK = threading.Lock()


def _load(folder: Path):
    from synesthesia.multimodal.model import JointEmbeddingModel

    return JointEmbeddingModel.from_pretrained(folder).eval()


def _train_small(out: Path, steps: int | None, progress: bool) -> None:
    from synesthesia.multimodal.train import ClipTrainOptions, train_clip

    options = ClipTrainOptions(
        out_dir=str(out),
        modalities=("image", "text", "speech"),
        max_steps=steps or SMALL_STEPS,
        batch_size=32,
        n_speech=SMALL_SPEECH,
        precision="fp32",
        progress=progress,
        pick_threads=False,
    )
    train_clip(options)


KIND = Kind("clip", "joint-embedding", _load, _train_small, "synesthesia train clip")


def _index(model) -> dict:
    """The validation images, their embeddings and the zero-shot classifier of ``model``
    (computed once per model)."""
    import torch

    from synesthesia.data.images import mnist5k_splits
    from synesthesia.multimodal.zeroshot import ZeroShotClassifier

    with _INDEX_LOCK:
        entry = _INDEX.get(id(model))
        if entry is None or entry["model"] is not model:
            _, val = mnist5k_splits()
            entry = {
                "model": model,
                "images": val.images,
                "labels": val.labels,
                "embeddings": model.embed_images(val.images),
                "classifier": ZeroShotClassifier.from_prompts(model),
            }
            lab = val.labels
            entry["map"] = torch.cat(
                [(lab == c).nonzero().flatten()[:MAP_PER_CLASS] for c in range(10)]
            )
            _INDEX[id(model)] = entry
    return entry


def waveform(audio: Any) -> tuple[Any, int]:
    """``(float32 mono samples in [-1, 1], rate)`` of a Gradio numpy audio value
    ``(rate, samples)``, or of a path to a sound file (an API client's upload)."""
    import numpy as np

    if isinstance(audio, (str, Path)):
        from synesthesia.pipelines.text2audio import read_wav

        return read_wav(audio)
    if not (isinstance(audio, (tuple, list)) and len(audio) == 2):
        raise InputError("spoken digit: record or upload a sound first")
    rate, data = audio
    rate = whole(rate, "sample rate", 1, 1_000_000)
    x = np.asarray(data)
    if np.issubdtype(x.dtype, np.integer):  # 16-bit PCM from the browser: full scale is 1
        x = x / float(np.iinfo(x.dtype).max)
    if x.ndim == 2:  # (samples, channels) from Gradio: the channels averaged
        x = x.mean(axis=1) if x.shape[1] <= 8 else x.mean(axis=0)
    if x.ndim != 1 or x.size == 0:
        raise InputError(f"spoken digit: expected one channel of samples, got shape {x.shape}")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise InputError("spoken digit: the recording holds values that are not finite")
    if x.size > MAX_SECONDS * rate:
        raise InputError(
            f"spoken digit: {x.size / rate:.1f} s is longer than {MAX_SECONDS:g} s; "
            "say or upload one digit"
        )
    return x, rate


def search(
    checkpoints: Checkpoints,
    checkpoint: str | None,
    query: Any,
    caption: Any = "",
    audio: Any = None,
    k: Any = 8,
):
    """``(nearest images, zero-shot scores, map)`` for a caption or a spoken digit: the ``k``
    validation images closest to the query in the joint space as ``(PIL image, caption)``
    pairs, ``{digit: probability}`` (softmax of the model's scaled cosine similarities to the
    ten class-prompt embeddings), and the joint-space map (PCA) as an image."""
    import torch

    from synesthesia.multimodal.plots import plot_joint_space
    from synesthesia.pipelines.base import to_pil

    query = choice(query, "query", QUERIES)
    k = whole(k, "nearest images", 1, MAX_NEAREST)
    model = checkpoints.load(KIND, checkpoint)
    index = _index(model)
    if query == "caption":
        caption = text(caption, "caption").strip()
        if not caption:
            raise InputError("caption: type a caption first, e.g. 'a thick seven'")
        q = model.embed_texts([caption])
        modality = "text"
    else:
        wave, rate = waveform(audio)
        q = model.embed_audio(torch.from_numpy(wave), rate)
        modality = "speech"
    cos = (index["embeddings"] @ q.T)[:, 0]
    best = cos.topk(k).indices
    nearest = []
    for i in best.tolist():
        img = to_pil(((index["images"][i].permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1))
        nearest.append((enlarged(img, 3), f"digit {int(index['labels'][i])}, cos {cos[i]:.2f}"))
    classifier = index["classifier"]
    scales = model.logit_scales  # the query modality's own scale against the images
    scale = scales[modality] if modality in scales else scales[model.others[0]]
    probs = torch.softmax(scale.scale.detach() * classifier.logits(q)[0], dim=0)
    scores = {name: float(p) for name, p in zip(classifier.class_names, probs)}
    fig, (ax,) = figure(width=5.5, height=5.0)
    sub = index["map"]
    plot_joint_space(
        {"image": index["embeddings"][sub], "text": classifier.class_embeddings, "query": q},
        {"image": index["labels"][sub], "text": torch.arange(10), "query": probs.argmax()[None]},
        ax=ax,
        class_names=[str(d) for d in range(10)],
    )
    ax.set_title(f"joint space (PCA); x: your {query}", fontsize=9)
    return nearest, scores, to_image(fig)


def build_tab(gr, checkpoints: Checkpoints) -> None:
    """The tab's components and events (inside an open ``gr.Blocks``)."""
    with gr.Tab("Joint embedding", id="joint"):
        gr.Markdown(
            "Images, captions and speech in one embedding space: type a caption or record "
            "or upload a spoken digit, and see the images nearest to it."
        )
        dropdown, _, _ = checkpoint_row(gr, checkpoints, KIND)
        query_in = gr.Radio(list(QUERIES), value="caption", label="query")
        with gr.Row():
            caption_in = gr.Textbox(value="a thick seven", label="caption")
            audio_in = gr.Audio(
                sources=["microphone", "upload"], type="numpy", label="spoken digit"
            )
        k_in = gr.Slider(1, MAX_NEAREST, value=8, step=1, label="nearest images")
        button = gr.Button("search", variant="primary")
        with gr.Row():
            gallery = gr.Gallery(label="nearest images", columns=4, format="png", scale=2)
            scores = gr.Label(num_top_classes=10, label="zero-shot scores", scale=1)
        space = gr.Image(label="joint-space map", format="png", elem_id="joint-map")

        @page_errors
        def run(checkpoint, query, caption, audio, k):
            return search(checkpoints, checkpoint, query, caption, audio, k)

        button.click(
            run,
            inputs=[dropdown, query_in, caption_in, audio_in, k_in],
            outputs=[gallery, scores, space],
            api_name="joint_search",
        )
