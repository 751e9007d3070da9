"""Frechet distance between Gaussians fitted to features (FID, here in a classifier's features)."""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch


def gaussian_stats(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64."""
    f = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features)
    f = f.astype(np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be (N >= 2, D), got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))  (Dowson & Landau 1982; the FID of
    Heusel et al. 2017, sec. 3). The square root is scipy's ``sqrtm``; a singular product is
    regularised with ``eps * I`` as in the reference FID implementation.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"shapes disagree: mu1 {mu1.shape}, mu2 {mu2.shape}, sigma1 {s1.shape}, "
            f"sigma2 {s2.shape}"
        )
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = eps * np.eye(s1.shape[0])
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = np.real(covmean)  # tiny imaginary parts come from round-off
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def feature_frechet_distance(
    features: torch.Tensor | np.ndarray, reference: torch.Tensor | np.ndarray
) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D) and (M, D)."""
    return frechet_distance(*gaussian_stats(features), *gaussian_stats(reference))
