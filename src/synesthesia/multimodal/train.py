"""Contrastive training of a :class:`~synesthesia.multimodal.model.JointEmbeddingModel`.

The training set is a set of images (the anchor items), each with one or more captions, plus a
bank of spoken digits (log-mel features with labels). A dataset item is one image; the objective
(:class:`ContrastiveObjective`, the trainer's ``loss_fn``) draws, with the trainer's generator,
one caption of each image and one spoken clip of the same digit, so every epoch sees new pairs
and a resumed run draws exactly what an uninterrupted one would.

Positives. In a batch, anchor item i and item j of another modality belong together when j's
content is what i was paired with: for text, the same caption string (two images captioned "a
thick seven" both match that caption); for speech, the same digit (a spoken "seven" says nothing
about which seven was drawn). Several positives per row are handled by the loss (UniCL targets
for InfoNCE, +1 labels for SigLIP).

Augmentation (drawn with the generator): images are shifted by up to ``max_shift`` pixels
(position is not captioned; rotation and scaling are not used because they would change the
captioned slant, size and thickness); spectrograms get a random time shift and SpecAugment masks
(Park et al. 2019: ``time_masks`` masks of up to ``time_mask`` frames, ``freq_masks`` of up to
``freq_mask`` mel bands, filled with the clip's mean).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from synesthesia.multimodal.losses import contrastive_loss


@dataclass
class ClipData(torch.utils.data.Dataset):
    """Images with captions, and a bank of spoken digits; items are image indices.

    ``images``: ``N x 1 x 28 x 28`` in [-1, 1]; ``labels``: N digits; ``captions``: N lists of
    strings (one or more per image); ``speech``: ``M x n_mels x frames`` log-mel features with
    ``speech_labels`` (M digits). Every label of ``labels`` needs at least one speech clip when
    the speech modality is trained.
    """

    images: torch.Tensor
    labels: torch.Tensor
    captions: list[list[str]] | None = None
    speech: torch.Tensor | None = None
    speech_labels: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = len(self.images)
        self.labels = torch.as_tensor(self.labels, dtype=torch.long)
        if self.images.ndim != 4 or self.labels.shape != (n,):
            raise ValueError(
                f"images must be N x 1 x H x W with N labels, got {tuple(self.images.shape)} "
                f"and {tuple(self.labels.shape)}"
            )
        if self.captions is not None:
            if len(self.captions) != n or any(not c for c in self.captions):
                raise ValueError(f"captions must hold one non-empty list per image ({n})")
        if (self.speech is None) != (self.speech_labels is None):
            raise ValueError("give speech and speech_labels together")
        if self.speech is not None:
            self.speech_labels = torch.as_tensor(self.speech_labels, dtype=torch.long)
            if self.speech.ndim != 3 or self.speech_labels.shape != (len(self.speech),):
                raise ValueError(
                    f"speech must be M x n_mels x frames with M labels, got "
                    f"{tuple(self.speech.shape)} and {tuple(self.speech_labels.shape)}"
                )
            missing = sorted(set(self.labels.tolist()) - set(self.speech_labels.tolist()))
            if missing:
                raise ValueError(f"no speech clip for labels {missing}; add clips of them")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"index": torch.tensor(i), "image": self.images[i], "label": self.labels[i]}

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities this data can feed."""
        out = ["image"]
        if self.captions is not None:
            out.append("text")
        if self.speech is not None:
            out.append("speech")
        return tuple(out)


def _randint(high: torch.Tensor | int, shape: Sequence[int], generator: torch.Generator):
    """Uniform integers in [0, high) (``high`` may be a tensor of per-item bounds)."""
    u = torch.rand(shape, generator=generator, device=generator.device).cpu()
    return (u * torch.as_tensor(high, dtype=torch.float32)).long()


