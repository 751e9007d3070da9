"""``synesthesia oracle``: the samplers and guidance on an exact Gaussian-mixture denoiser.

A teaching demo that needs no training: the data are a class-conditional 2-D mixture, the
denoiser is the exact posterior mean, and the figure shows what each sampler makes of it at a
given number of denoiser evaluations, and what classifier-free guidance does to one class.
"""

from __future__ import annotations

import argparse

from synesthesia.commands import CommandError
from synesthesia.commands._shared import (
    count_up_to,
    guidance_float,
    output_file,
    positive_int,
    seed_int,
)

#: Samples per panel at most: the oracle holds a few (n x 6 x 2) float64 tables per call and
#: matplotlib draws every point, so a million points is already a minutes-long figure.
MAX_N = 1_000_000
#: The demo's schedule has 1,000 timesteps: no sampler can take more steps.
MAX_STEPS = 1000


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``oracle``."""
    p = subparsers.add_parser(
        "oracle",
        help="sampler and guidance demo on an exact Gaussian-mixture denoiser (no training)",
        description=__doc__,
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        default=20,
        help=f"denoiser evaluations per sampler, at most {MAX_STEPS} (heun takes the most steps "
        "that fit; default 20)",
    )
    p.add_argument(
        "--n",
        type=count_up_to(MAX_N),
        default=2000,
        help=f"samples per panel (default 2000, at most {MAX_N:,})",
    )
    p.add_argument(
        "--guidance",
        type=guidance_float,
        nargs="+",
        default=[0.0, 1.0, 3.0],
        help="classifier-free guidance scales w in [0, 100] of the second row (default 0 1 3)",
    )
    p.add_argument("--seed", type=seed_int, default=0, help="random seed (0 .. 2**63 - 1)")
    p.add_argument(
        "--out",
        type=output_file(".png"),
        default="runs/oracle/samplers.png",
        help="PNG to write (checked before any work)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Draw the figure into ``args.out``."""
    n, out = args.n, args.out
    if args.steps > MAX_STEPS:
        raise CommandError(
            f"--steps: at most {MAX_STEPS} (the schedule's timesteps), got {args.steps}"
        )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from synesthesia.diffusion import (
        METHODS,
        CountingDenoiser,
        GaussianMixtureOracle,
        NoiseSchedule,
        cfg_denoiser,
        sample,
        steps_for_nfe,
    )

    angles = torch.arange(6) * (2 * torch.pi / 6)
    means = torch.stack([2.5 * angles.cos(), 2.5 * angles.sin()], 1)
    stds = torch.full_like(means, 0.35)
    schedule = NoiseSchedule("linear", 1000)
    oracle = GaussianMixtureOracle(means, stds, schedule, prediction="eps")
    truth = oracle.sample_data(n, torch.Generator().manual_seed(args.seed))

    ncols = max(len(METHODS) + 1, len(args.guidance))
    fig, axes = plt.subplots(2, ncols, figsize=(2.6 * ncols, 5.6), squeeze=False)
    try:
        for ax in axes.flat:
            ax.set_xlim(-4.2, 4.2), ax.set_ylim(-4.2, 4.2), ax.set_aspect("equal")
            ax.set_xticks([]), ax.set_yticks([])
        axes[0, 0].scatter(truth[:, 0], truth[:, 1], s=1, alpha=0.4, color="k")
        axes[0, 0].set_title("data (exact)", fontsize=9)
        for ax, method in zip(axes[0, 1:], METHODS):
            counter = CountingDenoiser(oracle)
            steps = steps_for_nfe(schedule, method, args.steps)
            x = sample(counter, (n, 2), schedule, method=method, steps=steps, progress=False,
                       generator=torch.Generator().manual_seed(args.seed),
                       dtype=torch.float64)  # fmt: skip
            ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.4)
            ax.set_title(f"{method}, {counter.calls} evals", fontsize=9)
        labels = torch.zeros(n, dtype=torch.long)
        null = torch.tensor([len(means)])
        for ax, w in zip(axes[1], args.guidance):
            guided = cfg_denoiser(oracle, w, {"labels": null})
            x = sample(guided, (n, 2), schedule, method="dpmpp_2m", steps=max(args.steps, 20),
                       cond={"labels": labels}, generator=torch.Generator().manual_seed(args.seed),
                       progress=False, dtype=torch.float64)  # fmt: skip
            ax.scatter(truth[:, 0], truth[:, 1], s=1, alpha=0.1, color="0.6")
            ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.5, color="C3")
            ax.set_title(f"class 0, guidance w={w:g}", fontsize=9)
        for ax in axes[1, len(args.guidance) :]:
            ax.axis("off")
        fig.suptitle(
            f"Samplers at {args.steps} denoiser evaluations on an exact denoiser; "
            "classifier-free guidance"
        )
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110, format="png")
    finally:
        plt.close(fig)
    print(f"wrote {out}")
    return 0
