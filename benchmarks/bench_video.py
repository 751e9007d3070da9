"""Text-to-video on moving digits (issue 10): the target run, the ablation, the Conv3d layout.

Stages (one with --stage, or all; each writes --out-dir/<stage>.json with the machine record
and process CPU time / wall time; on 2 cores a ratio well below the thread count means the
run was contended and is rerun):

- ``target``: ``train_text_to_video`` (factorised space-time U-Net, default recipe) for
  ``--minutes`` (issue target: 20), then scored on every canonical prompt (10 digits x 4
  directions x 2 speeds, ``--n-per-prompt`` videos each): per-frame digit accuracy >= 95 %,
  identity consistency >= 95 %, motion agreement >= 90 %; speed agreement, smoothness and
  the Frechet distances of frames and frame differences with their real-vs-real floor. A GIF
  and a frame strip of prompted samples go to ``--img-dir``.
- ``ablation``: at equal training wall time, interleaved in ``--slices`` slices (A, B, C, A,
  B, C, ...): ``full`` (temporal layers on, consistency loss on), ``per_frame`` (temporal
  layers off) and ``no_consistency`` (consistency weight 0); each scored as above.
- ``layouts``: the training step time of the factorised model with temporal layers at every
  level, at levels 1-2, at level 2 only, of the per-frame model and of the Conv3d layout
  (interleaved rounds; no training).
- ``conv3d``: the factorised model against the chapter's layout (a Conv3d U-Net of about
  equal parameter count, :func:`synesthesia.nets.video_unet.conv3d_config`): training
  throughput in interleaved timing rounds (target >= 1.5x), then both trained for the same
  wall time, interleaved, and scored.

Every contestant of a stage trains ``--minutes`` in total; its schedule length is planned
from its own step time measured in interleaved rounds before training.

    python benchmarks/bench_video.py --stage target --minutes 20
    python benchmarks/bench_video.py --stage ablation --minutes 20
    python benchmarks/bench_video.py --stage conv3d --minutes 20
    OMP_NUM_THREADS=1 python benchmarks/bench_video.py --stage target --minutes 2 --steps 10 \\
        --out-dir /tmp/video --run-dir /tmp/video-runs --img-dir /tmp/video  # smoke
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import time
from functools import lru_cache
from pathlib import Path

import torch

from synesthesia.data.images import load_image_splits
from synesthesia.data.moving_digits import (
    VIDEO_VOCABULARY,
    MovingDigitsConfig,
    MovingDigitsDataset,
    canonical_prompts,
    make_videos,
    parse_prompt,
)
from synesthesia.diffusion import NoiseSchedule
from synesthesia.metrics.evaluator import get_evaluator
from synesthesia.metrics.video import frechet_floor, score_videos
from synesthesia.nets.video_unet import TextConditionedVideoUNet, build_video_unet, count_parameters
from synesthesia.pipelines.text2image_train import build_text_encoder
from synesthesia.pipelines.text2video import TextToVideoPipeline, save_frame_strip, save_videos_gif
from synesthesia.pipelines.text2video_train import (
    VideoRecipe,
    VideoTrainOptions,
    build_model_config,
    train_text_to_video,
    video_loss_fn,
)
from synesthesia.training.machine import CpuWallClock, machine_record
from synesthesia.training.precision import resolve_precision
from synesthesia.training.timing import time_calls, training_step

STAGES = ("target", "ablation", "conv3d", "layouts")
TARGETS = {"frame_accuracy": 0.95, "identity_consistency": 0.95, "motion_agreement": 0.90}
#: The ablation's contestants: option overrides of the default recipe.
ABLATION = {
    "full": {},
    "per_frame": {"temporal": ()},
    "no_consistency": {"consistency_weight": 0.0},
}
LAYOUTS = {"factorised": {}, "conv3d": {"layout": "conv3d"}}
#: Where the temporal layers go, against the per-frame model and Conv3d: step times only.
LEVEL_VARIANTS = {
    "all_levels": {"temporal_levels": None},
    "levels_1_2": {"temporal_levels": (1, 2)},
    "level_2": {"temporal_levels": (2,)},
    "per_frame": {"temporal": ()},
    "conv3d": {"layout": "conv3d"},
}


@lru_cache(maxsize=1)
def _world():
    """``(train, val, evaluator, evaluator config)`` of the built-in digits (cached)."""
    train, val = load_image_splits("mnist5k")
    evaluator, ev_config = get_evaluator(train, val, progress=False)
    return train, val, evaluator, ev_config


def _options(args, out: Path, **overrides) -> VideoTrainOptions:
    recipe_keys = {"consistency_weight", "image_fraction"}
    recipe = VideoRecipe(**{k: v for k, v in overrides.items() if k in recipe_keys})
    rest = {k: v for k, v in overrides.items() if k not in recipe_keys}
    return VideoTrainOptions(
        out_dir=str(out),
        preset=args.preset,
        batch_size=args.batch_size,
        seed=args.seed,
        precision=args.precision,
        progress=False,
        recipe=recipe,
        **rest,
    )


def _probe(options: VideoTrainOptions, precision: str):
    """(training step closure, parameter count) of a fresh model of ``options``."""
    train, _, _, _ = _world()
    torch.manual_seed(options.seed)
    text, tok, frozen, _ = build_text_encoder(options, VIDEO_VOCABULARY)
    model = TextConditionedVideoUNet(
        build_video_unet(build_model_config(options, text.out_dim)), text, frozen
    )
    recipe = options.recipe
    data = MovingDigitsDataset(train, tok, recipe.world, seed=options.seed)
    batch = torch.utils.data.default_collate([data[i] for i in range(options.batch_size)])
    loss = video_loss_fn(recipe, NoiseSchedule(recipe.schedule, recipe.num_timesteps),
                         tok.pad_id, tok.cls_id)  # fmt: skip
    return training_step(model, loss, batch, precision), count_parameters(model.unet)


def step_times(contestants: dict[str, VideoTrainOptions], args, precision: str) -> dict:
    """Median seconds per training step of each contestant, timed in interleaved rounds."""
    steps = {name: _probe(opt, precision) for name, opt in contestants.items()}
    times: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(args.rounds):
        for name, (step, _) in steps.items():
            times[name] += time_calls(step, args.speed_steps, warmup=1)
    return {
        name: {
            "median_s": statistics.median(t),
            "videos_per_s": args.batch_size / statistics.median(t),
            "times_s": t,
            "parameters": steps[name][1],
        }
        for name, t in times.items()
    }


def train_interleaved(contestants: dict[str, VideoTrainOptions], args) -> dict:
    """Train every contestant for ``args.minutes`` of wall time in total, in ``args.slices``
    interleaved slices. The first schedule is planned from the step time measured in
    interleaved rounds; after each slice it is replanned from the steps that slice really
    took (a resumption may change ``max_steps``), and the last slice gets what is left of
    the contestant's budget, so every contestant trains for the same wall time."""
    precision = resolve_precision(args.precision, "cpu")
    with CpuWallClock() as clock:
        speed = step_times(contestants, args, precision)
    records: dict[str, dict] = {}
    for name, opt in contestants.items():
        shutil.rmtree(opt.out_dir, ignore_errors=True)
        opt.max_steps = max(1, math.floor(0.9 * args.minutes * 60 / speed[name]["median_s"]))
        opt.minutes = args.minutes / args.slices
        records[name] = {"first_plan": opt.max_steps, "speed": speed[name], "wall_s": 0.0,
                         "cpu_s": 0.0}  # fmt: skip
    budget_s = args.minutes * 60.0
    speed_clock = {"wall_s": clock.wall_s, "cpu_s": clock.cpu_s, "cpu_per_wall": clock.ratio}
    train, _, _, _ = _world()
    pipes: dict[str, TextToVideoPipeline] = {}
    names = list(contestants)
    for s in range(args.slices):
        for name in names[s % len(names) :] + names[: s % len(names)]:  # rotate who goes first
            rec, opt = records[name], contestants[name]
            if rec.get("done"):
                continue
            with CpuWallClock() as c:
                pipe, res, _ = train_text_to_video(train, opt, resume=s > 0)
            rec["wall_s"] += c.wall_s
            rec["cpu_s"] += c.cpu_s
            rec.update(steps=res.step, stopped=res.stopped, precision=precision)
            pipes[name] = pipe
            print(f"slice {s + 1}/{args.slices} {name}: step {res.step}/{opt.max_steps}, "
                  f"{rec['wall_s']:.0f} s", flush=True)  # fmt: skip
            left = budget_s - rec["wall_s"]
            rec["done"] = left < 5.0
            # replan: this run's own seconds per step so far, slices and checkpoints included
            per_step = rec["wall_s"] / max(res.step, 1)
            opt.max_steps = max(res.step, res.step + math.floor(0.95 * left / per_step))
            rec["planned_steps"] = opt.max_steps
            rec["done"] = rec["done"] or opt.max_steps == res.step
            slices_left = args.slices - s - 1
            opt.minutes = max(left, 1.0) / 60.0 / max(slices_left, 1)
    for name, rec in records.items():
        rec["cpu_per_wall"] = rec["cpu_s"] / max(rec["wall_s"], 1e-9)
        rec["config"] = pipes[name].video_config.to_dict()
        rec["recipe"] = pipes[name].extra["recipe"]
    return {"runs": records, "pipes": pipes, "speed_clock": speed_clock}