def shift_images(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each image translated by a random integer offset in [-max_shift, max_shift]^2 (ink-free
    border: pixels shifted in are -1)."""
    if max_shift <= 0:
        return images
    n, _, h, w = images.shape
    offsets = _randint(2 * max_shift + 1, (n, 2), generator) - max_shift
    padded = F.pad(images, [max_shift] * 4, value=-1.0)
    out = torch.empty_like(images)
    for i, (dy, dx) in enumerate(offsets.tolist()):
        y0, x0 = max_shift - dy, max_shift - dx
        out[i] = padded[i, :, y0 : y0 + h, x0 : x0 + w]
    return out


def spec_augment(
    features: torch.Tensor,
    generator: torch.Generator,
    max_shift: int = 8,
    time_masks: int = 2,
    time_mask: int = 8,
    freq_masks: int = 2,
    freq_mask: int = 5,
) -> torch.Tensor:
    """Random circular time shift, then SpecAugment time and frequency masks (Park et al. 2019),
    filled with each clip's mean."""
    x = features.clone()
    n, n_mels, frames = x.shape
    fill = x.mean(dim=(1, 2))
    shifts = _randint(2 * max_shift + 1, (n,), generator) - max_shift if max_shift > 0 else None
    for i in range(n):
        if shifts is not None and shifts[i] != 0:
            x[i] = torch.roll(x[i], int(shifts[i]), dims=-1)
        for _ in range(time_masks):
            width = int(_randint(time_mask + 1, (1,), generator))
            start = int(_randint(max(frames - width, 0) + 1, (1,), generator))
            x[i, :, start : start + width] = fill[i]
        for _ in range(freq_masks):
            width = int(_randint(freq_mask + 1, (1,), generator))
            start = int(_randint(max(n_mels - width, 0) + 1, (1,), generator))
            x[i, start : start + width, :] = fill[i]
    return x


@dataclass
class AugmentConfig:
    """Augmentation switches of :class:`ContrastiveObjective` (see the module docstring)."""

    image_shift: int = 2
    speech_shift: int = 8
    time_masks: int = 2
    time_mask: int = 8
    freq_masks: int = 2
    freq_mask: int = 5


class ContrastiveObjective:
    """The trainer's ``loss_fn(model, batch, generator)``: one contrastive loss per pair
    (anchor, other modality), summed; returns ``(loss, {"loss_<m>": ..., "scale_<m>": ...})``.
    """

    def __init__(
        self,
        data: ClipData,
        modalities: Sequence[str],
        anchor: str = "image",
        loss: str = "clip",
        augment: AugmentConfig | None = None,
    ) -> None:
        missing = [m for m in modalities if m not in data.modalities]
        if missing:
            raise ValueError(f"the training data has no {missing} (it has {data.modalities})")
        if anchor != "image":
            raise ValueError("the digit-world objective anchors on images; use anchor='image'")
        self.data = data
        self.modalities = tuple(modalities)
        self.anchor = anchor
        self.loss = loss
        self.augment = augment or AugmentConfig()
        if data.speech is not None:
            labels = data.speech_labels
            self._speech_by_label = {
                int(c): (labels == c).nonzero().flatten() for c in labels.unique()
            }

    def draw_inputs(self, batch: dict, generator: torch.Generator) -> dict:
        """The model inputs of one batch: augmented images, drawn captions and spoken clips."""
        index = batch["index"].cpu()
        labels = batch["label"].cpu()
        aug = self.augment
        inputs: dict = {"image": shift_images(batch["image"], aug.image_shift, generator)}
        if "text" in self.modalities:
            caps = [self.data.captions[int(i)] for i in index]
            pick = _randint(torch.tensor([len(c) for c in caps]), (len(caps),), generator)
            inputs["text"] = [c[int(k)] for c, k in zip(caps, pick)]
        if "speech" in self.modalities:
            pools = [self._speech_by_label[int(c)] for c in labels]
            pick = _randint(torch.tensor([len(p) for p in pools]), (len(pools),), generator)
            clips = torch.stack([p[int(k)] for p, k in zip(pools, pick)])
            feats = self.data.speech[clips]
            inputs["speech"] = spec_augment(
                feats,
                generator,
                aug.speech_shift,
                aug.time_masks,
                aug.time_mask,
                aug.freq_masks,
                aug.freq_mask,
            ).to(batch["image"].device)
        return inputs

    @staticmethod
    def positive_mask(modality: str, inputs: dict, labels: torch.Tensor) -> torch.Tensor:
        """Which (anchor i, item j) pairs belong together (see the module docstring)."""
        if modality == "text":
            texts = inputs["text"]
            ids = {t: k for k, t in enumerate(dict.fromkeys(texts))}
            key = torch.tensor([ids[t] for t in texts])
        elif modality == "speech":
            key = labels.cpu()
        else:
            key = torch.arange(len(labels))
        return key[:, None] == key[None, :]

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


@dataclass
class ClipTrainOptions:
    """What ``synesthesia train clip`` sets; see :func:`train_clip`."""

    out_dir: str = "runs/clip"
    modalities: tuple[str, ...] = ("image", "text", "speech")
    loss: str = "clip"
    minutes: float = 5.0
    max_steps: int | None = None  # None: as many as fit in ``minutes`` (timed before training)
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    seed: int = 0
    embed_dim: int = 64
    n_speech: int = 2000
    fsdd_folder: str | None = None
    fsdd_speakers: tuple[str, ...] = ()  # FSDD speakers trained on; the others are held out
    cache_dir: str | None = None
    progress: bool = True


def clip_data_from_world(world, split: str = "train", speech_source: str = "synthetic") -> ClipData:
    """:class:`ClipData` of one split of a :class:`~synesthesia.data.digit_world.DigitWorld`."""
    images = world.images[split]
    speech = speech_labels = None
    if world.speech:
        pool = world.speech_pool(speech_source, split)
        speech, speech_labels = pool.features, pool.clips.labels
    return ClipData(images.images, images.labels, world.captions[split], speech, speech_labels)


def fsdd_speakers_in(folder: str | Path) -> list[str]:
    """The speakers of an FSDD folder, read from its ``{digit}_{speaker}_{index}.wav`` names."""
    import re

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"FSDD folder {root} not found: download the Free Spoken Digit Dataset "
            "(github.com/Jakobovski/free-spoken-digit-dataset) and pass its recordings/ folder"
        )
    if not any(root.glob("*.wav")) and (root / "recordings").is_dir():
        root = root / "recordings"
    names = re.compile(r"^[0-9]_([A-Za-z0-9-]+)_[0-9]+\.wav$")
    found = {m.group(1) for p in root.glob("*.wav") if (m := names.match(p.name))}
    if not found:
        raise FileNotFoundError(f"{root}: no {{digit}}_{{speaker}}_{{index}}.wav files in it")
    return sorted(found)


