"""Enhancement probe: the m-alternative model against its closed forms, the ML prediction's
properties, the speech noise at its stated SNR, and the probe on a tiny clip checkpoint."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from synesthesia.errors import InputError
from synesthesia.probes.enhancement import (
    checkpoint_model,
    enhancement_probe,
    mafc_accuracy,
    mafc_d_prime,
    ml_prediction,
    noisy_waveforms,
)

TINY = Path(__file__).parents[1] / "multimodal" / "data" / "clip_format1"


@pytest.mark.parametrize("d", [0.0, 0.5, 1.3, 3.0])
def test_two_alternatives_match_the_closed_form(d):
    # 2AFC: p(correct) = Phi(d' / sqrt 2) (Green & Swets 1966)
    assert mafc_accuracy(d, 2) == pytest.approx(norm.cdf(d / math.sqrt(2)), abs=1e-9)


def test_chance_and_inverse():
    assert mafc_accuracy(0.0, 10) == pytest.approx(0.1, abs=1e-9)
    for acc in (0.2, 0.5, 0.9, 0.99):
        assert mafc_accuracy(mafc_d_prime(acc, 10), 10) == pytest.approx(acc, abs=1e-7)
    assert mafc_d_prime(0.05, 10) == 0.0


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_the_ml_prediction_is_never_below_the_better_single_cue(a, b):
    assert ml_prediction(a, b, 10) >= max(a, b, 0.1) - 1e-6


def test_a_useless_cue_adds_nothing():
    assert ml_prediction(0.7, 0.1, 10) == pytest.approx(0.7, abs=1e-6)


def test_speech_noise_has_the_stated_snr():
    g = torch.Generator().manual_seed(0)
    w = torch.sin(torch.linspace(0, 400, 20_000))
    (noisy,) = noisy_waveforms([w], 5.0, g)
    snr = 10 * math.log10(float(w.pow(2).mean()) / float((noisy - w).pow(2).mean()))
    assert snr == pytest.approx(5.0, abs=0.1)  # 20,000 samples: the noise power within 2 %


def test_the_probe_runs_on_a_clip_checkpoint():
    model = checkpoint_model(TINY)
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(10).repeat(2)
    images = torch.rand((20, 1, 28, 28), generator=g) * 2 - 1
    waves = [torch.randn(4000, generator=g) * 0.1 for _ in range(20)]
    res = enhancement_probe(model, images, labels, waves, labels, 8000, (0.0, 1.0), (10.0, 0.0))
    assert res.combined.shape == (2, 2) and res.image.shape == (2,)
    for a in (res.image, res.speech, res.combined, res.predicted):
        assert np.all((a >= 0) & (a <= 1))
    assert np.all(res.predicted >= res.best_single() - 1e-6)
    assert set(res.to_dict()["inverse_effectiveness"]) == {"spearman_network", "spearman_ml"}


def test_a_checkpoint_of_another_kind_is_one_clear_error(tmp_path):
    (tmp_path / "config.json").write_text('{"kind": "image"}')
    with pytest.raises(InputError, match="needs a 'clip' checkpoint"):
        checkpoint_model(tmp_path)
