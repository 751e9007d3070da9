"""Section 13.2.3: samplers, their cost in denoiser evaluations, and their error.

No training; a few seconds on one CPU thread. Every sampler runs on an exact denoiser, so
what is left is the sampler's own error.

1. Cost: each sampler's denoiser calls counted by wrapping the denoiser
   (``CountingDenoiser``) against ``count_nfe``; Heun's ``2N - 2`` by hand (its first step,
   from sigma > 80, and its last, into sigma = 0, are Euler steps).
2. Error: for Gaussian data ``N(mu, s^2)`` the exact denoiser is affine in ``x_t``, so a
   deterministic sampler maps the starting noise ``x_T`` affinely to its output: two runs
   (``x_T = 0`` and ``x_T = 1``) give the sampler's output distribution exactly, with no
   Monte-Carlo error. Its standard deviation against ``s`` shows each sampler's error at
   10, 20 and 50 steps (it must fall as the steps grow); DDIM and Euler give the same
   numbers, as they must (DDIM is Euler in x / sqrt(abar) against sigma, Karras et al. 2022).
3. The chapter's ancestral loop, with a stride (DDPM at 50 and 250 of the 1,000 steps): the
   library's step uses ``abar_t / abar_s`` of the stride, never the one-step ``beta_t``; the
   mean comes out right, and the known narrowing of ancestral sampling with a posterior-mean
   denoiser shrinks as the steps grow (Monte Carlo; ``benchmarks/RESULTS-samplers.md``).
4. Classifier-free guidance on an exact class-conditional mixture: the share of samples in
   the asked class at guidance 0, 1 and 3.
5. DDIM inversion: data -> noise -> data again, closer with more steps (50, 250).

Nothing to change for quality: these are properties of the samplers; with a trained network
use ``dpmpp_2m`` at 20-50 steps (``benchmarks/RESULTS-samplers.md``).

    python examples/s13_2_3_sampling.py
"""

from __future__ import annotations

import math

import torch

from synesthesia.diffusion import (
    METHODS,
    CountingDenoiser,
    GaussianMixtureOracle,
    NoiseSchedule,
    cfg_denoiser,
    count_nfe,
    ddim_invert,
    gaussian_oracle,
    sample,
)

F64 = dict(progress=False, dtype=torch.float64)


def cost(schedule: NoiseSchedule, oracle) -> None:
    for method in METHODS:
        counter = CountingDenoiser(oracle)
        sample(
            counter,
            (4, 1),
            schedule,
            method=method,
            steps=10,
            generator=torch.Generator().manual_seed(0),
            **F64,
        )
        print(
            f"{method:>8}, 10 steps: {counter.calls} calls (count_nfe "
            f"{count_nfe(schedule, method, 10)})"
        )
        assert counter.calls == count_nfe(schedule, method, 10)
        assert counter.calls == (2 * 10 - 2 if method == "heun" else 10)


def exact_error(schedule: NoiseSchedule, oracle, mu: float, s: float) -> None:
    x_T = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    outputs = {}
    for method in ("ddim", "dpmpp_2m", "euler", "heun"):
        errors = []
        for steps in (10, 20, 50):
            out = sample(oracle, (2, 1), schedule, method=method, steps=steps, x_T=x_T, **F64)
            b, a = float(out[0]), float(out[1] - out[0])  # output = a x_T + b exactly
            errors.append((abs(a) / s - 1, b - mu))
            outputs[method, steps] = out
        text = ", ".join(f"{e:+.2%} / {m:+.4f}" for e, m in errors)
        print(f"{method:>8}: sd error / mean error at 10, 20, 50 steps: {text}")
        assert abs(errors[2][0]) < abs(errors[0][0]) and max(abs(m) for _, m in errors) < 0.02 * s
    # DDIM is Euler's method on the probability-flow ODE in x / sqrt(abar) against sigma
    # (Song et al. 2021, eq. 14; Karras et al. 2022, sec. 3): the same numbers
    same = max(float((outputs["ddim", k] - outputs["euler", k]).abs().max()) for k in (10, 20, 50))
    print(f"DDIM vs Euler, same steps: max |difference| {same:.1e}")
    assert same < 1e-10


def strided_ddpm(schedule: NoiseSchedule, oracle, mu: float, s: float) -> None:
    n, ratios = 20000, []
    for steps in (50, 250):
        g = torch.Generator().manual_seed(1)
        x = sample(oracle, (n, 1), schedule, method="ddpm", steps=steps, generator=g, **F64)
        ratios.append(float(x.std()) / s)
        print(
            f"DDPM, {steps} strided steps: mean {float(x.mean()):.3f} (data {mu}), "
            f"sd / data sd {ratios[-1]:.3f}"
        )
        assert abs(float(x.mean()) - mu) < 4 * s / math.sqrt(n)
    # the ancestral step draws from q(x_s | x_t, x0_hat) at x0_hat = E[x0 | x_t], which leaves
    # out the spread of x0 given x_t: too narrow at coarse strides, less so with more steps
    se = 2 / math.sqrt(2 * n)  # of the difference of two sd ratios
    assert ratios[0] < 1 and ratios[1] > ratios[0] + 4 * se


def guidance(schedule: NoiseSchedule) -> None:
    angles = torch.arange(6) * (2 * math.pi / 6)
    means = torch.stack([2.5 * angles.cos(), 2.5 * angles.sin()], 1)
    mixture = GaussianMixtureOracle(means, torch.full_like(means, 0.35), schedule)
    n, null = 4000, torch.tensor([6])  # label 6 = no class (the null condition)
    shares = []
    for w in (0.0, 1.0, 3.0):
        x = sample(
            cfg_denoiser(mixture, w, {"labels": null}),
            (n, 2),
            schedule,
            cond={"labels": torch.zeros(n, dtype=torch.long)},
            generator=torch.Generator().manual_seed(2),
            **F64,
        )
        nearest = torch.cdist(x, means.double()).argmin(1)
        shares.append(float((nearest == 0).float().mean()))
    print(
        "share of samples in class 0 at guidance 0, 1, 3: " + ", ".join(f"{v:.3f}" for v in shares)
    )
    assert abs(shares[0] - 1 / 6) < 4 * math.sqrt(1 / 6 * 5 / 6 / n)  # unconditional
    assert shares[1] > 0.97 and shares[2] >= shares[1]


def inversion(schedule: NoiseSchedule, oracle) -> None:
    x0 = oracle.sample_data(8, torch.Generator().manual_seed(3))  # exact data samples
    errors = []
    for steps in (50, 250):
        noise = ddim_invert(oracle, x0, schedule, steps=steps, progress=False)
        again = sample(oracle, (8, 1), schedule, method="ddim", steps=steps, x_T=noise, **F64)
        errors.append(float((again - x0).abs().max()))
    print(
        f"DDIM inversion, data -> noise -> data: max |difference| {errors[0]:.1e} at 50 "
        f"steps, {errors[1]:.1e} at 250"
    )
    assert errors[1] < errors[0] / 2  # the round trip is exact as the steps shrink


def main() -> None:
    schedule = NoiseSchedule("linear", 1000)
    mu, s = 1.0, 0.5
    oracle = gaussian_oracle(torch.tensor([mu]), torch.tensor([s]), schedule, prediction="eps")
    cost(schedule, oracle)
    exact_error(schedule, oracle, mu, s)
    strided_ddpm(schedule, oracle, mu, s)
    guidance(schedule)
    inversion(schedule, oracle)


if __name__ == "__main__":
    main()
