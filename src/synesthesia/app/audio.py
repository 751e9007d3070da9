"""The audio tab: a spoken-digit prompt ("seven") through a text-to-audio checkpoint
(``synesthesia train audio``) into a playable clip and its spectrogram."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synesthesia.app.common import Checkpoints, Kind, checkpoint_row, figure, to_image, whole
from synesthesia.app.image import sampler_controls, sampling_values
from synesthesia.app.text2image import connect_generate, prompt_inputs, sample_prompted

#: Optimiser steps of "train a small one" (a tiny 1-D U-Net on synthesised digits).
SMALL_STEPS = 200
#: eSpeak NG clips synthesised for the small model (ten per digit).
SMALL_CLIPS = 100
MAX_CLIPS = 8
#: Seconds of silence between the clips of one call in the player.
GAP_S = 0.25


def _load(folder: Path):
    from synesthesia.pipelines.text2audio import TextToAudioPipeline

    return TextToAudioPipeline.from_pretrained(folder)


def _train_small(out: Path, steps: int | None, progress: bool) -> None:
    from synesthesia.pipelines.text2audio_train import (
        AudioRecipe,
        AudioTrainOptions,
        train_text_to_audio,
        training_clips,
    )

    steps = steps or SMALL_STEPS
    train = training_clips(None, SMALL_CLIPS, 0, progress)
    options = AudioTrainOptions(
        out_dir=str(out),
        preset="tiny",
        max_steps=steps,
        batch_size=16,
        warmup_steps=max(1, min(20, steps // 5)),
        precision="fp32",
        progress=progress,
        pick_threads=False,
        recipe=AudioRecipe(domain="mel"),
        text_dim=16,
        text_depth=1,
        n_espeak=SMALL_CLIPS,
        log_every=max(1, steps // 10),
        checkpoint_every=steps,
    )
    train_text_to_audio(train, options)


KIND = Kind("text2audio", "text-to-audio", _load, _train_small, "synesthesia train audio")


def generate(
    checkpoints: Checkpoints,
    checkpoint: str | None,
    prompt: Any,
    negative: Any = "",
    guidance: Any = 2.0,
    steps: Any = 20,
    method: Any = "dpmpp_2m",
    seed: Any = 0,
    n: Any = 1,
    progress: bool = False,
):
    """``((sample rate, int16 samples), spectrogram image)``: ``n`` clips of ``prompt`` one
    after another (:data:`GAP_S` s apart) and the log-mel spectrogram of each."""
    import numpy as np

    from synesthesia.pipelines.text2audio import plot_spectrogram

    values = sampling_values(guidance, steps, method, seed, 1)
    n = whole(n, "number of clips", 1, MAX_CLIPS)
    pipe, prompt, _, clips = sample_prompted(
        checkpoints, KIND, checkpoint, prompt, negative, values, n, "np", progress
    )
    rate = pipe.sample_rate
    if not np.isfinite(clips).all():
        raise ValueError("the clips are not finite")
    fig, axes = figure(ncols=min(n, 4), nrows=-(-n // 4), width=3.2, height=2.6)
    for i, (clip, ax) in enumerate(zip(clips, axes)):
        plot_spectrogram(clip, rate, ax=ax, domain=pipe.domain, title=f"{prompt} #{i + 1}")
    for ax in axes[n:]:
        ax.axis("off")
    gap = np.zeros(int(GAP_S * rate), dtype=np.float32)
    joined = np.concatenate([part for clip in clips for part in (clip, gap)][:-1])
    pcm = np.round(np.clip(joined, -1.0, 1.0) * 32767).astype(np.int16)
    return (rate, pcm), to_image(fig)


def build_tab(gr, checkpoints: Checkpoints) -> None:
    """The tab's components and events (inside an open ``gr.Blocks``)."""
    with gr.Tab("Audio", id="audio"):
        gr.Markdown("Spoken digits from a prompt naming one digit (*seven*, *7*).")
        dropdown, _, _ = checkpoint_row(gr, checkpoints, KIND)
        prompt_in, negative_in = prompt_inputs(gr, "seven")
        controls = sampler_controls(gr, guidance=2.0, n_label="number of clips", n_value=1, n_max=4)
        button = gr.Button("generate", variant="primary")
        with gr.Row():
            player = gr.Audio(label="clips", type="numpy", format="wav", elem_id="audio-player")
            spectrogram = gr.Image(label="log-mel spectrogram", format="png", elem_id="audio-mel")

        connect_generate(
            gr, button, generate, checkpoints, [dropdown, prompt_in, negative_in, *controls],
            [player, spectrogram], "text_to_audio",
        )  # fmt: skip
