"""Samplers driven by exact (oracle) denoisers: the data distribution at 1000 steps, and at any
number of steps the exact closed form of each discretisation on Gaussian data."""

import math

import numpy as np
import pytest
import torch

from synesthesia.diffusion import (
    METHODS,
    NoiseSchedule,
    ddim_invert,
    ddim_step,
    gaussian_oracle,
    sample,
)

MU = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
SD = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
N = 8_000


@pytest.fixture(scope="module")
def linear():
    return NoiseSchedule("linear", 1000)


@pytest.fixture(scope="module")
def x_T():
    return torch.randn(N, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _run(schedule, x_T, method, steps, prediction="eps", **kw):
    oracle = gaussian_oracle(MU, SD, schedule, prediction)
    g = torch.Generator().manual_seed(2)
    x = sample(
        oracle,
        x_T.shape,
        schedule,
        method=method,
        steps=steps,
        prediction=prediction,
        generator=g,
        x_T=x_T,
        progress=False,
        dtype=torch.float64,
        **kw,
    )
    return x, oracle.calls


def test_oracle_is_the_gaussian_posterior_mean(linear):
    """E[x0 | x_t] for N(mu, s^2) data, written out by hand (Gaussian conditioning)."""
    oracle = gaussian_oracle(MU, SD, linear, "x0")
    t = torch.tensor([10.0, 500.0, 900.0], dtype=torch.float64)
    x_t = torch.randn(3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    abar = linear.alphas_cumprod[t.long()][:, None]
    cov = abar.sqrt() * SD**2  # Cov(x0, x_t)
    var = abar * SD**2 + (1 - abar)
    expected = MU + cov / var * (x_t - abar.sqrt() * MU)
    assert torch.allclose(oracle(x_t, t), expected, atol=1e-12)


@pytest.mark.parametrize(
    "method,prediction", [(m, "eps") for m in METHODS] + [("ddim", "v"), ("heun", "v")]
)
def test_every_sampler_reproduces_a_gaussian_at_1000_steps(linear, x_T, method, prediction):
    steps = 500 if method == "heun" else 1000  # heun: 964 evaluations (test_nfe.py)
    x, calls = _run(linear, x_T, method, steps, prediction)
    if method == "heun":  # 2 calls a step, but Euler steps into sigma = 0 and from sigma > 80
        sig = (1 / linear.sampling_grid(steps).abar - 1).sqrt()
        euler_steps = 1 + int((sig[:-2] > 80).sum())
        assert calls == 2 * steps - euler_steps
    else:
        assert calls == steps
    # tolerances: 4 standard errors for the mean, 3% for the standard deviation
    se = SD / math.sqrt(N)
    assert torch.all((x.mean(0) - MU).abs() < 4 * se + 0.005 * SD), x.mean(0)
    assert torch.all((x.std(0) / SD - 1).abs() < 0.03), x.std(0)


# ---- exact references on Gaussian data ------------------------------------------------------
#
# For x0 ~ N(mu, s^2) (per dimension) every quantity a deterministic sampler forms is affine in
# its starting noise z = x_T: the posterior mean is x0_hat = mu + k (x - a mu) with
# k = a s^2 / (a^2 s^2 + 1 - a^2) (Gaussian conditioning). So a sampler's output is exactly
# A z + B, with A and B from the step formulas of the papers applied to (A, B) pairs, and the
# probability-flow ODE itself keeps the z-score of x fixed (its marginals are
# N(a mu, a^2 s^2 + 1 - a^2) and the 1-D flow is monotone), so its exact solution from abar_T is
# x0 = mu + s (x_T - a_T mu) / sqrt(a_T^2 s^2 + 1 - a_T^2).

_MU, _SD = MU.numpy(), SD.numpy()


class _Affine:
    """``A z + B`` per dimension (numpy arrays), z the starting noise."""

    def __init__(self, A, B):
        self.A, self.B = np.broadcast_to(A, _MU.shape), np.broadcast_to(B, _MU.shape)

    def __add__(self, other):
        return _Affine(self.A + other.A, self.B + other.B)

    def __sub__(self, other):
        return _Affine(self.A - other.A, self.B - other.B)

    def __rmul__(self, c):
        return _Affine(c * self.A, c * self.B)

    def at(self, z):
        return self.A * z + self.B


def _x0_hat(x: _Affine, abar: float) -> _Affine:
    a = math.sqrt(abar)
    k = a * _SD**2 / (abar * _SD**2 + 1 - abar)  # Cov(x0, x_t) / Var(x_t)
    return _Affine(k * x.A, _MU + k * (x.B - a * _MU))


def _eps_hat(x: _Affine, abar: float) -> _Affine:
    return (1 / math.sqrt(1 - abar)) * (x - math.sqrt(abar) * _x0_hat(x, abar))


def _ref_ddim(abar: list[float]) -> _Affine:
    # Song et al. 2021 eq. 12 with sigma = 0: x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s) eps_hat
    x = _Affine(1.0, 0.0)
    for t, s in zip(abar, abar[1:]):
        x = math.sqrt(s) * _x0_hat(x, t) + math.sqrt(1 - s) * _eps_hat(x, t)
    return x


def _sig(abar: float) -> float:
    return math.sqrt((1 - abar) / abar)


def _ref_heun(abar: list[float]) -> _Affine:
    # Karras et al. 2022 Algorithm 1 on x~ = x / sqrt(abar), slope eps_hat, in sigma; Euler steps
    # into sigma = 0 and from sigma > 80 (their sigma_max)
    y = (1 / math.sqrt(abar[0])) * _Affine(1.0, 0.0)
    for t, s in zip(abar, abar[1:]):
        h = _sig(s) - _sig(t)
        d = _eps_hat(math.sqrt(t) * y, t)
        euler = y + h * d
        if s < 1 and _sig(t) <= 80:
            d2 = _eps_hat(math.sqrt(s) * euler, s)
            y = y + (h / 2) * (d + d2)
        else:
            y = euler
    return y


def _ref_dpmpp_2m(abar: list[float]) -> _Affine:
    # Lu et al. 2022 (DPM-Solver++) Algorithm 2, written in x~ = x / sqrt(abar) and sigma:
    # x~_s = (sigma_s / sigma_t) x~_t + (1 - sigma_s / sigma_t) D, h = log(sigma_t / sigma_s)
    x = _Affine(1.0, 0.0)
    prev = None  # (x0_hat, h) of the previous step
    for t, s in zip(abar, abar[1:]):
        x0 = _x0_hat(x, t)
        if s == 1.0:  # into sigma = 0: the data prediction itself
            return x0
        ratio = math.sqrt((1 - s) / (1 - t))  # sqrt(1 - abar_s) / sqrt(1 - abar_t)
        if t == 0.0:  # from a zero terminal SNR (sigma_t = inf): x_s = s_s x_t + a_s x0_hat
            x = ratio * x + math.sqrt(s) * x0
            prev = None
            continue
        h = math.log(_sig(t) / _sig(s))
        d = x0 if prev is None else (1 + h / (2 * prev[1])) * x0 - (h / (2 * prev[1])) * prev[0]
        r = _sig(s) / _sig(t)
        x = math.sqrt(s) * ((r / math.sqrt(t)) * x + (1 - r) * d)
        prev = (x0, h)
    return x


_REFERENCES = {"ddim": _ref_ddim, "euler": _ref_ddim, "heun": _ref_heun, "dpmpp_2m": _ref_dpmpp_2m}


def _exact_flow(x_T: torch.Tensor, abar_T: float) -> torch.Tensor:
    """The probability-flow ODE's exact map from noise level abar_T to data (z-score kept)."""
    a = math.sqrt(abar_T)
    return MU + SD * (x_T - a * MU) / torch.sqrt(abar_T * SD**2 + 1 - abar_T)


@pytest.mark.parametrize("method", ["ddim", "euler", "heun", "dpmpp_2m"])
@pytest.mark.parametrize("name,karras", [("linear", False), ("linear", True), ("cosine", False),
                                         ("cosine", True)])  # fmt: skip
@pytest.mark.parametrize("steps", [5, 10, 20])
def test_deterministic_samplers_equal_their_closed_form_on_gaussian_data(
    name, karras, method, steps, x_T
):
    """Few-step output = the paper's step formulas applied exactly (not a tolerance on std)."""
    schedule = NoiseSchedule(name, 1000)
    x_T = x_T[:500]
    x, _ = _run(schedule, x_T, method, steps, karras=karras)
    abar = schedule.sampling_grid(steps, karras=karras).abar.tolist()
    want = _REFERENCES[method](abar).at(x_T.numpy())
    # Karras grids put the denoiser at fractional times: abar is read back through log-sigma
    # interpolation, exact to ~1e-9 (test_fractional_time_round_trips_through_sigma)
    np.testing.assert_allclose(x.numpy(), want, rtol=0, atol=1e-7 if karras else 1e-10)


def test_zero_terminal_snr_dpmpp_equals_its_closed_form():
    zt = NoiseSchedule("linear", 1000, zero_terminal_snr=True)
    x_T = torch.randn(500, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    x, _ = _run(zt, x_T, "dpmpp_2m", 12, prediction="v")
    want = _ref_dpmpp_2m(zt.sampling_grid(12).abar.tolist()).at(x_T.numpy())
    np.testing.assert_allclose(x.numpy(), want, rtol=0, atol=1e-10)
    # and it converges to the exact flow from abar = 0: x0 = mu + s x_T
    x, _ = _run(zt, x_T, "dpmpp_2m", 200, prediction="v")
    assert (x - (MU + SD * x_T)).abs().max() < 0.01


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_convergence_order_against_the_exact_ode_solution(name, x_T):
    """Error to the exact flow: x 1/2 per doubling for DDIM and Euler, x 1/4 for DPM-Solver++(2M)
    and Heun (Karras spacing, whose grid refines smoothly; the ratios measured lie within 0.03
    of 1/2 and of 1/4, and a solver of the other order would be off by a factor of 2)."""
    schedule = NoiseSchedule(name, 1000)
    x_T = x_T[:200]
    exact = _exact_flow(x_T, float(schedule.sampling_grid(10, karras=True).abar[0]))

    def err(method, steps):
        x, _ = _run(schedule, x_T, method, steps, karras=True)
        return (x - exact).abs().max().item()

    first, second = (20, 40, 80), (40, 80, 160)
    cases = (("ddim", 1, first), ("euler", 1, first), ("dpmpp_2m", 2, second), ("heun", 2, second))
    for method, order, steps in cases:
        errors = [err(method, n) for n in steps]
        for coarse, fine in zip(errors, errors[1:]):
            assert abs(fine / coarse - 0.5**order) < 0.06 * order, (method, errors)


def test_ddim_eta_one_is_ddpm_ancestral(linear):
    """DDIM with eta = 1 samples the DDPM posterior: identical draws from the same generator."""
    oracle = gaussian_oracle(MU, SD, linear, "eps")
    for steps in (1000, 37):  # at stride 1 and at a skipping stride
        outs = []
        for method, eta in (("ddim", 1.0), ("ddpm", 0.0)):
            g = torch.Generator().manual_seed(5)
            outs.append(
                sample(
                    oracle,
                    (64, 3),
                    linear,
                    method=method,
                    steps=steps,
                    eta=eta,
                    generator=g,
                    progress=False,
                    dtype=torch.float64,
                )  # fmt: skip
            )
        assert torch.allclose(outs[0], outs[1], atol=1e-9)


def _ddim_moments(abar: list[float], eta: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the DDIM(eta) output when x_T ~ N(0, I), on Gaussian data.

    Each step is x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - var) eps_hat + sqrt(var) noise
    (Song et al. 2021 eq. 12, var from eq. 16): affine in x plus independent noise, so the
    moments follow exactly. eta = 1 is the DDPM posterior (Song et al. 2021, sec. 4.1).
    """
    m, v = np.zeros_like(_MU), np.ones_like(_MU)
    here = _Affine(1.0, 0.0)  # x itself
    for t, s in zip(abar, abar[1:]):
        var = eta**2 * (1 - s) / (1 - t) * (1 - t / s)
        step = math.sqrt(s) * _x0_hat(here, t) + math.sqrt(1 - s - var) * _eps_hat(here, t)
        m, v = step.A * m + step.B, step.A**2 * v + var
    return m, v


@pytest.mark.parametrize("method,steps,eta", [("ddpm", 50, 1.0), ("ddpm", 10, 1.0),
                                              ("ddim", 20, 0.5)])  # fmt: skip
def test_stochastic_samplers_match_their_closed_form_moments(linear, method, steps, eta):
    """The samples' mean and variance equal the exact moments of the discretised chain (4 SE)."""
    n = 20_000
    x_T = torch.randn(n, 3, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    x, _ = _run(linear, x_T, method, steps, eta=eta)
    m, v = _ddim_moments(linear.sampling_grid(steps).abar.tolist(), eta)
    x = x.numpy()
    assert np.all(np.abs(x.mean(0) - m) < 4 * np.sqrt(v / n)), (x.mean(0), m)
    assert np.all(np.abs(x.var(0) / v - 1) < 4 * math.sqrt(2 / n)), (x.var(0), v)


def test_strided_ddpm_uses_abar_ratios_not_one_step_betas(linear, x_T):
    """Reusing the one-step beta_t when skipping steps (the chapter's bug) is far off the exact
    moments of the strided chain, which the sampler matches (previous test)."""
    oracle = gaussian_oracle(MU, SD, linear, "x0")
    ts = linear.timesteps(50, "trailing")
    abar = linear.alphas_cumprod
    g = torch.Generator().manual_seed(2)
    y = x_T.clone()
    for i, t in enumerate(ts.tolist()):
        x0 = oracle(y, torch.full((N,), float(t), dtype=torch.float64))
        beta = linear.betas[t].item()  # wrong when skipping steps
        abar_t, abar_s = abar[t].item(), (abar[ts[i + 1]].item() if i + 1 < len(ts) else 1.0)
        mean = (math.sqrt(abar_s) * beta * x0 + math.sqrt(1 - beta) * (1 - abar_s) * y) / (
            1 - abar_t
        )
        var = beta * (1 - abar_s) / (1 - abar_t)
        y = mean + math.sqrt(var) * torch.randn(y.shape, generator=g, dtype=y.dtype)
    _, v = _ddim_moments(linear.sampling_grid(50).abar.tolist(), 1.0)
    assert np.any(np.abs(y.var(0).numpy() / v - 1) > 0.5), "the control should be badly wrong"


def test_ddim_eta_zero_is_deterministic_and_its_inversion_round_trips(linear):
    oracle = gaussian_oracle(MU, SD, linear, "eps")
    x_T = torch.randn(500, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    kw = dict(method="ddim", steps=200, x_T=x_T, progress=False, dtype=torch.float64)
    a = sample(oracle, x_T.shape, linear, generator=torch.Generator().manual_seed(0), **kw)
    b = sample(oracle, x_T.shape, linear, generator=torch.Generator().manual_seed(9), **kw)
    assert torch.equal(a, b)
    z = ddim_invert(oracle, a, linear, steps=200, progress=False)
    # the inversion is first order: the round trip is exact only as the step size goes to 0
    assert (z - x_T).abs().max() < 0.1 and (z - x_T).abs().mean() < 0.02
    # inversion of fresh data gives standard-normal noise
    data = oracle.sample_data(4000, torch.Generator().manual_seed(4))
    z = ddim_invert(oracle, data, linear, steps=200, progress=False)
    assert (z.mean(0)).abs().max() < 0.08 and (z.std(0) - 1).abs().max() < 0.06


def test_first_dpmpp_step_is_a_ddim_step_and_euler_is_ddim(linear, x_T):
    oracle = gaussian_oracle(MU, SD, linear, "eps")
    seen = {}

    def grab(name):
        def cb(info):
            seen.setdefault(name, []).append(info["x"].clone())

        return cb

    for method in ("dpmpp_2m", "ddim", "euler"):
        sample(oracle, (256, 3), linear, method=method, steps=15, x_T=x_T[:256], progress=False,
               dtype=torch.float64, callback=grab(method))  # fmt: skip
    # the state after step 0 (seen at step 1) is the same for DPM-Solver++(2M) and DDIM
    assert torch.allclose(seen["dpmpp_2m"][1], seen["ddim"][1], atol=1e-10)
    assert not torch.allclose(seen["dpmpp_2m"][2], seen["ddim"][2], atol=1e-6)
    # every Euler step in sigma space equals a DDIM eta = 0 step
    for e, d in zip(seen["euler"], seen["ddim"]):
        assert torch.allclose(e, d, atol=1e-9)


def test_ddim_step_formula_by_hand():
    x0, eps = torch.tensor([0.3]), torch.tensor([-1.2])
    got = ddim_step(x0, eps, 0.2, 0.7, 0.0, None)
    assert got.item() == pytest.approx(math.sqrt(0.7) * 0.3 + math.sqrt(0.3) * -1.2)


def test_same_seed_same_samples_and_callback_and_steps(linear):
    oracle = gaussian_oracle(MU, SD, linear, "eps")
    calls = []
    kw = dict(method="ddpm", steps=12, progress=False, callback=calls.append)
    a = sample(oracle, (8, 3), linear, generator=torch.Generator().manual_seed(7), **kw)
    b = sample(oracle, (8, 3), linear, generator=torch.Generator().manual_seed(7), **kw)
    assert torch.equal(a, b) and len(calls) == 24
    assert calls[0]["t"] == 999 and set(calls[0]) == {"i", "t", "abar", "x", "x0"}


def test_clipping_and_dynamic_thresholding():
    from synesthesia.diffusion import dynamic_threshold

    x0 = torch.tensor([[0.5, -3.0, 2.0, 0.1]])
    out = dynamic_threshold(x0, 0.5)  # |x0| median over 4 values = (0.5 + 2.0) / 2 = 1.25
    assert torch.allclose(out, torch.tensor([[0.4, -1.0, 1.0, 0.08]]))
    assert torch.equal(
        dynamic_threshold(torch.tensor([[0.2, -0.3]]), 0.9), torch.tensor([[0.2, -0.3]])
    )
    sched = NoiseSchedule("cosine", 100)
    oracle = gaussian_oracle([3.0], [0.1], sched, "eps")
    x = sample(oracle, (64, 1), sched, steps=10, clip_x0=1.0, progress=False,
               generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert x.max() <= 1.0 + 1e-6


def test_zero_terminal_snr_needs_v_prediction():
    zt = NoiseSchedule("linear", 1000, zero_terminal_snr=True)
    oracle = gaussian_oracle(MU, SD, zt, "eps")
    with pytest.raises(ValueError, match="prediction='v'"):
        sample(oracle, (4, 3), zt, prediction="eps", progress=False)
    oracle = gaussian_oracle(MU, SD, zt, "v")
    x = sample(oracle, (N, 3), zt, method="dpmpp_2m", steps=50, prediction="v", progress=False,
               generator=torch.Generator().manual_seed(0), dtype=torch.float64)  # fmt: skip
    assert torch.all((x.std(0) / SD - 1).abs() < 0.05)
    with pytest.raises(ValueError, match="sigma space"):
        sample(oracle, (4, 3), zt, method="heun", prediction="v", progress=False)


def test_bad_arguments_name_themselves(linear):
    oracle = gaussian_oracle(MU, SD, linear, "eps")
    with pytest.raises(ValueError, match="method"):
        sample(oracle, (4, 3), linear, method="plms", progress=False)
    with pytest.raises(ValueError, match="steps"):
        sample(oracle, (4, 3), linear, steps=1001, progress=False)
    with pytest.raises(ValueError, match="prediction"):
        sample(oracle, (4, 3), linear, prediction="score", progress=False)
    with pytest.raises(ValueError, match="x_T"):
        sample(oracle, (4, 3), linear, x_T=torch.zeros(4, 2), progress=False)
    with pytest.raises(ValueError, match="cond"):
        sample(oracle, (4, 3), linear, cond={"labels": torch.zeros(5)}, progress=False)
    with pytest.raises(ValueError, match="denoiser returned"):
        sample(lambda x, t: x[:, :1], (4, 3), linear, progress=False)
