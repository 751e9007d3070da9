"""Train a text-to-image model (pixel or latent) on captioned digits with the one trainer.

Data. Every training digit gets ``captions_per_image`` captions written from attributes
measured on its own pixels (:mod:`synesthesia.data.captions`: "a thick, right-slanted seven",
"the number 3, written thin"); each attribute is left out of a caption with probability
``attribute_drop``, so plain prompts ("a seven") are in-distribution too. Each step draws one
caption per image with the trainer's generator, and with probability ``caption_drop``
replaces it by the empty prompt: the null condition of classifier-free guidance.

Compositional generalisation: with ``hold_out`` (the default) every training digit of a
combination in :data:`synesthesia.data.prompts.HELD_OUT_COMBINATIONS` (every thick seven,
left-slanted two, small four) is removed, so prompts for them test composition.

Latent diffusion (``autoencoder=FOLDER``): the training digits are encoded once by the frozen
autoencoder (posterior means and log-variances kept); each step draws a posterior sample and
scales it by the autoencoder's measured ``scaling_factor`` (Rombach et al. 2022, sec. 4.3).

Text encoder: "joint" trains the project's transformer text encoder with the denoiser; a
folder of a ``synesthesia train clip`` checkpoint uses its text tower, frozen (as Stable
Diffusion uses CLIP's). Either is saved inside the pipeline folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from synesthesia.data.images import ImageSet
from synesthesia.diffusion import NoiseSchedule, diffusion_loss
from synesthesia.errors import InputError
from synesthesia.nets.encoders import TextEncoder, TextEncoderConfig
from synesthesia.nets.text_unet import TextConditionedUNet
from synesthesia.nets.tokenizer import WordTokenizer
from synesthesia.nets.unet import UNet, unet_preset
from synesthesia.pipelines.text2image import KIND, TextToImageConfig, TextToImagePipeline

if TYPE_CHECKING:
    from synesthesia.training import TrainResult

#: U-Net sizes for 28 x 28 pixels and for 7 x 7 latents (two levels: 7 and 4).
TEXT_PRESETS = {
    "tiny": dict(base_channels=16, channel_mults=(1, 2), attention_levels=(1,), num_heads=2),
    "small": dict(base_channels=16, channel_mults=(1, 3, 5), attention_levels=(2,)),
    # 7 x 7 x 4 latents: self- and cross-attention at 4 x 4 (and in the middle) only. With
    # cross-attention at 7 x 7 too, a guided forward pass of 200 latents took 93.5 ms against
    # the pixel model's 254 (2.72x; bf16, 2 threads, idle Xeon); at 4 x 4 only, 70.1 ms
    # (3.63x). At 7 x 7 the small matmuls of cross-attention parallelise poorly on 2 cores.
    "latent": dict(
        base_channels=48,
        channel_mults=(1, 2),
        attention_levels=(1,),
        cross_attention_levels=(1,),
    ),
}


@dataclass
class TextRecipe:
    """How a text-to-image model is trained (saved in its config.json)."""

    schedule: str = "cosine"
    num_timesteps: int = 1000
    prediction: str = "v"
    min_snr_gamma: float | None = 5.0
    caption_drop: float = 0.1  # probability of the empty prompt (the CFG null condition)
    attribute_drop: float = 0.3  # probability of leaving each attribute out of a caption
    captions_per_image: int = 8
    hold_out: bool = True  # remove the held-out (digit, attribute) combinations

    def __post_init__(self) -> None:
        for name in ("caption_drop", "attribute_drop"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise InputError(f"{name} must lie in [0, 1), got {value}")
        if self.captions_per_image < 1:
            raise InputError(f"captions_per_image must be >= 1, got {self.captions_per_image}")

    @classmethod
    def from_dict(cls, d: dict) -> TextRecipe:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown TextRecipe keys {unknown}; known: {sorted(known)}")
        return cls(**d)


@dataclass
class TextTrainOptions:
    """Options of :func:`train_text_to_image`."""

    out_dir: str
    preset: str | None = None  # None: "small" in pixel space, "latent" in latent space
    minutes: float | None = None
    max_steps: int | None = None
    batch_size: int = 64
    lr: float = 2e-3
    warmup_steps: int = 50
    ema_decay: float = 0.999
    precision: str = "auto"
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 500
    progress: bool = True
    recipe: TextRecipe = field(default_factory=TextRecipe)
    text_encoder: str = "joint"  # "joint", or the folder of a `train clip` checkpoint
    text_dim: int = 64
    text_depth: int = 2
    autoencoder: str | None = None  # folder of a `train autoencoder` checkpoint: latent model
    guidance_scale: float = 3.0  # the default stored in the pipeline
    unet_overrides: dict = field(default_factory=dict)
    pick_threads: bool = True
    grad_accumulation: int = 1  # micro-batches per step (batch_size: the global batch)
    compile: bool = False  # torch.compile the training forward


class CaptionedImages(torch.utils.data.Dataset):
    """Items ``(x, caption_ids)``: an image (or its latent moments) and its K captions' ids
    (K, L), padded with the tokenizer's pad id."""

    def __init__(self, x: torch.Tensor, captions: torch.Tensor) -> None:
        if len(x) != len(captions):
            raise ValueError(f"{len(x)} images and {len(captions)} caption rows")
        self.x, self.captions = x, captions

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.captions[i]


