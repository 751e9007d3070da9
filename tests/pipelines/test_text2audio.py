"""TextToAudioPipeline: rate and length, conditioning, save/load, WAV files, bad prompts;
and the training recipe (a few steps, resumed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from audio_fixtures import tiny_audio_pipe  # noqa: E402

from synesthesia.data.spoken_digits import SpokenDigits  # noqa: E402
from synesthesia.errors import InputError  # noqa: E402
from synesthesia.pipelines.text2audio import (  # noqa: E402
    TextToAudioPipeline,
    plot_spectrogram,
    read_wav,
    save_wav,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("domain", ["mel", "wave"])
def test_clips_have_the_stated_rate_length_and_range(domain):
    pipe = tiny_audio_pipe(domain)
    clips = pipe("seven", num_inference_steps=2, generator=_gen(), num_images_per_prompt=3)
    assert isinstance(clips, np.ndarray) and clips.dtype == np.float32
    assert clips.shape == (3, 2000) and pipe.samples == 2000 and pipe.sample_rate == 8000
    assert np.abs(clips).max() <= 1.0 and np.isfinite(clips).all()
    pt = pipe("7", num_inference_steps=2, generator=_gen(), output_type="pt")
    assert isinstance(pt, torch.Tensor) and pt.shape == (1, 2000)


def test_the_prompt_changes_the_audio_and_a_seed_fixes_it():
    pipe = tiny_audio_pipe("wave")
    seven = pipe("seven", num_inference_steps=3, generator=_gen(), guidance_scale=1.0)
    three = pipe("three", num_inference_steps=3, generator=_gen(), guidance_scale=1.0)
    assert np.abs(seven - three).max() > 1e-4
    np.testing.assert_array_equal(
        seven, pipe("seven", num_inference_steps=3, generator=_gen(), guidance_scale=1.0)
    )


def test_a_batched_call_equals_one_call_per_clip():
    pipe = tiny_audio_pipe("wave")
    both = pipe(["seven", "two"], num_inference_steps=2, generator=[_gen(1), _gen(2)])
    one = pipe("two", num_inference_steps=2, generator=[_gen(2)])
    np.testing.assert_allclose(both[1:], one, rtol=0, atol=1e-5)


def test_save_and_load_give_identical_audio(tmp_path):
    pipe = tiny_audio_pipe("mel")
    pipe.save_pretrained(tmp_path / "pipe")
    again = TextToAudioPipeline.from_pretrained(tmp_path / "pipe", precision="fp32")
    assert again.domain == pipe.domain and again.sample_rate == 8000
    a = pipe("four", num_inference_steps=2, generator=_gen(5))
    b = again("four", num_inference_steps=2, generator=_gen(5))
    np.testing.assert_array_equal(a, b)


def test_wav_files_read_back_within_16_bit_rounding(tmp_path):
    x = np.sin(np.linspace(0, 300, 2000)).astype(np.float32) * 0.999
    x[0], x[1] = 1.0, -1.0
    path = save_wav(tmp_path / "clip.wav", x, 8000)
    back, rate = read_wav(path)
    assert rate == 8000 and back.shape == x.shape
    # written as round(32767 x), read as k / 32768: |error| <= 1/32768 (scale) + 1/65536 (round)
    assert np.abs(back - x).max() <= 1.5 / 32768 + 1e-9


def test_spectrogram_figure_takes_and_returns_ax():
    fig, ax = plt.subplots()
    clip = np.sin(np.linspace(0, 2000, 8000)).astype(np.float32)
    assert plot_spectrogram(clip, 8000, ax=ax, title="a tone") is ax
    assert ax.get_xlabel() == "time (s)" and ax.images
    plt.close(fig)


@pytest.mark.parametrize(
    ("prompt", "fragment"),
    [
        ("seventy", "'seventy' not in the model's vocabulary"),
        ("the word", "must name one digit"),
        ("seven three", "must name one digit"),
        (7, "must be a string"),
        ([], "empty list"),
    ],
)
def test_bad_prompts_give_one_clear_error(prompt, fragment):
    pipe = tiny_audio_pipe("wave")
    with pytest.raises(InputError, match=fragment):
        pipe(prompt, num_inference_steps=1)


def test_bad_call_options_give_one_clear_error():
    pipe = tiny_audio_pipe("wave")
    with pytest.raises(InputError, match="output_type"):
        pipe("seven", output_type="pil")
    with pytest.raises(InputError, match="negative_prompt"):
        pipe("seven", negative_prompt="loud", num_inference_steps=1)
    with pytest.raises(InputError, match="num_inference_steps"):
        pipe("seven", num_inference_steps=0)


def _toy_clips(n: int = 20) -> SpokenDigits:
    t = torch.arange(2000) / 8000
    labels = torch.arange(n) % 10
    waves = torch.stack([0.3 * torch.sin(2 * torch.pi * (300 + 100 * int(d)) * t) for d in labels])
    return SpokenDigits(waves, labels, ["toy"] * n, ["toy"] * n, 8000, "toy")


def test_training_writes_a_loadable_checkpoint_and_resumes(tmp_path):
    from synesthesia.pipelines.text2audio_train import (
        AudioRecipe,
        AudioTrainOptions,
        train_text_to_audio,
    )

    opts = AudioTrainOptions(
        out_dir=str(tmp_path / "run"), preset="tiny", max_steps=2, batch_size=8, progress=False,
        text_dim=16, text_depth=1, recipe=AudioRecipe(domain="wave"), log_every=1,
    )  # fmt: skip
    pipe, result, _ = train_text_to_audio(_toy_clips(), opts)
    assert result.step == 2 and result.complete
    loaded = TextToAudioPipeline.from_pretrained(tmp_path / "run" / "checkpoint")
    assert loaded.extra["recipe"]["domain"] == "wave" and loaded.samples == 2000
    opts.max_steps = 3
    _, again, _ = train_text_to_audio(_toy_clips(), opts, resume=True)
    assert again.step == 3
