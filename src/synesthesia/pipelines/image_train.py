"""Train a class-conditional image-diffusion model with the project's one trainer.

A time-bounded run still completes its learning-rate schedule: a short throughput probe
(a few steps on a throwaway copy) measures the step time, and ``max_steps`` is set so the
schedule ends within the budget; ``max_minutes`` stays as a hard stop in case the machine
slows down (the trainer then saves a checkpoint and stops early).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from synesthesia.data.images import ImageSet
from synesthesia.diffusion import NoiseSchedule
from synesthesia.nets.unet import UNet, UNetConfig
from synesthesia.pipelines.image import (
    ClassToImagePipeline,
    ImageRecipe,
    build_model_config,
    default_unet_config,
    image_loss_fn,
    measure_step_time,
    plan_steps,
)

if TYPE_CHECKING:
    from synesthesia.training import TrainResult


@dataclass
class ImageTrainOptions:
    """Options of :func:`train_class_to_image` (the trainer's knobs that matter here)."""

    out_dir: str
    preset: str = "small"
    minutes: float | None = None  # time budget of the whole call (probe included)
    max_steps: int | None = None  # explicit schedule length; wins over the planned one
    batch_size: int = 64
    lr: float = 2e-3
    warmup_steps: int = 50
    ema_decay: float = 0.999
    mixed_precision: str = "auto"
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 500
    eval_every: int | None = None
    progress: bool = True
    recipe: ImageRecipe = field(default_factory=ImageRecipe)
    unet_overrides: dict = field(default_factory=dict)
    pick_threads: bool = True  # probe fewer CPU threads too and keep the faster setting
    # Another denoiser ``(x_t, t, labels) -> prediction`` built from the U-Net config, trained
    # with the same recipe (benchmarks train diffusers' U-Net this way); it must have a
    # ``null_class`` attribute and a ``config.num_classes``.
    build_model: Callable[[UNetConfig], torch.nn.Module] | None = None


def fastest_threads(
    model: UNet, loss_fn: Callable[..., torch.Tensor], batch, autocast: bool, pick: bool = True
) -> tuple[float, int]:
    """Measure the step time; on CPU (``pick``) also with 1 thread, and keep the faster.

    On a shared CPU, OpenMP threads that spin at barriers while another process holds a core
    can make 2 threads several times slower than 1; on an idle machine 2 threads win. The
    chosen count is set with ``torch.set_num_threads``. Returns (seconds per step, threads).
    """
    threads = torch.get_num_threads()
    step_time = measure_step_time(model, loss_fn, batch, autocast=autocast)
    if pick and threads > 1 and batch[0].device.type == "cpu":
        torch.set_num_threads(1)
        single = measure_step_time(model, loss_fn, batch, steps=3, warmup=1, autocast=autocast)
        if single < step_time:
            return single, 1
        torch.set_num_threads(threads)
    return step_time, threads


def train_class_to_image(
    train: ImageSet,
    options: ImageTrainOptions,
    resume: bool = False,
    eval_fn: Callable[..., dict] | None = None,
) -> tuple[ClassToImagePipeline, TrainResult, dict]:
    """Train (or resume) a model on ``train``; returns ``(pipeline, TrainResult, plan dict)``.

    ``pipeline`` uses the EMA weights. The run folder ``options.out_dir`` gets
    ``checkpoint/`` (a loadable pipeline folder) and ``metrics.csv``.
    """
    from synesthesia.training import Trainer, TrainerConfig

    start = time.perf_counter()
    out_dir = Path(options.out_dir)
    num_classes = int(train.labels.max()) + 1
    if resume:
        ckpt = out_dir / "checkpoint"
        if not (ckpt / "config.json").is_file():
            raise FileNotFoundError(f"{ckpt}: no checkpoint to resume; train without --resume")
        model_config = json.loads((ckpt / "config.json").read_text())
        unet_config = UNetConfig.from_dict(model_config["unet"])
        recipe = ImageRecipe.from_dict(model_config["recipe"])
        saved = json.loads((ckpt / "train" / "trainer_state.json").read_text())["config"]
        max_steps = int(saved["max_steps"])
        plan = {"max_steps": max_steps, "seconds_per_step": None, "resumed": True}
    else:
        recipe = options.recipe
        unet_config = default_unet_config(options.preset, train.images, num_classes)
        if options.unet_overrides:
            unet_config = UNetConfig.from_dict({**unet_config.to_dict(), **options.unet_overrides})
        model_config = build_model_config(unet_config, recipe, train.name)
        model_config["preset"] = options.preset
        max_steps = options.max_steps
    schedule = NoiseSchedule.from_config(model_config["schedule"])
    torch.manual_seed(options.seed)
    model = options.build_model(unet_config) if options.build_model else UNet(unet_config)
    loss_fn = image_loss_fn(recipe, schedule, model.null_class)

    minutes = options.minutes
    if not resume:
        step_time = None
        if max_steps is None:
            if minutes is None:
                raise ValueError("give minutes (a time budget) or max_steps")
            n = min(options.batch_size, len(train))
            batch = (train.images[:n], train.labels[:n])
            amp = options.mixed_precision != "no"
            step_time, threads = fastest_threads(model, loss_fn, batch, amp, options.pick_threads)
        spent = time.perf_counter() - start
        p = plan_steps(minutes, step_time, max_steps, spent_s=spent)
        max_steps, minutes = p.max_steps, p.max_minutes
        plan = {
            "max_steps": max_steps,
            "seconds_per_step": step_time,
            "probe_s": spent,
            "threads": torch.get_num_threads(),
        }
        model_config["max_steps"] = max_steps

    config = TrainerConfig(
        out_dir=str(out_dir),
        batch_size=options.batch_size,
        max_steps=max_steps,
        max_minutes=minutes,
        lr=options.lr,
        warmup_steps=min(options.warmup_steps, max(1, max_steps // 10)),
        ema_decay=options.ema_decay,
        mixed_precision=options.mixed_precision,
        seed=options.seed,
        log_every=options.log_every,
        checkpoint_every=options.checkpoint_every,
        eval_every=options.eval_every,
        progress=options.progress,
    )
    trainer = Trainer(model, loss_fn, train, config, model_config=model_config, eval_fn=eval_fn)
    result = trainer.fit(resume=resume)
    rest = {k: v for k, v in model_config.items() if k not in ("unet", "schedule", "prediction")}
    pipe = ClassToImagePipeline(trainer.ema_model, schedule, recipe.prediction, rest)
    plan["total_s"] = time.perf_counter() - start
    return pipe, result, plan
