"""Train a text-to-video model on moving digits with the one trainer (chapter 13.4.1, 13.4.3).

Data. Every step draws fresh videos from :class:`~synesthesia.data.moving_digits.
MovingDigitsDataset` (item ``i`` is a function of ``(seed, i)``): a training digit moving
along one axis, bouncing, with K captions of its trajectory ("a 3 moving left fast"). One
caption per video is drawn each step and, with probability ``caption_drop``, replaced by the
empty prompt (the null condition of classifier-free guidance), by the text-to-image loss
(:func:`~synesthesia.pipelines.text2image_train.text_loss_fn`), which this recipe wraps.

Joint image-video training (Ho et al. 2022, sec. 3.2): with ``image_fraction`` > 0 that share
of the items are stacks of independent digit images whose temporal mixing is masked out.

Temporal consistency loss (the chapter's 13.4.3, made to fit diffusion): the chapter compares
predicted and true frames and their frame differences. A diffusion model predicts v (or eps)
from a noisy video; what it believes the clean video to be is its estimate
``x0_hat = a x_t - s v`` (Salimans & Ho 2022, sec. 4). The recipe adds

    weight * min(SNR, gamma) * mean ((x0_hat[k+1] - x0_hat[k]) - (x0[k+1] - x0[k]))^2

(``weight`` = ``consistency_weight``, the mean over channels, frames and pixels) to the
diffusion loss: the frame-difference error of the clean-video estimate, with the
Min-SNR weight that the diffusion loss itself puts on the x0 error (Hang et al. 2023, eq. 4),
so ``consistency_weight`` is relative to the main loss. Independent-image items get none.

Starting from a trained image model (``init_from``; Ho et al. 2022, sec. 3: the factorised
model with its temporal layers zero-initialised computes the image model on every frame):
the spatial U-Net and the text encoder of a ``text2image`` (pixel) or ``text2video``
checkpoint are loaded; the U-Net layout and the text encoder's size are the checkpoint's;
the vocabulary keeps the checkpoint's word ids and appends the motion words it lacks (their
embeddings drawn fresh, as a new model's); the temporal layers start at zero, so step 0 is
the image model frame by frame. A resumed run keeps its recipe: a different
``consistency_weight``, ``canvas``, ``frames`` or ``image_fraction`` is refused, naming both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from synesthesia.data.images import ImageSet
from synesthesia.data.moving_digits import (
    VIDEO_VOCABULARY,
    MovingDigitsConfig,
    MovingDigitsDataset,
)
from synesthesia.diffusion import NoiseSchedule, loss_weight, to_x0_eps
from synesthesia.diffusion.frame_noise import FrameCorrelatedDenoiser, mix_frames
from synesthesia.errors import InputError, MissingInputError
from synesthesia.nets.encoders import TextEncoder, TextEncoderConfig
from synesthesia.nets.text_unet import TextConditionedUNet
from synesthesia.nets.tokenizer import WordTokenizer
from synesthesia.nets.unet import UNet, UNetConfig, unet_preset
from synesthesia.nets.video_unet import (
    TEMPORAL_KINDS,
    TextConditionedVideoUNet,
    VideoUNetConfig,
    build_video_unet,
    conv3d_config,
)
from synesthesia.pipelines.text2image_train import (
    TextRecipe,
    build_text_encoder,
    check_resume,
    text_loss_fn,
)
from synesthesia.pipelines.text2video import KIND, TextToVideoConfig, TextToVideoPipeline
from synesthesia.training.budget import BudgetOptions

if TYPE_CHECKING:
    from synesthesia.training import TrainResult

#: Spatial U-Net sizes for 32 x 32 frames (the temporal layers follow every block).
VIDEO_PRESETS = {
    "tiny": dict(base_channels=16, channel_mults=(1, 2), attention_levels=(1,), num_heads=2),
    "small": dict(base_channels=16, channel_mults=(1, 3, 5), attention_levels=(2,)),
}


@dataclass
class VideoRecipe:
    """How a text-to-video model is trained (saved in its config.json)."""

    schedule: str = "cosine"
    num_timesteps: int = 1000
    prediction: str = "v"
    min_snr_gamma: float | None = 5.0
    caption_drop: float = 0.1  # probability of the empty prompt (the CFG null condition)
    speed_drop: float = 0.3  # probability of leaving the speed word out of a caption
    captions_per_video: int = 4
    consistency_weight: float = 0.5  # the chapter's 13.4.3 weight; 0 turns the term off
    image_fraction: float = 0.0  # share of independent-image items (joint training)
    canvas: int = 32
    frames: int = 8
    speeds: tuple[int, ...] = (1, 2)
    # correlation of the noise of a video's frames (Ge et al. 2023's mixed noise; 0: white
    # noise); independent-image items keep white noise
    frame_noise_correlation: float = 0.0

    def __post_init__(self) -> None:
        self.speeds = tuple(self.speeds)
        if not 0.0 <= self.frame_noise_correlation < 1.0:
            raise InputError(
                f"frame_noise_correlation must lie in [0, 1), got {self.frame_noise_correlation}"
            )
        for name in ("caption_drop", "speed_drop"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise InputError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.image_fraction < 1.0:
            raise InputError(f"image_fraction must lie in [0, 1), got {self.image_fraction}")
        if not self.consistency_weight >= 0.0:
            raise InputError(f"consistency_weight must be >= 0, got {self.consistency_weight}")
        MovingDigitsConfig(self.canvas, self.frames, self.speeds)  # validates them

    @property
    def world(self) -> MovingDigitsConfig:
        return MovingDigitsConfig(self.canvas, self.frames, self.speeds)

    @classmethod
    def from_dict(cls, d: dict) -> VideoRecipe:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown VideoRecipe keys {unknown}; known: {sorted(known)}")
        return cls(**d)


@dataclass
class VideoTrainOptions(BudgetOptions):
    """Options of :func:`train_text_to_video`: the trainer knobs of
    :class:`~synesthesia.training.budget.BudgetOptions` (``batch_size`` counts videos,
    default 16), and the model's."""

    batch_size: int = 16
    preset: str = "small"
    recipe: VideoRecipe = field(default_factory=VideoRecipe)
    layout: str = "factorised"  # or "conv3d": the chapter's layout, equal parameter count
    temporal: tuple[str, ...] = TEMPORAL_KINDS  # () is the per-frame model
    # levels with temporal layers (-1: the lowest resolution and the middle; None: every
    # level). Temporal attention over the 16 x 1024 positions of a 32 x 32 batch costs more
    # than the per-frame U-Net itself: a training step took 0.96x the per-frame model's time
    # with temporal layers at 8 x 8 only, 1.91x at 16 x 16 and 8 x 8, 3.48x everywhere
    # (bench_video.py --stage layouts, smoke: 1 thread, contended, interleaved rounds)
    temporal_levels: tuple[int, ...] | None = (-1,)
    # levels with a temporal convolution only, besides temporal_levels (e.g. (0, 1): the
    # 32 x 32 and 16 x 16 blocks, where a motion of 1-2 pixels a frame is resolved)
    conv_levels: tuple[int, ...] = ()
    text_encoder: str = "joint"  # "joint", or the folder of a `train clip` checkpoint
    text_dim: int = 64
    text_depth: int = 2
    guidance_scale: float = 3.0
    unet_overrides: dict = field(default_factory=dict)
    # a text2image (pixel) or text2video checkpoint folder whose spatial U-Net and text
    # encoder start the model (temporal layers zero); its U-Net layout and text encoder size
    # replace preset, text_dim and text_depth
    init_from: str | None = None
    # with init_from: the learning rate of the loaded weights (spatial U-Net, text encoder)
    # as a factor of the new temporal layers' (TrainerConfig.lr_scales)
    loaded_lr_scale: float = 1.0
    # the loaded text encoder's factor (None: loaded_lr_scale); it must learn the motion words
    # the image model's vocabulary lacks, while the U-Net only keeps what it draws
    loaded_text_lr_scale: float | None = None


