"""Paradigms: flash-illusion trend, McGurk asymmetry, binding window, ventriloquist bias."""

import numpy as np
import pytest

from synesthesia.brain import (
    STANDARD_SOAS,
    McGurkModel,
    SimultaneityModel,
    fission_vs_visual_noise,
    fit_flmp,
    flash_illusion,
    flmp_probabilities,
    mcgurk_flmp_defaults,
    mcgurk_rates,
    ventriloquist,
)


def test_fission_illusion_grows_with_visual_noise():
    rates = fission_vs_visual_noise([0.2, 0.4, 0.6, 0.8, 1.0])
    assert np.all(np.diff(rates) > 0)
    assert rates[0] < 0.1 and rates[-1] > 0.4


def test_flash_probabilities_normalised_and_matched_by_monte_carlo():
    res = flash_illusion(n_per_condition=4000, seed=2)
    np.testing.assert_allclose(res.probabilities.sum(1), 1.0, atol=1e-12)
    t = res.trials
    _, idx = np.unique(t.stimuli, axis=0, return_inverse=True)
    for c in range(len(res.conditions)):
        r = t.responses[idx.reshape(-1) == c, 0]
        p_two = res.probabilities[c, 1]
        se = np.sqrt(p_two * (1 - p_two) / r.size) + 1e-9
        assert abs(np.mean(r == 2) - p_two) < 4 * se + 2e-3


def test_mcgurk_causal_inference_fuses_ba_ga_not_ga_ba():
    m = McGurkModel()
    table = m.table()
    rates = mcgurk_rates(table)
    assert rates["ba+ga->da"] > 0.3 and rates["ga+ba->da"] < 0.15
    assert rates["ba+ga->da"] > 3 * rates["ga+ba->da"]
    # congruent syllables are perceived as themselves
    for k, s in enumerate(m.syllables):
        assert table[(s, s)][k] > 0.9


def test_mcgurk_quadrature_matches_monte_carlo():
    m = McGurkModel()
    p = m.probabilities("ba", "ga")
    n = 100_000
    counts = np.bincount(m.simulate("ba", "ga", n, seed=5), minlength=3) / n
    assert np.all(np.abs(counts - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-4)


def test_flmp_relative_goodness_rule_and_fit():
    a, v = mcgurk_flmp_defaults()
    p = flmp_probabilities(a, v)
    # by hand: A-ba V-ga, "da": 0.3*0.7 / (0.9*0.05 + 0.3*0.7 + 0.05*0.9)
    assert p[0, 2, 1] == pytest.approx(0.21 / (0.045 + 0.21 + 0.045))
    assert p[0, 2, 1] > p[2, 0, 1]  # fusion only one way round
    # expected counts of the FLMP itself: the maximum-likelihood fit must return the generating
    # probabilities (independent reference: p by hand above), to the optimiser's precision
    counts = p * 2000
    fit = fit_flmp(counts)
    np.testing.assert_allclose(fit.probabilities(), p, atol=1e-6)
    assert fit.nll == pytest.approx(-(counts * np.log(p)).sum(), rel=1e-9)
    # a table the FLMP cannot produce (the reverse fusion as strong as McGurk's) fits worse
    bent = p.copy()
    bent[2, 0] = bent[0, 2]
    bad = fit_flmp(bent * 2000)
    assert bad.nll > -(bent * 2000 * np.log(bent)).sum() + 1.0


def test_simultaneity_closed_form_against_quadrature_and_monte_carlo():
    m = SimultaneityModel(lapse=0.04)
    s = np.array(STANDARD_SOAS, dtype=float)
    closed = m.p_simultaneous(s)
    np.testing.assert_allclose(closed, m.p_simultaneous_quadrature(s, 40001), atol=2e-4)
    n = 50_000
    mc = m.simulate(s, n, seed=1).mean(1)
    assert np.all(np.abs(mc - closed) < 4 * np.sqrt(closed * (1 - closed) / n) + 1e-4)
    lo, hi = m.window()
    assert lo < 0 < hi and m.p_simultaneous(lo) == pytest.approx(0.5, abs=1e-6)


def test_ventriloquist_bias_toward_vision_decreases_with_disparity():
    res = ventriloquist(n_per_condition=5)
    d, b = res.disparity, res.auditory_bias()
    mean_b = [np.nanmean(b[np.abs(d) == x]) for x in (5, 10, 15, 20)]
    assert all(x > 0 for x in mean_b)
    assert np.all(np.diff(mean_b) < 0)  # causal inference: large conflicts are not fused
    post = [np.mean(res.posterior_common[np.abs(d) == x]) for x in (0, 10, 20)]
    assert post[0] > post[1] > post[2]
