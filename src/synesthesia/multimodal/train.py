"""Contrastive training of a :class:`~synesthesia.multimodal.model.JointEmbeddingModel`.

The training set is a set of anchor items (the digit world's images), each with a label, and
for every modality a *bank* that its items are drawn from (the images themselves, each image's
captions, a pool of spoken digits); what a bank holds and how a batch is drawn from it is said
by the modality's registry entry (:mod:`synesthesia.multimodal.modalities`). The objective
(:class:`ContrastiveObjective`, the trainer's ``loss_fn``) draws, with the trainer's generator,
one caption of each image and one spoken clip of the same digit, so every epoch sees new pairs
and a resumed run draws exactly what an uninterrupted one would.

Positives. In a batch, anchor item i and item j of another modality belong together when the
modality's entry says so: for text, the same caption string (two images captioned "a thick
seven" both match that caption); for speech, the same digit (a spoken "seven" says nothing
about which seven was drawn). Several positives per row are handled by the loss (UniCL targets
for InfoNCE, +1 labels for SigLIP).

Augmentation (drawn with the generator; see :mod:`synesthesia.multimodal.augment`): images are
shifted by up to 2 pixels, spectrograms get a random time shift and SpecAugment masks.

A time-bounded run (:func:`train_clip`) times real training steps with
:func:`synesthesia.training.timing.measure_train_step` and plans its schedule with
:func:`~synesthesia.training.timing.plan_steps`, at the precision that
:func:`synesthesia.training.resolve_precision` decides.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from synesthesia.errors import InputError
from synesthesia.multimodal.augment import shift_images, spec_augment
from synesthesia.multimodal.losses import contrastive_loss, gather_items, gather_labels
from synesthesia.multimodal.modalities import get_modality

__all__ = [
    "ClipData",
    "ClipTrainOptions",
    "ContrastiveObjective",
    "clip_data_from_world",
    "shift_images",
    "spec_augment",
    "train_clip",
]


class ClipData(torch.utils.data.Dataset):
    """Anchor items with their labels, and one bank per modality that batches are drawn from.

    ``labels``: one label per item (the digit). ``banks``: modality -> what its registry entry
    draws from (for the built-ins: images ``N x 1 x H x W`` aligned with the items; a list of
    captions per item; a :class:`~synesthesia.multimodal.modalities.LabelPool` of log-mel
    features). Each bank is checked by its entry (every label needs a spoken clip, ...).
    Items are ``{"index": i, "label": labels[i]}``.
    """

    def __init__(self, labels: torch.Tensor | Sequence[int], banks: Mapping[str, Any]) -> None:
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        if self.labels.ndim != 1:
            raise ValueError(f"labels must be one per item, got shape {tuple(self.labels.shape)}")
        self.banks = dict(banks)
        for name, bank in self.banks.items():
            get_modality(name).check_bank(bank, self.labels)

    @classmethod
    def from_world(
        cls, world: Any, modalities: Sequence[str], split: str = "train", **options: Any
    ) -> ClipData:
        """The items of one split of a :class:`~synesthesia.data.digit_world.DigitWorld` (its
        images) with a bank of each modality; ``options`` go to the entries' ``bank``
        (``speech_source="synthetic" | "fsdd" | "both"``)."""
        banks = {m: get_modality(m).bank(world, split, options) for m in modalities}
        return cls(world.images[split].labels, banks)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"index": torch.tensor(i), "label": self.labels[i]}

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities this data can feed."""
        return tuple(self.banks)


