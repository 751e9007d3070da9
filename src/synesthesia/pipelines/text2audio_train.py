"""Train a text-to-audio model on spoken digits with the one trainer.

Data (:mod:`synesthesia.data.spoken_digits`): the training split of the chosen sources, 1 s
at 8 kHz, loudness-normalised; the synthetic voices and FSDD speakers held out for scoring
never enter training. Every clip gets one caption per template of
:data:`~synesthesia.data.spoken_digits.AUDIO_TEMPLATES` ("seven", "7", "the word seven",
...); each step draws one, and with probability ``caption_drop`` the empty prompt (the null
condition of classifier-free guidance). The clips are encoded once into the chosen
:class:`~synesthesia.data.audio_domain.AudioDomain` (log-mel frames or the waveform); the
mel domain's level is fitted to the training clips (:func:`~synesthesia.data.audio_domain
.fit_level`). The loss is the text-to-image recipe's (:func:`~synesthesia.pipelines
.text2image_train.text_loss_fn`), predicting x0 by default, uniformly weighted over t.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from synesthesia.data.audio_domain import AudioDomain, fit_level
from synesthesia.data.spoken_digits import (
    AUDIO_TEMPLATES,
    ClipConfig,
    SpokenDigits,
    audio_caption,
    audio_vocabulary,
)
from synesthesia.diffusion import NoiseSchedule
from synesthesia.errors import InputError
from synesthesia.nets.audio_unet import AUDIO_PRESETS, audio_unet_preset
from synesthesia.nets.encoders import TextEncoderConfig
from synesthesia.nets.tokenizer import WordTokenizer
from synesthesia.pipelines.text2audio import (
    KIND,
    TextToAudioConfig,
    TextToAudioPipeline,
    build_audio_model,
)
from synesthesia.pipelines.text2image_train import CaptionedImages, text_loss_fn
from synesthesia.training.budget import BudgetOptions

if TYPE_CHECKING:
    from synesthesia.training import TrainResult


@dataclass
class AudioRecipe:
    """How a text-to-audio model is trained (saved in its config.json)."""

    domain: str = "mel"
    schedule: str = "cosine"
    num_timesteps: int = 1000
    # x0: on log-mel frames v (and eps) learned far slower in a 250-step probe on FSDD (see
    # RESULTS-audio.md); the network then draws smooth spectra instead of copying noise
    prediction: str = "x0"
    min_snr_gamma: float | None = None
    caption_drop: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.caption_drop < 1.0:
            raise InputError(f"caption_drop must lie in [0, 1), got {self.caption_drop}")
        AudioDomain(kind=self.domain)  # validates the domain's name

    @classmethod
    def from_dict(cls, d: dict, where: str = "config.json recipe") -> AudioRecipe:
        """The recipe of a saved config (unknown or bad fields: InputError naming ``where``)."""
        from synesthesia.multimodal.modalities import settings_from_dict

        return settings_from_dict(cls, d, where)


@dataclass
class AudioTrainOptions(BudgetOptions):
    """Options of :func:`train_text_to_audio`: the time-bounded run's (out_dir, minutes,
    max_steps, batch_size, lr, seed, ...; see :class:`~synesthesia.training.budget
    .BudgetOptions`) and the model's."""

    preset: str | None = None  # None: the domain's own ("mel" or "wave")
    recipe: AudioRecipe = field(default_factory=AudioRecipe)
    text_dim: int = 64
    text_depth: int = 2
    guidance_scale: float = 2.0
    unet_overrides: dict = field(default_factory=dict)
    fsdd_folder: str | None = None  # recorded in config.json (eval reads the same folder)
    n_espeak: int | None = None  # recorded in config.json (a resumption rebuilds the same data)


def caption_table(labels: torch.Tensor, tokenizer: WordTokenizer) -> torch.Tensor:
    """(N, K, L) token ids: every template's caption of each clip's digit."""
    rows = [[audio_caption(int(y), k) for k in range(len(AUDIO_TEMPLATES))] for y in labels]
    ids, _ = tokenizer([c for row in rows for c in row])
    return ids.reshape(len(rows), len(AUDIO_TEMPLATES), -1)


