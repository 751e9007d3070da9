"""Frechet distance against closed forms for Gaussians."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synesthesia.metrics import feature_frechet_distance, frechet_distance, gaussian_stats


def _random_cov(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def _psd_sqrt(m):
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def test_diagonal_gaussians_closed_form():
    # Commuting (diagonal) covariances: d^2 = |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(want, rel=1e-10)


def test_general_gaussians_match_symmetric_formula():
    # Tr((S1 S2)^1/2) = Tr((S1^1/2 S2 S1^1/2)^1/2), computed here by eigendecompositions only
    rng = np.random.default_rng(0)
    for d in (1, 2, 5):
        s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        r = _psd_sqrt(s1)
        want = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * _psd_sqrt(r @ s2 @ r))
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-8)
        assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)


def test_estimate_from_samples_converges():
    rng = np.random.default_rng(1)
    s1, s2 = _random_cov(rng, 3), _random_cov(rng, 3)
    mu2 = np.array([1.0, 0.0, -1.0])
    a = rng.multivariate_normal(np.zeros(3), s1, size=200_000)
    b = rng.multivariate_normal(mu2, s2, size=200_000)
    want = frechet_distance(np.zeros(3), s1, mu2, s2)
    got = feature_frechet_distance(torch.from_numpy(a).float(), b)
    assert got == pytest.approx(want, rel=0.02)


def test_singular_covariances_and_bad_shapes():
    # Rank-deficient covariances (fewer samples than dims) still give a finite number.
    rng = np.random.default_rng(2)
    f, g = rng.normal(size=(4, 10)), rng.normal(size=(4, 10))
    assert np.isfinite(feature_frechet_distance(f, g))
    mu, cov = gaussian_stats(f)
    assert mu.shape == (10,) and cov.shape == (10, 10)
    with pytest.raises(ValueError, match="shapes disagree"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_stats(np.zeros((1, 3)))