class ContrastiveObjective:
    """The trainer's ``loss_fn(model, batch, generator)``: one contrastive loss per pair
    (anchor, other modality), summed; returns ``(loss, {"loss_<m>": ..., "scale_<m>": ...})``.

    ``augment`` maps a modality to its augmentation settings (default: its entry's).
    """

    def __init__(
        self,
        data: ClipData,
        modalities: Sequence[str],
        anchor: str = "image",
        loss: str = "clip",
        augment: Mapping[str, Any] | None = None,
    ) -> None:
        missing = [m for m in modalities if m not in data.modalities]
        if missing:
            raise ValueError(f"the training data has no {missing} (it has {data.modalities})")
        if anchor not in modalities:
            raise ValueError(f"anchor {anchor!r} is not one of {tuple(modalities)}")
        self.data = data
        # the anchor is drawn first, then the others in order
        self.modalities = (anchor, *(m for m in modalities if m != anchor))
        self.anchor = anchor
        self.loss = loss
        self.entries = {m: get_modality(m) for m in self.modalities}
        self.augment = {m: e.augment for m, e in self.entries.items()}
        self.augment.update(augment or {})

    def draw_inputs(self, batch: dict, generator: torch.Generator) -> dict:
        """The model inputs of one batch: what each modality's entry draws for its items."""
        index = batch["index"].cpu()
        labels = batch["label"].cpu()
        return {
            m: e.draw(self.data.banks[m], index, labels, generator, self.augment[m])
            for m, e in self.entries.items()
        }

    def positive_mask(self, modality: str, inputs: dict, labels: torch.Tensor) -> torch.Tensor:
        """Which (anchor i, item j) pairs belong together (the modality's entry says)."""
        # under several processes the logits span the gathered global batch: so does the mask
        items = gather_items(inputs[modality])
        return self.entries[modality].positives(items, gather_labels(labels).cpu())

    def __call__(self, model, batch: dict, generator: torch.Generator):
        inputs = self.draw_inputs(batch, generator)
        out = model(inputs)  # embeddings and anchor logits (through forward, so DDP syncs)
        labels = batch["label"]
        total = 0.0
        logs: dict[str, float] = {}
        for m in self.modalities:
            if m == self.anchor:
                continue
            mask = self.positive_mask(m, inputs, labels).to(out[f"logits_{m}"].device)
            loss_m = contrastive_loss(out[f"logits_{m}"], mask, self.loss)
            total = total + loss_m
            logs[f"loss_{m}"] = float(loss_m.detach())
            logs[f"scale_{m}"] = float(out[f"scale_{m}"])
        return total, logs


#: What a new run uses for each option of :class:`ClipTrainOptions` left at None.
DEFAULTS: dict[str, Any] = {
    "modalities": ("image", "text", "speech"),
    "loss": "clip",
    "batch_size": 64,
    "lr": 2e-3,
    "weight_decay": 0.05,
    "seed": 0,
    "embed_dim": 64,
    "n_speech": 2000,
    "precision": "auto",
    "fsdd_speakers": (),
}


@dataclass
class ClipTrainOptions:
    """What ``synesthesia train clip`` sets; see :func:`train_clip`.

    An option left at None takes :data:`DEFAULTS` in a new run and the run's own saved value
    when resuming; given on resume, it must equal the saved value (else :class:`InputError`
    naming it and both values), except ``max_steps`` and ``precision``, which may change with
    a printed statement. ``minutes`` bounds this call's training either way.
    """

    out_dir: str = "runs/clip"
    modalities: tuple[str, ...] | None = None
    loss: str | None = None
    minutes: float = 5.0
    max_steps: int | None = None  # None: as many as fit in ``minutes`` (timed before training)
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    seed: int | None = None
    embed_dim: int | None = None
    n_speech: int | None = None
    precision: str | None = None  # "auto" (bf16 where native and measured faster), "fp32", "bf16"
    fsdd_folder: str | None = None
    fsdd_speakers: tuple[str, ...] | None = None  # FSDD speakers trained on; others held out
    cache_dir: str | None = None
    progress: bool = True
    pick_threads: bool = True  # the throughput probe also tries one CPU thread (shared cores)
    grad_accumulation: int = 1  # micro-batches per step (batch_size stays the global batch)
    compile: bool = False  # torch.compile the training forward


def clip_data_from_world(world, split: str = "train", speech_source: str = "synthetic") -> ClipData:
    """:class:`ClipData` of one split of a digit world, with every modality it holds (speech
    only if the world has some)."""
    mods = ["image", "text"] + (["speech"] if world.speech else [])
    return ClipData.from_world(world, mods, split, speech_source=speech_source)


def _shown(value: Any) -> str:
    """An option's value as a user would type it (lists comma-separated; empty: none)."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) if value else "none"
    return repr(value) if isinstance(value, str) else str(value)


def _precision_name(precision: str) -> str:
    return "fp32" if precision == "no" else precision


def _same(a: Any, b: Any) -> bool:
    def norm(x: Any) -> Any:
        return list(x) if isinstance(x, (list, tuple)) else x

    return norm(a) == norm(b)


@dataclass
class _Run:
    """A run's settled settings (new or resumed) before any work."""

    config: Any
    options: ClipTrainOptions
    precision: str
    fsdd_train: tuple[str, ...]
    fsdd_val: tuple[str, ...]
    trainer: dict[str, Any] | None = None  # the saved TrainerConfig fields (resume)
    step: int = 0
    notes: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()  # trainer settings changed on resume, as stated in notes


