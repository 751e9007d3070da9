"""MLE cue combination against closed forms and brute-force numerical integration."""

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

from synesthesia.brain import (
    discrimination_threshold,
    fuse,
    fused_sigma,
    mle_weights,
    predicted_bimodal_threshold,
)


def test_two_cue_weights_and_variance_closed_form():
    w = mle_weights([1.0, 2.0])
    np.testing.assert_allclose(w, [0.8, 0.2], rtol=1e-15)
    assert fused_sigma([1.0, 2.0]) == pytest.approx(np.sqrt(4.0 / 5.0), rel=1e-15)


def test_three_cue_fusion_equals_normalised_likelihood_product():
    x = np.array([1.0, -0.5, 2.5])
    s = np.array([0.7, 1.3, 2.0])
    out = fuse(x, s)

    # brute force: the (flat-prior) posterior is the normalised product of the cue likelihoods
    def dens(v):
        return np.prod(norm.pdf(x, v, s))

    z = integrate.quad(dens, -20, 20, epsabs=1e-14, epsrel=1e-12)[0]
    mean = integrate.quad(lambda v: v * dens(v), -20, 20, epsabs=1e-14, epsrel=1e-12)[0] / z
    var = integrate.quad(lambda v: (v - mean) ** 2 * dens(v), -20, 20, epsrel=1e-12)[0] / z
    assert out.estimate == pytest.approx(mean, abs=1e-9)
    assert out.sigma == pytest.approx(np.sqrt(var), abs=1e-9)
    assert out.weights.sum() == pytest.approx(1.0)


def test_batched_fusion_and_thresholds():
    x = np.array([[0.0, 1.0], [2.0, 4.0]])
    out = fuse(x, [1.0, 1.0])
    np.testing.assert_allclose(out.estimate, [0.5, 3.0])
    # 84% point of a 2-interval task: sqrt(2) sigma Phi^-1(0.84) (~ sqrt(2) sigma)
    assert discrimination_threshold(1.0) == pytest.approx(np.sqrt(2) * norm.ppf(0.84))
    assert predicted_bimodal_threshold([3.0, 4.0]) == pytest.approx(2.4)


@pytest.mark.parametrize("bad", [[0.0, 1.0], [-1.0, 2.0], [np.nan, 1.0]])
def test_bad_sigmas_raise(bad):
    with pytest.raises(ValueError, match="sigmas"):
        fuse([0.0, 1.0], bad)
