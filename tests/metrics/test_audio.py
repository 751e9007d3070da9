"""The SC09 scores against hand computations, and the spoken-digit classifier's plumbing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from audio_fixtures import fake_fsdd

from synesthesia.data.spoken_digits import fsdd_digits
from synesthesia.errors import InputError, MissingInputError
from synesthesia.metrics.audio import (
    am_score,
    classify,
    get_speech_classifier,
    inception_score,
    load_speech_classifier,
    modified_inception_score,
    score_clips,
    score_generator,
    split_reference,
    train_speech_classifier,
)
from synesthesia.metrics.fid import feature_frechet_distance


def _kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)


def test_inception_score_by_hand():
    # rows [1, 0] and [1/2, 1/2]: marginal [3/4, 1/4]
    # KL1 = log(4/3); KL2 = 1/2 log(2/3) + 1/2 log 2; IS = exp((KL1 + KL2) / 2)
    expected = math.exp((math.log(4 / 3) + 0.5 * math.log(2 / 3) + 0.5 * math.log(2)) / 2)
    assert inception_score([[1.0, 0.0], [0.5, 0.5]]) == pytest.approx(expected, rel=1e-12)
    assert inception_score(np.eye(10)) == pytest.approx(10.0)  # confident and balanced
    assert inception_score(np.full((5, 10), 0.1)) == pytest.approx(1.0)  # no confidence
    assert inception_score(np.tile(np.eye(10)[3], (7, 1))) == pytest.approx(1.0)  # one class


def test_modified_inception_score_by_hand():
    p = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]
    pairs = [_kl(p[i], p[j]) for i in range(3) for j in range(3) if i != j]
    assert modified_inception_score(p) == pytest.approx(math.exp(sum(pairs) / 6), rel=1e-12)
    assert modified_inception_score(np.tile([0.2, 0.8], (4, 1))) == pytest.approx(1.0)


def test_am_score_by_hand():
    # reference marginal [1/2, 1/2]; both rows [0.9, 0.1]
    kl = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    entropy = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert am_score([[0.9, 0.1], [0.9, 0.1]], [0.5, 0.5]) == pytest.approx(kl + entropy)
    assert am_score(np.eye(10), np.full(10, 0.1)) == pytest.approx(0.0, abs=1e-9)


def test_scores_refuse_tables_that_are_not_probabilities():
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score([[0.5, 0.6]])
    with pytest.raises(ValueError, match="at least 2"):
        modified_inception_score([[1.0, 0.0]])


def test_reference_halves_are_disjoint_and_balanced(tmp_path):
    val = fsdd_digits(fake_fsdd(tmp_path / "f", per_digit=4))["val"]
    a, b = split_reference(val)
    assert len(a) == len(b) == 20
    assert torch.bincount(a.labels, minlength=10).tolist() == [2] * 10
    assert not set(map(tuple, a.waveforms.tolist())) & set(map(tuple, b.waveforms.tolist()))


def test_classifier_trains_saves_loads_and_scores(tmp_path):
    splits = fsdd_digits(fake_fsdd(tmp_path / "f"))
    model, config = train_speech_classifier(
        splits["train"], splits["val"], tmp_path / "clf", steps=3, batch_size=16, progress=False
    )
    assert config["test_speakers"] == ["nicolas"] and "nicolas" not in config["train_speakers"]
    assert sum(config["train_marginal"]) == pytest.approx(1.0, abs=1e-5)
    again, _ = load_speech_classifier(tmp_path / "clf")
    x = splits["val"].waveforms
    torch.testing.assert_close(classify(model, x, 8000)[0], classify(again, x, 8000)[0])
    scores = score_clips(model, x, splits["val"].labels, 8000, x, np.full(10, 0.1))
    assert scores["frechet_distance"] == pytest.approx(0.0, abs=1e-3)  # against itself
    assert 1.0 <= scores["inception_score"] <= 10.0


def test_the_classifier_needs_the_fsdd_folder(tmp_path):
    with pytest.raises(InputError, match="--fsdd"):
        get_speech_classifier(None)
    with pytest.raises(MissingInputError, match="nope"):
        get_speech_classifier(tmp_path / "nope")


def test_a_generator_that_returns_real_held_out_clips_scores_as_the_ceiling(tmp_path):
    """SC09 protocol (SaShiMi's evaluation): both Frechet distances are to the real training
    clips; a "generator" handing back the ceiling's own held-out clips scores exactly as they
    do (fd_ratio 1), and its distance is the one computed by hand against the training set."""
    splits = fsdd_digits(fake_fsdd(tmp_path / "f", per_digit=6))
    train, val = splits["train"], splits["val"]
    model, config = train_speech_classifier(
        train, val, tmp_path / "clf", steps=3, batch_size=16, progress=False
    )
    per_digit = 4

    def generate(prompts, generator):
        from synesthesia.data.captions import NUMBER_WORDS

        taken = {d: 0 for d in range(10)}
        clips = []
        for word in prompts:
            d = NUMBER_WORDS.index(word)
            clips.append(val.waveforms[torch.nonzero(val.labels == d).flatten()[taken[d]]])
            taken[d] += 1
        return torch.stack(clips).numpy()

    s = score_generator(generate, model, config, val, 8000, per_digit, reference=train)
    gen, real = s["generated"], s["real"]
    assert real["num_clips"] == gen["num_clips"] == 10 * per_digit
    for key in ("accuracy", "inception_score", "am_score", "frechet_distance"):
        assert gen[key] == pytest.approx(real[key], rel=1e-6, abs=1e-9), key
    assert s["fd_ratio"] == pytest.approx(1.0, rel=1e-6)
    clips = torch.as_tensor(generate(_words(per_digit), None))
    by_hand = feature_frechet_distance(
        classify(model, clips, 8000)[1], classify(model, train.waveforms, 8000)[1]
    )
    assert gen["frechet_distance"] == pytest.approx(by_hand, rel=1e-9)
    assert s["reference_clips"] == len(train)
    with pytest.raises(InputError, match="held-out clips are 8000 Hz"):
        score_generator(generate, model, config, val, 16000, per_digit, reference=train)


def _words(per_digit: int) -> list[str]:
    from synesthesia.data.captions import NUMBER_WORDS

    return [NUMBER_WORDS[d] for d in range(10) for _ in range(per_digit)]