def score(pipe: TextToVideoPipeline, args) -> dict:
    """Every video score of ``pipe`` on the canonical prompts, against real validation videos."""
    _, val, evaluator, _ = _world()
    world = pipe.video_config
    prompts = canonical_prompts()[:: args.prompt_stride]
    motions = [parse_prompt(p) for p in prompts for _ in range(args.n_per_prompt)]
    with CpuWallClock() as clock:
        videos = pipe(prompts, guidance_scale=args.guidance, num_inference_steps=args.steps,
                      num_images_per_prompt=args.n_per_prompt, output_type="pt",
                      generator=torch.Generator().manual_seed(args.seed))  # fmt: skip
    real = make_videos(val, len(motions), MovingDigitsConfig(world.image_size, world.frames),
                       seed=args.seed + 1).videos  # fmt: skip
    scores = score_videos(evaluator, videos, motions, reference=real)
    scores.update(sample_wall_s=clock.wall_s, sample_cpu_per_wall=clock.ratio,
                  guidance=pipe.guidance_scale if args.guidance is None else args.guidance,
                  steps=args.steps)  # fmt: skip
    return scores


@lru_cache(maxsize=4)
def _floor(n: int, canvas: int, frames: int, seed: int) -> dict:
    _, val, evaluator, _ = _world()
    world = MovingDigitsConfig(canvas, frames)
    a = make_videos(val, n, world, seed=seed + 1).videos
    b = make_videos(val, n, world, seed=seed + 2).videos
    return frechet_floor(evaluator, a, b)


