"""Schedules and the forward process against closed forms computed here, independently."""

import math

import numpy as np
import pytest
import torch

from synesthesia.diffusion import NoiseSchedule, rescale_zero_terminal_snr


def test_linear_schedule_endpoints_scale_with_T():
    s = NoiseSchedule("linear", 1000)
    assert s.betas.dtype == torch.float64
    assert s.betas[0].item() == pytest.approx(1e-4, rel=1e-12)
    assert s.betas[-1].item() == pytest.approx(0.02, rel=1e-12)
    s = NoiseSchedule("linear", 250)  # scaled by 1000 / T
    assert s.betas[0].item() == pytest.approx(4e-4, rel=1e-12)
    assert s.betas[-1].item() == pytest.approx(0.08, rel=1e-12)


def test_linear_schedule_rejects_too_few_steps():
    with pytest.raises(ValueError, match="num_timesteps"):
        NoiseSchedule("linear", 10)


def test_cosine_alphas_cumprod_is_the_closed_form_until_clipping():
    T, s = 1000, 0.008
    sched = NoiseSchedule("cosine", T)

    def f(t):
        return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    expected = np.array([f(t + 1) / f(0) for t in range(T)])
    got = sched.alphas_cumprod.numpy()
    clipped = sched.betas.numpy() >= 0.999 - 1e-15
    first_clip = np.argmax(clipped) if clipped.any() else T
    np.testing.assert_allclose(got[:first_clip], expected[:first_clip], rtol=1e-10)
    assert sched.betas.max() <= 0.999


def test_sigmoid_schedule_is_a_valid_decreasing_schedule():
    sched = NoiseSchedule("sigmoid", 500)
    abar = sched.alphas_cumprod
    assert torch.all(abar[1:] < abar[:-1])
    assert 0 < abar[-1] < 1e-2 and 0.99 < abar[0] < 1
    assert torch.all((sched.betas > 0) & (sched.betas <= 0.999))


def test_derived_tables_match_their_definitions():
    sched = NoiseSchedule("cosine", 200)
    betas = sched.betas.numpy()
    abar = np.ones(200)
    prod = 1.0
    for i, b in enumerate(betas):  # the cumulative product written as a loop
        prod *= 1.0 - b
        abar[i] = prod
    np.testing.assert_allclose(sched.alphas_cumprod.numpy(), abar, rtol=1e-12)
    np.testing.assert_allclose(sched.sigmas.numpy(), np.sqrt((1 - abar) / abar), rtol=1e-12)
    np.testing.assert_allclose(sched.log_snr.numpy(), np.log(abar / (1 - abar)), rtol=1e-10)


def test_zero_terminal_snr_rescale_by_hand_on_three_steps():
    """Lin et al. 2024, Algorithm 1 worked by hand for betas (0.1, 0.2, 0.3).

    abar = (0.9, 0.72, 0.504); sqrt(abar) is shifted by its last value and scaled by
    first / (first - last), so sqrt(abar_1) becomes (sqrt(0.72) - sqrt(0.504)) * sqrt(0.9) /
    (sqrt(0.9) - sqrt(0.504)) = 0.55071871, abar_1 = 0.30329109, and the betas are
    1 - abar_0 = 0.1, 1 - abar_1 / abar_0 = 0.66300989 and 1 - 0 / abar_1 = 1.
    """
    got = rescale_zero_terminal_snr(np.array([0.1, 0.2, 0.3]))
    np.testing.assert_allclose(got, [0.1, 0.6630098949578507, 1.0], rtol=1e-14, atol=1e-15)
    assert got[-1] == 1.0  # alpha_T = 0 exactly: the last step destroys all signal


def test_zero_terminal_snr_schedule_has_snr_zero_at_T_and_an_affine_sqrt_abar():
    for name in ("linear", "cosine", "sigmoid"):
        base = NoiseSchedule(name, 1000)
        zt = NoiseSchedule(name, 1000, zero_terminal_snr=True)
        abar = zt.alphas_cumprod.numpy()
        assert abar[-1] == 0.0 and zt.betas[-1].item() == 1.0  # terminal SNR exactly 0
        assert torch.isinf(zt.log_snr[-1]) and zt.log_snr[-1] < 0
        assert np.all(np.diff(abar) < 0)  # still a valid, decreasing schedule
        # Lin et al. 2024 sec. 3.1: sqrt(abar) is an affine map of the original one that keeps
        # the first value and sends the last to 0
        x, y = base.alphas_cumprod.sqrt().numpy(), np.sqrt(abar)
        slope, intercept = np.polyfit(x, y, 1)
        np.testing.assert_allclose(slope * x + intercept, y, atol=1e-12)
        assert y[0] == pytest.approx(x[0], rel=1e-12)
        # the two conditions fix the map: slope x0 / (x0 - xT), intercept -xT x0 / (x0 - xT)
        assert slope == pytest.approx(x[0] / (x[0] - x[-1]), rel=1e-9)
        assert intercept == pytest.approx(-x[-1] * x[0] / (x[0] - x[-1]), rel=1e-6, abs=1e-12)


def test_composed_one_step_kernels_give_the_closed_form_marginal():
    """Propagate mean and variance through T kernels q(x_t | x_{t-1}); compare to q(x_t | x0)."""
    for name in ("linear", "cosine", "sigmoid"):
        sched = NoiseSchedule(name, 300)
        m, v = 1.7, 0.0  # x0 = 1.7 exactly
        for t in range(300):
            a = 1.0 - sched.betas[t].item()
            m, v = math.sqrt(a) * m, a * v + (1.0 - a)
            abar = sched.alphas_cumprod[t].item()
            assert m == pytest.approx(math.sqrt(abar) * 1.7, rel=1e-9, abs=1e-12)
            assert v == pytest.approx(1.0 - abar, rel=1e-9, abs=1e-12)


