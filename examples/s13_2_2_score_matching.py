"""Section 13.2.2: denoising score matching: what the noise-prediction loss learns.

About ten seconds on one CPU thread (a small MLP trains for ``--steps``).

1. For data from a Gaussian mixture the noisy marginal ``p_t`` is known exactly: the mixture
   of ``N(a m_k, a^2 v_k + s^2)`` with ``a = sqrt(abar_t)``, ``s = sqrt(1 - abar_t)``. Its score
   ``grad log p_t``, by autograd through ``torch.distributions``, equals ``-eps*(x_t) / s``,
   where ``eps*`` is the library's exact denoiser (``GaussianMixtureOracle``, the posterior
   mean): the minimiser of the chapter's loss ``|eps_hat - eps|^2`` is the score, scaled
   (Vincent 2011; Tweedie's formula).
2. An MLP trained with ``diffusion_loss`` (the same loss, with the data and noise drawn for
   every step) approaches ``eps*``; on shared draws its loss exceeds the exact denoiser's
   loss by its mean squared distance to ``eps*`` (Vincent 2011, eq. 11: denoising score
   matching equals explicit score matching plus a constant), within Monte-Carlo error.

For real quality: a network matched to the data (a U-Net for images) and many more steps;
the identities checked here do not change.

    python examples/s13_2_2_score_matching.py [--steps 600]
"""

from __future__ import annotations

import argparse

import torch
from torch import distributions as D
from torch import nn

from synesthesia.diffusion import GaussianMixtureOracle, NoiseSchedule, diffusion_loss
from synesthesia.nets.layers import timestep_embedding
from synesthesia.nets.mlp import MLP, MLPConfig

MEANS = torch.tensor([[-2.0, -2.0], [-2.0, 2.0], [2.0, -2.0], [2.0, 2.0]], dtype=torch.float64)
STDS = torch.full_like(MEANS, 0.4)


class TimeMLP(nn.Module):
    """An eps-predicting denoiser: the library's MLP on (x_t, sinusoidal features of t)."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = MLP(MLPConfig(in_dim=2 + 32, out_dim=2, hidden=128, depth=3))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([x, timestep_embedding(t, 32)], dim=1))


def exact_score(x: torch.Tensor, abar: float) -> torch.Tensor:
    """grad_x log p_t(x) of the noisy mixture, by autograd (float64)."""
    a, s2 = abar**0.5, 1.0 - abar
    components = D.Independent(D.Normal(a * MEANS, (a * a * STDS**2 + s2).sqrt()), 1)
    p_t = D.MixtureSameFamily(
        D.Categorical(torch.full((4,), 0.25, dtype=torch.float64)), components
    )
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(p_t.log_prob(x).sum(), x)
    return grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="training steps of the MLP")
    parser.add_argument("--n", type=int, default=20000, help="Monte-Carlo draws of the check")
    args = parser.parse_args()
    schedule = NoiseSchedule("linear", 1000)
    oracle = GaussianMixtureOracle(MEANS, STDS, schedule, prediction="eps")
    g = torch.Generator().manual_seed(0)

    # 1. the exact denoiser is the score of p_t, scaled by -1/s
    for t in (50, 300, 700):
        abar = float(schedule.alphas_cumprod[t])
        x = torch.randn(500, 2, generator=g, dtype=torch.float64) * 3
        eps = oracle(x, torch.full((500,), float(t), dtype=torch.float64))
        score = exact_score(x, abar)
        err = ((-eps / (1 - abar) ** 0.5 - score).abs().max() / score.abs().max()).item()
        print(f"t={t}: -eps*/s vs autograd score of p_t: max relative difference {err:.1e}")
        assert err < 1e-9

    # 2. denoising score matching with a network
    torch.manual_seed(0)
    net = TimeMLP()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    for _ in range(args.steps):
        x0 = oracle.sample_data(512, g).float()
        loss = diffusion_loss(net, x0, schedule, prediction="eps", generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()

    x0 = oracle.sample_data(args.n, g).float()
    t = torch.randint(0, 1000, (args.n,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    shared = dict(schedule=schedule, prediction="eps", t=t, noise=noise, reduction="none")
    with torch.no_grad():
        loss_net = diffusion_loss(net, x0, **shared)
        loss_exact = diffusion_loss(oracle, x0, **shared)
        x_t = schedule.q_sample(x0, t, noise)
        pred, best = net(x_t, t.float()), oracle(x_t, t.float())
    distance = (pred - best).pow(2).mean(1)  # what the network still misses of eps*
    cross = loss_net - loss_exact - distance  # 2 <f - eps*, eps* - eps>: mean zero
    se = cross.std() / args.n**0.5
    zero = best.pow(2).mean(1).mean()  # distance of the zero predictor to eps*
    print(
        f"loss: network {loss_net.mean():.4f}, exact denoiser {loss_exact.mean():.4f}; "
        f"excess {(loss_net - loss_exact).mean():.4f} = distance to eps* "
        f"{distance.mean():.4f} + {cross.mean():+.4f} (Monte-Carlo se {se:.4f})"
    )
    print(f"distance to eps*: network {distance.mean():.4f}, predicting zero {zero:.4f}")
    assert abs(cross.mean()) < 4 * se
    assert loss_exact.mean() < loss_net.mean() and distance.mean() < 0.1 * zero


if __name__ == "__main__":
    main()