#: The checkpoint kinds ``init_from`` takes.
INIT_KINDS = ("text2image", "text2video")


def extend_vocabulary(
    encoder: TextEncoder, tokenizer: WordTokenizer, words: tuple[str, ...]
) -> tuple[TextEncoder, WordTokenizer]:
    """A copy of ``encoder`` and ``tokenizer`` that also know ``words``: every known word
    keeps its id and embedding; the new words get the next ids and fresh embeddings (drawn
    as :class:`~synesthesia.nets.encoders.TextEncoder` draws them, from torch's global seed)."""
    known = list(tokenizer.vocabulary)
    bigger = WordTokenizer(known + [w for w in words if w not in tokenizer.index],
                           tokenizer.max_length)  # fmt: skip
    if bigger.tokens[: len(tokenizer)] != tokenizer.tokens:
        raise ValueError("the extended vocabulary must keep the tokenizer's ids")
    text = TextEncoder(TextEncoderConfig(**{**vars(encoder.config), "vocab_size": len(bigger)}))
    state = encoder.state_dict()
    weight = text.token.weight.detach().clone()
    weight[: len(tokenizer)] = state["token.weight"]
    text.load_state_dict({**state, "token.weight": weight})
    return text, bigger


def load_init_source(folder: str | Path) -> tuple[UNet, TextConditionedUNet, WordTokenizer, str]:
    """``(image U-Net, its text-conditioned model, tokenizer, kind)`` of the checkpoint an
    ``init_from`` names (a checkpoint folder, or a run folder holding ``checkpoint/``), or one
    :class:`~synesthesia.errors.InputError` line starting ``--init-from:`` saying why it
    cannot start a pixel video model (missing, damaged, another kind, latent, Conv3d, a
    frozen text tower, not one channel)."""
    from synesthesia.io import CONFIG_NAME, read_json
    from synesthesia.pipelines.text2image import TextToImagePipeline

    path = Path(folder)
    if not (path / CONFIG_NAME).is_file() and (path / "checkpoint" / CONFIG_NAME).is_file():
        path = path / "checkpoint"
    try:
        if path.exists() and not path.is_dir():
            raise InputError(f"{path}: is a file, expected a checkpoint folder")
        if not path.is_dir():
            raise MissingInputError(f"{path}: no such checkpoint folder")
        raw = read_json(path / CONFIG_NAME, what="config file")
        kind = raw.get("kind") if isinstance(raw, dict) else None
        if kind not in INIT_KINDS:
            raise InputError(
                f"{path}: a {kind!r} checkpoint; a video model starts from a text2image "
                "(pixel) or text2video checkpoint"
            )
        if kind == "text2image" and raw.get("autoencoder") is not None:
            raise InputError(
                f"{path}: a latent text-to-image model (its U-Net denoises autoencoder "
                "latents) cannot start a pixel video model; give a pixel text2image checkpoint"
            )
        layout = (raw.get("video_unet") or {}).get("layout", "factorised")
        if kind == "text2video" and layout != "factorised":
            raise InputError(
                f"{path}: a {layout} video model has no per-frame image U-Net to start from; "
                "give a factorised one"
            )
        if kind == "text2image":
            pipe = TextToImagePipeline.from_pretrained(path, precision="fp32")
            unet = pipe.model.unet
        else:
            pipe = TextToVideoPipeline.from_pretrained(path, precision="fp32")
            unet = pipe.model.unet.unet
        if pipe.model.freeze_text:
            raise InputError(
                f"{path}: its text encoder is a frozen CLIP tower, which cannot learn the "
                "motion words; give a checkpoint with a jointly trained text encoder"
            )
        if unet.config.in_channels != 1:
            raise InputError(
                f"{path}: its U-Net takes {unet.config.in_channels} channels; moving digits have 1"
            )
    except InputError as exc:
        raise type(exc)(f"--init-from: {exc}") from None
    return unet, pipe.model, pipe.tokenizer, kind