def time_one_step(
    model, objective, data: ClipData, batch_size: int, max_seconds: float = 60.0
) -> tuple[float, float]:
    """``(seconds per training step, seconds spent timing)``, measured without changing the
    model (gradients are cleared afterwards).

    On CPU the first few bf16 steps of a process are many times slower than the rest (oneDNN
    builds its kernels; the first 6 steps here), so steps are repeated until the last three
    agree within 50 % (at least 9 steps, at most ``max_seconds``); the fastest of those three is
    the step time (on shared cores two-thread steps are sometimes many times slower; the
    trainer's ``max_minutes`` still bounds the run when the plan was too optimistic).
    """
    import time

    from synesthesia.training import resolve_mixed_precision

    device = next(model.parameters()).device
    precision = resolve_mixed_precision("auto", device)
    g = torch.Generator().manual_seed(12345)
    batch = torch.utils.data.default_collate([data[i] for i in range(min(batch_size, len(data)))])
    times: list[float] = []
    model.train()
    begin = time.perf_counter()
    while True:
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss, _ = objective(model, batch, g)
        loss.backward()
        times.append(time.perf_counter() - start)
        last = times[-3:]
        stable = len(times) >= 9 and max(last) <= 1.5 * min(last)
        if stable or time.perf_counter() - begin > max_seconds:
            break
    model.zero_grad(set_to_none=True)
    return float(min(last)), time.perf_counter() - begin