def test_q_step_chain_matches_q_sample_in_distribution():
    sched = NoiseSchedule("cosine", 50)
    g = torch.Generator().manual_seed(0)
    n = 40_000
    x0 = torch.full((n, 1), 0.8, dtype=torch.float64)
    x = x0.clone()
    for t in range(30):
        x = sched.q_step(x, torch.full((n,), t), torch.randn(x.shape, generator=g, dtype=x.dtype))
    direct = sched.q_sample(x0, torch.full((n,), 29), torch.randn(x.shape, generator=g).double())
    abar = sched.alphas_cumprod[29].item()
    se_mean = math.sqrt((1 - abar) / n)
    for sample in (x, direct):
        assert abs(sample.mean().item() - math.sqrt(abar) * 0.8) < 4 * se_mean
        assert sample.var().item() == pytest.approx(1 - abar, rel=0.03)


def test_posterior_is_the_product_of_gaussians():
    sched = NoiseSchedule("linear", 100)
    betas = sched.betas.numpy()
    abar = np.cumprod(1 - betas)
    g = torch.Generator().manual_seed(1)
    t = torch.arange(1, 100)
    x0 = torch.randn(99, 3, generator=g, dtype=torch.float64)
    xt = torch.randn(99, 3, generator=g, dtype=torch.float64)
    mean, var, log_var = sched.posterior(x0, xt, t)
    for row, tt in enumerate(t.tolist()):
        alpha, beta, abar_prev = 1 - betas[tt], betas[tt], abar[tt - 1]
        # N(x_t; sqrt(alpha) x, beta) * N(x; sqrt(abar_prev) x0, 1 - abar_prev) as a density in x
        precision = alpha / beta + 1 / (1 - abar_prev)
        m = (
            math.sqrt(alpha) * xt[row].numpy() / beta
            + math.sqrt(abar_prev) * x0[row].numpy() / (1 - abar_prev)
        ) / precision
        np.testing.assert_allclose(mean[row].numpy(), m, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(var[row].numpy(), 1 / precision, rtol=1e-10)
        np.testing.assert_allclose(log_var[row].numpy(), math.log(1 / precision), rtol=1e-10)
    m0, v0, lv0 = sched.posterior(x0[:1], xt[:1], torch.tensor([0]))
    assert torch.allclose(m0, x0[:1]) and torch.all(v0 == 0)  # at t = 0 the posterior is x0
    assert torch.allclose(lv0, log_var[:1])  # clamped to the log-variance at t = 1


@pytest.mark.parametrize("steps", [7, 13, 50])
@pytest.mark.parametrize("spacing", ["leading", "linspace", "trailing"])
def test_timesteps_for_any_step_count(spacing, steps):
    T = 1000
    ts = NoiseSchedule("cosine", T).timesteps(steps, spacing)
    assert ts.dtype == torch.int64 and len(ts) == steps
    assert torch.all(ts[1:] < ts[:-1]), "distinct and descending"
    assert 0 <= ts.min() and ts.max() <= T - 1
    if spacing == "trailing":
        assert ts[0] == T - 1
    if spacing == "linspace":
        assert ts[0] == T - 1 and ts[-1] == 0
    if spacing == "leading":
        assert ts[-1] == 0 and torch.all(ts % (T // steps) == 0)


def test_trailing_matches_hand_computation():
    # T = 10, 3 steps: round(10, 6.67, 3.33) - 1 = 9, 6, 2
    assert NoiseSchedule("cosine", 10).timesteps(3, "trailing").tolist() == [9, 6, 2]
    assert NoiseSchedule("cosine", 10).timesteps(3, "leading").tolist() == [6, 3, 0]
    assert NoiseSchedule("cosine", 10).timesteps(3, "linspace").tolist() == [9, 4, 0]


def test_fractional_time_round_trips_through_sigma():
    sched = NoiseSchedule("linear", 1000)
    t = torch.tensor([0.0, 3.25, 500.5, 998.9, 999.0])
    abar = sched.abar_at(t)
    back = sched.sigma_to_t(torch.sqrt((1 - abar) / abar))
    assert torch.allclose(back, t.double(), atol=1e-8)
    assert sched.abar_at(torch.tensor([17.0])).item() == sched.alphas_cumprod[17].item()


def test_config_round_trip():
    s = NoiseSchedule("sigmoid", 333, zero_terminal_snr=True)
    again = NoiseSchedule.from_config(s.to_config())
    assert torch.equal(s.betas, again.betas)
    with pytest.raises(ValueError, match="unknown"):
        NoiseSchedule.from_config({"name": "cosine", "bogus": 1})


def test_bad_input_names_the_argument():
    sched = NoiseSchedule("cosine", 100)
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="name"):
        NoiseSchedule("quadratic", 100)
    with pytest.raises(ValueError, match="noise"):
        sched.q_sample(x, torch.zeros(4, dtype=torch.long), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="t must lie in"):
        sched.q_sample(x, torch.full((4,), 100), torch.zeros_like(x))
    with pytest.raises(ValueError, match="t must lie in"):
        sched.q_sample(x, torch.full((4,), -1), torch.zeros_like(x))
    with pytest.raises(ValueError, match="t must have shape"):
        sched.q_sample(x, torch.zeros(3, dtype=torch.long), torch.zeros_like(x))
    with pytest.raises(ValueError, match="integer"):
        sched.q_sample(x, torch.zeros(4), torch.zeros_like(x))
    with pytest.raises(ValueError, match="steps"):
        sched.timesteps(101)
    with pytest.raises(ValueError, match="spacing"):
        sched.timesteps(10, "uniform")
