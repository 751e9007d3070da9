"""Spoken digits at a fixed length and loudness, with held-out voices and speakers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from audio_fixtures import REAL_FSDD, fake_fsdd

from synesthesia.data.speech import voice_split
from synesthesia.data.spoken_digits import (
    AUDIO_TEMPLATES,
    ClipConfig,
    audio_caption,
    audio_vocabulary,
    espeak_digits,
    fsdd_digits,
    normalize_loudness,
    prompt_digits,
    shape_clip,
    spoken_digits,
)
from synesthesia.errors import InputError, MissingInputError


def test_loudness_reaches_the_target_rms_and_respects_the_peak():
    rng = np.random.default_rng(0)
    x = 0.01 * rng.standard_normal(4000)
    y = normalize_loudness(x, target_dbfs=-20.0, peak=0.95)
    assert 20 * math.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2))) == pytest.approx(
        -20, abs=1e-4
    )
    spiky = np.zeros(4000)
    spiky[100] = 1.0  # RMS -36 dBFS: reaching -20 dBFS would put the peak at 6.3
    z = normalize_loudness(spiky, -20.0, 0.95)
    assert np.abs(z).max() == pytest.approx(0.95, rel=1e-6)


def test_a_clip_is_trimmed_and_centred_in_one_second_at_8khz():
    rate = 16_000
    t = np.arange(rate // 4) / rate
    burst = np.concatenate([np.sin(2 * np.pi * 440 * t), np.zeros(rate)])  # sound, then silence
    clip = shape_clip(torch.from_numpy(burst.astype(np.float32)), rate, ClipConfig())
    assert clip.shape == (8000,)
    energy = clip.double() ** 2
    centre = float((energy * torch.arange(8000)).sum() / energy.sum())
    # the burst sits in the middle, up to the trim rule keeping part of a 256-sample frame of
    # silence after it (half of it moves the centre: 128 samples)
    assert centre == pytest.approx(4000, abs=130)
    long = shape_clip(torch.ones(3 * rate) * 0.1, rate, ClipConfig())
    assert long.shape == (8000,)


def test_fsdd_held_out_speaker_is_only_in_val(tmp_path):
    splits = fsdd_digits(fake_fsdd(tmp_path / "fsdd"))
    assert set(splits["val"].speakers) == {"nicolas"}
    assert "nicolas" not in set(splits["train"].speakers)
    assert splits["train"].waveforms.shape == (60, 8000)
    assert splits["val"].held_out == {"fsdd": ["nicolas"]}
    assert float(splits["train"].waveforms.abs().max()) <= 0.95 + 1e-6
    with pytest.raises(InputError, match="not in"):
        fsdd_digits(tmp_path / "fsdd", val_speakers=["nobody"])


@pytest.mark.skipif(not REAL_FSDD.is_dir(), reason="the FSDD recordings are not here")
def test_real_fsdd_splits():
    splits = fsdd_digits(REAL_FSDD)
    assert len(splits["val"]) == 500 and len(splits["train"]) == 1500


def test_espeak_held_out_voices_are_only_in_val(tmp_path):
    splits = espeak_digits(20, cache_dir=tmp_path)
    assert {voice_split(v) for v in splits["train"].speakers} == {"train"}
    assert {voice_split(v) for v in splits["val"].speakers} <= {"val"}
    assert len(splits["train"]) + len(splits["val"]) == 20
    assert splits["train"].waveforms.shape[1] == 8000


def test_sources_are_joined_and_a_missing_fsdd_folder_is_named(tmp_path):
    both = spoken_digits(("fsdd", "espeak"), fake_fsdd(tmp_path / "f"), 20, cache_dir=tmp_path)
    assert set(both["train"].sources) == {"fsdd", "espeak"}
    with pytest.raises(MissingInputError, match="nope"):
        spoken_digits(("fsdd",), tmp_path / "nope")
    with pytest.raises(InputError, match="--fsdd"):
        spoken_digits(("fsdd",), None)
    with pytest.raises(InputError, match="sources"):
        spoken_digits(("radio",))


def test_prompts_name_their_digit():
    assert prompt_digits("the word three") == [3]
    assert prompt_digits("7") == [7]
    assert prompt_digits("say nothing") == []
    vocabulary = set(audio_vocabulary())
    for d in range(10):
        for k in range(len(AUDIO_TEMPLATES)):
            caption = audio_caption(d, k)
            assert prompt_digits(caption) == [d], caption
    assert {"seven", "7", "word", "spoken"} <= vocabulary