def caption_ids(
    labels: torch.Tensor, attrs: dict, tokenizer: WordTokenizer, recipe: TextRecipe, seed: int
) -> torch.Tensor:
    """(N, K, L) token ids of K captions per image (padded to the longest caption)."""
    from synesthesia.data.captions import captions_for

    captions = captions_for(
        labels, attrs, recipe.captions_per_image, seed=seed, drop_prob=recipe.attribute_drop
    )
    flat = [c for row in captions for c in row]
    ids, _ = tokenizer(flat)
    return ids.reshape(len(captions), recipe.captions_per_image, -1)


def text_loss_fn(
    recipe: TextRecipe,
    schedule: NoiseSchedule,
    pad_id: int,
    cls_id: int,
    latent_scale: float | None = None,
) -> Callable[..., torch.Tensor]:
    """The trainer's ``loss_fn(model, batch, generator)`` for a text-conditioned denoiser.

    One of each image's captions is drawn; with probability ``caption_drop`` it becomes the
    empty prompt. With ``latent_scale`` the batch holds posterior moments (mean, log-variance
    along channels) and a scaled posterior sample is the diffusion's x0.
    """
    from synesthesia.nets.autoencoder import DiagonalGaussian

    def loss_fn(model, batch, generator: torch.Generator):
        x, caps = batch
        b, k, _ = caps.shape
        dev = generator.device
        pick = torch.randint(k, (b,), generator=generator, device=dev).to(caps.device)
        ids = caps[torch.arange(b, device=caps.device), pick]
        if recipe.caption_drop > 0:
            drop = torch.rand(b, generator=generator, device=dev).to(caps.device)
            null = torch.full_like(ids, pad_id)
            null[:, 0] = cls_id
            ids = torch.where((drop < recipe.caption_drop)[:, None], null, ids)
        mask = ids == pad_id
        length = int((~mask).sum(dim=1).max())  # trim the padding every row shares
        ids, mask = ids[:, :length], mask[:, :length]
        if latent_scale is not None:
            z = DiagonalGaussian.from_moments(x)
            eps = torch.randn(z.mean.shape, generator=generator, device=dev).to(x.device)
            x = (z.mean + z.std * eps) * latent_scale
        return diffusion_loss(
            model,
            x,
            schedule,
            prediction=recipe.prediction,
            min_snr_gamma=recipe.min_snr_gamma,
            generator=generator,
            cond={"ids": ids, "mask": mask},
        )

    return loss_fn


