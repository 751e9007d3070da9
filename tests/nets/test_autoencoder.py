"""The KL autoencoder network: posterior, KL closed form, shapes, the scaling in both directions."""

from __future__ import annotations

import math

import pytest
import torch

from synesthesia.nets.autoencoder import (
    LOGVAR_MAX,
    LOGVAR_MIN,
    AutoencoderConfig,
    AutoencoderKL,
    DiagonalGaussian,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _posterior(seed: int = 0, shape=(3, 2, 2, 2)) -> DiagonalGaussian:
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(shape, generator=g, dtype=torch.float64)
    logvar = torch.randn(shape, generator=g, dtype=torch.float64) * 0.7
    return DiagonalGaussian(mean, logvar)


def test_kl_closed_form_matches_a_monte_carlo_estimate():
    """KL(q || N(0, I)) = E_q[log q(z) - log p(z)], estimated with 200,000 draws per item and
    densities from torch.distributions (an independent implementation); within 4 standard
    errors of the Monte-Carlo mean."""
    q = _posterior()
    g = torch.Generator().manual_seed(1)
    n = 200_000
    z = q.mean + q.std * torch.randn((n, *q.mean.shape), generator=g, dtype=torch.float64)
    log_q = torch.distributions.Normal(q.mean, q.std).log_prob(z).flatten(2).sum(-1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).flatten(2).sum(-1)
    terms = log_q - log_p  # (n, B)
    estimate, se = terms.mean(0), terms.std(0) / math.sqrt(n)
    closed = q.kl()
    assert closed.shape == (3,)
    assert torch.all((closed - estimate).abs() < 4 * se), (closed, estimate, se)


def test_kl_equals_torch_distributions_kl_and_is_zero_at_the_prior():
    q = _posterior(2)
    reference = torch.distributions.kl_divergence(
        torch.distributions.Normal(q.mean, q.std), torch.distributions.Normal(0.0, 1.0)
    )
    torch.testing.assert_close(q.kl(), reference.flatten(1).sum(1))
    prior = DiagonalGaussian(torch.zeros(2, 4, 3, 3), torch.zeros(2, 4, 3, 3))
    assert torch.equal(prior.kl(), torch.zeros(2))


def test_samples_come_from_the_generator_and_have_the_posterior_moments():
    mean = torch.full((20_000, 1, 1, 1), 1.5)
    q = DiagonalGaussian(mean, torch.full_like(mean, math.log(0.25)))  # std 0.5
    a = q.sample(torch.Generator().manual_seed(3))
    b = q.sample(torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert not torch.equal(a, q.sample(torch.Generator().manual_seed(4)))
    # mean and std of 20,000 draws: standard errors 0.0035 and 0.0025
    assert abs(a.mean().item() - 1.5) < 0.02 and abs(a.std().item() - 0.5) < 0.015
    assert torch.equal(q.mode(), mean)


def test_logvar_is_clamped():
    q = DiagonalGaussian(torch.zeros(1, 2), torch.tensor([[-100.0, 100.0]]))
    assert q.logvar.tolist() == [[LOGVAR_MIN, LOGVAR_MAX]]
    assert torch.isfinite(q.kl()).all() and torch.isfinite(q.var).all()


def test_default_latent_is_7x7x4_a_quarter_of_the_pixels():
    cfg = AutoencoderConfig()
    assert cfg.sizes == [28, 14, 7]
    assert cfg.latent_shape == (4, 7, 7) and cfg.latent_numel * 4 == 28 * 28
    ae = AutoencoderKL(cfg)
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    posterior = ae.encode(x)
    assert posterior.mean.shape == (2, 4, 7, 7)
    assert ae.decode(posterior.mode()).shape == (2, 1, 28, 28)


def test_odd_sizes_round_trip_in_shape():
    cfg = AutoencoderConfig(image_size=9, channels=(8, 8), latent_channels=2, groups=4)
    assert cfg.sizes == [9, 5, 3]  # a stride-2 3x3 convolution with padding 1 rounds up
    ae = AutoencoderKL(cfg)
    rec, posterior = ae(torch.zeros(1, 1, 9, 9))
    assert rec.shape == (1, 1, 9, 9) and posterior.mean.shape == (1, 2, 3, 3)


def test_a_latent_larger_than_a_quarter_of_the_pixels_is_refused():
    with pytest.raises(ValueError, match="more than a quarter"):
        AutoencoderConfig(latent_channels=5)  # 5 x 7 x 7 = 245 > 196
    with pytest.raises(ValueError, match="more than a quarter"):
        AutoencoderConfig(channels=(32,))  # 4 x 14 x 14 = 784


def test_config_round_trips_and_unknown_keys_are_named():
    cfg = AutoencoderConfig(channels=(8, 16), num_res_blocks=2, scaling_factor=0.7)
    again = AutoencoderConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.channels == (8, 16)
    with pytest.raises(ValueError, match=r"unknown AutoencoderConfig keys \['chanels'\]"):
        AutoencoderConfig.from_dict({"chanels": [8]})
    for bad in ({"scaling_factor": 0.0}, {"scaling_factor": float("inf")}, {"channels": []}):
        with pytest.raises(ValueError):
            AutoencoderConfig.from_dict(bad)


def test_the_scaling_factor_is_applied_on_encode_and_removed_on_decode():
    torch.manual_seed(0)
    ae = AutoencoderKL(AutoencoderConfig(channels=(8, 16), scaling_factor=2.5)).eval()
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    mean = ae.encode(x).mean
    with torch.no_grad():
        torch.testing.assert_close(ae.encode_latents(x), 2.5 * mean)
        sample = ae.encode(x).sample(torch.Generator().manual_seed(5))
        torch.testing.assert_close(
            ae.encode_latents(x, torch.Generator().manual_seed(5)), 2.5 * sample
        )
        # both directions: the round trip of scaled latents is the unscaled one
        torch.testing.assert_close(ae.decode_latents(ae.encode_latents(x)), ae.decode(mean))
        z = torch.randn(3, 4, 7, 7)
        torch.testing.assert_close(ae.decode_latents(z), ae.decode(z / 2.5))


def test_forward_decodes_the_mean_without_a_generator_and_a_sample_with_one():
    torch.manual_seed(0)
    ae = AutoencoderKL(AutoencoderConfig(channels=(8, 16))).eval()
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        rec, posterior = ae(x)
        torch.testing.assert_close(rec, ae.decode(posterior.mean))
        rec_g, _ = ae(x, generator=torch.Generator().manual_seed(9))
        z = posterior.sample(torch.Generator().manual_seed(9))
        torch.testing.assert_close(rec_g, ae.decode(z))


def test_wrong_shapes_are_named():
    ae = AutoencoderKL(AutoencoderConfig(channels=(8, 16)))
    with pytest.raises(ValueError, match=r"images must be \(B, 1, 28, 28\)"):
        ae.encode(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"latents must be \(B, 4, 7, 7\)"):
        ae.decode(torch.zeros(1, 4, 8, 8))
