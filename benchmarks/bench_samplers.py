"""Quality per denoiser evaluation of every sampler, on an exact Gaussian-mixture oracle.

The data are a 2-D mixture of three Gaussians with different means and spreads. The oracle is
the exact denoiser E[x0 | x_t], so every error left in the samples is the sampler's own
(discretisation), plus the Monte-Carlo floor of a finite sample, which is measured too.
Two errors are reported:

- W1: the per-dimension 1-Wasserstein distance between the samples and the exact marginal
  (sorted samples against the exact quantile function), averaged over dimensions;
- path: for deterministic samplers, the RMS distance of each sample from the converged solution
  of the probability-flow ODE from the same starting noise (DPM-Solver++(2M), 1000 steps,
  Karras spacing); no Monte-Carlo floor.

Each cell's steps are the most that fit in the target number of evaluations
(:func:`synesthesia.diffusion.steps_for_nfe`), and the evaluations are counted by wrapping the
oracle in :class:`synesthesia.diffusion.CountingDenoiser`, never computed from a formula.
The Monte-Carlo floor is the W1 of ``--floor-repeats`` exact samples of the same size (mean and
standard deviation). Everything goes into ``--json`` with the machine record; the table in
``--results`` (between its ``<!-- table -->`` markers) is rendered from that JSON.

    .venv/bin/python benchmarks/bench_samplers.py [--n 50000] [--json benchmarks/out/samplers.json]
    .venv/bin/python benchmarks/bench_samplers.py --render-only   # redraw the table from the JSON
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

from synesthesia.diffusion import (
    CountingDenoiser,
    GaussianMixtureOracle,
    NoiseSchedule,
    count_nfe,
    gaussian_oracle,
    sample,
    steps_for_nfe,
)
from synesthesia.training.machine import CpuWallClock, machine_record

MEANS = torch.tensor([[-2.0, 0.0], [1.5, 1.5], [1.0, -2.0]])
STDS = torch.tensor([[0.3, 0.6], [0.8, 0.2], [0.5, 0.5]])
WEIGHTS = torch.tensor([0.5, 0.3, 0.2])
NFES = (5, 10, 20, 50, 100, 1000)
VARIANTS = (
    ("ddpm", False),
    ("ddim", False),
    ("ddim", True),
    ("dpmpp_2m", False),
    ("dpmpp_2m", True),
    ("euler", True),
    ("heun", False),
    ("heun", True),
)
GAUSS_STDS = (0.3, 0.5, 1.0, 2.0)
BEGIN, END = "<!-- table: begin (bench_samplers.py --render-only) -->", "<!-- table: end -->"


def exact_quantiles(n: int) -> torch.Tensor:
    """The exact marginal quantiles at (i - 1/2)/n, i = 1..n, per dimension (n x 2)."""
    cols = []
    for d in range(MEANS.shape[1]):
        m, s, w = MEANS[:, d].double(), STDS[:, d].double(), WEIGHTS.double() / WEIGHTS.sum()
        grid = torch.linspace(float((m - 8 * s).min()), float((m + 8 * s).max()), 400_001,
                              dtype=torch.float64)  # fmt: skip
        cdf = (w * torch.special.ndtr((grid[:, None] - m) / s)).sum(1)
        u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        cols.append(torch.from_numpy(np.interp(u.numpy(), cdf.numpy(), grid.numpy())))
    return torch.stack(cols, 1)


def w1(x: torch.Tensor, quantiles: torch.Tensor) -> float:
    """Mean over dimensions of the 1-Wasserstein distance of the sample to the exact marginal."""
    return (torch.sort(x, dim=0).values - quantiles).abs().mean(0).mean().item()


def gaussian_spread(n: int, schedule: NoiseSchedule, steps=(100, 1000)) -> list[dict]:
    """Std of the samples / true std for 1-D Gaussian data N(0, s^2), per sampler and steps.

    DDPM's reverse kernel uses the posterior variance of q(x_s | x_t, x0) at the point
    estimate x0_hat, which leaves out Var[x0 | x_t] (Bao et al. 2022, Analytic-DPM, Theorem 1):
    its samples come out too narrow even at 1000 steps; deterministic samplers do not.
    """
    stds = torch.tensor(GAUSS_STDS, dtype=torch.float64)
    oracle = gaussian_oracle(torch.zeros_like(stds), stds, schedule, "eps")
    x_T = torch.randn(n, len(stds), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    rows = []
    for method in ("ddpm", "ddim"):
        for k in steps:
            x = sample(oracle, x_T.shape, schedule, method=method, steps=k, x_T=x_T,
                       generator=torch.Generator().manual_seed(4), progress=False,
                       dtype=torch.float64)  # fmt: skip
            ratio = (x.std(0) / stds).tolist()
            rows.append({"method": method, "steps": k, "n": n, "std": list(GAUSS_STDS),
                         "std_ratio": ratio, "se_of_ratio": (1 / (2 * n)) ** 0.5})  # fmt: skip
            print(f"gaussian {method} {k} steps: std ratio {[f'{r:.4f}' for r in ratio]}")
    return rows


def measure(n: int, schedule_name: str, floor_repeats: int, gauss_n: int, note: str = "") -> dict:
    """Run every variant at every target NFE; the result as a JSON-able dict."""
    schedule = NoiseSchedule(schedule_name, 1000)
    oracle = GaussianMixtureOracle(MEANS, STDS, schedule, WEIGHTS, prediction="eps")
    g = torch.Generator().manual_seed(0)
    quantiles = exact_quantiles(n)
    floors = [w1(oracle.sample_data(n, g), quantiles) for _ in range(floor_repeats)]
    x_T = torch.randn(n, 2, generator=g, dtype=torch.float64)

    def run(method: str, steps: int, karras: bool) -> tuple[torch.Tensor, int]:
        counter = CountingDenoiser(oracle)
        x = sample(counter, (n, 2), schedule, method=method, steps=steps, karras=karras,
                   generator=torch.Generator().manual_seed(1), x_T=x_T, progress=False,
                   dtype=torch.float64)  # fmt: skip
        if counter.calls != count_nfe(schedule, method, steps, karras=karras):
            raise RuntimeError(f"{method}: counted {counter.calls} calls, count_nfe disagrees")
        return x, counter.calls

    with CpuWallClock() as clock:
        ode, _ = run("dpmpp_2m", 1000, True)
        rows = []
        for method, karras in VARIANTS:
            for target in NFES:
                steps = steps_for_nfe(schedule, method, target, karras=karras)
                x, calls = run(method, steps, karras)
                path = None if method == "ddpm" else (x - ode).pow(2).sum(1).mean().sqrt().item()
                rows.append({"method": method, "spacing": "karras" if karras else "trailing",
                             "target_nfe": target, "steps": steps, "nfe": calls,
                             "w1": w1(x, quantiles), "path": path})  # fmt: skip
                print(f"{method:9s} {rows[-1]['spacing']:8s} nfe {calls:4d} ({steps:4d} steps): "
                      f"W1 {rows[-1]['w1']:.4f}", flush=True)  # fmt: skip
        gaussian = gaussian_spread(gauss_n, schedule)
    return {
        "command": shlex.join(["benchmarks/bench_samplers.py", *sys.argv[1:]]),
        "n": n,
        "schedule": schedule_name,
        "num_timesteps": 1000,
        "reference": "dpmpp_2m, 1000 steps, karras",
        "note": note,
        "floor": {
            "repeats": floor_repeats,
            "w1": floors,
            "mean": statistics.mean(floors),
            "sd": statistics.stdev(floors) if len(floors) > 1 else None,
        },  # fmt: skip
        "rows": rows,
        "gaussian_spread": gaussian,
        "clock": {"cpu_s": clock.cpu_s, "wall_s": clock.wall_s, "cpu_per_wall": clock.ratio},
        "machine": machine_record(precision="fp64", cpu_wall=clock.ratio),
    }


def render(result: dict, json_path: str) -> str:
    """The markdown table (and its caption) of a :func:`measure` result."""
    floor, clock, machine = result["floor"], result["clock"], result["machine"]
    run = f"bench_samplers.py --n {result['n']} --schedule {result['schedule']}"
    lines = [
        f"Measured by `{run}` (the full command line is in the JSON) into `{json_path}`: "
        f"n = {result['n']:,} samples per cell, {result['schedule']} schedule "
        f"(T = {result['num_timesteps']}), on {machine['cpu_model']} "
        f"({machine['torch_cpu_capability']}, {machine['threads']} thread), float64; wall "
        f"{clock['wall_s']:.0f} s, CPU {clock['cpu_s']:.0f} s (CPU/wall "
        f"{clock['cpu_per_wall']:.2f}). Monte-Carlo floor: W1 of an exact sample of the same "
        f"size, **{floor['mean']:.4f} +- {floor['sd']:.4f}** (mean +- sd over "
        f"{floor['repeats']} samples)."
        + (f" Note recorded with the run: {result['note']}." if result.get("note") else ""),
        "",
        "| sampler | spacing | " + " | ".join(f"NFE <= {n}" for n in NFES) + " |",
        "|---|---|" + "---|" * len(NFES),
    ]
    for method, karras in VARIANTS:
        spacing = "karras" if karras else "trailing"
        cells = []
        for target in NFES:
            (row,) = [r for r in result["rows"] if r["method"] == method
                      and r["spacing"] == spacing and r["target_nfe"] == target]  # fmt: skip
            path = "" if row["path"] is None else f" / {row['path']:.3f}"
            cells.append(f"{row['w1']:.4f}{path} ({row['nfe']})")
        lines.append(f"| {method} | {spacing} | {' | '.join(cells)} |")
    lines += [
        "",
        "Cells: W1 / path error (denoiser calls counted in that run). The path reference is "
        f"{result['reference']}, so its own path error is 0 by construction.",
    ]
    gauss = result.get("gaussian_spread")
    if gauss:
        lines += [
            "",
            f"Spread on 1-D Gaussian data N(0, s^2), same schedule, n = {gauss[0]['n']:,} "
            "(one x_T for all rows): sample std / s; the standard error of each ratio, "
            f"from the finite sample, is {gauss[0]['se_of_ratio']:.4f}.",
            "",
            "| sampler | steps | " + " | ".join(f"s = {v:g}" for v in gauss[0]["std"]) + " |",
            "|---|---|" + "---|" * len(gauss[0]["std"]),
        ]
        for row in gauss:
            cells = " | ".join(f"{r:.4f}" for r in row["std_ratio"])
            lines.append(f"| {row['method']} | {row['steps']} | {cells} |")
    return "\n".join(lines)


def write_results(result: dict, json_path: str, results_path: str) -> None:
    """Replace the table between the markers of ``results_path`` (or create the file)."""
    table = f"{BEGIN}\n{render(result, json_path)}\n{END}"
    path = Path(results_path)
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: table, text,
                      flags=re.S)  # fmt: skip
    else:
        text = f"# Sampler quality per denoiser evaluation\n\n{table}\n"
    path.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000, help="samples per run")
    ap.add_argument("--schedule", default="linear", choices=["linear", "cosine", "sigmoid"])
    ap.add_argument("--floor-repeats", type=int, default=5, help="exact samples for the floor")
    ap.add_argument("--gauss-n", type=int, default=200_000, help="samples, Gaussian spread")
    ap.add_argument("--note", default="", help="a remark stored in the JSON (e.g. contention)")
    ap.add_argument("--json", default="benchmarks/out/samplers.json")
    ap.add_argument("--results", default="benchmarks/RESULTS-samplers.md")
    ap.add_argument("--render-only", action="store_true", help="redraw the table from --json")
    args = ap.parse_args()
    if args.render_only:
        result = json.loads(Path(args.json).read_text())
    else:
        torch.set_num_threads(1)
        result = measure(args.n, args.schedule, args.floor_repeats, args.gauss_n, args.note)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    write_results(result, args.json, args.results)
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