def build_text_encoder(options: TextTrainOptions, vocabulary: tuple[str, ...]):
    """``(text encoder, tokenizer, frozen, source)`` for ``options.text_encoder``."""
    if options.text_encoder == "joint":
        tokenizer = WordTokenizer(vocabulary, max_length=24)
        cfg = TextEncoderConfig(
            vocab_size=len(tokenizer),
            dim=options.text_dim,
            depth=options.text_depth,
            heads=4,
            max_length=tokenizer.max_length,
            pad_id=tokenizer.pad_id,
        )
        return TextEncoder(cfg), tokenizer, False, "joint"
    from synesthesia.multimodal.model import JointEmbeddingModel

    clip = JointEmbeddingModel.from_pretrained(options.text_encoder)
    if "text" not in clip.encoders:
        raise InputError(f"{options.text_encoder}: this CLIP checkpoint has no text tower")
    encoder = clip.encoders["text"]
    return encoder, clip.tokenizer, True, f"clip:{options.text_encoder}"


def _latent_data(train: ImageSet, autoencoder_folder: str):
    """``(autoencoder, moments (N, 2C, h, w))`` of the training digits."""
    from synesthesia.pipelines.autoencoder import load_autoencoder

    ae = load_autoencoder(autoencoder_folder).eval()
    want = (ae.config.in_channels, ae.config.image_size, ae.config.image_size)
    if tuple(train.images.shape[1:]) != want:
        raise InputError(
            f"{autoencoder_folder}: the autoencoder takes images {want}, the data has "
            f"{tuple(train.images.shape[1:])}"
        )
    return ae, posterior_moments(ae, train.images)