def encode_clips(domain: AudioDomain, clips: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """The clips (N, samples) in the domain (N, channels, length), in batches."""
    return torch.cat([domain.encode(clips[i : i + batch]) for i in range(0, len(clips), batch)])


def resumable_settings(out_dir: str | Path) -> dict:
    """What a resumption of the run in ``out_dir`` keeps: fsdd, n_espeak, batch_size, seed."""
    from synesthesia.training import kept_settings

    return kept_settings(out_dir, KIND, "a text-to-audio", fsdd="fsdd_folder", n_espeak="n_espeak")


@dataclass
class AudioTraining:
    """What one run trains: the network, its loss, its data and the config.json it saves."""

    model: torch.nn.Module
    loss_fn: Callable[..., torch.Tensor]
    dataset: CaptionedImages
    model_config: dict
    tokenizer: WordTokenizer
    domain: AudioDomain
    schedule: NoiseSchedule

    def probe_batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of the first clips, for a throughput probe."""
        n = min(batch_size, len(self.dataset))
        return self.dataset.x[:n], self.dataset.captions[:n]


def prepare_audio_training(
    train: SpokenDigits, options: AudioTrainOptions, resume: bool = False
) -> AudioTraining:
    """Build (or, with ``resume``, reload from ``options.out_dir``) the network, and encode and
    caption the clips of ``train``."""
    from synesthesia.io import read_json

    out_dir = Path(options.out_dir)
    if len(train) == 0:
        raise InputError("no training clips: give --fsdd FOLDER or keep the synthetic voices")
    if resume:
        path = out_dir / "checkpoint" / "config.json"
        saved = read_json(path, what="config file")
        if not isinstance(saved, dict) or saved.get("kind") != KIND:
            raise InputError(f"{path}: not a text-to-audio run")
        pipe = TextToAudioPipeline.from_pretrained(out_dir / "checkpoint")
        model, tokenizer, domain = pipe.model.train(), pipe.tokenizer, pipe.domain
        recipe = AudioRecipe.from_dict(saved["recipe"])
        model_config = saved
        if train.sample_rate != domain.sample_rate or train.waveforms.shape[1] != domain.samples:
            raise InputError(
                f"the run in {out_dir} was trained on {domain.samples} samples at "
                f"{domain.sample_rate} Hz; these clips are {train.waveforms.shape[1]} at "
                f"{train.sample_rate} Hz"
            )
    else:
        recipe = options.recipe
        domain = AudioDomain(
            kind=recipe.domain, sample_rate=train.sample_rate, samples=train.waveforms.shape[1]
        )
        domain = fit_level(domain, train.waveforms)
        preset = options.preset or recipe.domain
        if preset not in AUDIO_PRESETS:
            raise InputError(f"unknown preset {preset!r}; choose one of {sorted(AUDIO_PRESETS)}")
        torch.manual_seed(options.seed)  # the whole start (text encoder, then U-Net) follows it
        tokenizer = WordTokenizer(audio_vocabulary(), max_length=8)
        text_cfg = TextEncoderConfig(
            vocab_size=len(tokenizer),
            dim=options.text_dim,
            depth=options.text_depth,
            heads=4,
            max_length=tokenizer.max_length,
            pad_id=tokenizer.pad_id,
        )
        unet_cfg = audio_unet_preset(
            preset,
            **{
                "in_channels": domain.channels,
                "length": domain.length,
                "context_dim": options.text_dim,
                "pooled_dim": options.text_dim,
                **options.unet_overrides,
            },
        )
        model = build_audio_model(unet_cfg, text_cfg)
        schedule = NoiseSchedule(recipe.schedule, recipe.num_timesteps)
        model_config = TextToAudioConfig(
            schedule=schedule.to_config(),
            prediction=recipe.prediction,
            unet=unet_cfg.to_dict(),
            text_encoder=dict(vars(text_cfg)),
            vocabulary=list(tokenizer.vocabulary),
            domain=domain.to_dict(),
            guidance_scale=options.guidance_scale,
            extra={
                "recipe": asdict(recipe),
                "data": train.name,
                "preset": preset,
                "held_out": train.held_out,
                "fsdd_folder": options.fsdd_folder,
                "n_espeak": options.n_espeak,
                "train_clips": len(train),
            },
        ).to_dict()

    dataset = CaptionedImages(
        encode_clips(domain, train.waveforms), caption_table(train.labels, tokenizer)
    )
    schedule = NoiseSchedule.from_config(model_config["schedule"])
    loss_fn = text_loss_fn(recipe, schedule, tokenizer.pad_id, tokenizer.cls_id)
    return AudioTraining(model, loss_fn, dataset, model_config, tokenizer, domain, schedule)


def train_text_to_audio(
    train: SpokenDigits, options: AudioTrainOptions, resume: bool = False
) -> tuple[TextToAudioPipeline, TrainResult, dict]:
    """Train (or resume) a text-to-audio model on ``train``; ``(pipeline, result, plan)``.

    The run folder ``options.out_dir`` gets ``checkpoint/`` (a loadable
    :class:`~synesthesia.pipelines.text2audio.TextToAudioPipeline` folder) and
    ``metrics.csv``; with ``options.minutes`` the whole call fits in the budget (data
    preparation included).
    """
    from synesthesia.training.budget import fit_budgeted

    start = time.perf_counter()
    run = prepare_audio_training(train, options, resume)
    budget = BudgetOptions.from_options(options, out_dir=options.out_dir)
    trainer, result, plan = fit_budgeted(
        run.model,
        run.loss_fn,
        run.dataset,
        budget,
        run.model_config,
        probe_batch=lambda: run.probe_batch(options.batch_size),
        resume=resume,
        started=start,
    )
    plan["train_clips"] = len(run.dataset)
    final = TextToAudioConfig.from_dict(run.model_config)
    pipe = TextToAudioPipeline(
        trainer.ema_model,
        run.tokenizer,
        run.domain,
        run.schedule,
        final.prediction,
        final.guidance_scale,
        final.extra,
        trainer.mixed_precision,
    )
    return pipe, result, plan


def training_clips(
    fsdd_folder: str | Path | None,
    n_espeak: int = 2000,
    seed: int = 0,
    progress: bool = False,
) -> SpokenDigits:
    """The training split: the eSpeak voices (``n_espeak`` clips synthesised; 0: none) and,
    with ``fsdd_folder``, the FSDD training speakers; held-out voices and speakers left out."""
    from synesthesia.data.spoken_digits import spoken_digits

    sources = (["fsdd"] if fsdd_folder is not None else []) + (["espeak"] if n_espeak > 0 else [])
    if not sources:
        raise InputError("no training data: keep the synthetic voices or give --fsdd FOLDER")
    train = spoken_digits(sources, fsdd_folder, n_espeak, seed, ClipConfig(), progress=progress)[
        "train"
    ]
    return train


__all__ = [
    "AudioRecipe",
    "AudioTrainOptions",
    "AudioTraining",
    "caption_table",
    "encode_clips",
    "prepare_audio_training",
    "resumable_settings",
    "train_text_to_audio",
    "training_clips",
]
