"""The 2-D map of the joint space."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from synesthesia.multimodal.plots import plot_joint_space, project_2d  # noqa: E402


def test_pca_projection_keeps_the_two_directions_that_vary():
    g = torch.Generator().manual_seed(0)
    # points spread along e0 and e1 only (e2 is constant): PCA must keep their distances
    a = torch.zeros(20, 3)
    a[:, :2] = torch.randn(20, 2, generator=g)
    b = torch.zeros(10, 3)
    b[:, :2] = torch.randn(10, 2, generator=g)
    xy = project_2d({"image": a, "text": b})
    assert xy["image"].shape == (20, 2) and xy["text"].shape == (10, 2)
    pts = np.concatenate([xy["image"], xy["text"]])
    orig = torch.cat([a, b]).numpy()
    d_xy = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    d_orig = np.linalg.norm(orig[:, None] - orig[None], axis=-1)
    np.testing.assert_allclose(d_xy, d_orig, atol=1e-5)
    with pytest.raises(ValueError, match="method"):
        project_2d({"image": a}, method="umap")


def test_plot_joint_space_draws_on_the_given_axes():
    fig, ax = plt.subplots()
    emb = {"image": torch.randn(12, 4), "speech": torch.randn(6, 4)}
    labels = {"image": torch.arange(12) % 3, "speech": torch.arange(6) % 3}
    assert plot_joint_space(emb, labels, ax=ax) is ax
    assert len(ax.collections) >= 2
    with pytest.raises(ValueError, match="one label per embedding"):
        plot_joint_space(emb, {"image": labels["image"]}, ax=ax)
    plt.close(fig)
