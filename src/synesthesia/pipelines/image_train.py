"""Train a class-conditional image-diffusion model with the project's one trainer.

A time-bounded run still completes its learning-rate schedule: a short throughput probe
(a few steps on a throwaway copy) measures the step time, and ``max_steps`` is set so the
schedule ends within the budget; ``max_minutes`` stays as a hard stop in case the machine
slows down (the trainer then saves a checkpoint and stops early).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from synesthesia.data.images import ImageSet
from synesthesia.diffusion import NoiseSchedule
from synesthesia.errors import InputError
from synesthesia.nets.unet import UNet, UNetConfig
from synesthesia.pipelines.image import (
    ClassToImagePipeline,
    ImageRecipe,
    build_model_config,
    default_unet_config,
    image_loss_fn,
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
    mixed_precision: str = "auto"  # "auto" (bf16 where native and faster), "fp32", "bf16"
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 500
    eval_every: int | None = None
    progress: bool = True
    recipe: ImageRecipe = field(default_factory=ImageRecipe)
    unet_overrides: dict = field(default_factory=dict)
    pick_threads: bool = True  # probe fewer CPU threads too and keep the faster setting
    grad_accumulation: int = 1  # micro-batches per step (batch_size: the global batch)
    compile: bool = False  # torch.compile the training forward
    # Another denoiser ``(x_t, t, labels) -> prediction`` built from the U-Net config, trained
    # with the same recipe (benchmarks train diffusers' U-Net this way); it must have a
    # ``null_class`` attribute and a ``config.num_classes``.
    build_model: Callable[[UNetConfig], torch.nn.Module] | None = None


def estimate_sampling_s(
    preset: str,
    train: ImageSet,
    n_samples: int,
    method: str,
    steps: int,
    guidance_scale: float,
    precision: str,
    batch_size: int = 128,
) -> float:
    """Seconds to draw ``n_samples`` with a ``preset`` U-Net through the pipeline.

    One sampler step of one batch (the same layout, precision and guidance batching as the
    real call) is timed after a warm-up, and multiplied by the batches and by the denoiser
    calls the sampler makes (counted by :func:`synesthesia.diffusion.count_nfe`).
    """
    from synesthesia.diffusion import count_nfe
    from synesthesia.pipelines.image import ClassToImagePipeline
    from synesthesia.training.timing import time_calls

    num_classes = int(train.labels.max()) + 1
    unet = UNet(default_unet_config(preset, train.images, num_classes))
    schedule = NoiseSchedule("cosine", 1000)
    pipe = ClassToImagePipeline(unet, schedule, "v", precision=precision)
    size = min(batch_size, n_samples)
    labels = torch.zeros(size, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)

    def one_step() -> None:
        pipe(labels, guidance_scale=guidance_scale, num_inference_steps=1, method="ddim",
             generator=gen, batch_size=size)  # fmt: skip

    seconds = min(time_calls(one_step, steps=2, warmup=1))
    batches = -(-n_samples // size)
    return seconds * batches * count_nfe(schedule, method, steps)


def _saved_run(out_dir: str | Path) -> tuple[dict, dict]:
    """``(trainer state, model config)`` of the image run in ``out_dir``, with clear errors."""
    from synesthesia.training import read_run

    return read_run(out_dir, "image", "an image-diffusion")


def resumable_settings(out_dir: str | Path) -> dict:
    """The settings of the run in ``out_dir`` that a resumption must keep: preset, data,
    batch_size, seed."""
    from synesthesia.training import kept_settings

    return kept_settings(out_dir, "image", "an image-diffusion", preset="preset", data="data")


def _resumed_config(out_dir: Path, options: ImageTrainOptions, data_name: str, image_size: int):
    """The saved model config of the run in ``out_dir``, after checking ``options`` against it.

    An option that would change the run (preset, data, batch size, seed) and differs from the
    saved run is an error naming it and both values; ``max_steps`` larger than the saved one
    extends a finished run (a stated override, checked by
    :func:`synesthesia.training.budget.resumed_schedule`).
    """
    state, model_config = _saved_run(out_dir)
    saved = state["config"]
    unet = model_config.get("unet", {})
    given = {
        "--preset": (model_config.get("preset"), options.preset),
        "--data": (model_config.get("data"), data_name),
        "image size": (unet.get("image_size"), image_size),
        "--batch-size": (saved.get("batch_size"), options.batch_size),
        "--seed": (saved.get("seed"), options.seed),
    }
    for name, (was, now) in given.items():
        if was is not None and was != now:
            raise InputError(
                f"{name}: the run in {out_dir} used {was!r}, this call gives {now!r}; resume "
                "with the run's own settings, or start a new run in another --out"
            )
    return model_config


def train_class_to_image(
    train: ImageSet,
    options: ImageTrainOptions,
    resume: bool = False,
    eval_fn: Callable[..., dict] | None = None,
) -> tuple[ClassToImagePipeline, TrainResult, dict]:
    """Train (or resume) a model on ``train``; returns ``(pipeline, TrainResult, plan dict)``.

    ``pipeline`` uses the EMA weights. The run folder ``options.out_dir`` gets
    ``checkpoint/`` (a loadable pipeline folder) and ``metrics.csv``. With ``options.minutes``
    the whole call (probe included) fits in the budget: the step time is measured
    (:func:`synesthesia.training.timing.measure_train_step`, within a probe budget that
    scales with the run's) and the LR schedule is planned to end in time.
    """
    from synesthesia.training.budget import BudgetOptions, fit_budgeted

    start = time.perf_counter()
    out_dir = Path(options.out_dir)
    num_classes = int(train.labels.max()) + 1
    if resume:
        image_size = int(train.images.shape[-1])
        model_config = _resumed_config(out_dir, options, train.name, image_size)
        unet_config = UNetConfig.from_dict(model_config["unet"])
        recipe = ImageRecipe.from_dict(model_config["recipe"])
    else:
        recipe = options.recipe
        unet_config = default_unet_config(options.preset, train.images, num_classes)
        if options.unet_overrides:
            unet_config = UNetConfig.from_dict({**unet_config.to_dict(), **options.unet_overrides})
        model_config = build_model_config(unet_config, recipe, train.name, preset=options.preset)
    schedule = NoiseSchedule.from_config(model_config["schedule"])
    torch.manual_seed(options.seed)
    model = options.build_model(unet_config) if options.build_model else UNet(unet_config)
    loss_fn = image_loss_fn(recipe, schedule, model.null_class)
    n = min(options.batch_size, len(train))
    budget = BudgetOptions.from_options(
        options, out_dir=str(out_dir), precision=options.mixed_precision
    )
    trainer, result, plan = fit_budgeted(
        model,
        loss_fn,
        train,
        budget,
        model_config,
        probe_batch=lambda: (train.images[:n], train.labels[:n]),
        resume=resume,
        eval_fn=eval_fn,
        started=start,
    )
    rest = {k: v for k, v in model_config.items() if k not in ("unet", "schedule", "prediction")}
    rest.pop("kind", None)
    precision = trainer.mixed_precision
    pipe = ClassToImagePipeline(trainer.ema_model, schedule, recipe.prediction, rest, precision)
    return pipe, result, plan
