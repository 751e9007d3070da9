"""Causal inference: closed forms against brute-force float64 integration; quadrature vs MC."""

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.stats import norm

from synesthesia.brain import CausalInference, continuous_density, koerding_observer
from synesthesia.brain.quadrature import Report

PARAMS = {"sigma_p": 12.3, "mu_p": 1.5, "p_common": 0.28}


def _brute_common(x, sigmas, sp, mp):
    f = lambda s: np.prod(norm.pdf(x, s, sigmas)) * norm.pdf(s, mp, sp)  # noqa: E731
    return integrate.quad(f, -200, 200, epsabs=0, epsrel=1e-12, limit=400, points=[mp, *x])[0]


def _brute_separate(x, sigmas, sp, mp):
    out = 1.0
    for xi, si in zip(x, sigmas):
        f = lambda s, xi=xi, si=si: norm.pdf(xi, s, si) * norm.pdf(s, mp, sp)  # noqa: E731
        out *= integrate.quad(f, -200, 200, epsabs=0, epsrel=1e-12, points=[mp, xi])[0]
    return out


@pytest.mark.parametrize("sigmas", [(2.14, 9.2), (1.0, 3.0, 6.0)])
@pytest.mark.parametrize("x", [(0.0, 4.0, -3.0), (-12.0, 7.5, 20.0)])
def test_likelihoods_and_posterior_match_numerical_integration(sigmas, x):
    x = np.array(x[: len(sigmas)])
    m = CausalInference(sigmas=list(sigmas), **PARAMS)
    l1 = _brute_common(x, np.array(sigmas), PARAMS["sigma_p"], PARAMS["mu_p"])
    l2 = _brute_separate(x, np.array(sigmas), PARAMS["sigma_p"], PARAMS["mu_p"])
    assert m.log_likelihood_common(x) == pytest.approx(np.log(l1), abs=1e-9)
    assert m.log_likelihood_separate(x) == pytest.approx(np.log(l2), abs=1e-9)
    pc = PARAMS["p_common"]
    post = pc * l1 / (pc * l1 + (1 - pc) * l2)
    assert m.posterior_common(x) == pytest.approx(post, abs=1e-9)


def test_averaging_estimate_is_the_posterior_mean_under_the_mixture():
    x = np.array([3.0, -6.0])
    sig = np.array([2.14, 9.2])
    sp, mp, pc = 12.3, 1.5, 0.28
    m = CausalInference(*sig, sp, mp, pc)
    lim = dict(epsabs=0, epsrel=1e-12, limit=400)
    # E[s_v | x] = [pc * int s p(x,s|C1) ds + (1-pc) int s_v p(x_v,s_v) ds_v * p(x_a)] / p(x)
    c1 = lambda s: s * np.prod(norm.pdf(x, s, sig)) * norm.pdf(s, mp, sp)  # noqa: E731
    num1 = integrate.quad(c1, -200, 200, **lim)[0]
    sv = lambda s: s * norm.pdf(x[0], s, sig[0]) * norm.pdf(s, mp, sp)  # noqa: E731
    pa = integrate.quad(lambda s: norm.pdf(x[1], s, sig[1]) * norm.pdf(s, mp, sp), -200, 200, **lim)
    num2 = integrate.quad(sv, -200, 200, **lim)[0] * pa[0]
    l1 = _brute_common(x, sig, sp, mp)
    l2 = _brute_separate(x, sig, sp, mp)
    expected = (pc * num1 + (1 - pc) * num2) / (pc * l1 + (1 - pc) * l2)
    assert m.estimate(x, "averaging")[0] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("x", [(3.0, -6.0), (1.0, 8.0), (0.0, 30.0)])
