"""The text-to-image tab: a prompt (and a negative prompt) through a text-to-image checkpoint
(``synesthesia train text2image``, pixel or latent) into a gallery."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synesthesia.app.common import Checkpoints, Kind, checkpoint_row, enlarged, page_errors, text
from synesthesia.app.image import SCALE, sampler_controls, sampling_values

#: Optimiser steps of "train a small one" (a tiny text-conditioned U-Net).
SMALL_STEPS = 300


def _load(folder: Path):
    from synesthesia.pipelines.text2image import TextToImagePipeline

    return TextToImagePipeline.from_pretrained(folder)


def _train_small(out: Path, steps: int | None, progress: bool) -> None:
    from synesthesia.data.images import load_image_splits
    from synesthesia.pipelines.text2image_train import TextTrainOptions, train_text_to_image

    steps = steps or SMALL_STEPS
    train, _ = load_image_splits("mnist5k")
    options = TextTrainOptions(
        out_dir=str(out),
        preset="tiny",
        max_steps=steps,
        batch_size=32,
        warmup_steps=max(1, min(20, steps // 5)),
        precision="fp32",
        progress=progress,
        pick_threads=False,
        text_dim=32,
        text_depth=1,
        log_every=max(1, steps // 10),
        checkpoint_every=steps,
    )
    train_text_to_image(train, options)


KIND = Kind("text2image", "text-to-image", _load, _train_small, "synesthesia train text2image")


def call_with_word_warnings(call: Callable[[], Any], warn: Callable[[str], None]) -> Any:
    """``call()``, passing each unknown-word warning of the prompt's tokenizer to ``warn``
    (the page shows it as a notice; words outside the vocabulary become [UNK])."""
    from synesthesia.pipelines.text2image import UnknownWordWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnknownWordWarning)
        out = call()
    for w in caught:
        if issubclass(w.category, UnknownWordWarning):
            warn(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return out


def sample_prompted(
    checkpoints: Checkpoints,
    kind: Kind,
    checkpoint: str | None,
    prompt: Any,
    negative: Any,
    values: dict,
    n: int,
    output_type: str,
    progress: bool,
    warn: Callable[[str], None] | None = None,
) -> tuple[Any, str, str, Any]:
    """``(pipeline, prompt, negative, output)``: the page's prompt and negative prompt checked,
    the chosen checkpoint of ``kind`` called with the checked sampling ``values``
    (:func:`~synesthesia.app.image.sampling_values`) for ``n`` outputs per prompt; with
    ``warn``, unknown-word warnings go to it (:func:`call_with_word_warnings`)."""
    import torch

    prompt, negative = text(prompt, "prompt"), text(negative, "negative prompt")
    pipe = checkpoints.load(kind, checkpoint)

    def call():
        return pipe(
            prompt,
            negative_prompt=negative or None,
            guidance_scale=values["guidance_scale"],
            num_inference_steps=values["num_inference_steps"],
            method=values["method"],
            generator=torch.Generator().manual_seed(values["seed"]),
            num_images_per_prompt=n,
            output_type=output_type,
            progress=progress,
        )

    out = call() if warn is None else call_with_word_warnings(call, warn)
    return pipe, prompt, negative, out


def prompt_inputs(gr, value: str):
    """The prompt and negative-prompt boxes of a prompted tab, side by side."""
    with gr.Row():
        prompt_in = gr.Textbox(value=value, label="prompt", scale=2)
        negative_in = gr.Textbox(value="", label="negative prompt", scale=1)
    return prompt_in, negative_in


def connect_generate(gr, button, generate_fn, checkpoints: Checkpoints, inputs, outputs,
                     api_name: str, **extra) -> None:  # fmt: skip
    """``button`` runs ``generate_fn(checkpoints, checkpoint, prompt, negative, guidance,
    steps, method, seed, n, progress=True, **extra)`` with a progress bar, the project's
    input errors shown in the page; the same route is the API's ``api_name``."""
    tracked = gr.Progress(track_tqdm=True)  # a fresh tracker per call (Gradio)

    @page_errors
    def run(checkpoint, prompt, negative, guidance, steps, method, seed, n, progress=tracked):
        return generate_fn(checkpoints, checkpoint, prompt, negative, guidance, steps, method,
                           seed, n, progress=True, **extra)  # fmt: skip

    button.click(run, inputs=inputs, outputs=outputs, api_name=api_name)


def generate(
    checkpoints: Checkpoints,
    checkpoint: str | None,
    prompt: Any,
    negative: Any = "",
    guidance: Any = 3.0,
    steps: Any = 20,
    method: Any = "dpmpp_2m",
    seed: Any = 0,
    n: Any = 4,
    progress: bool = False,
    warn: Callable[[str], None] = lambda message: None,
) -> list[tuple[Any, str]]:
    """``n`` images of ``prompt`` (``negative``, when not empty, replaces the empty prompt of
    guidance): ``(PIL image, caption)`` pairs enlarged :data:`SCALE` times."""
    values = sampling_values(guidance, steps, method, seed, n)
    _, prompt, _, images = sample_prompted(
        checkpoints, KIND, checkpoint, prompt, negative, values, values["n"], "pil", progress,
        warn,
    )  # fmt: skip
    return [(enlarged(im, SCALE), f"{prompt!r} #{i + 1}") for i, im in enumerate(images)]


def build_tab(gr, checkpoints: Checkpoints) -> None:
    """The tab's components and events (inside an open ``gr.Blocks``)."""
    with gr.Tab("Text to image", id="text2image"):
        gr.Markdown("Digits described in words, from a text-to-image diffusion model.")
        dropdown, _, _ = checkpoint_row(gr, checkpoints, KIND)
        prompt_in, negative_in = prompt_inputs(gr, "a thick seven")
        controls = sampler_controls(gr, guidance=3.0)
        button = gr.Button("generate", variant="primary")
        gallery = gr.Gallery(label="samples", columns=4, format="png", elem_id="t2i-gallery")
        connect_generate(
            gr, button, generate, checkpoints, [dropdown, prompt_in, negative_in, *controls],
            gallery, "text_to_image", warn=gr.Warning,
        )  # fmt: skip
