"""``synesthesia oracle``: the samplers and guidance on an exact Gaussian-mixture denoiser.

A teaching demo that needs no training: the data are a class-conditional 2-D mixture, the
denoiser is the exact posterior mean, and the figure shows what each sampler makes of it at a
given number of steps, and what classifier-free guidance does to one class.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synesthesia.commands import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "oracle",
        help="sampler and guidance demo on an exact Gaussian-mixture denoiser (no training)",
        description=__doc__,
    )
    p.add_argument("--steps", type=int, default=20, help="sampler evaluations (default 20)")
    p.add_argument("--n", type=int, default=2000, help="samples per panel (default 2000)")
    p.add_argument("--guidance", type=float, nargs="+", default=[0.0, 1.0, 3.0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/oracle/samplers.png", help="PNG to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from synesthesia.diffusion import (
        METHODS,
        GaussianMixtureOracle,
        NoiseSchedule,
        cfg_denoiser,
        sample,
    )

    if args.n < 1 or args.steps < 1:
        raise CommandError("--n and --steps must be positive")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise CommandError(f"--out must name a .png file, got {out}")
    angles = torch.arange(6) * (2 * torch.pi / 6)
    means = torch.stack([2.5 * angles.cos(), 2.5 * angles.sin()], 1)
    stds = torch.full_like(means, 0.35)
    schedule = NoiseSchedule("linear", 1000)
    oracle = GaussianMixtureOracle(means, stds, schedule, prediction="eps")
    truth = oracle.sample_data(args.n, torch.Generator().manual_seed(args.seed))

    ncols = max(len(METHODS) + 1, len(args.guidance))
    fig, axes = plt.subplots(2, ncols, figsize=(2.6 * ncols, 5.6), squeeze=False)
    for ax in axes.flat:
        ax.set_xlim(-4.2, 4.2), ax.set_ylim(-4.2, 4.2), ax.set_aspect("equal")
        ax.set_xticks([]), ax.set_yticks([])
    axes[0, 0].scatter(truth[:, 0], truth[:, 1], s=1, alpha=0.4, color="k")
    axes[0, 0].set_title("data (exact)", fontsize=9)
    for ax, method in zip(axes[0, 1:], METHODS):
        oracle.calls = 0
        steps = max(1, (args.steps + 1) // 2) if method == "heun" else args.steps
        x = sample(oracle, (args.n, 2), schedule, method=method, steps=steps, progress=False,
                   generator=torch.Generator().manual_seed(args.seed),
                   dtype=torch.float64)  # fmt: skip
        ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.4)
        ax.set_title(f"{method}, {oracle.calls} evals", fontsize=9)
    labels = torch.zeros(args.n, dtype=torch.long)
    null = torch.tensor([len(means)])
    for ax, w in zip(axes[1], args.guidance):
        guided = cfg_denoiser(oracle, w, {"labels": null})
        x = sample(guided, (args.n, 2), schedule, method="dpmpp_2m", steps=max(args.steps, 20),
                   cond={"labels": labels}, generator=torch.Generator().manual_seed(args.seed),
                   progress=False, dtype=torch.float64)  # fmt: skip
        ax.scatter(truth[:, 0], truth[:, 1], s=1, alpha=0.1, color="0.6")
        ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.5, color="C3")
        ax.set_title(f"class 0, guidance w={w:g}", fontsize=9)
    for ax in axes[1, len(args.guidance) :]:
        ax.axis("off")
    fig.suptitle(f"Samplers at {args.steps} steps on an exact denoiser; classifier-free guidance")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}")
    return 0
