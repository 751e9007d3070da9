"""Section 13.2.1: the forward process and its reverse, checked against their closed forms.

No training; a few seconds on one CPU thread.

1. The marginal ``q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)`` uses the cumulative
   product ``abar_t = prod_{s<=t} (1 - beta_s)``: the schedule's table against the product
   taken here, then ``t + 1`` single steps ``q(x_s | x_{s-1})`` (``schedule.q_step``) against
   one jump (``schedule.q_sample``): the same mean and variance within Monte-Carlo error and
   the same distribution by a two-sample Kolmogorov-Smirnov test. The chapter's sketch scales
   by ``alpha_t`` alone; its noise level is printed beside the right one.
2. The reverse step's target, the posterior ``q(x_{t-1} | x_t, x_0)``
   (``schedule.posterior``), against Bayes' rule for two Gaussians written out here.
3. Run backwards (DDPM ancestral sampling, every one of the 1,000 steps, as in the chapter)
   with the exact denoiser of Gaussian data, noise becomes the data distribution again.

Every number here is exact or Monte Carlo; for smaller Monte-Carlo error raise ``--n``
(nothing else changes for "real quality": a trained network replaces the exact denoiser).

    python examples/s13_2_1_forward_reverse.py [--n 20000]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from scipy import stats

from synesthesia.diffusion import NoiseSchedule, gaussian_oracle, sample


def forward_marginal(schedule: NoiseSchedule, n: int, t: int) -> None:
    betas = np.linspace(1e-4, 0.02, schedule.num_timesteps)  # Ho et al. 2020, sec. 4
    abar_here = np.cumprod(1.0 - betas)  # Ho et al. 2020, eq. 4: the cumulative product
    abar = schedule.alphas_cumprod.numpy()
    print(f"abar table vs the product here: max |difference| {np.abs(abar - abar_here).max():.1e}")
    assert np.allclose(abar, abar_here, rtol=1e-12, atol=0)

    g = torch.Generator().manual_seed(0)
    x0 = torch.full((n, 1), 1.5, dtype=torch.float64)

    def noise() -> torch.Tensor:
        return torch.randn(x0.shape, generator=g, dtype=x0.dtype)

    stepped = x0.clone()
    for s in range(t + 1):  # x_0 -> x_1 -> ...: one q_step at each of the timesteps 0..t
        stepped = schedule.q_step(stepped, torch.full((n,), s), noise())
    jumped = schedule.q_sample(x0, torch.full((n,), t), noise())
    mean, var = math.sqrt(abar[t]) * 1.5, 1.0 - abar[t]
    se_mean, se_var = math.sqrt(var / n), var * math.sqrt(2.0 / (n - 1))
    for name, x in (("t+1 single steps", stepped), ("one jump", jumped)):
        m, v = float(x.mean()), float(x.var())
        print(f"{name:>16}: mean {m:.4f} (closed form {mean:.4f}), var {v:.4f} ({var:.4f})")
        assert abs(m - mean) < 4 * se_mean and abs(v - var) < 4 * se_var, name
    ks = stats.ks_2samp(stepped.ravel().numpy(), jumped.ravel().numpy())
    print(f"Kolmogorov-Smirnov, steps vs jump: p = {ks.pvalue:.3f}")
    assert ks.pvalue > 1e-3
    alpha_t = float(schedule.alphas[t])
    print(
        f"noise sd at t={t}: sqrt(1 - abar_t) = {math.sqrt(var):.3f}; the sketch's "
        f"sqrt(1 - alpha_t) = {math.sqrt(1 - alpha_t):.3f} (almost no noise)"
    )


def posterior_by_bayes(schedule: NoiseSchedule, t: int) -> None:
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(5, 3, generator=g, dtype=torch.float64)
    xt = torch.randn(5, 3, generator=g, dtype=torch.float64)
    mean, var, _ = schedule.posterior(x0, xt, torch.full((5,), t))
    a_t, b_t = float(schedule.alphas[t]), float(schedule.betas[t])
    abar_prev = float(schedule.alphas_cumprod[t - 1])
    # prior q(x_{t-1} | x_0) = N(sqrt(abar_{t-1}) x_0, 1 - abar_{t-1}) times the likelihood
    # q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t): precisions add (Bishop 2006, eq. 2.116)
    precision = 1.0 / (1.0 - abar_prev) + a_t / b_t
    weighted = math.sqrt(abar_prev) * x0 / (1 - abar_prev) + math.sqrt(a_t) * xt / b_t
    mean_here = weighted / precision
    print(
        f"posterior at t={t} vs Bayes' rule: mean {(mean - mean_here).abs().max():.1e}, "
        f"variance {abs(float(var[0, 0]) - 1 / precision):.1e}"
    )
    assert torch.allclose(mean, mean_here, rtol=1e-12, atol=1e-12)
    assert abs(float(var[0, 0]) - 1.0 / precision) < 1e-12


def reverse(schedule: NoiseSchedule, n: int) -> None:
    mu, s = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 1.0])
    oracle = gaussian_oracle(mu, s, schedule, prediction="eps")  # exact E[eps | x_t]
    x = sample(
        oracle,
        (n, 2),
        schedule,
        method="ddpm",
        steps=schedule.num_timesteps,
        generator=torch.Generator().manual_seed(2),
        progress=False,
        dtype=torch.float64,
    )
    m, sd = x.mean(0), x.std(0)
    print(
        f"DDPM, {oracle.calls} steps, from pure noise: mean {m.numpy().round(3)} (data "
        f"{mu.numpy()}), sd {sd.numpy().round(3)} (data {s.numpy()})"
    )
    assert torch.all((m - mu).abs() < 4 * s / math.sqrt(n))
    # the ancestral step uses the posterior variance at x0_hat = E[x0 | x_t], which leaves the
    # samples a little narrow even at 1,000 steps (benchmarks/RESULTS-samplers.md): 3 % here
    assert torch.all((sd / s - 1).abs() < 0.03)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="Monte-Carlo samples")
    args = parser.parse_args()
    schedule = NoiseSchedule("linear", 1000)
    forward_marginal(schedule, args.n, t=500)
    posterior_by_bayes(schedule, t=300)
    reverse(schedule, args.n)


if __name__ == "__main__":
    main()
