"""Text-to-audio on a CPU (issue 11): spoken digits from a prompt, scored by the SC09 protocol.

Stages (run one with --stage; each writes --out-dir/<stage>.json with the machine record and
process CPU time / wall time; on 2 cores a ratio well below the thread count means
contention):

- ``target``: ``train_text_to_audio`` (mel domain, the eSpeak voices + the FSDD training
  speakers) for ``--minutes`` (default 20), then :func:`synesthesia.metrics.audio
  .score_generator` at each ``--guidance`` (``--n-per-digit`` clips of each digit) beside
  real held-out clips (FSDD speaker nicolas), and the targets: accuracy >= 90 %, Inception
  Score >= 7, Frechet distance <= 2 x real-vs-real. Also the vocoder's ceiling (real
  held-out clips through the mel domain and Griffin-Lim, then classified) and a spectrogram
  figure (``--img-dir``/audio_spectrograms.png: generated "zero".."nine" above real clips).
- ``domain``: at equal training wall time (``--minutes`` each, default 6), trained in
  interleaved slices (A, B, C, A, B, C, ...; ``--slices``) so that contention hits all alike:
  the mel domain and the waveform domain (both with FSDD speakers), the mel domain
  without FSDD speakers (eSpeak voices only), and the mel domain trained with the
  text-to-image objective (v-prediction, min-SNR 5) instead of x0; each scored like
  ``target``, one table.
- ``rtf``: the real-time factor of sampling one 1-second clip (``--steps`` dpmpp_2m steps,
  guidance 2: two network calls a step) at 1 and 2 threads, mel (network + Griffin-Lim
  apart) and waveform, interleaved, medians of ``--repeats``; weights do not change the time,
  so untrained networks of the default presets are timed.
- ``rescore``: the ``target`` stage's saved checkpoint (``--run-dir``/target/checkpoint,
  with its training record from ``--out-dir``/target.json) scored again by the current
  :func:`~synesthesia.metrics.audio.score_generator`, into rescore.json (no training).

    python benchmarks/bench_audio.py --stage target --minutes 20
    python benchmarks/bench_audio.py --stage domain --minutes 6
    python benchmarks/bench_audio.py --stage rtf
    python benchmarks/bench_audio.py --stage rescore  # target's checkpoint, scored again
    OMP_NUM_THREADS=1 python benchmarks/bench_audio.py --stage target --minutes 2 \\
        --n-per-digit 10 --out-dir /tmp/audio --run-dir /tmp/audio-runs  # smoke
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from bench_image import Clock, _save
from bench_text2image import _finish
from synesthesia.data.audio_domain import AudioDomain
from synesthesia.data.spoken_digits import espeak_digits, fsdd_digits
from synesthesia.metrics.audio import (
    classify,
    get_speech_classifier,
    score_generator,
    split_reference,
)
from synesthesia.pipelines.text2audio import TextToAudioPipeline, build_audio_model
from synesthesia.pipelines.text2audio_train import (
    AudioRecipe,
    AudioTrainOptions,
    prepare_audio_training,
    train_text_to_audio,
    training_clips,
)
from synesthesia.training.machine import CpuWallClock
from synesthesia.training.precision import resolve_precision
from synesthesia.training.timing import measure_train_step

ROOT = Path(__file__).resolve().parent
FSDD = ROOT.parents[1] / "shared" / "datasets" / "fsdd"
STAGES = ("target", "domain", "rtf", "rescore")
TARGETS = {"accuracy": 0.90, "inception_score": 7.0, "fd_ratio": 2.0}
#: Contestants of the domain stage: (name, domain, with FSDD speakers, (prediction, min-SNR
#: gamma) or None for --prediction / --min-snr-gamma). "mel-v+fsdd": the text-to-image
#: recipe's objective (v, min-SNR 5) against x0.
CONTESTANTS = (
    ("mel+fsdd", "mel", True, None),
    ("wave+fsdd", "wave", True, None),
    ("mel-espeak", "mel", False, None),
    ("mel-v+fsdd", "mel", True, ("v", 5.0)),
)


def _options(
    args, name: str, domain: str, fsdd: bool, objective=None, **overrides
) -> AudioTrainOptions:
    prediction, gamma = objective or (args.prediction, args.min_snr_gamma)
    return AudioTrainOptions(
        out_dir=str(Path(args.run_dir) / name),
        batch_size=args.batch_size,
        seed=args.seed,
        progress=False,
        precision=args.precision,
        recipe=AudioRecipe(domain=domain, prediction=prediction, min_snr_gamma=gamma),
        fsdd_folder=str(args.fsdd) if fsdd else None,
        n_espeak=args.n_espeak,
        **overrides,
    )


def _scores(args, pipe: TextToAudioPipeline, guidance: float) -> dict:
    classifier, info = get_speech_classifier(args.fsdd, progress=False)
    splits = fsdd_digits(args.fsdd)

    def generate(prompts, gen):
        return pipe(prompts, guidance_scale=guidance, num_inference_steps=args.steps, generator=gen)

    with CpuWallClock() as clock:
        s = score_generator(
            generate, classifier, info, splits["val"], pipe.sample_rate, args.n_per_digit,
            args.seed, reference=splits["train"],
        )  # fmt: skip
    s["guidance"] = guidance
    s["score_cpu_per_wall"] = clock.ratio
    s["meets"] = {
        "accuracy": s["generated"]["accuracy"] >= TARGETS["accuracy"],
        "inception_score": s["generated"]["inception_score"] >= TARGETS["inception_score"],
        "fd_ratio": s["fd_ratio"] <= TARGETS["fd_ratio"],
    }
    return s


def _vocoder_ceiling(args, domain: AudioDomain) -> dict:
    """The classifier on real held-out clips, as recorded and through the mel domain and back,
    and on the held-out synthetic voices."""
    classifier, _ = get_speech_classifier(args.fsdd, progress=False)
    val, _ = split_reference(fsdd_digits(args.fsdd)["val"])  # half A: the ceiling's clips
    vocoded = domain.decode(domain.encode(val.waveforms))
    p_real, _ = classify(classifier, val.waveforms, val.sample_rate)
    p_voc, _ = classify(classifier, vocoded, val.sample_rate)
    # mean |log-mel difference| in dB over the bins within 30 dB of each clip's peak
    target, back = domain.log_mel(val.waveforms), domain.log_mel(vocoded)
    loud = target > target.amax(dim=(1, 2), keepdim=True) - math.log(1e3)
    db_error = float((back - target)[loud].abs().mean()) * 10 / math.log(10)
    espeak = espeak_digits(args.n_espeak, args.seed)["val"]  # held-out synthetic voices
    p_esp, _ = classify(classifier, espeak.waveforms, espeak.sample_rate)
    return {
        "real_accuracy": float((p_real.argmax(1) == val.labels).float().mean()),
        "vocoded_accuracy": float((p_voc.argmax(1) == val.labels).float().mean()),
        "clips": len(val),
        "vocoder_db_error": db_error,
        "espeak_val_accuracy": float((p_esp.argmax(1) == espeak.labels).float().mean()),
        "espeak_val_clips": len(espeak),
    }


def _figure(pipe: TextToAudioPipeline, path: Path, seed: int, steps: int, fsdd: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synesthesia.data.captions import NUMBER_WORDS
    from synesthesia.pipelines.text2audio import plot_spectrogram

    clips = pipe(list(NUMBER_WORDS), num_inference_steps=steps,
                 generator=torch.Generator().manual_seed(seed))  # fmt: skip
    val = fsdd_digits(fsdd)["val"]
    real = [val.waveforms[int(torch.nonzero(val.labels == d)[0])] for d in range(10)]
    fig, axes = plt.subplots(2, 10, figsize=(20, 4.2), sharey=True)
    for d in range(10):
        plot_spectrogram(clips[d], pipe.sample_rate, ax=axes[0, d], domain=pipe.domain,
                         title=f'"{NUMBER_WORDS[d]}"')  # fmt: skip
        plot_spectrogram(real[d].numpy(), pipe.sample_rate, ax=axes[1, d], domain=pipe.domain,
                         title=f"real {d} (held out)")  # fmt: skip
        for ax in axes[:, d]:
            if d:
                ax.set_ylabel("")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ---------------------------------------------------------------------- stages
def stage_target(args) -> dict:
    clock = Clock()
    shutil.rmtree(Path(args.run_dir) / "target", ignore_errors=True)
    train = training_clips(args.fsdd, args.n_espeak, args.seed)
    options = _options(args, "target", "mel", True, minutes=args.minutes)
    with CpuWallClock() as train_clock:
        pipe, result, plan = train_text_to_audio(train, options)
    out = {
        "stage": "target",
        "minutes": args.minutes,
        "train": {
            "steps": result.step,
            "stopped": result.stopped,
            "wall_s": result.wall_s,
            "clips_per_s": result.items_per_s,
            "plan": plan,
            "cpu_per_wall": train_clock.ratio,
            "clips": len(train),
            "sources": sorted(set(train.sources)),
            "held_out": train.held_out,
        },
        "parameters": sum(p.numel() for p in pipe.network.parameters()),
        "checkpoint": str(Path(options.out_dir) / "checkpoint"),
        "targets": TARGETS,
        "scores": [_scores(args, pipe, g) for g in args.guidance],
        "vocoder": _vocoder_ceiling(args, pipe.domain),
    }
    _figure(pipe, Path(args.img_dir) / "audio_spectrograms.png", args.seed, args.steps, args.fsdd)
    return _finish(out, clock, plan.get("precision"))


def stage_domain(args) -> dict:
    clock = Clock()
    precision = resolve_precision(args.precision, "cpu")
    runs = {}
    for name, domain, fsdd, objective in CONTESTANTS:
        shutil.rmtree(Path(args.run_dir) / name, ignore_errors=True)
        train = training_clips(args.fsdd if fsdd else None, args.n_espeak, args.seed)
        options = _options(args, name, domain, fsdd, objective)
        runs[name] = {"train": train, "options": options}
    # the probe, interleaved: each contestant's seconds per step, so each schedule fits
    for _round in range(2):
        for run in runs.values():
            setup = prepare_audio_training(run["train"], run["options"])
            batch = setup.probe_batch(args.batch_size)
            timing = measure_train_step(setup.model, setup.loss_fn, batch, precision, budget_s=8)
            run.setdefault("probe_s", []).append(timing.seconds)
    slice_min = args.minutes / args.slices
    for run in runs.values():
        run["seconds_per_step"] = min(run["probe_s"])
        run["max_steps"] = max(1, math.floor(0.93 * args.minutes * 60 / run["seconds_per_step"]))
        run["options"].max_steps = run["max_steps"]
        run["options"].minutes = slice_min
        run["wall_s"], run["cpu_s"] = 0.0, 0.0
    for k in range(args.slices):
        for run in runs.values():
            with CpuWallClock() as c:
                pipe, result, _ = train_text_to_audio(run["train"], run["options"], resume=k > 0)
            before = run.get("result").step if "result" in run else 0
            run["wall_s"] += c.wall_s
            run["cpu_s"] += c.cpu_s
            run["pipe"], run["result"] = pipe, result
            # replan from the steps this slice really took: a schedule that the probe made too
            # short (contention changes from one probe to the next) is extended, never cut
            left = args.minutes * 60 - run["wall_s"]
            if k < args.slices - 1 and result.step > before and left > 0:
                rate = c.wall_s / (result.step - before)
                more = result.step + math.floor(0.93 * left / rate)
                if more > run["options"].max_steps:
                    run["options"].max_steps = more
                    run.setdefault("extended_to", []).append(more)
    table = []
    for name, domain, fsdd, _ in CONTESTANTS:
        run = runs[name]
        scores = _scores(args, run["pipe"], args.guidance[0])
        table.append(
            {
                "name": name,
                "domain": domain,
                "fsdd_speakers": fsdd,
                "prediction": run["options"].recipe.prediction,
                "min_snr_gamma": run["options"].recipe.min_snr_gamma,
                "clips": len(run["train"]),
                "steps": run["result"].step,
                "planned_steps": run["max_steps"],
                "extended_to": run.get("extended_to", []),
                "seconds_per_step": run["seconds_per_step"],
                "train_wall_s": run["wall_s"],
                "train_cpu_per_wall": run["cpu_s"] / max(run["wall_s"], 1e-9),
                "accuracy": scores["generated"]["accuracy"],
                "inception_score": scores["generated"]["inception_score"],
                "modified_inception_score": scores["generated"]["modified_inception_score"],
                "am_score": scores["generated"]["am_score"],
                "frechet_distance": scores["generated"]["frechet_distance"],
                "fd_ratio": scores["fd_ratio"],
                "real": scores["real"],
            }
        )
    out = {"stage": "domain", "minutes_each": args.minutes, "slices": args.slices, "table": table}
    return _finish(out, clock, precision)


def _time_sampling(pipe: TextToAudioPipeline, steps: int) -> tuple[float, float]:
    """(seconds of the network part, seconds of the decoding) of one 1-s clip, guidance 2."""
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    ids, mask = pipe.tokenizer(["seven", ""])
    cond = pipe.network_call(pipe.model.encode_text)(ids, mask)
    x = pipe.generate(
        pipe.denoiser(),
        (1, *pipe.domain.shape),
        cond={k: v[:1] for k, v in cond.items()},
        uncond={k: v[1:] for k, v in cond.items()},
        guidance_scale=2.0,
        num_inference_steps=steps,
        method="dpmpp_2m",
        generator=gen,
        batch_size=1,
    )
    t1 = time.perf_counter()
    pipe.domain.decode(x)
    return t1 - t0, time.perf_counter() - t1


def stage_rtf(args) -> dict:
    from synesthesia.data.spoken_digits import audio_vocabulary
    from synesthesia.diffusion import NoiseSchedule
    from synesthesia.nets.audio_unet import audio_unet_preset
    from synesthesia.nets.encoders import TextEncoderConfig
    from synesthesia.nets.tokenizer import WordTokenizer

    clock = Clock()
    tok = WordTokenizer(audio_vocabulary(), max_length=8)
    text = TextEncoderConfig(vocab_size=len(tok), dim=64, depth=2, heads=4, max_length=8)
    pipes = {}
    for kind in ("mel", "wave"):
        dom = AudioDomain(kind=kind)
        unet = audio_unet_preset(kind, in_channels=dom.channels, length=dom.length,
                                 context_dim=64, pooled_dim=64)  # fmt: skip
        torch.manual_seed(0)
        model = build_audio_model(unet, text)
        schedule = NoiseSchedule("cosine", 1000)
        pipes[kind] = TextToAudioPipeline(model, tok, dom, schedule, precision=args.precision)
    rows = []
    threads_before = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in pipes}
        with CpuWallClock() as c:
            for _ in range(args.repeats):
                for kind, pipe in pipes.items():  # interleaved
                    times[kind].append(_time_sampling(pipe, args.steps))
        for kind, ts in times.items():
            net = statistics.median(t[0] for t in ts)
            dec = statistics.median(t[1] for t in ts)
            seconds = pipes[kind].samples / pipes[kind].sample_rate
            rows.append(
                {
                    "domain": kind,
                    "threads": threads,
                    "network_s": net,
                    "decode_s": dec,
                    "rtf": (net + dec) / seconds,
                    "rtf_network_only": net / seconds,
                    "cpu_per_wall": c.ratio,
                    "repeats": args.repeats,
                }
            )
    torch.set_num_threads(threads_before)
    note = "rtf = sampling seconds / audio seconds (< 1: faster than real time)"
    out = {"stage": "rtf", "steps": args.steps, "guidance": 2.0, "rows": rows, "note": note}
    return _finish(out, clock, pipes["mel"].precision)


def stage_rescore(args) -> dict:
    clock = Clock()
    folder = Path(args.run_dir) / "target" / "checkpoint"
    record = Path(args.out_dir) / "target.json"
    if not folder.is_dir() or not record.is_file():
        raise SystemExit(f"rescore needs {folder} and {record}: run --stage target first")
    import json

    target = json.loads(record.read_text())
    pipe = TextToAudioPipeline.from_pretrained(folder, precision=args.precision)
    out = {
        "stage": "rescore",
        "of": {"json": str(record), "date": target.get("date"), "command": target.get("command")},
        "minutes": target.get("minutes"),
        "train": target.get("train"),
        "train_machine": target.get("machine"),
        "parameters": sum(p.numel() for p in pipe.network.parameters()),
        "checkpoint": str(folder),
        "targets": TARGETS,
        "scores": [_scores(args, pipe, g) for g in args.guidance],
    }
    return _finish(out, clock, pipe.precision)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stage", choices=STAGES, required=True)
    p.add_argument("--minutes", type=float, default=None, help="training time (per contestant)")
    p.add_argument("--slices", type=int, default=4, help="interleaved slices (domain stage)")
    p.add_argument("--fsdd", type=Path, default=FSDD, help="the FSDD recordings folder")
    p.add_argument("--n-espeak", type=int, default=2000)
    p.add_argument("--n-per-digit", type=int, default=25)
    p.add_argument("--guidance", type=float, nargs="+", default=[2.0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default="auto")
    p.add_argument("--prediction", choices=("x0", "v", "eps"), default="x0")
    p.add_argument("--min-snr-gamma", type=float, default=None, help="min-SNR weighting")
    p.add_argument("--out-dir", type=Path, default=ROOT / "out" / "audio")
    p.add_argument("--run-dir", type=Path, default=ROOT.parent / "runs" / "bench-audio")
    p.add_argument("--img-dir", type=Path, default=ROOT.parent / "docs" / "img")
    args = p.parse_args(argv)
    if args.minutes is None:
        args.minutes = {"target": 20.0, "domain": 6.0}.get(args.stage, 0.0)
    if args.stage != "rtf" and not Path(args.fsdd).is_dir():
        p.error(f"--fsdd {args.fsdd}: no such folder (the FSDD recordings are needed to score)")
    stages = {"target": stage_target, "domain": stage_domain, "rtf": stage_rtf,
              "rescore": stage_rescore}  # fmt: skip
    stage = stages[args.stage]
    result = stage(args)
    result["argv"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    _save(Path(args.out_dir), args.stage, result)


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
