"""Supervised baselines for zero-shot numbers: a linear probe and raw-pixel logistic regression.

A linear probe fits multinomial logistic regression (scikit-learn, L-BFGS) on frozen embeddings;
the raw-pixel baseline fits the same model on the flattened pixels. Zero-shot accuracy, which uses
no labelled images at all, is only interesting when it beats the raw-pixel baseline.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_2d(x: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim < 2:
        raise ValueError(f"{name} must be N x features (or N x C x H x W), got shape {arr.shape}")
    return arr.reshape(arr.shape[0], -1).astype(np.float64)


def logistic_regression_accuracy(
    train_x: torch.Tensor | np.ndarray,
    train_y: torch.Tensor | np.ndarray,
    test_x: torch.Tensor | np.ndarray,
    test_y: torch.Tensor | np.ndarray,
    c: float = 1.0,
    max_iter: int = 1000,
    standardize: bool = True,
) -> float:
    """Test accuracy of multinomial logistic regression fit on ``(train_x, train_y)``.

    Inputs of any shape ``N x ...`` are flattened; ``standardize`` scales each feature to zero mean
    and unit variance on the training set. ``c`` is the inverse L2 strength (scikit-learn's C).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, xte = _as_2d(train_x, "train_x"), _as_2d(test_x, "test_x")
    ytr = np.asarray(torch.as_tensor(train_y).cpu()).ravel()
    yte = np.asarray(torch.as_tensor(test_y).cpu()).ravel()
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError(
            f"features and labels differ in length: train {len(xtr)} vs {len(ytr)}, "
            f"test {len(xte)} vs {len(yte)}"
        )
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"train has {xtr.shape[1]} features, test {xte.shape[1]}")
    steps = [StandardScaler()] if standardize else []
    clf = make_pipeline(*steps, LogisticRegression(C=c, max_iter=max_iter))
    clf.fit(xtr, ytr)
    return float((clf.predict(xte) == yte).mean())


def linear_probe_accuracy(
    train_embeddings: torch.Tensor,
    train_labels: torch.Tensor,
    test_embeddings: torch.Tensor,
    test_labels: torch.Tensor,
    c: float = 1.0,
) -> float:
    """Linear-probe accuracy: logistic regression on frozen embeddings (CLIP, section 3.2)."""
    return logistic_regression_accuracy(
        train_embeddings, train_labels, test_embeddings, test_labels, c=c
    )


def raw_pixel_accuracy(
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    c: float = 0.05,
) -> float:
    """The raw-pixel baseline: logistic regression on flattened, standardised pixels.

    ``c`` = 0.05 (fairly strong L2) suits 4,000 training digits of 784 pixels.
    """
    return logistic_regression_accuracy(
        train_images, train_labels, test_images, test_labels, c=c, max_iter=2000
    )
