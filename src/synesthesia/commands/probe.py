"""``synesthesia probe ...``: the brain's paradigms run on trained networks, fitted like people.

synesthesia probe ventriloquist --plot out.png --json out.json [--p-train 0.2 0.5 0.8]
synesthesia probe flash --plot out.png --json out.json [--noise-v 0.4 0.8 1.2 1.6]
synesthesia probe mcgurk --plot out.png --json out.json [--noise-a 0.5]
synesthesia probe enhancement --checkpoint runs/clip --plot out.png --json out.json
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from synesthesia.commands import CommandError
from synesthesia.commands._shared import count_up_to, output_file, seed_int
from synesthesia.errors import short

PARADIGMS = ("ventriloquist", "flash", "mcgurk", "enhancement")
# the models of synesthesia.probes.runner.MODELS (kept here so that --help imports no torch)
MODELS = ("averaging", "selection", "matching", "fusion", "segregation")
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")
MAX_P_TRAIN = 20  # networks one command trains (each takes tens of seconds)
MAX_TRIALS = 100_000  # trials per condition (25 conditions; the network answers in chunks)
MAX_STEPS = 1_000_000


def _number_in(low: float, high: float, what: str, open_low: bool = False):
    """argparse type: a finite number in [low, high] ((low, high] with ``open_low``)."""
    span = f"{'(' if open_low else '['}{low:g}, {high:g}]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a number in {span}, got {short(text)}"
            ) from None
        ok = math.isfinite(value) and (low < value if open_low else low <= value) and value <= high
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {what} in {span}, got {short(text)}")
        return value

    parse.__name__ = what
    return parse


_probability = _number_in(0.0, 1.0, "a probability")
_positive_noise = _number_in(0.0, 100.0, "a noise level", open_low=True)


def _common(
    p: argparse.ArgumentParser, conditions: int, steps_help: str, max_trials: int = MAX_TRIALS
) -> None:
    p.add_argument(
        "--plot", type=output_file(*PLOT_SUFFIXES), required=True, help="figure to write"
    )
    p.add_argument("--json", type=output_file(".json"), help="write fits and reports as JSON")
    p.add_argument(
        "--trials",
        type=count_up_to(max_trials),
        default=100,
        help=f"probe trials per condition ({conditions} conditions; default 100)",
    )
    p.add_argument("--steps", type=count_up_to(MAX_STEPS), default=None, help=steps_help)
    p.add_argument("--seed", type=seed_int, default=0, help="random seed (weights, scenes, noise)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``probe`` and its paradigms."""
    probe = subparsers.add_parser(
        "probe",
        help="run the brain's paradigms on trained networks and fit the brain's models",
        description="Train a network on noisy audiovisual scenes, probe it with a "
        "psychophysics paradigm, and fit the brain's models (causal inference, forced fusion, "
        "segregation) to its reports by maximum likelihood.",
    )
    sub = probe.add_subparsers(dest="probe_paradigm", metavar="PARADIGM")
    probe.set_defaults(func=lambda args: _missing(probe))
    v = sub.add_parser(
        "ventriloquist",
        help="localisation network, Koerding et al. 2007 design, fitted p_common vs p_train",
        description="Train one localisation network per --p-train (one source with that "
        "probability, else two), probe each on 5 x 5 visual-auditory positions, fit the "
        "models, and plot the bias against disparity next to the human fit.",
    )
    _common(v, 25, "training steps per network (default 3000)")
    v.add_argument(
        "--p-train",
        type=_probability,
        nargs="+",
        default=[0.2, 0.5, 0.8],
        help="probability of one source in each network's training scenes (default 0.2 0.5 0.8)",
    )
    v.add_argument(
        "--starts", type=count_up_to(100), default=2, help="optimiser starts per fit (default 2)"
    )
    v.add_argument(
        "--models",
        nargs="+",
        choices=MODELS,
        default=list(MODELS),
        help="models to fit (default all: the three causal-inference strategies, fusion, "
        "segregation); averaging is always fitted",
    )
    v.set_defaults(func=_run_ventriloquist)
    f = sub.add_parser(
        "flash",
        help="counting network, sound-induced flash illusion against visual noise",
        description="Train a network to count flashes and beeps in noisy pulse trains (mostly "
        "congruent scenes), probe it with 1-3 flashes and 1-3 beeps at several visual noise "
        "levels, and fit the numerosity causal-inference model at each level.",
    )
    _common(f, 9, "training steps (default 3000)")
    f.add_argument(
        "--noise-v",
        type=_positive_noise,
        nargs="+",
        default=None,
        help="visual noise levels to probe (default: the training levels 0.4 0.8 1.2 1.6)",
    )
    f.add_argument(
        "--p-incongruent",
        type=_probability,
        default=0.2,
        help="fraction of training scenes with independent flashes and beeps (default 0.2)",
    )
    f.set_defaults(func=_run_flash)
    m = sub.add_parser(
        "mcgurk",
        help="audiovisual syllable network (eSpeak ba/da/ga, rendered mouths), McGurk pairs",
        description="Train a network on congruent eSpeak syllables and rendered mouth movies, "
        "probe every auditory-visual pair on held-out clips, and fit FLMP and the "
        "causal-inference speech model to its answers.",
    )
    # each McGurk trial holds a 1,280-number audio feature vector: 20,000 per pair is 100 MB
    _common(m, 9, "training steps (default 2000)", max_trials=20_000)
    m.add_argument(
        "--noise-a",
        type=_positive_noise,
        nargs="+",
        default=[0.5],
        help="auditory feature noise levels to probe (sd in feature sds; default 0.5)",
    )
    m.add_argument(
        "--clips",
        type=count_up_to(10_000),
        default=400,
        help="synthesised clips per syllable, a third held out (default 400: with 90 the "
        "network memorises its training clips and answers from the mouth)",
    )
    m.add_argument(
        "--cache-dir", default=None, help="speech cache (default $SYNESTHESIA_CACHE or ~/.cache)"
    )
    m.set_defaults(func=_run_mcgurk)
    e = sub.add_parser(
        "enhancement",
        help="multisensory enhancement of a trained clip model (noisy images, speech, both)",
        description="Zero-shot digit naming by a 'synesthesia train clip' checkpoint from "
        "noisy images, noisy speech and both (summed in the joint space), over a grid of noise "
        "levels; enhancement and inverse effectiveness next to the maximum-likelihood prediction.",
    )
    e.add_argument(
        "--checkpoint", type=Path, required=True, help="a clip checkpoint (or its run folder)"
    )
    e.add_argument(
        "--plot", type=output_file(*PLOT_SUFFIXES), required=True, help="figure to write"
    )
    e.add_argument("--json", type=output_file(".json"), help="write the accuracies as JSON")
    e.add_argument(
        "--n-speech",
        type=count_up_to(100_000),
        default=2000,
        help="synthesised clips of the digit world (default 2000, as train clip)",
    )
    e.add_argument(
        "--cache-dir", default=None, help="speech cache (default $SYNESTHESIA_CACHE or ~/.cache)"
    )
    e.add_argument("--seed", type=seed_int, default=0, help="random seed (pairing, noise)")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.set_defaults(func=_run_enhancement)