@pytest.mark.parametrize("criterion", [0.2, 0.5, 0.8])
def test_selection_picks_the_estimate_the_brute_force_posterior_decides(x, criterion):
    x = np.array(x)
    sig, sp, mp, pc = np.array([2.14, 9.2]), 12.3, 1.5, 0.28
    m = CausalInference(*sig, sp, mp, pc)
    l1, l2 = _brute_common(x, sig, sp, mp), _brute_separate(x, sig, sp, mp)
    post = pc * l1 / (pc * l1 + (1 - pc) * l2)
    # the independent estimates: posterior means by integration under each structure
    lim = dict(epsabs=0, epsrel=1e-12, limit=400)
    c1 = lambda s: s * np.prod(norm.pdf(x, s, sig)) * norm.pdf(s, mp, sp)  # noqa: E731
    common = integrate.quad(c1, -200, 200, **lim)[0] / l1
    sv = lambda s: s * norm.pdf(x[0], s, sig[0]) * norm.pdf(s, mp, sp)  # noqa: E731
    zv = integrate.quad(lambda s: norm.pdf(x[0], s, sig[0]) * norm.pdf(s, mp, sp), -200, 200)[0]
    separate = integrate.quad(sv, -200, 200, **lim)[0] / zv
    expected = common if post > criterion else separate
    assert abs(common - separate) > 0.05  # the two candidates differ: the test can tell
    assert m.estimate(x, "selection", criterion=criterion)[0] == pytest.approx(expected, abs=1e-9)


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="sigmas"):
        CausalInference(-1.0, 2.0)
    with pytest.raises(ValueError, match="p_common"):
        CausalInference(1.0, 2.0, p_common=1.5)
    with pytest.raises(ValueError, match="sigma_motor"):
        CausalInference(1.0, 2.0, sigma_motor=-0.1)


def _mc_table(m, cond, levels, strategy, n, seed):
    sim = m.simulate(cond, n, strategy, torch.Generator().manual_seed(seed), levels=levels)
    idx = np.abs(sim["responses"][..., None] - levels).argmin(-1)
    u = sim["unity"].astype(int)
    counts = np.zeros((len(cond), len(levels), len(levels), 2))
    for c in range(len(cond)):
        np.add.at(counts[c], (idx[c, :, 0], idx[c, :, 1], u[c]), 1)
    return counts / n


@pytest.mark.parametrize(
    "strategy,lapse,motor,nps",
    [("averaging", 0.0, 0.0, 6), ("selection", 0.0, 0.0, 6), ("matching", 0.05, 1.5, 4)],
)
def test_quadrature_response_probabilities_agree_with_monte_carlo(strategy, lapse, motor, nps):
    m = koerding_observer(lapse=lapse, sigma_motor=motor)
    levels = np.array([-10.0, -5.0, 0.0, 5.0, 10.0])
    cond = np.array([[-10.0, 10.0], [0.0, 5.0], [5.0, -10.0], [10.0, 10.0]])
    # one fixed grid (tol=None): the refinement to a tolerance is tested in test_quadrature.py
    p = m.response_probabilities(cond, levels, strategy, unity=True, nodes_per_sigma=nps, tol=None)
    assert p.shape == (4, 5, 5, 2)
    np.testing.assert_allclose(p.sum((1, 2, 3)), 1.0, atol=1e-12)
    n = 40_000
    mc = _mc_table(m, cond, levels, strategy, n, seed=3)
    big = p > 1e-3  # the normal approximation of a count needs n p >> 1
    z = np.abs(mc - p)[big] / np.sqrt(p * (1 - p) / n)[big]
    assert z.max() < 4.0, f"max z {z.max():.2f}"
    assert np.mean(z < 2) > 0.8  # ~95% expected; cells of one condition are correlated
    # the rare cells together: their total mass agrees too
    assert abs(mc[~big].sum() - p[~big].sum()) < 4 * np.sqrt(p[~big].sum() / n) + 1e-4


def test_continuous_density_is_normalised_and_matches_monte_carlo_mean():
    m = koerding_observer(sigma_motor=1.0)
    rep = Report(modalities=(1,), kind="continuous")
    r = np.linspace(-60, 60, 1201)
    stim = np.tile([[-5.0, 10.0]], (r.size, 1))
    dens = continuous_density(m, stim, r[:, None], rep, "averaging").numpy()
    assert np.trapezoid(dens, r) == pytest.approx(1.0, abs=1e-4)
    mean = np.trapezoid(r * dens, r)
    sim = m.simulate(
        np.array([[-5.0, 10.0]]), 100_000, "averaging", torch.Generator().manual_seed(0)
    )
    ra = sim["responses"][0, :, 1]
    assert mean == pytest.approx(ra.mean(), abs=4 * ra.std() / np.sqrt(ra.size))
