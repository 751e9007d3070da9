"""Text-to-video on moving digits (issue 10): the target run, the ablation, the Conv3d layout.

Stages (one with --stage, or the first four; each writes --out-dir/<stage>.json with the
machine record and process CPU time / wall time; on 2 cores a ratio well below the thread
count means the run was contended and is rerun):

- ``target``: within ``--minutes`` in all (issue target: 20), first the per-frame image model
  (a ``text2image`` pixel model of the same U-Net, ``--image-minutes``, default
  :data:`DEFAULT_IMAGE_MINUTES`), then ``train_text_to_video`` started from it
  (``init_from``: factorised space-time U-Net, temporal layers zero) for the rest
  (``--image-minutes 0``: the video model from scratch), then scored on every canonical
  prompt (10 digits x 4 directions x 2 speeds, ``--n-per-prompt`` videos each): per-frame
  digit accuracy >= 95 %, identity consistency >= 95 %, motion agreement >= 90 %; speed
  agreement, smoothness and the Frechet distances of frames and frame differences with their
  real-vs-real floor. A GIF and a frame strip of prompted samples go to ``--img-dir``.
- ``ablation``: on the target's recipe (one image model for ``--image-minutes``, which every
  contestant starts from), then at equal training wall time, interleaved in ``--slices``
  slices (A, B, C, A, B, C, ...): ``full`` (temporal layers on, consistency loss on),
  ``per_frame`` (temporal layers off) and ``no_consistency`` (consistency weight 0); each
  scored as above.
- ``layouts``: the training step time of the factorised model with temporal layers at every
  level, at levels 1-2, at level 2 only, of the per-frame model and of the Conv3d layout
  (interleaved rounds; no training).
- ``conv3d``: the factorised model against the chapter's layout (a Conv3d U-Net of about
  equal parameter count, :func:`synesthesia.nets.video_unet.conv3d_config`): training
  throughput in interleaved timing rounds (target >= 1.5x), then both trained for the same
  wall time, interleaved, and scored.
- ``diagnose``: is a low score the model's or the metric's? The video scores of real
  validation videos (clean and with noise on the background), of an image model's samples
  moved along the asked trajectories (``--image-checkpoint``), of the per-frame image model
  on the 32 x 32 canvas (a video model started from it, untrained), and of a trained video
  checkpoint (``--video-checkpoint``) per asked digit.
- ``noise``: white noise against frame-correlated noise (``--frame-noise-correlation``; Ge
  et al. 2023's mixed noise), both started from one image model (as ``ablation``), at equal
  training wall time, interleaved; each scored as ``target``.
- ``motion``: temporal layers (attention and convolution) at the lowest level only, against
  temporal convolutions at the finer levels too (``conv_levels``), both started from one
  image model, at equal wall time, interleaved; each scored as ``target``.
- ``start``: where video training starts: the untrained video model (temporal layers zero)
  of each of ``--start-checkpoints``, with white and with frame-correlated noise; scored.
- ``init``: does starting from the image model pay at equal total wall time? ``scratch``
  (the video model, ``--minutes``) against ``pretrained`` (the image model for
  ``--image-share`` of them, then the video model started from it), interleaved: scratch's
  first half, the image model, scratch's second half (resumed), the video model.

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

import numpy as np
import torch

from synesthesia.data.images import load_image_splits
from synesthesia.data.moving_digits import (
    VIDEO_VOCABULARY,
    MovingDigitsConfig,
    MovingDigitsDataset,
    PromptMotion,
    bounce_trajectory,
    canonical_prompts,
    make_videos,
    parse_prompt,
    render,
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

STAGES = (
    "target", "ablation", "conv3d", "layouts", "diagnose", "init", "noise", "start", "motion",
    "canvas", "world", "text_lr", "text",
)  # fmt: skip
TARGETS = {"frame_accuracy": 0.95, "identity_consistency": 0.95, "motion_agreement": 0.90}
#: The ablation's contestants: option overrides of the default recipe.
ABLATION = {
    "full": {},
    "per_frame": {"temporal": ()},
    "no_consistency": {"consistency_weight": 0.0},
}
LAYOUTS = {"factorised": {}, "conv3d": {"layout": "conv3d"}}
#: White noise against frame-correlated noise (Ge et al. 2023), from the same image model.
NOISE = {"white": {"frame_noise_correlation": 0.0}, "correlated": {}}
#: Temporal attention at the lowest level only, against temporal convolutions at every level.
CONV_LEVELS = {"lowest": {"conv_levels": ()}, "conv_everywhere": {"conv_levels": (0, 1)}}
#: Minutes of the target budget spent first on the per-frame image model (0: from scratch).
DEFAULT_IMAGE_MINUTES = 8.0
#: Where the temporal layers go, against the per-frame model and Conv3d: step times only.
LEVEL_VARIANTS = {
    "all_levels": {"temporal_levels": None},
    "levels_1_2": {"temporal_levels": (1, 2)},
    "level_2": {"temporal_levels": (2,)},
    "level_2_conv_everywhere": {"temporal_levels": (2,), "conv_levels": (0, 1)},
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
    recipe_keys = {"consistency_weight", "image_fraction", "frame_noise_correlation", "canvas"}
    given = {k: v for k, v in overrides.items() if k in recipe_keys}
    recipe = VideoRecipe(**{"frame_noise_correlation": args.frame_noise_correlation,
                            "canvas": args.canvas, **given})  # fmt: skip
    rest = {k: v for k, v in overrides.items() if k not in recipe_keys}
    return VideoTrainOptions(
        out_dir=str(out),
        preset=args.preset,
        batch_size=args.batch_size,
        seed=args.seed,
        precision=args.precision,
        progress=False,
        recipe=recipe,
        **{
            "lr": args.lr,
            "loaded_lr_scale": args.loaded_lr_scale,
            "loaded_text_lr_scale": args.loaded_text_lr_scale,
            "conv_levels": tuple(args.conv_levels),
            **rest,
        },  # fmt: skip
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


def train_interleaved(
    contestants: dict[str, VideoTrainOptions], args, minutes: float | None = None
) -> dict:
    """Train every contestant for ``minutes`` (default ``args.minutes``) of wall time in
    total, in ``args.slices``
    interleaved slices. The first schedule is planned from the step time measured in
    interleaved rounds; after each slice it is replanned from the steps that slice really
    took (a resumption may change ``max_steps``), and the last slice gets what is left of
    the contestant's budget, so every contestant trains for the same wall time."""
    minutes = args.minutes if minutes is None else minutes
    precision = resolve_precision(args.precision, "cpu")
    with CpuWallClock() as clock:
        speed = step_times(contestants, args, precision)
    records: dict[str, dict] = {}
    for name, opt in contestants.items():
        shutil.rmtree(opt.out_dir, ignore_errors=True)
        opt.max_steps = max(1, math.floor(0.9 * minutes * 60 / speed[name]["median_s"]))
        opt.minutes = minutes / args.slices
        records[name] = {"first_plan": opt.max_steps, "speed": speed[name], "wall_s": 0.0,
                         "cpu_s": 0.0}  # fmt: skip
    budget_s = minutes * 60.0
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
    """The issue's target run: ``--image-minutes`` of the budget on the per-frame image model,
    the rest on the video model started from it (or, with 0, from scratch); scored."""
    train, _, _, ev_config = _world()
    precision = resolve_precision(args.precision, "cpu")
    out = Path(args.run_dir) / "target"
    shutil.rmtree(out, ignore_errors=True)
    with CpuWallClock() as clock:
        with CpuWallClock() as tclock:
            start = time.perf_counter()
            image, init_from = image_start(args, "target")
            left = args.minutes - (time.perf_counter() - start) / 60.0
            opt = _options(args, out, minutes=max(left, 0.5), init_from=init_from)
            pipe, res, plan = train_text_to_video(train, opt)
        scores = _with_floor(score(pipe, args), pipe, args)
        samples = save_samples(pipe, Path(args.img_dir), "video_target", args.seed)
    result = {
        "minutes": args.minutes,
        "run": str(out),
        "image_pretraining": image,
        "init_from": init_from,
        # an external --init-from checkpoint's training time is not in the budget
        "pretraining_counted": args.init_from is None,
        "lr": args.lr,
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


def image_start(args, stage: str) -> tuple[dict | None, str | None]:
    """``(image model record, checkpoint)`` the video models of ``stage`` start from:
    ``--init-from`` as given (its training time not counted, record None), a per-frame image
    model trained now for ``--image-minutes`` (0: none, the video models start from
    scratch)."""
    if args.init_from is not None:
        return None, args.init_from
    if args.image_minutes <= 0:
        return None, None
    image = train_image_model(args, Path(args.run_dir) / f"{stage}-image", args.image_minutes)
    return image, image["checkpoint"]


def _compare(args, variants: dict[str, dict], stage: str, image_first: bool = False) -> dict:
    """Train ``variants`` (option overrides) interleaved for equal wall time and score them;
    with ``image_first`` all of them start from one image model (:func:`image_start`), whose
    minutes count in every contestant's ``--minutes``."""
    precision = resolve_precision(args.precision, "cpu")
    with CpuWallClock() as clock:
        image, init_from = image_start(args, stage) if image_first else (None, None)
        minutes = args.minutes - (image["wall_s"] / 60.0 if image else 0.0)
        contestants = {
            name: _options(args, Path(args.run_dir) / stage / name, init_from=init_from, **over)
            for name, over in variants.items()
        }
        trained = train_interleaved(contestants, args, minutes)
        scores = {
            name: _with_floor(score(p, args), p, args) for name, p in trained["pipes"].items()
        }
    result = {"minutes": args.minutes, "video_minutes": minutes, "slices": args.slices,
              "image_pretraining": image, "init_from": init_from,
              "loaded_lr_scale": args.loaded_lr_scale,
              "loaded_text_lr_scale": args.loaded_text_lr_scale,
              "pretraining_counted": args.init_from is None, "runs": trained["runs"],
              "speed_clock": trained["speed_clock"], "scores": scores}  # fmt: skip
    return _finish(result, clock, precision)


def stage_ablation(args) -> dict:
    """The ablation on the target's recipe: every contestant starts from the same image
    model (``--image-minutes`` of each one's ``--minutes``; 0: all from scratch)."""
    return _compare(args, ABLATION, "ablation", image_first=True)


def stage_noise(args) -> dict:
    """White against frame-correlated noise (``--frame-noise-correlation``, which must be
    above 0), both started from one image model, at equal wall time, interleaved."""
    if args.frame_noise_correlation <= 0:
        raise SystemExit("--stage noise needs --frame-noise-correlation above 0")
    result = _compare(args, NOISE, "noise", image_first=True)
    result["frame_noise_correlation"] = args.frame_noise_correlation
    return result


def stage_motion(args) -> dict:
    """Temporal layers at the lowest level only against temporal convolutions at every level
    too (:data:`CONV_LEVELS`), both started from one image model, at equal wall time."""
    return _compare(args, CONV_LEVELS, "motion", image_first=True)


def stage_canvas(args) -> dict:
    """One contestant per ``--canvases`` side (the digit's 28 x 28 box moves in a room of
    ``canvas - 28`` pixels), all started from one image model, at equal wall time."""
    variants = {f"canvas_{c}": {"canvas": c} for c in args.canvases}
    return _compare(args, variants, "canvas", image_first=True)


def stage_text_lr(args) -> dict:
    """The loaded text encoder at the full learning rate (it must learn the motion words),
    the loaded U-Net at ``--loaded-lr-scale``: the control is the motion stage's ``lowest``."""
    return _compare(args, {"text_lr_1": {"loaded_text_lr_scale": 1.0}}, "text_lr", True)


def _separation(pipe: TextToVideoPipeline) -> dict:
    """Mean distance between the pooled text embeddings of canonical prompts that differ in
    one part only: the direction's sign (left/right, up/down), its axis, or the digit."""
    moves = ("left", "right", "up", "down")
    prompts = [f"a {d} moving {m}" for d in range(10) for m in moves]
    with torch.no_grad():
        pooled = pipe.encode_prompts(prompts)["pooled"].float().reshape(10, 4, -1)
    sign = torch.cat([pooled[:, 0] - pooled[:, 1], pooled[:, 2] - pooled[:, 3]]).norm(dim=-1)
    axis = torch.cat([pooled[:, 0] - pooled[:, 2], pooled[:, 1] - pooled[:, 3]]).norm(dim=-1)
    digit = (pooled[:, None] - pooled[None]).norm(dim=-1)  # (10, 10, 4)
    off = ~torch.eye(10, dtype=torch.bool)
    return {
        "sign": float(sign.mean()), "axis": float(axis.mean()),
        "digit": float(digit[off].mean()), "norm": float(pooled.norm(dim=-1).mean()),
    }  # fmt: skip


def stage_text(args) -> dict:
    """How far apart the text encoder of each ``--checkpoints`` video model puts prompts that
    differ in direction, axis or digit (scoring only)."""
    with CpuWallClock() as clock:
        rows = {c: _separation(TextToVideoPipeline.from_pretrained(c)) for c in args.checkpoints}
    return _finish({"separation": rows}, clock, resolve_precision(args.precision, "cpu"))


def _is_shift(track: np.ndarray, others: list[np.ndarray], most: int = 2) -> bool:
    """Whether ``track`` (F,) with its first 1..``most`` frames cut is the start of one of
    ``others``: the same moving digit seen a frame or two later."""
    return any(np.array_equal(track[k:], o[:-k]) for o in others for k in range(1, most + 1))


def _world_row(canvas: int) -> dict:
    world = MovingDigitsConfig(canvas, VideoRecipe.frames, VideoRecipe.speeds)
    room, frames = world.room, world.frames
    shifted = reversals = count = 0
    for speed in world.speeds:
        ahead = [bounce_trajectory(q, speed, frames, room) for q in range(room + 1)
                 if 0 <= q + speed <= room]  # fmt: skip
        for p in range(room + 1):
            if not 0 <= p - speed <= room:
                continue
            track = bounce_trajectory(p, -speed, frames, room)
            sign = np.sign(np.diff(track))
            shifted += _is_shift(track, ahead)
            reversals += int((sign[1:] != sign[:-1]).sum())
            count += 1
    return {
        "canvas": canvas, "room": room, "frames": frames, "speeds": list(world.speeds),
        "tracks": count, "shift_of_opposite": shifted / count,
        "reversals_per_video": reversals / count, "pixels_vs_32": canvas**2 / 32**2,
    }  # fmt: skip


def stage_world(args) -> dict:
    """How much a direction word says on each of ``--canvases`` (no training): for every
    start and speed of a digit moving toward -1 ("left"), whether its track is a one- or
    two-frame shift of a track moving toward +1 ("right"), and the reversals it makes."""
    with CpuWallClock() as clock:
        rows = {f"canvas_{c}": _world_row(c) for c in args.canvases}
    return _finish({"worlds": rows}, clock, resolve_precision(args.precision, "cpu"))


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


# ---------------------------------------------------------------------- starting from images
def train_image_model(args, out: Path, minutes: float | None, max_steps: int | None = None) -> dict:
    """Train the per-frame image model (a ``text2image`` pixel model of the video preset's
    U-Net, all training digits) for ``minutes`` (or ``max_steps``); its record (checkpoint,
    steps, clock)."""
    from synesthesia.pipelines.text2image_train import (
        TextRecipe,
        TextTrainOptions,
        train_text_to_image,
    )

    train, _, _, _ = _world()
    shutil.rmtree(out, ignore_errors=True)
    options = TextTrainOptions(
        out_dir=str(out),
        preset=args.preset,
        minutes=minutes,
        max_steps=max_steps,
        batch_size=args.image_batch_size,
        seed=args.seed,
        precision=args.precision,
        progress=False,
        recipe=TextRecipe(hold_out=False),
    )
    with CpuWallClock() as clock:
        _, res, plan = train_text_to_image(train, options)
    return {
        "checkpoint": str(out / "checkpoint"),
        "minutes": minutes,
        "steps": res.step,
        "stopped": res.stopped,
        "images_per_s": res.items_per_s,
        "batch_size": options.batch_size,
        "plan": plan,
        "wall_s": clock.wall_s,
        "cpu_s": clock.cpu_s,
        "cpu_per_wall": clock.ratio,
    }


def _prompt_motions(args) -> tuple[list[str], list]:
    prompts = canonical_prompts()[:: args.prompt_stride]
    return prompts, [parse_prompt(p) for p in prompts]


def _asked_trajectory(motion, world: MovingDigitsConfig) -> np.ndarray:
    """Corner positions (F, 2) of a digit moving as ``motion`` (a prompt's) asks, from the
    wall it moves away from, centred across."""
    from synesthesia.data.moving_digits import Motion

    along = 0 if motion.sign > 0 else world.room
    mid = world.room // 2
    start = (along, mid) if motion.axis == "x" else (mid, along)
    return Motion(motion.axis, motion.sign, motion.speed or 1, start).positions(world)


def _per_class(preds: np.ndarray, labels: np.ndarray) -> dict:
    """Per asked digit: frame accuracy and the most frequent predicted class."""
    out = {}
    for d in np.unique(labels):
        p = preds[labels == d].ravel()
        out[str(int(d))] = {
            "frame_accuracy": float((p == d).mean()),
            "most_predicted": int(np.bincount(p, minlength=10).argmax()),
        }
    return out


def _scored_by_digit(pipe: TextToVideoPipeline, prompts: list[str], args) -> tuple:
    """``(frame predictions (N, F), scores)`` of one video per prompt: every video score,
    per asked digit its frame accuracy and most frequent class, and the sampling wall time."""
    from synesthesia.metrics.video import frame_predictions

    _, _, evaluator, _ = _world()
    motions = [parse_prompt(p) for p in prompts]
    with CpuWallClock() as c:
        videos = pipe(prompts, generator=torch.Generator().manual_seed(args.seed),
                      guidance_scale=args.guidance, num_inference_steps=args.steps,
                      output_type="pt")  # fmt: skip
    preds = frame_predictions(evaluator, videos)
    labels = np.array([m.label for m in motions])
    return preds, {**score_videos(evaluator, videos, motions),
                   "per_digit": _per_class(preds, labels), "sample_wall_s": c.wall_s}  # fmt: skip


def untrained_video(checkpoint: str, args, rho: float) -> TextToVideoPipeline:
    """The video model started from an image ``checkpoint`` before any video training (the
    per-frame image model on the canvas, temporal layers zero), sampling with frame noise
    correlation ``rho``."""
    from synesthesia.pipelines.text2image import TextToImagePipeline
    from synesthesia.pipelines.text2video_train import start_model

    image_pipe = TextToImagePipeline.from_pretrained(checkpoint, precision="fp32")
    opt = _options(args, Path(args.run_dir) / "untrained", init_from=checkpoint)
    model, tok, _, _, _ = start_model(opt, args.seed)
    return TextToVideoPipeline(
        model.eval(),
        tok,
        NoiseSchedule.from_config(image_pipe.schedule.to_config()),
        image_pipe.prediction,
        image_pipe.guidance_scale,
        {"recipe": {"frame_noise_correlation": rho}},
        resolve_precision(args.precision, "cpu"),
    )


def stage_start(args) -> dict:
    """Where video training starts: the untrained video model of each image checkpoint of
    ``--start-checkpoints``, scored as ``target`` with white noise and with
    ``--frame-noise-correlation`` (scoring only: deterministic)."""
    precision = resolve_precision(args.precision, "cpu")
    rows = {}
    with CpuWallClock() as clock:
        for ckpt in args.start_checkpoints:
            for rho in sorted({0.0, args.frame_noise_correlation}):
                scores = score(untrained_video(ckpt, args, rho), args)
                rows[f"{ckpt} rho={rho:g}"] = {"checkpoint": ckpt, "rho": rho, "scores": scores}
                print(f"{ckpt} rho={rho:g}: " + ", ".join(
                    f"{k} {scores[k]:.3f}" for k in TARGETS), flush=True)  # fmt: skip
    return _finish({"rows": rows, "prompt_stride": args.prompt_stride}, clock, precision)


def stage_diagnose(args) -> dict:
    """Is a low per-frame accuracy the model's or the metric's? Scores, through
    ``metrics.video``: real validation videos (clean, and with noise), an image model's
    samples moved along the asked trajectories, the per-frame image model on the 32 x 32
    canvas (a video model started from it, before any video training), and a trained video
    checkpoint (``--video-checkpoint``) per asked digit."""
    from synesthesia.metrics.evaluator import predict
    from synesthesia.metrics.video import centre_of_ink
    from synesthesia.pipelines.text2image import TextToImagePipeline

    train, val, evaluator, ev_config = _world()
    precision = resolve_precision(args.precision, "cpu")
    world = MovingDigitsConfig()
    result: dict = {"evaluator_val_accuracy": ev_config.get("val_accuracy")}
    with CpuWallClock() as clock:
        # 1. real validation videos: the metric on videos that are right by construction
        real = make_videos(val, args.diagnose_videos, world, seed=args.seed + 1)
        truth = [
            PromptMotion(int(lab), m.axis, m.sign, m.speed)
            for lab, m in zip(real.labels, real.motions)
        ]
        source = predict(evaluator, val.images[real.digit_index])[0].argmax(1).numpy()
        result["real"] = {
            **score_videos(evaluator, real.videos, truth),
            "source_digit_accuracy": float((source == real.labels.numpy()).mean()),
        }
        g = torch.Generator().manual_seed(args.seed)
        for std in (0.05, 0.1, 0.2):  # background no longer exactly -1
            noisy = (real.videos + std * torch.randn(real.videos.shape, generator=g)).clamp(-1, 1)
            shift = np.abs(centre_of_ink(noisy) - centre_of_ink(real.videos))
            result[f"real_noise_{std:g}"] = {
                **score_videos(evaluator, noisy, truth),
                "centre_shift_px_mean": float(shift.mean()),
                "centre_shift_px_max": float(shift.max()),
            }
        prompts, motions = _prompt_motions(args)
        labels = np.array([m.label for m in motions])
        steps = dict(num_inference_steps=args.steps, output_type="pt")
        # 2. an image model's digits, moved as asked: the metric on model-made digits
        ckpt = Path(args.image_checkpoint)
        if (ckpt / "config.json").is_file():
            image_pipe = TextToImagePipeline.from_pretrained(ckpt, precision=precision)
            nouns = [p.split(" moving ")[0] for p in prompts]
            with CpuWallClock() as c:
                digits = image_pipe(
                    nouns,
                    generator=torch.Generator().manual_seed(args.seed),
                    guidance_scale=args.guidance,
                    **steps,
                )
            own = predict(evaluator, digits)[0].argmax(1).numpy()
            videos = torch.stack(
                [
                    render(d, _asked_trajectory(m, world), world.canvas)
                    for d, m in zip(digits, motions)
                ]
            )
            result["image_model_moved"] = {
                **score_videos(evaluator, videos, motions),
                "image_class_accuracy_28": float((own == labels).mean()),
                "checkpoint": str(ckpt),
                "sample_wall_s": c.wall_s,
            }
            # 3. the video model started from it, before any video training: the per-frame
            # image model on the 32 x 32 canvas (temporal layers zero)
            pipe = untrained_video(str(ckpt), args, 0.0)
            result["per_frame_image_model_32"] = _scored_by_digit(pipe, prompts, args)[1]
        # 4. the image model after as many (caption, digit) pairs as the 20-minute video run
        # saw (827 steps x 16 videos): is that count, not the frames, what limits the digit?
        if args.pair_steps > 0:
            from synesthesia.data.captions import caption

            image = train_image_model(
                args, Path(args.run_dir) / "diagnose-pairs", None, max_steps=args.pair_steps
            )
            small = TextToImagePipeline.from_pretrained(image["checkpoint"], precision=precision)
            asked = np.repeat(np.arange(10), args.pair_samples)
            with CpuWallClock() as c:
                digits = small(
                    [caption(int(d), None, 0) for d in asked],
                    generator=torch.Generator().manual_seed(args.seed),
                    guidance_scale=args.guidance,
                    **steps,
                )
            own = predict(evaluator, digits)[0].argmax(1).numpy()
            result["image_model_equal_pairs"] = {
                **{k: image[k] for k in ("steps", "batch_size", "wall_s", "cpu_per_wall")},
                "pairs": image["steps"] * image["batch_size"],
                "class_accuracy": float((own == asked).mean()),
                "samples": len(asked),
                "sample_wall_s": c.wall_s,
            }
        # 4. a trained video model, per asked digit
        vckpt = Path(args.video_checkpoint)
        if (vckpt / "config.json").is_file():
            vpipe = TextToVideoPipeline.from_pretrained(vckpt, precision=precision)
            preds, scores = _scored_by_digit(vpipe, prompts, args)
            same = (preds == preds[:, :1]).all(axis=1)
            wrong = preds[:, 0] != labels
            scores.update(checkpoint=str(vckpt), consistent_but_wrong=float((same & wrong).mean()))
            result["video_checkpoint"] = scores
    result.update(prompts=len(prompts), steps=args.steps, guidance=args.guidance)
    return _finish(result, clock, precision)


def stage_init(args) -> dict:
    """Does starting from a trained image model pay at equal total wall time? ``scratch``
    trains the video model for ``--minutes``; ``pretrained`` trains the image model for
    ``--image-share`` of them and the video model, started from it, for the rest. Run
    interleaved: scratch (first half), image, scratch (resumed), video; then both scored."""
    train, _, _, _ = _world()
    precision = resolve_precision(args.precision, "cpu")
    root = Path(args.run_dir) / "init"
    budget_s = args.minutes * 60.0
    image_s = args.image_share * budget_s
    scratch = _options(args, root / "scratch")
    shutil.rmtree(scratch.out_dir, ignore_errors=True)
    with CpuWallClock() as clock:
        speed = step_times({"scratch": scratch}, args, precision)["scratch"]
        scratch.max_steps = max(1, math.floor(0.9 * budget_s / speed["median_s"]))
        runs: dict = {
            "scratch": {"first_plan": scratch.max_steps, "speed": speed, "parts": []},
            "pretrained": {"parts": []},
        }
        spent = 0.0
        for half in range(2):
            scratch.minutes = (budget_s / 2 if half == 0 else budget_s - spent) / 60.0
            with CpuWallClock() as c:
                pipe_a, res, _ = train_text_to_video(train, scratch, resume=half > 0)
            spent += c.wall_s
            runs["scratch"]["parts"].append(
                {
                    "steps": res.step,
                    "stopped": res.stopped,
                    "wall_s": c.wall_s,
                    "cpu_per_wall": c.ratio,
                }
            )
            if half == 0:
                image = train_image_model(args, root / "image", image_s / 60.0)
                runs["pretrained"]["parts"].append({"image": image})
        left_s = budget_s - runs["pretrained"]["parts"][0]["image"]["wall_s"]
        video = _options(
            args,
            root / "pretrained",
            minutes=max(left_s, 30.0) / 60.0,
            init_from=runs["pretrained"]["parts"][0]["image"]["checkpoint"],
        )
        shutil.rmtree(video.out_dir, ignore_errors=True)
        with CpuWallClock() as c:
            pipe_b, res, plan = train_text_to_video(train, video)
        runs["pretrained"]["parts"].append(
            {
                "steps": res.step,
                "stopped": res.stopped,
                "wall_s": c.wall_s,
                "cpu_per_wall": c.ratio,
                "plan": plan,
            }
        )
        for name in runs:
            parts = runs[name]["parts"]
            runs[name]["wall_s"] = sum(
                p.get("wall_s", p.get("image", {}).get("wall_s", 0.0)) for p in parts
            )
        scores = {"scratch": score(pipe_a, args), "pretrained": score(pipe_b, args)}
    result = {
        "minutes": args.minutes,
        "image_share": args.image_share,
        "lr": args.lr,
        "runs": runs,
        "scores": scores,
    }
    return _finish(result, clock, precision)


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
    parser.add_argument("--lr", type=float, default=2e-3, help="video learning rate")
    parser.add_argument(
        "--frame-noise-correlation",
        type=float,
        default=0.0,
        help="correlation of the noise of a video's frames (Ge et al. 2023; 0: white noise)",
    )
    parser.add_argument(
        "--loaded-text-lr-scale",
        type=float,
        default=None,
        help="the loaded text encoder's factor (default: --loaded-lr-scale)",
    )
    parser.add_argument(
        "--checkpoints", nargs="+", default=[], help="text stage: video checkpoints"
    )
    parser.add_argument(
        "--canvas", type=int, default=VideoRecipe.canvas, help="canvas side of the world"
    )
    parser.add_argument(
        "--canvases", type=int, nargs="+", default=[32, 40], help="canvas stage: the sides"
    )
    parser.add_argument(
        "--conv-levels",
        type=int,
        nargs="*",
        default=[],
        help="levels with a temporal convolution only, besides the temporal layers' (e.g. 0 1)",
    )
    parser.add_argument(
        "--loaded-lr-scale",
        type=float,
        default=1.0,
        help="with an image model to start from: the loaded weights' learning rate as a "
        "factor of --lr (the new temporal layers train at --lr)",
    )
    parser.add_argument(
        "--image-minutes",
        type=float,
        default=DEFAULT_IMAGE_MINUTES,
        help="target, ablation: minutes of the budget spent first on the per-frame image "
        "model the video models start from (0: video models from scratch)",
    )
    parser.add_argument("--image-batch-size", type=int, default=64, help="images per step")
    parser.add_argument(
        "--image-share", type=float, default=0.5, help="init: the image model's budget share"
    )
    parser.add_argument(
        "--init-from",
        default=None,
        help="target, ablation: start from this existing checkpoint (its training time NOT "
        "counted)",
    )
    parser.add_argument(
        "--image-checkpoint",
        default="runs/bench-text2image/pixel/checkpoint",
        help="diagnose: a pixel text2image checkpoint",
    )
    parser.add_argument(
        "--video-checkpoint",
        default="runs/bench-video/target/checkpoint",
        help="diagnose: a text2video checkpoint",
    )
    parser.add_argument(
        "--start-checkpoints",
        nargs="+",
        default=[
            "runs/bench-video/target-image/checkpoint",
            "runs/bench-text2image/pixel/checkpoint",
        ],
        help="start: image checkpoints whose untrained video models are scored",
    )
    parser.add_argument("--diagnose-videos", type=int, default=200, help="diagnose: real videos")
    parser.add_argument(
        "--pair-steps",
        type=int,
        default=827 * 16 // 64,
        help="diagnose: steps of 64 images, as many captions as the 20-minute video run saw",
    )
    parser.add_argument("--pair-samples", type=int, default=10, help="diagnose: per digit")
    parser.add_argument("--out-dir", default="benchmarks/out/video")
    parser.add_argument("--run-dir", default="runs/bench-video")
    parser.add_argument("--img-dir", default="docs/img", help="GIF and frame strip")
    args = parser.parse_args()
    run = {"target": stage_target, "ablation": stage_ablation, "conv3d": stage_conv3d,
           "layouts": stage_layouts, "diagnose": stage_diagnose, "init": stage_init,
           "noise": stage_noise, "start": stage_start, "motion": stage_motion,
           "canvas": stage_canvas, "world": stage_world,
           "text_lr": stage_text_lr, "text": stage_text}  # fmt: skip
    for stage in STAGES[:4] if args.stage == "all" else (args.stage,):
        result = run[stage](args)
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{stage}.json").write_text(json.dumps(result, indent=2) + "\n")
        shown = {k: result[k] for k in ("targets", "clock") if k in result}
        print(f"{stage}: {json.dumps(shown, indent=1)}", flush=True)


if __name__ == "__main__":
    main()