def _missing(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _reason(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


def _run_ventriloquist(args: argparse.Namespace) -> int:
    # output paths, --trials, --steps and --seed were checked when the arguments were parsed
    if len(args.p_train) > MAX_P_TRAIN:
        raise CommandError(
            f"--p-train: {len(args.p_train)} values; at most {MAX_P_TRAIN} networks per command"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synesthesia.probes.plots import plot_network_bias, plot_p_common_vs_p_train
    from synesthesia.probes.ventriloquist import (
        VentriloquistConfig,
        human_reference,
        sweep_p_train,
    )

    config = VentriloquistConfig() if args.steps is None else VentriloquistConfig(steps=args.steps)
    models = ["averaging"] + [m for m in dict.fromkeys(args.models) if m != "averaging"]
    sweep = sweep_p_train(
        args.p_train,
        config,
        args.trials,
        models=models,
        seed=args.seed,
        progress=not args.no_progress,
        n_starts=args.starts,
    )
    for probe in sweep.probes:
        print(f"p_train = {probe.p_train:g}:")
        print(probe.comparison.table())
        for note in probe.comparison.notes:
            print(f"note: {note}")
        print(probe.comparison.fits["averaging"].table())
        print()
    print(f"{'p_train':>8} {'p_common':>9} {'se':>7} {'dBIC fusion':>12} {'dBIC segr.':>11}")
    for r in sweep.p_common_table():
        print(
            f"{r['p_train']:>8.2f} {r['p_common']:>9.3f} {r['se']:>7.3f} "
            f"{r.get('dbic_vs_fusion', math.nan):>12.1f} "
            f"{r.get('dbic_vs_segregation', math.nan):>11.1f}"
        )
    # the bias plot shows the network trained nearest p_train = 0.5
    middle = min(sweep.probes, key=lambda p: abs(p.p_train - 0.5))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    plot_network_bias(middle, human_reference(middle.levels), ax=a1)
    plot_p_common_vs_p_train(sweep, ax=a2)
    return _finish(
        args,
        fig,
        {
            "paradigm": "ventriloquist",
            "config": config.to_dict(),
            "p_common_table": sweep.p_common_table(),
            "probes": [p.to_dict() for p in sweep.probes],
        },
    )


def _finish(args: argparse.Namespace, fig, data: dict) -> int:
    """Write the figure (--plot) and, when asked, ``data`` as JSON (--json); exit status 0."""
    _save_figure(fig, args.plot)
    if args.json is not None:
        _write_json(args.json, data)
    print(f"wrote {args.plot}" + (f" and {args.json}" if args.json else ""))
    return 0


def _save_figure(fig, path: Path) -> None:
    """Write and close a figure (the path was checked at parse time)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    _write(lambda p: fig.savefig(p, dpi=120), path, "--plot")
    plt.close(fig)


def _write_json(path: Path, data: dict) -> None:
    """``data`` with the machine record, as JSON at ``path`` (checked at parse time)."""
    import json

    from synesthesia.training.machine import machine_record

    text = json.dumps({**data, "machine": machine_record(precision="no")}, indent=1) + "\n"
    _write(lambda p: p.write_text(text), path, "--json")


def _write(save, path: Path, flag: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save(path)
    except OSError as exc:
        raise CommandError(f"{flag} {path}: cannot write ({_reason(exc)})") from None


def _run_flash(args: argparse.Namespace) -> int:
    # output paths, --trials, --steps, --noise-v and --seed were checked at parse time
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synesthesia.probes.flash import FlashConfig, probe_counter, train_counter
    from synesthesia.probes.plots import plot_flash_reports, plot_flash_trend

    kw = {"p_incongruent": args.p_incongruent}
    if args.steps is not None:
        kw["steps"] = args.steps
    config = FlashConfig(**kw)
    trained = train_counter(config, seed=args.seed, progress=not args.no_progress)
    levels = probe_counter(trained, args.noise_v, args.trials, seed=args.seed)
    print(f"{'noise_v':>8} {'fission':>8} {'(fit)':>6} {'fusion':>7} {'(fit)':>6} "
          f"{'sigma_v':>8} {'sigma_a':>8} {'p_common':>9} {'dBIC segr.':>11}")  # fmt: skip
    for lv in levels:
        fit = lv.comparison.fits["averaging"]
        p = fit.params
        print(
            f"{lv.noise_v:>8.2f} {lv.fission:>8.3f} {lv.fitted_fission:>6.3f} {lv.fusion:>7.3f} "
            f"{lv.fitted_fusion:>6.3f} {p['sigma_v']:>8.3f} {p['sigma_a']:>8.3f} "
            f"{p['p_common']:>9.3f} {lv.comparison.delta_bic('averaging', 'segregation'):>11.1f}"
        )
        for note in lv.comparison.notes:
            print(f"  note: {note}")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    plot_flash_trend(levels, ax=a1)
    plot_flash_reports(levels[-1], ax=a2)
    return _finish(
        args,
        fig,
        {
            "paradigm": "flash",
            "config": config.to_dict(),
            "train_wall_s": trained.wall_s,
            "levels": [lv.to_dict() for lv in levels],
        },
    )


def _run_mcgurk(args: argparse.Namespace) -> int:
    # output paths, --trials, --steps, --clips and --noise-a were checked at parse time
    from synesthesia.data.speech import check_speech_cache

    cache = check_speech_cache(args.cache_dir, "--cache-dir")
    if args.clips < 3:
        raise CommandError(f"--clips: need at least 3 clips per syllable, got {args.clips}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synesthesia.brain.plots import plot_mcgurk
    from synesthesia.brain.speech import SYLLABLES
    from synesthesia.probes.mcgurk import (
        McGurkConfig,
        audio_bank,
        probe_mcgurk,
        train_syllable_net,
    )

    kw = {"n_per": args.clips, "seed": args.seed}
    if args.steps is not None:
        kw["steps"] = args.steps
    config = McGurkConfig(**kw)
    bank = audio_bank(config, cache_dir=cache, progress=not args.no_progress)
    trained = train_syllable_net(config, bank, progress=not args.no_progress)
    probes = [probe_mcgurk(trained, a, args.trials, seed=args.seed) for a in args.noise_a]
    for pr in probes:
        d = pr.to_dict()
        r = d["rates"]
        print(
            f"auditory noise {pr.noise_a:g}: A-ba/V-ga -> da {r['ba+ga->da']:.3f} (ba "
            f"{r['ba+ga->ba (auditory)']:.3f}, ga {r['ba+ga->ga (visual)']:.3f}); A-ga/V-ba -> "
            f"da {r['ga+ba->da']:.3f}; congruent accuracy {r['congruent_accuracy']:.3f}"
        )
        print(
            f"  FLMP: NLL {d['flmp']['nll']:.1f}, BIC {d['flmp']['bic']:.1f}; causal inference: "
            f"NLL {d['causal_inference']['nll']:.1f}, BIC {d['causal_inference']['bic']:.1f}, "
            f"p_common {d['causal_inference']['p_common']:.3f}"
        )
    last = probes[-1]
    p = last.counts / last.counts.sum(-1, keepdims=True)
    table = {(a, v): p[i, j] for i, a in enumerate(SYLLABLES) for j, v in enumerate(SYLLABLES)}
    flmp = last.flmp.probabilities()
    ftable = {(a, v): flmp[i, j] for i, a in enumerate(SYLLABLES) for j, v in enumerate(SYLLABLES)}
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    plot_mcgurk(table, SYLLABLES, ax=a1, title=f"network (auditory noise {last.noise_a:g})")
    plot_mcgurk(ftable, SYLLABLES, ax=a2, title="FLMP fitted to the network")
    return _finish(
        args,
        fig,
        {
            "paradigm": "mcgurk",
            "config": config.to_dict(),
            "train_wall_s": trained.wall_s,
            "probes": [pr.to_dict() for pr in probes],
        },
    )


def _run_enhancement(args: argparse.Namespace) -> int:
    # output paths, --n-speech and --seed were checked at parse time
    from synesthesia.data.speech import check_speech_cache
    from synesthesia.probes.enhancement import checkpoint_model

    model = checkpoint_model(args.checkpoint)  # a wrong kind is one clear line, before work
    cache = check_speech_cache(args.cache_dir, "--cache-dir")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synesthesia.probes.enhancement import probe_digit_world
    from synesthesia.probes.plots import plot_accuracy_grid, plot_enhancement

    result = probe_digit_world(
        model, args.n_speech, cache, seed=args.seed, progress=not args.no_progress
    )
    ie = result.inverse_effectiveness()
    print(f"{'image noise':>11} " + " ".join(f"{s:>7g}dB" for s in result.snr_db))
    print(f"{'speech':>11} " + " ".join(f"{a:>9.3f}" for a in result.speech))
    for i, s in enumerate(result.image_noise):
        print(f"{s:>11g} " + " ".join(f"{a:>9.3f}" for a in result.combined[i])
              + f"   image alone {result.image[i]:.3f}")  # fmt: skip
    print(
        f"inverse effectiveness (Spearman of enhancement vs better single accuracy): joint "
        f"embedding {ie['spearman_network']:.2f}, ML prediction {ie['spearman_ml']:.2f}"
    )
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    plot_accuracy_grid(result, ax=a1)
    plot_enhancement(result, ax=a2)
    return _finish(
        args,
        fig,
        {
            "paradigm": "enhancement",
            "checkpoint": str(args.checkpoint),
            **result.to_dict(),
        },
    )
