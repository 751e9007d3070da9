"""``synesthesia brain ...``: simulate multisensory paradigms and fit models to trial tables.

synesthesia brain ventriloquist|flash|mcgurk|binding --plot out.png [--csv trials.csv]
synesthesia brain fit trials.csv --model causal-inference --strategy averaging
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

from synesthesia.commands import CommandError
from synesthesia.commands._shared import count_up_to, output_file, seed_int
from synesthesia.errors import short

PARADIGMS = ("ventriloquist", "flash", "mcgurk", "binding")
PARAMETER_NAMES = ("sigma_v", "sigma_a", "sigma_p", "mu_p", "p_common", "lapse", "sigma_motor")
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")
# stimulus conditions of each paradigm: --trials is per condition
CONDITIONS = {"ventriloquist": 25, "flash": 9, "mcgurk": 9, "binding": 13}
# simulated trials one command may hold in memory (about 200 bytes each while simulating)
MAX_SIMULATED = 10_000_000
MAX_STARTS = 1_000


def _finite_float(text: str) -> float:
    """argparse type: a finite number (the shared types are for positive values)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {short(text)}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {short(text)}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``brain`` and its sub-commands."""
    brain = subparsers.add_parser(
        "brain",
        help="multisensory integration: simulate paradigms, fit causal inference",
        description="Models of multisensory integration in the brain.",
    )
    sub = brain.add_subparsers(dest="brain_command", metavar="PARADIGM|fit")
    brain.set_defaults(func=lambda args: _missing(brain))
    helps = {
        "ventriloquist": "localisation + unity reports (Koerding et al. 2007 parameters)",
        "flash": "sound-induced flash illusion (numerosity of flashes with beeps)",
        "mcgurk": "McGurk effect: FLMP and causal inference of AV speech",
        "binding": "temporal binding window: simultaneity judgements",
    }
    for name in PARADIGMS:
        p = sub.add_parser(name, help=helps[name], description=helps[name])
        p.add_argument(
            "--plot",
            type=output_file(*PLOT_SUFFIXES),
            required=True,
            help="figure to write (PNG, PDF, SVG, JPEG)",
        )
        p.add_argument("--csv", type=output_file(), help="also write the simulated trials as CSV")
        p.add_argument("--seed", type=seed_int, default=0, help="random seed of the simulation")
        p.add_argument(
            "--trials",
            type=count_up_to(MAX_SIMULATED // CONDITIONS[name]),
            default=40,
            help=f"trials per condition ({CONDITIONS[name]} conditions)",
        )
        p.add_argument(
            "--strategy",
            choices=("averaging", "selection", "matching"),
            default="averaging",
            help="decision strategy of the observer",
        )
        p.set_defaults(func=_run_paradigm, paradigm=name)
    f = sub.add_parser(
        "fit",
        help="fit a model to a trial table (CSV) by maximum likelihood",
        description="Fit causal inference to a CSV with columns stim_v, stim_a and any of "
        "resp_v, resp_a, unity. Prints the parameters with standard errors.",
    )
    f.add_argument("trials", type=Path, help="CSV trial table, one row per trial")
    f.add_argument("--model", choices=("causal-inference",), default="causal-inference")
    f.add_argument(
        "--strategy",
        choices=("averaging", "selection", "matching", "all"),
        default="averaging",
        help="decision strategy; 'all' fits each and compares them",
    )
    f.add_argument(
        "--fixed", nargs="*", default=[], metavar="NAME=VALUE", help="hold parameters fixed"
    )
    f.add_argument("--free", nargs="*", default=[], metavar="NAME", help="free extra parameters")
    f.add_argument("--tie", nargs="*", default=[], metavar="NAME=OTHER", help="tie parameters")
    f.add_argument("--levels", type=_finite_float, nargs="*", help="allowed button responses")
    f.add_argument(
        "--response",
        choices=("auto", "discrete", "continuous"),
        default="auto",
        help="response kind (auto: discrete when at most 12 distinct values)",
    )
    f.add_argument("--starts", type=count_up_to(MAX_STARTS), default=3, help="optimiser starts")
    f.add_argument("--seed", type=seed_int, default=0, help="random seed of the further starts")
    f.add_argument(
        "--plot", type=output_file(*PLOT_SUFFIXES), help="write the fitted model over the data"
    )
    f.add_argument(
        "--json", type=output_file(".json"), help="write the fits (parameters, SEs, AIC) as JSON"
    )
    f.set_defaults(func=_run_fit)


def _missing(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _save(fig, path: Path) -> None:
    """Write a figure whose path the --plot type accepted before the work."""
    fig.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise CommandError(f"--plot {path}: cannot write ({_reason(exc)})") from None


def _reason(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


def _open_csv(path: Path, flag: str = "--csv"):
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("w", newline="", encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"{flag} {path}: cannot write ({_reason(exc)})") from None


def _figure(ncols: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(5 * ncols, 3.8))


def _run_paradigm(args: argparse.Namespace) -> int:
    # output paths and --trials were checked when the arguments were parsed
    if args.paradigm == "mcgurk" and args.strategy == "matching":
        raise CommandError("--strategy: the McGurk model supports averaging or selection")
    import numpy as np

    from synesthesia.brain import plots

    if args.paradigm == "ventriloquist":
        from synesthesia.brain import ventriloquist, write_trials

        res = ventriloquist(n_per_condition=args.trials, strategy=args.strategy, seed=args.seed)
        fig, (a1, a2) = _figure(2)
        plots.plot_localisation_bias(res, ax=a1)
        plots.plot_p_common(res, ax=a2)
        _save(fig, args.plot)
        if args.csv:
            _write_trials(res.trials, args.csv, write_trials)
        d, b = res.disparity, res.auditory_bias()
        for x in np.unique(d[d != 0]):
            print(f"disparity {x:+5.0f} deg: auditory bias {np.nanmean(b[d == x]):.3f}")
    elif args.paradigm == "flash":
        from synesthesia.brain import fission_vs_visual_noise, flash_illusion, write_trials

        res = flash_illusion(n_per_condition=args.trials, strategy=args.strategy, seed=args.seed)
        sig = np.array([0.2, 0.4, 0.6, 0.8, 1.0, 1.2])
        rates = fission_vs_visual_noise(sig, strategy=args.strategy)
        fig, (a1, a2) = _figure(2)
        plots.plot_flash_illusion(res, ax=a1)
        plots.plot_fission_trend(sig, rates, ax=a2)
        _save(fig, args.plot)
        if args.csv:
            _write_trials(res.trials, args.csv, write_trials)
        print(f"fission illusion p(2 flashes | 1 flash, 2 beeps) = {res.rate(1, 2, 2):.3f}")
        print(f"fusion illusion  p(1 flash | 2 flashes, 1 beep) = {res.rate(2, 1, 1):.3f}")
    elif args.paradigm == "mcgurk":
        from synesthesia.brain import McGurkModel, flmp_probabilities, mcgurk_flmp_defaults
        from synesthesia.brain.speech import mcgurk_rates

        model = McGurkModel()
        table = model.table(args.strategy)
        a, v = mcgurk_flmp_defaults()
        flmp = flmp_probabilities(a, v)
        s = model.syllables
        ftable = {(x, y): flmp[i, j] for i, x in enumerate(s) for j, y in enumerate(s)}
        fig, (a1, a2) = _figure(2)
        plots.plot_mcgurk(table, s, ax=a1, title="causal inference (after Magnotti & Beauchamp)")
        plots.plot_mcgurk(ftable, s, ax=a2, title="FLMP (Massaro)")
        _save(fig, args.plot)
        if args.csv:
            with _open_csv(args.csv) as fh:
                w = csv.writer(fh)
                w.writerow(["auditory", "visual", "response"])
                for i, (au, vi) in enumerate(table):
                    reps = model.simulate(au, vi, args.trials, args.strategy, args.seed + i)
                    for r in reps:
                        w.writerow([au, vi, s[int(r)]])
        for name, rate in mcgurk_rates(table, s).items():
            print(f"causal inference {name}: {rate:.3f}")
        for name, rate in mcgurk_rates(ftable, s).items():
            print(f"FLMP             {name}: {rate:.3f}")
    else:
        from synesthesia.brain import STANDARD_SOAS, SimultaneityModel

        model = SimultaneityModel()
        soas = np.array(STANDARD_SOAS, dtype=float)
        reps = model.simulate(soas, args.trials, args.seed)
        fig, ax = _figure(1)
        plots.plot_simultaneity(model, soas, ax=ax, observed=reps.mean(1))
        _save(fig, args.plot)
        if args.csv:
            with _open_csv(args.csv) as fh:
                w = csv.writer(fh)
                w.writerow(["soa_ms", "simultaneous"])
                for k, s in enumerate(soas):
                    for r in reps[k]:
                        w.writerow([f"{s:g}", int(r)])
        lo, hi = model.window()
        print(f"binding window (p = 0.5): {lo:.0f} ms to {hi:.0f} ms ({hi - lo:.0f} ms wide)")
    print(f"wrote {args.plot}" + (f" and {args.csv}" if args.csv else ""))
    return 0


def _write_trials(trials, path: Path, write_trials) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_trials(trials, path)
    except OSError as exc:
        raise CommandError(f"--csv {path}: cannot write ({_reason(exc)})") from None


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise CommandError(f"{flag}: expected NAME=VALUE, got {short(item)}")
        k, v = item.split("=", 1)
        if k not in PARAMETER_NAMES:
            raise CommandError(
                f"{flag}: unknown parameter {short(k)} (known: {', '.join(PARAMETER_NAMES)})"
            )
        out[k] = v
    return out


def _run_fit(args: argparse.Namespace) -> int:
    from synesthesia.brain import (
        compare_fits,
        fit_causal_inference,
        format_comparison,
        posterior_predictive,
        read_trials,
    )
    from synesthesia.brain.fitting import report_for

    fixed = {}  # output paths, --starts and --seed were checked when the arguments were parsed
    for k, v in _pairs(args.fixed, "--fixed").items():
        try:
            fixed[k] = _finite_float(v)
        except argparse.ArgumentTypeError as exc:
            raise CommandError(f"--fixed: {k}: {exc}") from None
    tied = _pairs(args.tie, "--tie")
    for k in args.free:
        if k not in PARAMETER_NAMES:
            raise CommandError(f"--free: unknown parameter {short(k)}")
    trials = read_trials(args.trials, levels=args.levels)
    if args.plot is not None:
        rep = report_for(trials, args.levels, args.response)
        if rep.kind != "discrete" or not rep.modalities:
            raise CommandError("--plot: needs button (discrete) responses of resp_v / resp_a")
    strategies = (
        ("averaging", "selection", "matching") if args.strategy == "all" else (args.strategy,)
    )
    fits = []
    for s in strategies:
        fit = fit_causal_inference(
            trials,
            s,
            levels=args.levels,
            response=args.response,
            fixed=fixed,
            free=args.free,
            tied=tied,
            n_starts=args.starts,
            seed=args.seed,
        )
        fits.append(fit)
        print(fit.table())
        undefined = [k for k in fit.free if not math.isfinite(fit.se.get(k, math.nan))]
        if undefined:
            print(
                f"note: no standard error for {', '.join(undefined)} (the likelihood is flat "
                "there or the estimate is at a bound)"
            )
        print()
    if len(fits) > 1:
        print(format_comparison(compare_fits(fits)))
    if args.json is not None:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps([f.to_dict() for f in fits], indent=1) + "\n")
        except OSError as exc:
            raise CommandError(f"--json {args.json}: cannot write ({_reason(exc)})") from None
        print(f"wrote {args.json}")
    if args.plot:
        best = min(fits, key=lambda f: f.aic)
        from synesthesia.brain.plots import plot_fit

        ppc = posterior_predictive(best, trials, seed=args.seed)
        k = len(best.report.modalities)
        fig, axes = _figure(k)
        axes = [axes] if k == 1 else list(axes)
        for j, ax in enumerate(axes):
            plot_fit(ppc, j, ax=ax)
            ax.set_title(("visual", "auditory")[best.report.modalities[j]] + " reports")
        _save(fig, args.plot)
        print(f"posterior predictive coverage (95%): {ppc.coverage:.2f}; wrote {args.plot}")
    return 0
