"""Benchmark of synesthesia.probes: the brain's paradigms on trained networks (issue 13).

    .venv/bin/python benchmarks/bench_probes.py --stage ventriloquist|flash|mcgurk|enhancement|all
        [--p-train 0.1 0.3 0.5 0.7 0.9] [--trials 100] [--steps 3000] [--out benchmarks/out]

Stage ``ventriloquist``: one localisation network per p_train, trained on fresh scenes, probed
with the Koerding et al. 2007 design; causal inference (averaging; at the middle p_train also
selection and matching), forced fusion and full segregation fitted to its button reports by
maximum likelihood. Side by side, the same probe and fits on the ideal observer of the same world
(the causal-inference observer with the codes' Cramer-Rao noise, the scenes' prior and p_common =
p_train; no training), so that a gap between network and ideal is the network's, not the fit's.

Stage ``flash``: one counting network trained on mostly congruent pulse trains, probed with
1-3 flashes x 1-3 beeps at each training visual noise level; the numerosity causal-inference
model and segregation fitted at each level; the fission and fusion illusion rates.

Stage ``mcgurk``: one syllable network (eSpeak ba/da/ga, rendered mouths) trained on congruent
pairs; every auditory-visual pair of held-out clips at each auditory noise level; FLMP and the
causal-inference speech model fitted to the counts.

Stage ``enhancement``: a ``synesthesia train clip`` checkpoint (``--checkpoint``) names the
validation digits zero-shot from noisy images, noisy speech (held-out voices) and both (unit
embeddings summed), on a 6 x 6 noise grid, next to the m-alternative ML prediction.

Writes benchmarks/out/probes/<stage>.json (and .png) with the machine record and the
process CPU time / wall time of the whole stage and of each network's training and fits; the
issue's target is at most 10 minutes per probe on 2 cores, training included.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from synesthesia.brain.paradigms import full_design
from synesthesia.probes.runner import ObserverResponder, fit_models, run_paradigm
from synesthesia.probes.ventriloquist import (
    VentriloquistConfig,
    human_reference,
    ideal_observer,
    probe_network,
    train_localiser,
)
from synesthesia.training.machine import CpuWallClock, machine_record


def ventriloquist_stage(args: argparse.Namespace) -> dict:
    """Networks and ideal observers at each p_train: fitted p_common, BIC comparison, timing."""
    config = VentriloquistConfig(steps=args.steps)
    middle = min(args.p_train, key=lambda p: abs(p - 0.5))
    rows, probes = [], []
    for i, p in enumerate(args.p_train):
        models = ("averaging", "fusion", "segregation")
        if p == middle:
            models = ("averaging", "selection", "matching", "fusion", "segregation")
        with CpuWallClock() as train_clock:
            trained = train_localiser(p, config, seed=args.seed + 1000 * i, progress=False)
        with CpuWallClock() as probe_clock:
            probe = probe_network(trained, args.trials, models=models, seed=args.seed + i)
        # the ideal observer of the same world on the same design (no training)
        with CpuWallClock() as ideal_clock:
            ideal = ideal_observer(config, p)
            lv = probe.levels
            trials = run_paradigm(
                ObserverResponder(ideal), full_design(lv, lv), args.trials, levels=lv, seed=i
            )
            ideal_cmp = fit_models(trials, lv, ("averaging", "fusion", "segregation"))
        ideal_fit = ideal_cmp.fits["averaging"]
        est, se = probe.p_common
        row = {
            "p_train": p,
            "network": {
                "p_common": est,
                "p_common_se": se,
                "params": probe.comparison.fits["averaging"].params,
                "se": probe.comparison.fits["averaging"].se,
                "best_by_bic": probe.comparison.best,
                "dbic_vs_fusion": probe.comparison.delta_bic("averaging", "fusion"),
                "dbic_vs_segregation": probe.comparison.delta_bic("averaging", "segregation"),
                "ranking": probe.comparison.rows,
                "final_loss_mean_last_100": float(np.mean(trained.losses[-100:])),
                "train_wall_s": train_clock.wall_s,
                "train_cpu_wall": train_clock.ratio,
                "probe_and_fit_wall_s": probe_clock.wall_s,
                "probe_cpu_wall": probe_clock.ratio,
            },
            "ideal_observer": {
                "true": ideal.params(),
                "p_common": ideal_fit.params["p_common"],
                "p_common_se": ideal_fit.se.get("p_common"),
                "params": ideal_fit.params,
                "dbic_vs_fusion": ideal_cmp.delta_bic("averaging", "fusion"),
                "dbic_vs_segregation": ideal_cmp.delta_bic("averaging", "segregation"),
                "fit_wall_s": ideal_clock.wall_s,
            },
            "probe": probe.to_dict(),
        }
        rows.append(row)
        probes.append(probe)
        n = row["network"]
        print(
            f"p_train {p:.2f}: network p_common {est:.3f} +- {se:.3f} "
            f"(ideal {row['ideal_observer']['p_common']:.3f}); dBIC vs fusion "
            f"{n['dbic_vs_fusion']:.1f}, vs segregation {n['dbic_vs_segregation']:.1f}; "
            f"best {n['best_by_bic']}; train {train_clock.wall_s:.0f} s, fits "
            f"{probe_clock.wall_s:.0f} s",
            flush=True,
        )
    _figure(probes, rows, args.out / "probes" / f"ventriloquist{args.tag}.png")
    return {"config": config.to_dict(), "trials_per_condition": args.trials, "rows": rows}


def _figure(probes, rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synesthesia.probes.plots import plot_network_bias, plot_p_common_vs_p_train
    from synesthesia.probes.ventriloquist import Sweep

    middle = min(probes, key=lambda p: abs(p.p_train - 0.5))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    plot_network_bias(middle, human_reference(middle.levels), ax=a1)
    plot_p_common_vs_p_train(Sweep(probes), ax=a2)
    x = [r["p_train"] for r in rows]
    a2.plot(x, [r["ideal_observer"]["p_common"] for r in rows], "s", mfc="none",
            label="ideal observer, fitted")  # fmt: skip
    a2.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def flash_stage(args: argparse.Namespace) -> dict:
    """One counting network; the illusion and the numerosity fits at each visual noise level."""
    from synesthesia.probes.flash import FlashConfig, probe_counter, train_counter

    config = FlashConfig(steps=args.steps)
    with CpuWallClock() as train_clock:
        trained = train_counter(config, seed=args.seed)
    with CpuWallClock() as probe_clock:
        levels = probe_counter(trained, None, args.trials, seed=args.seed)
    for lv in levels:
        p = lv.comparison.fits["averaging"].params
        print(
            f"noise_v {lv.noise_v:.2f}: fission {lv.fission:.3f} (fit {lv.fitted_fission:.3f}), "
            f"fusion {lv.fusion:.3f} (fit {lv.fitted_fusion:.3f}); sigma_v {p['sigma_v']:.3f}, "
            f"p_common {p['p_common']:.3f}; congruent accuracy {lv.accuracy_congruent:.3f}",
            flush=True,
        )
    _flash_figure(levels, args.out / "probes" / f"flash{args.tag}.png")
    return {
        "config": config.to_dict(),
        "trials_per_condition": args.trials,
        "final_loss_mean_last_100": float(np.mean(trained.losses[-100:])),
        "train_wall_s": train_clock.wall_s,
        "train_cpu_wall": train_clock.ratio,
        "probe_and_fit_wall_s": probe_clock.wall_s,
        "probe_cpu_wall": probe_clock.ratio,
        "levels": [lv.to_dict() for lv in levels],
    }


def _flash_figure(levels, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synesthesia.probes.plots import plot_flash_reports, plot_flash_trend

    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(14, 3.8))
    plot_flash_trend(levels, ax=a1)
    plot_flash_reports(levels[0], ax=a2)
    plot_flash_reports(levels[-1], ax=a3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def mcgurk_stage(args: argparse.Namespace) -> dict:
    """One syllable network on congruent pairs; counts, FLMP and causal inference per noise."""
    from synesthesia.probes.mcgurk import McGurkConfig, audio_bank, probe_mcgurk, train_syllable_net

    config = McGurkConfig(seed=args.seed, steps=args.mcgurk_steps, n_per=args.mcgurk_clips)
    with CpuWallClock() as synth_clock:
        bank = audio_bank(config)
    with CpuWallClock() as train_clock:
        trained = train_syllable_net(config, bank)
    rows = []
    with CpuWallClock() as probe_clock:
        for a in args.noise_a:
            pr = probe_mcgurk(trained, a, args.mcgurk_trials, seed=args.seed)
            d = pr.to_dict()
            rows.append(d)
            r = d["rates"]
            print(
                f"noise_a {a:g}: A-ba/V-ga -> da {r['ba+ga->da']:.3f}, A-ga/V-ba -> da "
                f"{r['ga+ba->da']:.3f}, congruent {r['congruent_accuracy']:.3f}; BIC FLMP "
                f"{d['flmp']['bic']:.1f}, CI {d['causal_inference']['bic']:.1f}",
                flush=True,
            )
    return {
        "config": config.to_dict(),
        "trials_per_pair": args.mcgurk_trials,
        "audio_bank_wall_s": synth_clock.wall_s,
        "train_wall_s": train_clock.wall_s,
        "train_cpu_wall": train_clock.ratio,
        "final_loss_mean_last_100": float(np.mean(trained.losses[-100:])),
        "probe_and_fit_wall_s": probe_clock.wall_s,
        "probes": rows,
    }


def enhancement_stage(args: argparse.Namespace) -> dict:
    """Zero-shot digits from noisy images, noisy speech and both on a clip checkpoint."""
    from synesthesia.probes.enhancement import checkpoint_model, probe_digit_world

    model = checkpoint_model(args.checkpoint)
    with CpuWallClock() as probe_clock:  # the world (cached speech) and the probe
        res = probe_digit_world(model, seed=args.seed)
    print(f"inverse effectiveness: {res.inverse_effectiveness()}", flush=True)
    return {
        "checkpoint": str(args.checkpoint),
        "probe_wall_s": probe_clock.wall_s,
        "probe_cpu_wall": probe_clock.ratio,
        **res.to_dict(),
    }


STAGES = {
    "ventriloquist": ventriloquist_stage,
    "flash": flash_stage,
    "mcgurk": mcgurk_stage,
    "enhancement": enhancement_stage,
}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen stages; one JSON per stage."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stage", choices=(*STAGES, "all"), default="ventriloquist")
    p.add_argument("--p-train", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7, 0.9])
    p.add_argument("--trials", type=int, default=100, help="probe trials per condition")
    p.add_argument("--steps", type=int, default=3000, help="training steps per network")
    p.add_argument("--noise-a", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    p.add_argument("--mcgurk-trials", type=int, default=200, help="trials per A-V pair")
    p.add_argument("--mcgurk-steps", type=int, default=2000)
    p.add_argument("--mcgurk-clips", type=int, default=400, help="clips per syllable")
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=Path("runs/bench_clip/A/checkpoint"),
        help="clip checkpoint of the enhancement stage",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    p.add_argument("--tag", default="", help="suffix of the JSON name (e.g. _smoke)")
    args = p.parse_args(argv)
    for stage in STAGES if args.stage == "all" else (args.stage,):
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with CpuWallClock() as clock:
            result = STAGES[stage](args)
        record = machine_record(
            precision="no",
            cpu_wall=clock.ratio,
            cpu_s=clock.cpu_s,
            wall_s=clock.wall_s,
            torch_threads=torch.get_num_threads(),
            omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
        )
        data = {
            "stage": stage,
            "started_utc": started,
            "argv": sys.argv[1:],
            "machine": record,
            "target_wall_s": 600.0,  # issue 13: each probe, training included, <= 10 minutes
            "within_target": clock.wall_s <= 600.0,
            **result,
        }
        out = args.out / "probes" / f"{stage}{args.tag}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=1, allow_nan=True) + "\n")
        print(f"{stage}: wall {clock.wall_s:.0f} s, CPU/wall {clock.ratio:.2f}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
