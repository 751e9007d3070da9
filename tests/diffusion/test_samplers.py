"""Samplers driven by exact (oracle) denoisers must reproduce the known data distribution."""

import math

import pytest
import torch

from synesthesia.diffusion import (
    METHODS,
    NoiseSchedule,
    cfg_denoiser,
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
    steps = 500 if method == "heun" else 1000  # heun: 999 evaluations
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


@pytest.mark.parametrize(
    "method,steps,tol",
    [
        ("dpmpp_2m", 20, 0.07),
        ("heun", 20, 0.07),
        ("dpmpp_2m", 10, 0.18),
        ("ddim", 20, 0.18),
        ("ddim", 10, 0.32),
    ],
)
def test_few_step_samplers_with_karras_spacing(linear, x_T, method, steps, tol):
    x, _ = _run(linear, x_T, method, steps, karras=True)
    assert torch.all((x.mean(0) - MU).abs() < 0.05 * SD), x.mean(0)
    assert torch.all((x.std(0) / SD - 1).abs() < tol), x.std(0)


def test_convergence_order(linear, x_T):
    """Doubling the steps divides the error by ~4 for 2nd-order solvers and ~2 for DDIM."""
    x_T = x_T[:2000]
    ref, _ = _run(linear, x_T, "dpmpp_2m", 400, karras=True)

    def err(method, steps):
        x, _ = _run(linear, x_T, method, steps, karras=True)
        return (x - ref).abs().mean().item()

    for method in ("dpmpp_2m", "heun"):
        assert err(method, 40) < 0.35 * err(method, 20)
    ratio = err("ddim", 40) / err("ddim", 20)
    assert 0.4 < ratio < 0.6


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


def test_strided_ddpm_uses_abar_ratios_not_one_step_betas(linear, x_T):
    """At 50 steps the strided posterior is right; reusing beta_t (the chapter's bug) is not."""
    x, _ = _run(linear, x_T, "ddpm", 50)
    assert torch.all((x.std(0) / SD - 1).abs() < 0.13), x.std(0)
    # the same loop with the one-step beta_t in place of 1 - abar_t / abar_s, as a negative control
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
    assert torch.any((y.std(0) / SD - 1).abs() > 0.3), "the control should be badly wrong"


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


# ---- guidance on a two-component mixture ----------------------------------------------------


def test_guidance_on_a_class_conditional_mixture():
    from synesthesia.diffusion import GaussianMixtureOracle

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
    g = cfg_denoiser(den, 4.0, {"labels": torch.tensor([9])}, guidance_rescale=1.0)(x, t, labels=y)
    assert torch.allclose(g.std(dim=1), c.std(dim=1))
    with pytest.raises(ValueError, match="keys"):
        cfg_denoiser(den, 2.0, {"context": torch.zeros(1)})(x, t, labels=y)


def test_heun_from_a_huge_sigma_max_takes_an_euler_first_step(x_T):
    """Cosine's sigma_max is ~2e4: a trapezoid over that first step would overshoot wildly."""
    cosine = NoiseSchedule("cosine", 1000)
    assert cosine.sigmas[-1] > 1e4
    x, calls = _run(cosine, x_T, "heun", 10)
    assert calls == 18
    assert torch.all((x.std(0) / SD - 1).abs() < 0.05), x.std(0)
