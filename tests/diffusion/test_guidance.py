"""Classifier-free guidance: one batched call, the guided mixture, and guidance rescale
against a hand computation of Lin et al. 2024, eq. 15-16."""

import numpy as np
import pytest
import torch

from synesthesia.diffusion import GaussianMixtureOracle, NoiseSchedule, cfg_denoiser, sample
from synesthesia.errors import InputError


def test_guidance_on_a_class_conditional_mixture():
    sched = NoiseSchedule("cosine", 1000)
    means = torch.tensor([[-1.0], [1.0]])
    stds = torch.tensor([[1.0], [1.0]])
    oracle = GaussianMixtureOracle(means, stds, sched, prediction="eps")
    n = 8_000
    labels = torch.ones(n, dtype=torch.long)  # ask for component 1
    null = torch.full((1,), 2)  # the null class

    def run(w):
        g = torch.Generator().manual_seed(0)
        d = cfg_denoiser(oracle, w, {"labels": null})
        return sample(d, (n, 1), sched, method="dpmpp_2m", steps=50, cond={"labels": labels},
                      generator=g, progress=False, dtype=torch.float64).squeeze(1)  # fmt: skip

    uncond, cond, guided = run(0.0), run(1.0), run(3.0)
    # w = 0: the mixture 0.5 N(-1, 1) + 0.5 N(1, 1): mean 0, variance 2
    assert abs(uncond.mean().item()) < 0.05 and uncond.var().item() == pytest.approx(2.0, rel=0.05)
    # w = 1: the component N(1, 1)
    assert cond.mean().item() == pytest.approx(1.0, abs=0.05)
    assert cond.std().item() == pytest.approx(1.0, rel=0.05)
    # w > 1 sharpens towards where class 1 is likely: p(x < 0) falls, the mean moves away
    assert (guided < 0).float().mean() < 0.5 * (cond < 0).float().mean()
    assert guided.mean() > cond.mean() + 0.2


def test_cfg_is_one_batched_call_and_matches_the_formula():
    calls = []

    def den(x, t, labels):
        calls.append(x.shape[0])
        return x * (labels[:, None].double() + 1.0) + t[:, None]

    x = torch.randn(4, 2, dtype=torch.float64)
    t = torch.full((4,), 3.0, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3])
    out = cfg_denoiser(den, 2.5, {"labels": torch.tensor([9])})(x, t, labels=y)
    assert calls == [8]
    c, u = x * (y[:, None] + 1.0) + 3.0, x * 10.0 + 3.0
    assert torch.allclose(out, u + 2.5 * (c - u))
    with pytest.raises(ValueError, match="keys"):
        cfg_denoiser(den, 2.0, {"context": torch.zeros(1)})(x, t, labels=y)


# ---- guidance rescale (Lin et al. 2024, sec. 3.4) -------------------------------------------
# eq. 15: x_rescaled = x_cfg * std(x_pos) / std(x_cfg);
# eq. 16: x_final = phi x_rescaled + (1 - phi) x_cfg; each std over one sample's own values.

NULL = 9


def _table_denoiser(cond_rows: torch.Tensor, uncond_rows: torch.Tensor):
    """Returns ``cond_rows`` for labelled samples and ``uncond_rows`` for the null label."""

    def den(x, t, labels):
        null = (labels == NULL).reshape(-1, *([1] * (x.ndim - 1)))
        rows = torch.cat([cond_rows, cond_rows])[: x.shape[0]]
        return torch.where(null, torch.cat([uncond_rows, uncond_rows])[: x.shape[0]], rows)

    return den


def _guided(cond_rows, uncond_rows, w, phi):
    den = _table_denoiser(cond_rows, uncond_rows)
    B = cond_rows.shape[0]
    x = torch.zeros_like(cond_rows)
    t = torch.zeros(B, dtype=torch.float64)
    return cfg_denoiser(den, w, {"labels": torch.tensor([NULL])}, guidance_rescale=phi)(
        x, t, labels=torch.zeros(B, dtype=torch.long)
    )


def test_guidance_rescale_by_hand_on_two_numbers():
    c = torch.tensor([[1.0, 3.0]], dtype=torch.float64)  # std 1 (population)
    u = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    # w = 2: x_cfg = [2, 6], std 2; rescaled [1, 3]; phi = 0.25: 0.25 [1, 3] + 0.75 [2, 6]
    got = _guided(c, u, 2.0, 0.25)
    assert torch.allclose(got, torch.tensor([[1.75, 5.25]], dtype=torch.float64))
    # phi = 0 is plain guidance, phi = 1 matches the conditional std
    assert torch.allclose(_guided(c, u, 2.0, 0.0), torch.tensor([[2.0, 6.0]], dtype=torch.float64))
    assert torch.allclose(_guided(c, u, 2.0, 1.0), c)


def test_guidance_rescale_at_w_zero_rescales_the_unconditional_prediction():
    """w = 0 gives x_cfg = u, which rescaling still moves to std(c) (failed before: w = 0
    returned the unconditional prediction before rescaling)."""
    c = torch.tensor([[0.0, 4.0]], dtype=torch.float64)  # std 2
    u = torch.tensor([[1.0, 2.0]], dtype=torch.float64)  # std 0.5
    # rescaled u: [1, 2] * 2 / 0.5 = [4, 8]; phi = 0.5: 0.5 [4, 8] + 0.5 [1, 2] = [2.5, 5]
    got = _guided(c, u, 0.0, 0.5)
    assert torch.allclose(got, torch.tensor([[2.5, 5.0]], dtype=torch.float64))
    assert torch.allclose(_guided(c, u, 0.0, 0.0), u)  # no rescale: the unconditional model


@pytest.mark.parametrize("w", [0.0, 1.0, 2.5, 7.5])
@pytest.mark.parametrize("phi", [0.0, 0.3, 0.7, 1.0])
def test_guidance_rescale_matches_a_numpy_computation_over_image_shaped_samples(w, phi):
    g = torch.Generator().manual_seed(4)
    spread = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)[:, None, None, None]
    c = torch.randn(3, 2, 4, 4, generator=g, dtype=torch.float64) * spread
    u = torch.randn(3, 2, 4, 4, generator=g, dtype=torch.float64) + 0.3
    got = _guided(c, u, w, phi).numpy()
    cn, un = c.numpy(), u.numpy()
    for i in range(3):  # one sample at a time, std over all its values (channels and pixels)
        x_cfg = un[i] + w * (cn[i] - un[i])
        x_rescaled = x_cfg * np.std(cn[i]) / np.std(x_cfg)
        want = phi * x_rescaled + (1 - phi) * x_cfg
        np.testing.assert_allclose(got[i], want, rtol=1e-12, atol=1e-12)


def test_bad_guidance_settings_are_refused():
    den = _table_denoiser(torch.zeros(1, 2), torch.zeros(1, 2))
    for phi in (-0.1, 1.5, float("nan")):
        with pytest.raises(InputError, match="guidance_rescale"):
            cfg_denoiser(den, 2.0, {"labels": torch.tensor([NULL])}, guidance_rescale=phi)
    for w in (float("nan"), float("inf")):
        with pytest.raises(InputError, match="guidance_scale"):
            cfg_denoiser(den, w, {"labels": torch.tensor([NULL])})
