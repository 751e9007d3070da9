"""The McGurk probe: mouth movies articulate as the docs say, the causal-inference speech fit
finds the model that made the counts, and the network probe gives counts the fits take."""

import numpy as np
import pytest
import torch

from synesthesia.brain.speech import SYLLABLES, McGurkModel
from synesthesia.data.speech import espeak_available
from synesthesia.probes.mcgurk import (
    McGurkConfig,
    audio_bank,
    fit_mcgurk_model,
    multinomial_nll,
    probe_mcgurk,
    render_mouth,
    train_syllable_net,
)

CLEAN = McGurkConfig(noise_v=0.0)


def _opening(frames: torch.Tensor, cfg: McGurkConfig) -> torch.Tensor:
    """Pixels of the open mouth (value 1.0) per frame: (B, frames)."""
    f = frames.reshape(frames.shape[0], cfg.video_frames, -1)
    return (f > 0.75).sum(-1)


def test_lips_close_for_ba_only_and_open_into_the_vowel():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(3).repeat_interleave(50)
    opening = _opening(render_mouth(y, CLEAN, g), CLEAN)
    first, last = opening[:, 0], opening[:, -1]
    ba, da, ga = (y == 0), (y == 1), (y == 2)
    assert (first[ba] == 0).all()  # bilabial closure: no opening at all
    assert (first[da] > 0).all() and (first[ga] > 0).all()
    # the velar ga opens a little wider than the alveolar da during the closure, on average
    assert first[ga].float().mean() > first[da].float().mean()
    assert (last > first).all()  # every syllable releases into the wider vowel


def test_mouth_movies_are_deterministic_per_seed():
    y = torch.tensor([0, 1, 2, 0])
    a = render_mouth(y, McGurkConfig(), torch.Generator().manual_seed(4))
    b = render_mouth(y, McGurkConfig(), torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and a.shape == (4, 6 * 12 * 12)


def test_the_speech_fit_recovers_the_model_that_made_the_counts():
    true = McGurkModel(p_common=0.5, sigma_category=0.4)
    n = 2000  # expected counts: the fit should reproduce the probabilities themselves
    probs = np.array([[true.probabilities(a, v, nodes=5) for v in SYLLABLES] for a in SYLLABLES])
    counts = n * probs
    fitted, nll = fit_mcgurk_model(counts, nodes=5, starts=1, maxiter=400)
    assert nll <= multinomial_nll(counts, probs) + 1.0
    got = np.array([[fitted.probabilities(a, v, nodes=5) for v in SYLLABLES] for a in SYLLABLES])
    assert np.abs(got - probs).max() < 0.03


@pytest.mark.skipif(not espeak_available(), reason="eSpeak NG is not installed")
def test_the_network_probe_gives_counts_and_fits(tmp_path):
    cfg = McGurkConfig(n_per=3, steps=20, batch=32, hidden=16)
    bank = audio_bank(cfg, cache_dir=tmp_path)
    assert len(bank.test_labels) == 3 and len(bank.train_labels) == 6
    trained = train_syllable_net(cfg, bank)
    probe = probe_mcgurk(trained, 1.0, n_per_pair=5, ci_starts=1, ci_maxiter=20)
    assert probe.counts.shape == (3, 3, 3) and (probe.counts.sum(-1) == 5).all()
    d = probe.to_dict()
    assert 0.0 <= d["rates"]["ba+ga->da"] <= 1.0
    assert d["flmp"]["nll"] >= d["saturated_nll"] - 1e-6