def _new_run(options: ClipTrainOptions, device: torch.device) -> _Run:
    from synesthesia.data.fsdd import fsdd_speakers
    from synesthesia.multimodal.evaluate import fsdd_note
    from synesthesia.multimodal.model import JointEmbeddingConfig
    from synesthesia.training import resolve_precision

    filled = dataclasses.replace(
        options, **{k: v for k, v in DEFAULTS.items() if getattr(options, k) is None}
    )
    train_speakers = tuple(filled.fsdd_speakers)
    held_out: tuple[str, ...] = ()
    if train_speakers and not filled.fsdd_folder:
        raise InputError("--fsdd-speakers needs --fsdd FOLDER (the FSDD recordings)")
    if filled.fsdd_folder:
        speakers = fsdd_speakers(filled.fsdd_folder)
        unknown = sorted(set(train_speakers) - set(speakers))
        if unknown:
            raise InputError(
                f"--fsdd-speakers: {unknown} are not in {filled.fsdd_folder} (it has {speakers})"
            )
        held_out = tuple(s for s in speakers if s not in set(train_speakers))
    config = JointEmbeddingConfig(
        modalities=tuple(filled.modalities),
        loss=filled.loss,
        embed_dim=filled.embed_dim,
        training_data={
            "n_speech": filled.n_speech,
            "seed": filled.seed,
            "fsdd_train_speakers": list(train_speakers),
            "fsdd_val_speakers": list(held_out),
        },
    )
    precision = resolve_precision(filled.precision, device)
    note = fsdd_note(train_speakers, held_out)
    return _Run(config, filled, precision, train_speakers, held_out, notes=(note,) if note else ())


def _resumed_run(options: ClipTrainOptions, device: torch.device) -> _Run:
    """The run in ``out_dir`` with its saved settings, after checking ``options`` against them."""
    from synesthesia.data.fsdd import fsdd_speakers
    from synesthesia.io import read_json
    from synesthesia.multimodal.evaluate import fsdd_note
    from synesthesia.multimodal.model import JointEmbeddingConfig
    from synesthesia.training import read_run_state, resolve_precision

    out = Path(options.out_dir)
    state = read_run_state(out)
    path = out / "checkpoint" / "config.json"
    config = JointEmbeddingConfig.from_dict(read_json(path, what="config file"), source=path)
    saved = state["config"]
    info = config.training_data
    saved_values = {
        "modalities": ("--modalities", list(config.modalities)),
        "loss": ("--loss", config.loss),
        "embed_dim": ("embed_dim", config.embed_dim),
        "batch_size": ("--batch-size", saved.get("batch_size")),
        "lr": ("--lr", saved.get("lr")),
        "weight_decay": ("weight_decay", saved.get("weight_decay")),
        "seed": ("--seed", saved.get("seed", info.get("seed"))),
        "n_speech": ("--n-speech", info.get("n_speech")),
        "fsdd_speakers": ("--fsdd-speakers", list(info.get("fsdd_train_speakers", []))),
    }
    filled = {}
    for key, (flag, was) in saved_values.items():
        given = getattr(options, key)
        if given is not None and was is not None and not _same(given, was):
            raise InputError(
                f"{flag}: the run in {out} used {_shown(was)}, this call gives {_shown(given)}; "
                "resume with the run's own settings (leave the option out), or start a new run "
                "in another --out"
            )
        filled[key] = was if was is not None else (given if given is not None else DEFAULTS[key])
    filled["modalities"] = tuple(filled["modalities"])
    filled["fsdd_speakers"] = tuple(filled["fsdd_speakers"])
    notes: list[str] = []
    overrides: list[str] = []
    step, planned = int(state["step"]), int(saved["max_steps"])
    max_steps = planned
    if options.max_steps is not None and options.max_steps != planned:
        if options.max_steps < step:
            raise InputError(
                f"--max-steps {options.max_steps}: the run in {out} is already at step {step} "
                f"(of {planned} planned)"
            )
        max_steps = options.max_steps
        overrides.append("max_steps")
        notes.append(
            f"--max-steps: the run planned {planned} steps; its schedule now ends at "
            f"{max_steps} as asked (the learning rate differs from the original plan from "
            f"step {step} on)"
        )
    saved_precision = str(saved.get("mixed_precision", "no"))
    precision = saved_precision if saved_precision in ("no", "bf16") else "no"
    if options.precision is not None:
        asked = resolve_precision(options.precision, device)
        if asked != precision:
            notes.append(
                f"--precision: the run trained in {_precision_name(precision)}; it goes on in "
                f"{_precision_name(asked)} as asked"
            )
            precision = asked
            overrides.append("mixed_precision")
    train_speakers = filled["fsdd_speakers"]
    held_out = tuple(info.get("fsdd_val_speakers", []))
    if train_speakers and not options.fsdd_folder:
        raise InputError(
            f"the run in {out} trained on FSDD speakers {list(train_speakers)}: give --fsdd "
            "FOLDER again to resume it"
        )
    if options.fsdd_folder:
        have = set(fsdd_speakers(options.fsdd_folder))
        lost = sorted((set(train_speakers) | set(held_out)) - have)
        if lost:
            raise InputError(
                f"--fsdd {options.fsdd_folder}: the run used FSDD speakers {lost}, which this "
                f"folder lacks (it has {sorted(have)})"
            )
        if not train_speakers and not held_out:  # trained without FSDD: every speaker is unseen
            held_out = tuple(sorted(have))
    note = fsdd_note(train_speakers, held_out)
    if note:
        notes.append(note)
    settled = dataclasses.replace(options, max_steps=max_steps, **filled)
    return _Run(
        config,
        settled,
        precision,
        train_speakers,
        held_out,
        trainer=dict(saved),
        step=step,
        notes=tuple(notes),
        overrides=tuple(overrides),
    )