def train_clip(options: ClipTrainOptions, resume: bool = False, world=None):
    """Train a joint embedding model on the digit world with the project's trainer.

    Returns ``(ema_model, train_result, world)``; the checkpoint is ``out_dir/checkpoint``
    (``config.json`` with ``"kind": "clip"``, loadable by
    :meth:`JointEmbeddingModel.from_pretrained`). ``resume=True`` continues the run in
    ``out_dir`` with its saved model config and schedule.
    """
    import dataclasses
    import json

    from synesthesia.multimodal.evaluate import build_world_for
    from synesthesia.multimodal.model import JointEmbeddingConfig, JointEmbeddingModel
    from synesthesia.training import Trainer, TrainerConfig

    out = Path(options.out_dir)
    fsdd_val: tuple[str, ...] = ()
    if options.fsdd_speakers and not options.fsdd_folder:
        raise ValueError("fsdd_speakers needs fsdd_folder (the FSDD recordings folder)")
    if options.fsdd_folder:
        speakers = fsdd_speakers_in(options.fsdd_folder)
        unknown = sorted(set(options.fsdd_speakers) - set(speakers))
        if unknown:
            raise ValueError(
                f"FSDD speakers {unknown} are not in {options.fsdd_folder} ({speakers})"
            )
        fsdd_val = tuple(s for s in speakers if s not in set(options.fsdd_speakers))
        if not fsdd_val:
            raise ValueError("keep at least one FSDD speaker out of training, for evaluation")
    max_steps = options.max_steps
    if resume:
        ckpt = out / "checkpoint"
        if not (ckpt / "config.json").is_file():
            raise FileNotFoundError(f"{ckpt}: no checkpoint to resume (train without resume)")
        config = JointEmbeddingConfig.from_dict(json.loads((ckpt / "config.json").read_text()))
        state_file = ckpt / "train" / "trainer_state.json"
        saved = json.loads(state_file.read_text())["config"] if state_file.is_file() else {}
        if max_steps is None and "max_steps" in saved:
            max_steps = int(saved["max_steps"])
        # the data and optimiser settings of the run being resumed, not of the options
        info = config.training_data
        options = dataclasses.replace(
            options,
            batch_size=int(saved.get("batch_size", options.batch_size)),
            lr=float(saved.get("lr", options.lr)),
            weight_decay=float(saved.get("weight_decay", options.weight_decay)),
            n_speech=int(info.get("n_speech", options.n_speech)),
            seed=int(info.get("seed", options.seed)),
            fsdd_speakers=tuple(info.get("fsdd_train_speakers", options.fsdd_speakers)),
        )
        fsdd_val = tuple(info.get("fsdd_val_speakers", fsdd_val))
        if options.fsdd_speakers and not options.fsdd_folder:
            raise ValueError(
                f"the run in {out} trained on FSDD speakers {list(options.fsdd_speakers)}: "
                "give the FSDD folder again to resume it"
            )
    else:
        config = JointEmbeddingConfig(
            modalities=tuple(options.modalities),
            loss=options.loss,
            embed_dim=options.embed_dim,
            training_data={
                "n_speech": options.n_speech,
                "seed": options.seed,
                "fsdd_train_speakers": list(options.fsdd_speakers),
                "fsdd_val_speakers": list(fsdd_val),
            },
        )
    torch.manual_seed(options.seed)
    model = JointEmbeddingModel(config)
    if world is None:
        world = build_world_for(
            model,
            options.fsdd_folder,
            options.n_speech,
            seed=options.seed,
            cache_dir=options.cache_dir,
            fsdd_val_speakers=fsdd_val or ("nicolas",),
            progress=options.progress,
        )
    source = "both" if options.fsdd_speakers else "synthetic"
    data = clip_data_from_world(world, "train", source if "speech" in config.modalities else "")
    objective = ContrastiveObjective(data, config.modalities, config.anchor, config.loss)
    batch_size = min(options.batch_size, len(data))
    minutes = options.minutes
    if max_steps is None:
        step_s, spent = time_one_step(model, objective, data, batch_size)
        minutes = max(minutes - spent / 60.0, 0.1)  # the timing counts against the budget
        # 15% for the optimizer step, EMA and logging that the timing leaves out
        max_steps = max(10, int(minutes * 60 / (1.15 * step_s)))
        if options.progress:
            print(
                f"one step takes {step_s:.2f} s (timed in {spent:.0f} s): "
                f"planning {max_steps} steps in {minutes:.1f} min"
            )
    tc = TrainerConfig(
        out_dir=str(out),
        batch_size=batch_size,
        max_steps=max_steps,
        max_minutes=minutes,
        lr=options.lr,
        weight_decay=options.weight_decay,
        warmup_steps=min(100, max_steps // 10),
        ema_decay=0.999,
        seed=options.seed,
        log_every=max(1, min(25, max_steps // 20)),
        checkpoint_every=max(50, max_steps // 4),
        progress=options.progress,
    )
    trainer = Trainer(model, objective, data, tc, model_config=model.config.to_dict())
    result = trainer.fit(resume=resume)
    return trainer.ema_model, result, world
