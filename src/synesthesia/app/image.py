"""The class-to-image tab: a class-conditional diffusion checkpoint (``synesthesia train image``,
``make demo``) drawn with classifier-free guidance into a gallery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synesthesia.app.common import (
    MAX_STEPS,
    Checkpoints,
    Kind,
    check_number,
    checkpoint_row,
    choice,
    enlarged,
    page_errors,
    seed_value,
    whole,
)
from synesthesia.errors import InputError

#: Samplers of the diffusion room (synesthesia.diffusion.METHODS, kept here: no torch at import).
METHODS = ("ddpm", "ddim", "dpmpp_2m", "euler", "heun")
#: Pixels per digit pixel in the gallery (28 x 28 digits are shown 112 x 112).
SCALE = 4
MAX_IMAGES = 64
#: Optimiser steps of "train a small one" (a tiny U-Net; about half a minute on 2 cores).
SMALL_STEPS = 300
DIGITS = tuple(str(d) for d in range(10))


def _load(folder: Path):
    from synesthesia.pipelines.image import ClassToImagePipeline

    return ClassToImagePipeline.from_pretrained(folder)


def _train_small(out: Path, steps: int | None, progress: bool) -> None:
    from synesthesia.data.images import load_image_splits
    from synesthesia.pipelines.image_train import ImageTrainOptions, train_class_to_image

    steps = steps or SMALL_STEPS
    train, _ = load_image_splits("mnist5k")
    options = ImageTrainOptions(
        out_dir=str(out),
        preset="tiny",
        max_steps=steps,
        batch_size=32,
        warmup_steps=max(1, min(20, steps // 5)),
        mixed_precision="fp32",
        progress=progress,
        pick_threads=False,
        log_every=max(1, steps // 10),
        checkpoint_every=steps,
    )
    train_class_to_image(train, options)


KIND = Kind("image", "class-to-image", _load, _train_small, "synesthesia train image")


def sampling_values(guidance: Any, steps: Any, method: Any, seed: Any, n: Any) -> dict:
    """The sampler settings every image-like tab takes, checked (InputError naming each)."""
    return {
        "guidance_scale": check_number(guidance, "guidance", 0.0, 100.0),
        "num_inference_steps": whole(steps, "steps", 1, MAX_STEPS),
        "method": choice(method, "sampler", METHODS),
        "seed": seed_value(seed),
        "n": whole(n, "number of images", 1, MAX_IMAGES),
    }


def generate(
    checkpoints: Checkpoints,
    checkpoint: str | None,
    digit: Any,
    guidance: Any = 2.0,
    steps: Any = 20,
    method: Any = "dpmpp_2m",
    seed: Any = 0,
    n: Any = 4,
    progress: bool = False,
) -> list[tuple[Any, str]]:
    """``n`` images of class ``digit`` from the chosen checkpoint: ``(PIL image, caption)``
    pairs, each enlarged :data:`SCALE` times. The same seed gives the same images."""
    import torch

    values = sampling_values(guidance, steps, method, seed, n)
    label = int(choice(str(digit), "class", DIGITS))
    pipe = checkpoints.load(KIND, checkpoint)
    if label >= pipe.num_classes:
        raise InputError(f"class {label}: this checkpoint has {pipe.num_classes} classes")
    images = pipe(
        [label] * values["n"],
        guidance_scale=values["guidance_scale"],
        num_inference_steps=values["num_inference_steps"],
        method=values["method"],
        generator=torch.Generator().manual_seed(values["seed"]),
        output_type="pil",
        progress=progress,
    )
    return [(enlarged(im, SCALE), f"class {label}, #{i + 1}") for i, im in enumerate(images)]


def sampler_controls(
    gr, guidance: float = 2.0, n_label: str = "number of images", n_value: int = 4, n_max: int = 16
):
    """The sliders and fields of a sampling tab: guidance, steps, sampler, seed, images."""
    with gr.Row():
        guidance_in = gr.Slider(0.0, 10.0, value=guidance, step=0.5, label="guidance scale")
        steps_in = gr.Slider(1, 100, value=20, step=1, label="sampler steps")
        method_in = gr.Dropdown(list(METHODS), value="dpmpp_2m", label="sampler")
    with gr.Row():
        seed_in = gr.Number(value=0, precision=0, minimum=0, label="seed")
        n_in = gr.Slider(1, n_max, value=n_value, step=1, label=n_label)
    return guidance_in, steps_in, method_in, seed_in, n_in


def build_tab(gr, checkpoints: Checkpoints) -> None:
    """The tab's components and events (inside an open ``gr.Blocks``)."""
    with gr.Tab("Class to image", id="image"):
        gr.Markdown("Digits of one class from a class-conditional diffusion model.")
        dropdown, _, _ = checkpoint_row(gr, checkpoints, KIND)
        digit_in = gr.Dropdown(list(DIGITS), value="7", label="class (digit)")
        controls = sampler_controls(gr)
        button = gr.Button("generate", variant="primary")
        gallery = gr.Gallery(label="samples", columns=4, format="png", elem_id="image-gallery")

        tracked = gr.Progress(track_tqdm=True)  # a fresh tracker per call (Gradio)

        @page_errors
        def run(checkpoint, digit, guidance, steps, method, seed, n, progress=tracked):
            return generate(
                checkpoints, checkpoint, digit, guidance, steps, method, seed, n, progress=True
            )

        button.click(
            run, inputs=[dropdown, digit_in, *controls], outputs=gallery, api_name="class_to_image"
        )