def train_clip(options: ClipTrainOptions, resume: bool = False, world=None):
    """Train a joint embedding model on the digit world with the project's trainer.

    Returns ``(ema_model, train_result, world)``; the checkpoint is ``out_dir/checkpoint``
    (``config.json`` with ``"kind": "clip"``, loadable by
    :meth:`JointEmbeddingModel.from_pretrained`). ``resume=True`` continues the run in
    ``out_dir`` with its saved model config, data and schedule (see
    :class:`ClipTrainOptions` for options that differ). Everything the user gave (the output
    folder, the speech cache, the FSDD folder, a resumed run's files) is checked before any
    work; statements about the run (an override on resume, every FSDD speaker in training)
    are printed.
    """
    from synesthesia.data.speech import check_speech_cache
    from synesthesia.errors import check_output_dir
    from synesthesia.multimodal.evaluate import build_world_for
    from synesthesia.multimodal.model import JointEmbeddingModel
    from synesthesia.training import Trainer, TrainerConfig
    from synesthesia.training.distributed import agree
    from synesthesia.training.timing import measure_train_step, plan_steps, probe_budget_s

    out = check_output_dir(options.out_dir, "--out")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    run = _resumed_run(options, device) if resume else _new_run(options, device)
    opts, config = run.options, run.config
    if "speech" in config.modalities and world is None:
        check_speech_cache(opts.cache_dir)
    for note in run.notes:
        print(note)

    torch.manual_seed(opts.seed)
    model = JointEmbeddingModel(config)
    if world is None:
        world = build_world_for(
            model,
            opts.fsdd_folder,
            opts.n_speech,
            seed=opts.seed,
            cache_dir=opts.cache_dir,
            fsdd_val_speakers=run.fsdd_val,
            progress=opts.progress,
        )
    source = "both" if run.fsdd_train else "synthetic"
    data = ClipData.from_world(world, config.modalities, "train", speech_source=source)
    objective = ContrastiveObjective(data, config.modalities, config.anchor, config.loss)
    batch_size = min(opts.batch_size, len(data))
    minutes, max_steps = opts.minutes, opts.max_steps
    if run.trainer is None and max_steps is None:
        batch = torch.utils.data.default_collate([data[i] for i in range(batch_size)])
        timing = measure_train_step(
            model.to(device),
            objective,
            batch,
            run.precision,
            budget_s=probe_budget_s(minutes),
            pick_threads=opts.pick_threads,
        )
        plan = plan_steps(minutes, timing.seconds, None, spent_s=timing.probe_s)
        # several processes train one schedule: rank 0's plan
        max_steps, minutes = agree((max(plan.max_steps, 10), plan.max_minutes))
        if opts.progress:
            print(
                f"one step takes {timing.seconds:.2f} s at {_precision_name(run.precision)} on "
                f"{timing.threads} thread(s) (timed in {timing.probe_s:.0f} s): planning "
                f"{max_steps} steps in {minutes:.1f} min"
            )
    if run.trainer is not None:  # the saved trainer settings, but for this call's own
        free = {"out_dir", "max_minutes", "progress", "max_steps", "mixed_precision", "compile"}
        saved = {k: v for k, v in run.trainer.items() if k not in free}
        tc = TrainerConfig(
            out_dir=str(out),
            max_steps=max_steps,
            max_minutes=minutes,
            mixed_precision=run.precision,
            progress=opts.progress,
            compile=opts.compile,
            **saved,
        )
    else:
        tc = TrainerConfig(
            out_dir=str(out),
            batch_size=batch_size,
            max_steps=max_steps,
            max_minutes=minutes,
            lr=opts.lr,
            weight_decay=opts.weight_decay,
            warmup_steps=min(100, max_steps // 10),
            ema_decay=0.999,
            mixed_precision=run.precision,
            seed=opts.seed,
            log_every=max(1, min(25, max_steps // 20)),
            checkpoint_every=max(50, max_steps // 4),
            progress=opts.progress,
            grad_accumulation=opts.grad_accumulation,
            compile=opts.compile,
        )
    trainer = Trainer(model, objective, data, tc, model_config=model.config.to_dict())
    result = trainer.fit(resume=resume, allow_changes=run.overrides)
    return trainer.ema_model, result, world