def frame_difference_error(x0_hat: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """Per-item mean squared error (B,) between the frame differences of two videos
    (B, C, F, H, W): the chapter's 13.4.3 temporal term."""
    d_hat = x0_hat[:, :, 1:] - x0_hat[:, :, :-1]
    d = x0[:, :, 1:] - x0[:, :, :-1]
    return (d_hat.float() - d.float()).pow(2).flatten(1).mean(1)


def video_loss_fn(
    recipe: VideoRecipe, schedule: NoiseSchedule, pad_id: int, cls_id: int
) -> Callable[..., tuple[torch.Tensor, dict]]:
    """The trainer's ``loss_fn(model, batch, generator)`` for a text-conditioned video model:
    the text-to-image diffusion loss on (B, C, F, H, W), plus the consistency term."""
    text = TextRecipe(
        schedule=recipe.schedule,
        num_timesteps=recipe.num_timesteps,
        prediction=recipe.prediction,
        min_snr_gamma=recipe.min_snr_gamma,
        caption_drop=recipe.caption_drop,
    )
    base = text_loss_fn(text, schedule, pad_id, cls_id)

    rho = recipe.frame_noise_correlation

    def loss_fn(model, batch, generator: torch.Generator):
        videos, caps, independent = batch
        seen: dict[str, torch.Tensor] = {}

        def denoiser(x_t, t, **cond):
            out = model(x_t, t, independent=independent, **cond)
            seen.update(x_t=x_t, t=t, out=out)
            return out

        if rho > 0:  # the white-noise loss on y = M^-1 x (diffusion.frame_noise)
            per_item = torch.where(independent.bool().cpu(), 0.0, rho)
            loss = base(FrameCorrelatedDenoiser(denoiser, per_item),
                        (mix_frames(videos, per_item, inverse=True), caps), generator)  # fmt: skip
        else:
            loss = base(denoiser, (videos, caps), generator)
        if recipe.consistency_weight == 0:
            return loss, {}
        t = seen["t"].round().long().cpu()
        abar = schedule.alphas_cumprod[t]
        x0_hat, _ = to_x0_eps(seen["out"].float(), recipe.prediction, seen["x_t"].float(), abar)
        weight = loss_weight(abar / (1.0 - abar), "x0", recipe.min_snr_gamma)
        video_items = (~independent.bool()).to(x0_hat.dtype)
        term = frame_difference_error(x0_hat, videos) * weight.to(x0_hat) * video_items
        term = term.mean()
        return loss + recipe.consistency_weight * term, {"consistency": float(term.detach())}

    return loss_fn


def _read_run(out_dir: Path) -> tuple[dict, dict]:
    """(trainer state, checkpoint config.json) of the text-to-video run in ``out_dir``."""
    from synesthesia.training import read_run

    return read_run(out_dir, KIND, "a text-to-video")


#: Recipe fields a resumption must keep, by the option that sets them.
RESUME_KEPT = {
    "--consistency-weight": "consistency_weight",
    "--canvas": "canvas",
    "--frames": "frames",
    "--image-fraction": "image_fraction",
    "--frame-noise-correlation": "frame_noise_correlation",
}


def resumable_settings(out_dir: str | Path) -> dict:
    """The settings of the run in ``out_dir`` that a resumption keeps: data, batch, seed, the
    recipe fields of :data:`RESUME_KEPT` (by their attribute names), the U-Net's preset and
    its layout (``factorised``, ``conv3d`` or ``per-frame``)."""
    from synesthesia.training import kept_settings

    kept = kept_settings(out_dir, KIND, "a text-to-video", data="data")
    config = _read_run(out_dir)[1]
    recipe = config.get("recipe") or {}
    unet = config.get("video_unet") or {}
    layout = unet.get("layout", "factorised")
    if layout == "factorised" and not unet.get("temporal", TEMPORAL_KINDS):
        layout = "per-frame"
    # a run started from a checkpoint has that checkpoint's U-Net, not a preset's
    init = config.get("init_from")
    preset = config.get("preset") or (f"the U-Net of {init}" if init else None)
    return {**kept, **{key: recipe.get(key) for key in RESUME_KEPT.values()},
            "preset": preset, "layout": layout}  # fmt: skip


def check_resumed_recipe(out_dir: Path, saved: dict, options: VideoTrainOptions) -> None:
    """Refuse a resumption whose recipe (:data:`RESUME_KEPT`) or ``init_from`` differs from
    the saved run's (``saved``: its config.json), naming the option and both values."""
    given = {name: getattr(options.recipe, key) for name, key in RESUME_KEPT.items()}
    check_resume(out_dir, saved.get("recipe") or {}, {}, given)
    was = saved.get("init_from")
    if options.init_from is not None and str(options.init_from) != was:
        raise InputError(
            f"--init-from: the run in {out_dir} started from {was!r}, this call gives "
            f"{str(options.init_from)!r}; a resumed run continues from its own checkpoint: "
            "leave --init-from out"
        )


def build_model_config(
    options: VideoTrainOptions, text_dim: int, spatial: UNetConfig | None = None
) -> VideoUNetConfig:
    """The video U-Net config of ``options`` (preset, layout, temporal layers, world size);
    ``spatial`` (an image U-Net's config, e.g. of an ``init_from`` checkpoint) replaces the
    preset's per-frame U-Net, at the canvas size."""
    recipe = options.recipe
    if spatial is not None:
        spatial = UNetConfig.from_dict({**spatial.to_dict(), "image_size": recipe.canvas})
    elif options.preset not in VIDEO_PRESETS:
        raise InputError(
            f"unknown preset {options.preset!r}; choose one of {sorted(VIDEO_PRESETS)}"
        )
    else:
        spatial = unet_preset(
            "small",
            **{
                **VIDEO_PRESETS[options.preset],
                "in_channels": 1,
                "image_size": recipe.canvas,
                "num_classes": None,
                "context_dim": text_dim,
                "pooled_dim": text_dim,
                **options.unet_overrides,
            },
        )
    if options.layout == "conv3d":
        if recipe.image_fraction > 0:
            raise InputError("image_fraction needs the factorised layout (Conv3d mixes frames)")
        return conv3d_config(VideoUNetConfig(spatial, recipe.frames))
    levels = None if options.temporal_levels is None else tuple(options.temporal_levels)
    conv = tuple(options.conv_levels) if options.temporal and "conv" in options.temporal else ()
    return VideoUNetConfig(
        spatial, recipe.frames, options.layout, tuple(options.temporal), levels, conv
    )


def start_model(
    options: VideoTrainOptions, seed: int
) -> tuple[TextConditionedVideoUNet, WordTokenizer, VideoUNetConfig, bool, str]:
    """A new run's ``(model, tokenizer, video config, frozen text, text source)``: fresh, or
    from ``options.init_from`` (its spatial U-Net and text encoder; temporal layers zero)."""
    if options.init_from is None:
        torch.manual_seed(seed)  # the whole start (text encoder, then U-Net) follows the seed
        text, tokenizer, frozen, source = build_text_encoder(options, VIDEO_VOCABULARY)
        video_cfg = build_model_config(options, text.out_dim)
        model = TextConditionedVideoUNet(build_video_unet(video_cfg), text, frozen)
        return model, tokenizer, video_cfg, frozen, source
    if options.layout != "factorised":
        raise InputError(
            f"--init-from: the {options.layout} layout has no per-frame image U-Net to load; "
            "use the factorised layout"
        )
    if options.text_encoder != "joint" or options.unet_overrides:
        raise InputError(
            "--init-from: the U-Net layout and the text encoder are the checkpoint's; give no "
            "text encoder or U-Net overrides"
        )
    unet, source_model, source_tok, kind = load_init_source(options.init_from)
    torch.manual_seed(seed)  # the new parts (motion-word embeddings, temporal layers)
    text, tokenizer = extend_vocabulary(source_model.text_encoder, source_tok, VIDEO_VOCABULARY)
    video_cfg = build_model_config(options, text.out_dim, unet.config)
    video = build_video_unet(video_cfg)
    video.unet.load_state_dict(unet.state_dict())
    return TextConditionedVideoUNet(video, text, False), tokenizer, video_cfg, False, "joint"


def train_text_to_video(
    train: ImageSet, options: VideoTrainOptions, resume: bool = False
) -> tuple[TextToVideoPipeline, TrainResult, dict]:
    """Train (or resume) a text-to-video model on videos of the digits in ``train``;
    ``(pipeline, result, plan)``. ``options.out_dir`` gets ``checkpoint/`` (a loadable
    :class:`~synesthesia.pipelines.text2video.TextToVideoPipeline` folder) and ``metrics.csv``.
    """
    from synesthesia.training.budget import fit_budgeted

    start = time.perf_counter()
    out_dir = Path(options.out_dir)
    if resume:
        state, model_config = _read_run(out_dir)
        given = {"--data": train.name, "--batch-size": options.batch_size, "--seed": options.seed}
        check_resume(out_dir, model_config, state["config"], given)
        check_resumed_recipe(out_dir, model_config, options)
        recipe = VideoRecipe.from_dict(model_config["recipe"])
        seed = int(state["config"]["seed"])
        saved = TextToVideoPipeline.from_pretrained(out_dir / "checkpoint")
        config, model, tokenizer = saved.config, saved.model.train(), saved.tokenizer
    else:
        recipe, seed = options.recipe, options.seed
        model, tokenizer, video_cfg, frozen, source = start_model(options, seed)
        text = model.text_encoder
        schedule = NoiseSchedule(recipe.schedule, recipe.num_timesteps)
        config = TextToVideoConfig(
            schedule=schedule.to_config(),
            prediction=recipe.prediction,
            video_unet=video_cfg.to_dict(),
            text_encoder=dict(vars(text.config)),
            vocabulary=list(tokenizer.vocabulary),
            freeze_text=frozen,
            guidance_scale=options.guidance_scale,
            extra={
                "recipe": asdict(recipe),
                "data": train.name,
                "preset": None if options.init_from else options.preset,
                "text_source": source,
                "world": recipe.world.to_dict(),
                "init_from": None if options.init_from is None else str(options.init_from),
            },
        )
        model_config = config.to_dict()

    dataset = MovingDigitsDataset(
        train,
        tokenizer,
        recipe.world,
        seed=seed,
        captions_per_video=recipe.captions_per_video,
        image_fraction=recipe.image_fraction,
        speed_drop=recipe.speed_drop,
    )
    schedule = NoiseSchedule.from_config(config.schedule)
    loss_fn = video_loss_fn(recipe, schedule, tokenizer.pad_id, tokenizer.cls_id)

    def probe() -> tuple:  # the first batch, for the throughput probe
        n = min(options.batch_size, len(dataset))
        return torch.utils.data.default_collate([dataset[i] for i in range(n)])

    scales = None  # a resumption keeps the run's factors: fit_budgeted reads its saved config
    if not resume and options.init_from is not None:
        text_scale = options.loaded_text_lr_scale
        text_scale = options.loaded_lr_scale if text_scale is None else text_scale
        scales = {"unet.unet.": options.loaded_lr_scale, "text_encoder.": text_scale}
        scales = {k: v for k, v in scales.items() if v != 1.0} or None
    budget = BudgetOptions.from_options(options, out_dir=str(out_dir), seed=seed,
                                        lr_scales=scales)  # fmt: skip
    trainer, result, plan = fit_budgeted(
        model, loss_fn, dataset, budget, model_config, probe, resume=resume, started=start
    )
    final = TextToVideoConfig.from_dict(model_config)  # max_steps as planned or extended
    settings = {"prediction": final.prediction, "guidance_scale": final.guidance_scale}
    pipe = TextToVideoPipeline(
        trainer.ema_model, tokenizer, schedule, **settings, extra=final.extra,
        precision=trainer.mixed_precision,
    )  # fmt: skip
    return pipe, result, plan


__all__ = [
    "INIT_KINDS",
    "RESUME_KEPT",
    "VIDEO_PRESETS",
    "VideoRecipe",
    "VideoTrainOptions",
    "build_model_config",
    "check_resumed_recipe",
    "extend_vocabulary",
    "frame_difference_error",
    "load_init_source",
    "resumable_settings",
    "start_model",
    "train_text_to_video",
    "video_loss_fn",
]
