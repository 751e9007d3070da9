"""Benchmark of synesthesia.brain: accuracy of the closed forms and the quadrature, fitting
speed, and parameter recovery side by side with the PyPI package bcitoolbox (bench extra).

    .venv/bin/python benchmarks/bench_brain.py --stage closed|quadrature|timings|recovery|all
        [--subjects 20] [--bci-nsim 10000] [--mc 100000] [--out benchmarks/out]

Each stage writes benchmarks/out/brain_<stage>.json with the machine record (CPU model, torch
CPU capability, native bf16, threads, precision) and the stage's process CPU time / wall time;
RESULTS-brain.md cites these files. A CPU/wall ratio well below the number of threads in use
(fits run single-threaded) means the shared cores were contended.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from scipy import integrate, stats
from scipy.stats import norm

from synesthesia.brain import (
    KOERDING_2007,
    KOERDING_POSITIONS,
    CausalInference,
    fit_causal_inference,
    koerding_observer,
    simulate_trials,
)
from synesthesia.brain.paradigms import full_design
from synesthesia.training.machine import CpuWallClock, machine_record

PARAMS = ("sigma_v", "sigma_a", "sigma_p", "mu_p", "p_common")
BCI_NAMES = {
    "sigma_v": "sigma_visual",
    "sigma_a": "sigma_auditory",
    "sigma_p": "sigma_prior",
    "mu_p": "mu_prior",
    "p_common": "p_common",
}


def _brute(x: np.ndarray, sig: np.ndarray, sp: float, mp: float, pc: float) -> tuple:
    """p(x|C=1), p(x|C=2), p(C=1|x) and E[s_0|x] by scipy.quad in float64 (independent)."""
    q = {"epsabs": 0, "epsrel": 1e-12, "limit": 400}

    def joint(s):
        return np.prod(norm.pdf(x, s, sig)) * norm.pdf(s, mp, sp)

    def one(s, xi, si):
        return norm.pdf(xi, s, si) * norm.pdf(s, mp, sp)

    l1 = integrate.quad(joint, -300, 300, points=[mp, *x], **q)[0]
    m1 = integrate.quad(lambda s: s * joint(s), -300, 300, points=[mp, *x], **q)[0]
    l2 = 1.0
    for xi, si in zip(x, sig):
        l2 *= integrate.quad(one, -300, 300, args=(xi, si), points=[mp, xi], **q)[0]
    z0 = integrate.quad(one, -300, 300, args=(x[0], sig[0]), points=[mp, x[0]], **q)[0]
    m2 = integrate.quad(lambda s: s * one(s, x[0], sig[0]), -300, 300, points=[mp, x[0]], **q)[0]
    post = pc * l1 / (pc * l1 + (1 - pc) * l2)
    return l1, l2, post, post * m1 / l1 + (1 - post) * m2 / z0


def closed_forms(n_points: int = 40, seed: int = 0) -> dict:
    """Max |error| of log p(x|C), p(C=1|x) and the averaging estimate against scipy.quad."""
    rng = np.random.default_rng(seed)
    errs = {"log_p_common": 0.0, "log_p_separate": 0.0, "posterior": 0.0, "estimate": 0.0}
    for n_mod in (2, 3):
        sig = np.array([2.14, 9.2, 5.0][:n_mod])
        sp, mp, pc = 12.3, 0.7, 0.28
        m = CausalInference(sigmas=list(sig), sigma_p=sp, mu_p=mp, p_common=pc)
        for _ in range(n_points // 2):
            x = rng.normal(0, 15, n_mod)
            l1, l2, post, est = _brute(x, sig, sp, mp, pc)
            pairs = {
                "log_p_common": (m.log_likelihood_common(x), np.log(l1)),
                "log_p_separate": (m.log_likelihood_separate(x), np.log(l2)),
                "posterior": (m.posterior_common(x), post),
                "estimate": (m.estimate(x)[0], est),
            }
            for k, (a, b) in pairs.items():
                errs[k] = max(errs[k], float(abs(a - b)))
    return errs


def quadrature_vs_mc(n: int, seed: int = 0) -> dict:
    """Koerding design, joint buttons + unity: quadrature against Monte Carlo, per strategy."""
    lv = np.array(KOERDING_POSITIONS)
    cond = full_design(lv, lv)
    out = {}
    for strategy in ("averaging", "selection", "matching"):
        m = koerding_observer()
        t = time.process_time()
        p = m.response_probabilities(cond, lv, strategy, unity=True)
        t_quad = time.process_time() - t
        ref = m.response_probabilities(cond, lv, strategy, unity=True, nodes_per_sigma=12, tol=None)
        conv = {
            nps: float(
                np.abs(
                    m.response_probabilities(cond, lv, strategy, nodes_per_sigma=nps, tol=None)
                    - ref.sum(-1)
                ).max()
            )
            for nps in (2, 3, 4, 6)
        }
        sim = m.simulate(cond, n, strategy, torch.Generator().manual_seed(seed), levels=lv)
        idx = np.abs(sim["responses"][..., None] - lv).argmin(-1)
        u = sim["unity"].astype(int)
        counts = np.zeros(p.shape)
        for c in range(len(cond)):
            np.add.at(counts[c], (idx[c, :, 0], idx[c, :, 1], u[c]), 1)
        mc = counts / n
        big = ref > 1e-3
        z = np.abs(mc - ref)[big] / np.sqrt(ref * (1 - ref) / n)[big]
        out[strategy] = {
            "cells": int(big.sum()),
            "max_abs_z": float(z.max()),
            "frac_within_2se": float(np.mean(z < 2)),
            "max_abs_diff_mc": float(np.abs(mc - ref).max()),
            "default_max_abs_err_vs_nps12": float(np.abs(p - ref).max()),
            "default_quadrature_cpu_s": t_quad,
            "max_abs_err_vs_nps12_localisation": conv,
        }
    return out


def fit_bci(trials, n_sim: int, seed: int) -> tuple[dict, float, float]:
    import bcitoolbox as btb

    data = btb.Data.from_arrays(trials.stimuli, trials.responses, modalities=["visual", "auditory"])
    model = btb.Model.from_data(data, strategy="averaging")
    t, w = time.process_time(), time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(data, n_sim=n_sim, optimizer="powell", n_start=1, seed=seed)
    cpu, wall = time.process_time() - t, time.perf_counter() - w
    return {k: float(fit.values[v]) for k, v in BCI_NAMES.items()}, cpu, wall


def recovery(n_subjects: int, bci_nsim: int, n_starts: int, run_bci: bool) -> dict:
    lv = np.array(KOERDING_POSITIONS)
    cond = full_design(lv, lv)
    true = koerding_observer()
    ours, theirs = [], []
    t_ours, t_bci = [], []
    torch.set_num_threads(1)
    for i in range(n_subjects):
        trials = simulate_trials(true, cond, 40, "averaging", lv, seed=1000 + i)
        t, w = time.process_time(), time.perf_counter()
        fit = fit_causal_inference(trials, "averaging", levels=lv, n_starts=n_starts, seed=i)
        t_ours.append((time.process_time() - t, time.perf_counter() - w))
        ours.append([fit.params[k] for k in PARAMS])
        line = f"subject {i:2d} ours {t_ours[-1][0]:.2f}s cpu"
        if run_bci:
            vals, cpu, wall = fit_bci(trials, bci_nsim, seed=13 + i)
            t_bci.append((cpu, wall))
            theirs.append([vals[k] for k in PARAMS])
            line += f"  bcitoolbox {cpu:.2f}s cpu"
        print(line, flush=True)

    def summary(est: list, times: list) -> dict:
        e = np.array(est)
        tt = np.array(times)
        tv = np.array([KOERDING_2007[k] for k in PARAMS])
        return {
            "bias": dict(zip(PARAMS, (e.mean(0) - tv).tolist())),
            "sd": dict(zip(PARAMS, e.std(0, ddof=1).tolist())),
            "rmse": dict(zip(PARAMS, np.sqrt(((e - tv) ** 2).mean(0)).tolist())),
            "median_cpu_s": float(np.median(tt[:, 0])),
            "median_wall_s": float(np.median(tt[:, 1])),
            "cpu_over_wall": float(tt[:, 0].sum() / tt[:, 1].sum()),
        }

    out = {
        "design": "Koerding 2007 parameters, 5 x 5 positions, 40 trials per condition, joint "
        "visual + auditory buttons, averaging; seeds 1000 + subject",
        "subjects": n_subjects,
        "ours_settings": {"n_starts": n_starts},
        "ours": summary(ours, t_ours),
        "estimates": {"ours": ours},
    }
    if run_bci:
        from importlib.metadata import version

        out["bcitoolbox_settings"] = {
            "version": version("bcitoolbox"),
            "n_sim": bci_nsim,
            "optimizer": "powell",
            "n_start": 1,
        }
        out["bcitoolbox"] = summary(theirs, t_bci)
        out["estimates"]["bcitoolbox"] = theirs
        out["speedup_median_cpu"] = out["bcitoolbox"]["median_cpu_s"] / out["ours"]["median_cpu_s"]
        out["paired"] = paired_errors(np.array(ours), np.array(theirs))
    return out


def paired_errors(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """Per parameter, the subject-wise difference of squared errors (ours - bcitoolbox): its mean,
    standard error, the paired t statistic with its two-sided p-value (scipy.stats.ttest_rel on
    the squared errors), and the Wilcoxon signed-rank p-value (no normality assumed). Both fit the
    same data sets, so pairing removes the between-subject spread; a negative mean favours ours."""
    tv = np.array([KOERDING_2007[k] for k in PARAMS])
    e_ours, e_theirs = (ours - tv) ** 2, (theirs - tv) ** 2
    d = e_ours - e_theirs
    n = len(d)
    out = {}
    for j, k in enumerate(PARAMS):
        t = stats.ttest_rel(e_ours[:, j], e_theirs[:, j])
        w = stats.wilcoxon(e_ours[:, j], e_theirs[:, j])
        out[k] = {
            "mean_sq_err_diff": float(d[:, j].mean()),
            "se": float(d[:, j].std(ddof=1) / np.sqrt(n)),
            "t": float(t.statistic),
            "p_t": float(t.pvalue),
            "p_wilcoxon": float(w.pvalue),
            "ours_better_subjects": int((d[:, j] < 0).sum()),
        }
    return out


def criterion_accuracy(n: int, seed: int = 7) -> dict:
    """Unity reports near the largest posterior: default quadrature (refined to its tolerance),
    a fixed grid of 4 nodes per sigma, and Monte Carlo (n measurements per stimulus)."""
    m = koerding_observer(p_common=0.7)
    stim = np.array([[0.0, 0.0], [5.0, -5.0], [10.0, 10.0]])
    post = m.simulate(stim, n, "averaging", torch.Generator().manual_seed(seed))["posterior_common"]
    out = {"stimuli": stim.tolist(), "p_common": 0.7, "mc_n": n, "criteria": {}}
    for c in (0.3, 0.6, 0.7, 0.8, 0.82):
        mc = (post > c).mean(1)
        default = m.unity_probability(stim, "averaging", criterion=c)
        fixed4 = m.unity_probability(stim, "averaging", criterion=c, tol=None)
        sel = m.unity_probability(stim, "selection", criterion=c)
        out["criteria"][str(c)] = {
            "monte_carlo": mc.tolist(),
            "mc_se": np.sqrt(mc * (1 - mc) / n).tolist(),
            "averaging_default": np.asarray(default).tolist(),
            "averaging_fixed_nps4": np.asarray(fixed4).tolist(),
            "selection_default": np.asarray(sel).tolist(),
            "max_abs_err_default": float(np.abs(default - mc).max()),
            "max_abs_err_fixed_nps4": float(np.abs(fixed4 - mc).max()),
            "max_abs_err_selection": float(np.abs(sel - mc).max()),
        }
    return out


def fit_timings(repeats: int = 3) -> dict:
    """CPU and wall seconds of one fit (25 conditions x 40 trials) per strategy and report."""
    lv = np.array(KOERDING_POSITIONS)
    cond = full_design(lv, lv)
    out = {}
    cases = [
        ("averaging", False, 1),
        ("averaging", False, 3),
        ("selection", False, 3),
        ("matching", False, 3),
        ("averaging", True, 3),
    ]
    for strategy, unity, starts in cases:
        cpu, wall = [], []
        for r in range(repeats):
            trials = simulate_trials(
                koerding_observer(), cond, 40, strategy, lv, unity=unity, seed=500 + r
            )
            t, w = time.process_time(), time.perf_counter()
            fit_causal_inference(trials, strategy, levels=lv, n_starts=starts, seed=r)
            cpu.append(time.process_time() - t)
            wall.append(time.perf_counter() - w)
        key = f"{strategy}{'+unity' if unity else ''}, {starts} start(s)"
        out[key] = {
            "median_cpu_s": float(np.median(cpu)),
            "median_wall_s": float(np.median(wall)),
            "cpu_over_wall": float(sum(cpu) / sum(wall)),
        }
        print(key, out[key], flush=True)
    return out


def _write(out_dir: Path, stage: str, result: dict, clock: CpuWallClock, argv: list) -> None:
    record = {
        "stage": stage,
        "command": "benchmarks/bench_brain.py " + " ".join(argv),
        "finished_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_s": clock.cpu_s,
        "wall_s": clock.wall_s,
        "machine": machine_record(precision="fp64", cpu_wall=clock.ratio),
        **result,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"brain_{stage}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path} (CPU/wall {clock.ratio:.2f})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--stage", choices=("closed", "quadrature", "timings", "recovery", "all"), default="all"
    )
    ap.add_argument("--subjects", type=int, default=20)
    ap.add_argument("--bci-nsim", type=int, default=10000)
    ap.add_argument("--starts", type=int, default=3)
    ap.add_argument("--mc", type=int, default=100_000)
    ap.add_argument("--no-bci", action="store_true")
    ap.add_argument("--repeats", type=int, default=3, help="data sets per timing case")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = ap.parse_args()
    argv = sys.argv[1:]
    torch.set_num_threads(1)
    stages = (
        ("closed", "quadrature", "timings", "recovery") if args.stage == "all" else (args.stage,)
    )
    for stage in stages:
        with CpuWallClock() as clock:
            if stage == "closed":
                result = {"closed_forms_max_abs_err": closed_forms()}
            elif stage == "quadrature":
                result = {
                    "quadrature_vs_mc": quadrature_vs_mc(args.mc),
                    "criterion_accuracy": criterion_accuracy(4 * args.mc),
                }
            elif stage == "timings":
                result = {"fit_timings": fit_timings(args.repeats)}
            else:
                result = {
                    "recovery": recovery(args.subjects, args.bci_nsim, args.starts, not args.no_bci)
                }
        print(json.dumps(result, indent=1)[:3000], flush=True)
        _write(args.out, stage, result, clock, argv)


if __name__ == "__main__":
    main()