def posterior_moments(autoencoder, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """The posterior moments (N, 2C, h, w) of ``images``: means, then log-variances."""
    with torch.no_grad():
        parts = []
        for i in range(0, len(images), batch):
            posterior = autoencoder.encode(images[i : i + batch])
            parts.append(torch.cat([posterior.mean, posterior.logvar], dim=1))
    return torch.cat(parts)


def resumable_settings(out_dir: str | Path) -> dict:
    """The settings of the text-to-image run in ``out_dir`` that a resumption keeps: data,
    batch_size, seed (clear errors for a folder that holds no such run)."""
    from synesthesia.training import kept_settings

    return kept_settings(out_dir, KIND, "a text-to-image", data="data")


def check_resume(out_dir: Path, saved: dict, state: dict, given: dict) -> None:
    """Refuse a resumption whose options differ from the saved run's, naming both values."""
    for name, now in given.items():
        was = saved.get(name[2:].replace("-", "_"), state.get(name[2:].replace("-", "_")))
        if was is not None and now is not None and was != now:
            raise InputError(
                f"{name}: the run in {out_dir} used {was!r}, this call gives {now!r}; resume "
                "with the run's own settings, or start a new run in another --out"
            )


def train_text_to_image(
    train: ImageSet, options: TextTrainOptions, resume: bool = False
) -> tuple[TextToImagePipeline, TrainResult, dict]:
    """Train (or resume) a text-to-image model on ``train``; ``(pipeline, result, plan)``.

    The run folder ``options.out_dir`` gets ``checkpoint/`` (a loadable
    :class:`~synesthesia.pipelines.text2image.TextToImagePipeline` folder) and
    ``metrics.csv``; with ``options.minutes`` the whole call fits in the budget.
    """
    from synesthesia.data.captions import VOCABULARY, measure_attributes
    from synesthesia.data.prompts import HELD_OUT_COMBINATIONS, held_out_mask
    from synesthesia.io import read_json
    from synesthesia.training import read_run_state
    from synesthesia.training.budget import BudgetOptions, fit_budgeted

    start = time.perf_counter()
    out_dir = Path(options.out_dir)
    if resume:
        state = read_run_state(out_dir)
        path = out_dir / "checkpoint" / "config.json"
        saved_config = read_json(path, what="config file")
        if not isinstance(saved_config, dict) or saved_config.get("kind") != KIND:
            raise InputError(f"{path}: not a text-to-image run")
        check_resume(
            out_dir,
            saved_config,
            state["config"],
            {"--data": train.name, "--batch-size": options.batch_size, "--seed": options.seed},
        )
        recipe = TextRecipe.from_dict(saved_config["recipe"])
        seed = int(state["config"]["seed"])
    else:
        recipe, seed = options.recipe, options.seed

    # data: measured attributes, held-out combinations removed, captions tokenised
    attrs = measure_attributes(train.images, train.labels)
    held = held_out_mask(train.labels, attrs) if recipe.hold_out else np.zeros(len(train), bool)
    keep = torch.from_numpy(np.flatnonzero(~held))
    data = train.subset(keep)
    attrs = {k: v[~held] for k, v in attrs.items()}

    if resume:  # the saved network (its frozen parts with their weights); the trainer then
        # restores the trained weights, optimizer and RNG from the run's train/ folder
        saved_pipe = TextToImagePipeline.from_pretrained(out_dir / "checkpoint")
        config, model, tokenizer = saved_pipe.config, saved_pipe.model.train(), saved_pipe.tokenizer
        autoencoder = model.autoencoder
        model_config = saved_config
        if autoencoder is not None:
            moments = posterior_moments(autoencoder, data.images)
    else:
        autoencoder = moments = None
        if options.autoencoder is not None:
            autoencoder, moments = _latent_data(data, options.autoencoder)
        torch.manual_seed(seed)  # the whole start (text encoder, then U-Net) follows the seed
        text, tokenizer, frozen, source = build_text_encoder(options, VOCABULARY)
        preset = options.preset or ("latent" if autoencoder is not None else "small")
        if preset not in TEXT_PRESETS:
            raise InputError(f"unknown preset {preset!r}; choose one of {sorted(TEXT_PRESETS)}")
        if autoencoder is not None:
            c, size = autoencoder.config.latent_shape[0], autoencoder.config.latent_shape[1]
        else:
            c, size = int(data.images.shape[1]), int(data.images.shape[-1])
        unet_cfg = unet_preset(
            "small",
            **{
                **TEXT_PRESETS[preset],
                "in_channels": c,
                "image_size": size,
                "num_classes": None,
                "context_dim": text.out_dim,
                "pooled_dim": text.out_dim,
                **options.unet_overrides,
            },
        )
        model = TextConditionedUNet(UNet(unet_cfg), text, frozen, autoencoder)
        schedule = NoiseSchedule(recipe.schedule, recipe.num_timesteps)
        config = TextToImageConfig(
            schedule=schedule.to_config(),
            prediction=recipe.prediction,
            unet=unet_cfg.to_dict(),
            text_encoder=dict(vars(text.config)),
            vocabulary=list(tokenizer.vocabulary),
            freeze_text=frozen,
            autoencoder=None if autoencoder is None else autoencoder.config.to_dict(),
            guidance_scale=options.guidance_scale,
            extra={
                "recipe": asdict(recipe),
                "data": train.name,
                "preset": preset,
                "text_source": source,
                "held_out": [list(c) for c in HELD_OUT_COMBINATIONS] if recipe.hold_out else [],
                "autoencoder_folder": options.autoencoder,
            },
        )
        model_config = config.to_dict()

    caps = caption_ids(data.labels, attrs, tokenizer, recipe, seed)
    x = moments if autoencoder is not None else data.images
    dataset = CaptionedImages(x, caps)
    schedule = NoiseSchedule.from_config(config.schedule)
    scale = autoencoder.scaling_factor if autoencoder is not None else None
    loss_fn = text_loss_fn(recipe, schedule, tokenizer.pad_id, tokenizer.cls_id, scale)
    n = min(options.batch_size, len(dataset))
    budget = BudgetOptions.from_options(options, out_dir=str(out_dir), seed=seed)
    trainer, result, plan = fit_budgeted(
        model,
        loss_fn,
        dataset,
        budget,
        model_config,
        probe_batch=lambda: (x[:n], caps[:n]),
        resume=resume,
        started=start,
    )
    plan["train_items"] = len(dataset)
    plan["held_out_items"] = int(held.sum())
    final = TextToImageConfig.from_dict(model_config)
    pipe = TextToImagePipeline(
        trainer.ema_model,
        tokenizer,
        schedule,
        final.prediction,
        final.guidance_scale,
        final.extra,
        trainer.mixed_precision,
    )
    return pipe, result, plan


__all__ = [
    "CaptionedImages",
    "TEXT_PRESETS",
    "TextRecipe",
    "TextTrainOptions",
    "caption_ids",
    "posterior_moments",
    "resumable_settings",
    "text_loss_fn",
    "train_text_to_image",
]