def _with_floor(scores: dict, pipe: TextToVideoPipeline, args) -> dict:
    cfg = pipe.video_config
    floor = _floor(scores["num_videos"], cfg.image_size, cfg.frames, args.seed)
    return {**scores, "frame_fd_floor": floor["frame_fd"],
            "difference_fd_floor": floor["difference_fd"]}  # fmt: skip


def _finish(result: dict, clock: CpuWallClock, precision: str) -> dict:
    result["clock"] = {"wall_s": clock.wall_s, "cpu_s": clock.cpu_s, "cpu_per_wall": clock.ratio}
    result["command"] = " ".join(["python", *sys.argv])
    result["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    result["machine"] = machine_record(precision, cpu_wall=clock.ratio)
    return result


def save_samples(pipe: TextToVideoPipeline, img_dir: Path, name: str, seed: int) -> dict:
    """A GIF (one video per digit, directions in turn) and its frame strip in ``img_dir``."""
    img_dir.mkdir(parents=True, exist_ok=True)
    every = canonical_prompts()  # digit-major: 4 directions x 2 speeds per digit
    prompts = [every[8 * d + 2 * (d % 4) + d % 2] for d in range(10)]  # one per digit
    gens = [torch.Generator().manual_seed(seed + i) for i in range(len(prompts))]
    videos = pipe(prompts, num_inference_steps=20, output_type="pt", generator=gens)
    gif = save_videos_gif(videos, img_dir / f"{name}.gif", nrow=5)
    strip = save_frame_strip(videos, img_dir / f"{name}_strip.png")
    return {"gif": str(gif), "strip": str(strip), "prompts": prompts}


def stage_target(args) -> dict:
    train, _, _, ev_config = _world()
    precision = resolve_precision(args.precision, "cpu")
    out = Path(args.run_dir) / "target"
    shutil.rmtree(out, ignore_errors=True)
    with CpuWallClock() as clock:
        with CpuWallClock() as tclock:
            opt = _options(args, out, minutes=args.minutes)
            pipe, res, plan = train_text_to_video(train, opt)
        scores = _with_floor(score(pipe, args), pipe, args)
        samples = save_samples(pipe, Path(args.img_dir), "video_target", args.seed)
    result = {
        "minutes": args.minutes,
        "run": str(out),
        "steps": res.step,
        "stopped": res.stopped,
        "videos_per_s": res.items_per_s,
        "batch_size": opt.batch_size,
        "plan": plan,
        "train_clock": {
            "wall_s": tclock.wall_s,
            "cpu_s": tclock.cpu_s,
            "cpu_per_wall": tclock.ratio,
        },  # fmt: skip
        "parameters": count_parameters(pipe.model.unet),
        "config": pipe.video_config.to_dict(),
        "recipe": pipe.extra["recipe"],
        "scores": scores,
        "evaluator_val_accuracy": ev_config.get("val_accuracy"),
        "samples": samples,
        "targets": {
            k: {"value": scores[k], "target": v, "met": scores[k] >= v} for k, v in TARGETS.items()
        },
    }
    return _finish(result, clock, precision)


def _compare(args, variants: dict[str, dict], stage: str) -> dict:
    precision = resolve_precision(args.precision, "cpu")
    contestants = {
        name: _options(args, Path(args.run_dir) / stage / name, **over)
        for name, over in variants.items()
    }
    with CpuWallClock() as clock:
        trained = train_interleaved(contestants, args)
        scores = {
            name: _with_floor(score(p, args), p, args) for name, p in trained["pipes"].items()
        }
    result = {"minutes": args.minutes, "slices": args.slices, "runs": trained["runs"],
              "speed_clock": trained["speed_clock"], "scores": scores}  # fmt: skip
    return _finish(result, clock, precision)


def stage_ablation(args) -> dict:
    return _compare(args, ABLATION, "ablation")


def stage_layouts(args) -> dict:
    """Training step time of each of :data:`LEVEL_VARIANTS`, timed in interleaved rounds."""
    precision = resolve_precision(args.precision, "cpu")
    contestants = {
        name: _options(args, Path(args.run_dir) / "layouts" / name, **over)
        for name, over in LEVEL_VARIANTS.items()
    }
    with CpuWallClock() as clock:
        speed = step_times(contestants, args, precision)
    base = speed["per_frame"]["median_s"]
    for s in speed.values():
        s["relative_to_per_frame"] = s["median_s"] / base
    return _finish({"batch_size": args.batch_size, "speed": speed}, clock, precision)


def stage_conv3d(args) -> dict:
    result = _compare(args, LAYOUTS, "conv3d")
    runs = result["runs"]
    ratio = runs["factorised"]["speed"]["videos_per_s"] / runs["conv3d"]["speed"]["videos_per_s"]
    result["throughput_ratio"] = ratio
    a, b = result["scores"]["factorised"], result["scores"]["conv3d"]
    result["targets"] = {
        "throughput_ratio": {"value": ratio, "target": 1.5, "met": ratio >= 1.5},
        "better_scores": {
            "met": all(a[k] >= b[k] for k in TARGETS) and a["frame_fd"] <= b["frame_fd"],
        },
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=(*STAGES, "all"), default="all")
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget per model")
    parser.add_argument("--preset", default="small", help="U-Net size (tiny, small)")
    parser.add_argument("--batch-size", type=int, default=16, help="videos per step")
    parser.add_argument("--n-per-prompt", type=int, default=1, help="videos per scored prompt")
    parser.add_argument(
        "--prompt-stride", type=int, default=1, help="score every k-th canonical prompt (all)"
    )
    parser.add_argument("--steps", type=int, default=20, help="sampler steps when scoring")
    parser.add_argument("--guidance", type=float, default=None, help="default: the stored one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="auto", help="auto, fp32 or bf16")
    parser.add_argument("--slices", type=int, default=4, help="interleaved training slices")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--speed-steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--out-dir", default="benchmarks/out/video")
    parser.add_argument("--run-dir", default="runs/bench-video")
    parser.add_argument("--img-dir", default="docs/img", help="GIF and frame strip")
    args = parser.parse_args()
    run = {"target": stage_target, "ablation": stage_ablation, "conv3d": stage_conv3d,
           "layouts": stage_layouts}  # fmt: skip
    for stage in STAGES if args.stage == "all" else (args.stage,):
        result = run[stage](args)
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{stage}.json").write_text(json.dumps(result, indent=2) + "\n")
        shown = {k: result[k] for k in ("targets", "clock") if k in result}
        print(f"{stage}: {json.dumps(shown, indent=1)}", flush=True)


if __name__ == "__main__":
    main()
