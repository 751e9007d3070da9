"""The video tab: a prompt ("a 3 moving left") through a text-to-video checkpoint
(``synesthesia train video``) into a GIF that plays in the page."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

from synesthesia.app.common import Checkpoints, Kind, checkpoint_row, whole
from synesthesia.app.image import sampler_controls, sampling_values
from synesthesia.app.text2image import connect_generate, prompt_inputs, sample_prompted

#: Optimiser steps of "train a small one" (a tiny space-time U-Net, 6 frames of 32 x 32).
SMALL_STEPS = 200
MAX_VIDEOS = 16
_OUT = {"dir": None}


def output_dir() -> Path:
    """The app's folder for the files it shows (GIFs), made once per process."""
    if _OUT["dir"] is None:
        _OUT["dir"] = Path(tempfile.mkdtemp(prefix="synesthesia-app-"))
    return _OUT["dir"]


def _load(folder: Path):
    from synesthesia.pipelines.text2video import TextToVideoPipeline

    return TextToVideoPipeline.from_pretrained(folder)


def _train_small(out: Path, steps: int | None, progress: bool) -> None:
    from synesthesia.data.images import load_image_splits
    from synesthesia.pipelines.text2video_train import (
        VideoRecipe,
        VideoTrainOptions,
        train_text_to_video,
    )

    steps = steps or SMALL_STEPS
    train, _ = load_image_splits("mnist5k")
    options = VideoTrainOptions(
        out_dir=str(out),
        preset="tiny",
        max_steps=steps,
        batch_size=8,
        warmup_steps=max(1, min(20, steps // 5)),
        precision="fp32",
        progress=progress,
        pick_threads=False,
        recipe=VideoRecipe(canvas=32, frames=6),
        text_dim=16,
        text_depth=1,
        log_every=max(1, steps // 10),
        checkpoint_every=steps,
    )
    train_text_to_video(train, options)


KIND = Kind("text2video", "text-to-video", _load, _train_small, "synesthesia train video")


def generate(
    checkpoints: Checkpoints,
    checkpoint: str | None,
    prompt: Any,
    negative: Any = "",
    guidance: Any = 3.0,
    steps: Any = 20,
    method: Any = "dpmpp_2m",
    seed: Any = 0,
    n: Any = 1,
    progress: bool = False,
    warn=lambda message: None,
) -> str:
    """A GIF of ``n`` videos of ``prompt`` side by side (frame k shows every video's frame
    k); returns its path. The same settings give the same file."""
    from synesthesia.pipelines.text2video import save_videos_gif

    values = sampling_values(guidance, steps, method, seed, 1)
    n = whole(n, "number of videos", 1, MAX_VIDEOS)
    _, prompt, negative, videos = sample_prompted(
        checkpoints, KIND, checkpoint, prompt, negative, values, n, "pt", progress, warn
    )
    key = repr((checkpoint, prompt, negative, sorted(values.items()), n)).encode()
    path = output_dir() / f"video-{hashlib.sha256(key).hexdigest()[:16]}.gif"
    return str(save_videos_gif(videos, path))


def build_tab(gr, checkpoints: Checkpoints) -> None:
    """The tab's components and events (inside an open ``gr.Blocks``)."""
    with gr.Tab("Video", id="video"):
        gr.Markdown("Moving digits from a prompt such as *a 3 moving left* (a looping GIF).")
        dropdown, _, _ = checkpoint_row(gr, checkpoints, KIND)
        prompt_in, negative_in = prompt_inputs(gr, "a 3 moving left")
        controls = sampler_controls(
            gr, guidance=3.0, n_label="number of videos", n_value=1, n_max=4
        )
        button = gr.Button("generate", variant="primary")
        gif = gr.Image(label="video (GIF)", type="filepath", elem_id="video-gif")
        connect_generate(
            gr, button, generate, checkpoints, [dropdown, prompt_in, negative_in, *controls],
            gif, "text_to_video", warn=gr.Warning,
        )  # fmt: skip
