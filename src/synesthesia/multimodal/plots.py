"""A 2-D map of the joint embedding space: every modality in one picture, coloured by class."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

MARKERS = {"image": "o", "text": "^", "speech": "s"}


def project_2d(
    embeddings: Mapping[str, torch.Tensor], method: str = "pca", seed: int = 0
) -> dict[str, np.ndarray]:
    """Project all modalities together to 2-D with PCA or t-SNE (scikit-learn); one fit for all."""
    if not embeddings:
        raise ValueError("embeddings is empty: give at least one modality")
    names = list(embeddings)
    arrays = [torch.as_tensor(embeddings[n]).detach().float().cpu().numpy() for n in names]
    dims = {a.shape[1] for a in arrays if a.ndim == 2}
    if len(dims) != 1 or any(a.ndim != 2 for a in arrays):
        raise ValueError("every modality must be N x D with the same D")
    stacked = np.concatenate(arrays)
    if method == "pca":
        from sklearn.decomposition import PCA

        xy = PCA(n_components=2, random_state=seed).fit_transform(stacked)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(stacked) - 1) // 3)))
        xy = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(stacked)
    else:
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    out, start = {}, 0
    for n, a in zip(names, arrays):
        out[n] = xy[start : start + len(a)]
        start += len(a)
    return out


def plot_joint_space(
    embeddings: Mapping[str, torch.Tensor],
    labels: Mapping[str, torch.Tensor],
    method: str = "pca",
    ax=None,
    seed: int = 0,
    class_names: list[str] | None = None,
):
    """Scatter the 2-D projection: marker = modality, colour = class label; returns ``ax``."""
    import matplotlib

    if ax is None:
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 6))
    for n in embeddings:
        if n not in labels or len(labels[n]) != len(embeddings[n]):
            raise ValueError(f"labels[{n!r}] must hold one label per embedding of {n!r}")
    xy = project_2d(embeddings, method, seed)
    cmap = matplotlib.colormaps["tab10"]
    for n, points in xy.items():
        lab = np.asarray(torch.as_tensor(labels[n]).cpu())
        ax.scatter(
            points[:, 0],
            points[:, 1],
            c=[cmap(int(v) % 10) for v in lab],
            marker=MARKERS.get(n, "x"),
            s=40 if n == "text" else 10,
            alpha=0.9 if n == "text" else 0.5,
            edgecolors="k" if n == "text" else "none",
            linewidths=0.4,
        )
        ax.scatter([], [], c="0.5", marker=MARKERS.get(n, "x"), s=20, label=n)  # legend proxy
    if class_names is not None:
        for c, name in enumerate(class_names):
            ax.scatter([], [], c=[cmap(c % 10)], marker="o", s=20, label=name)
    ax.legend(loc="best", fontsize=7, markerscale=1.2, ncol=2)
    ax.set_title(f"joint embedding space ({method.upper()})")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax
