"""The digit evaluator: a trained hierarchical sensory net that scores generated digits.

Scores: :func:`sample_accuracy` (a sample asked for class k is classified as k),
:func:`classifier_fid` (Frechet distance in the evaluator's penultimate features against
held-out real digits) and :func:`evaluator_accuracy` (the evaluator's own accuracy on held-out
real digits; at least :data:`TRUSTED_ACCURACY` for its scores to be trusted).

The evaluator is trained once per data set with the project's one trainer and cached in
``$SYNESTHESIA_CACHE`` (default ``~/.cache/synesthesia``) under ``evaluator-<data key>/``,
as safetensors weights + JSON config, so demos, evaluations and benchmarks reuse it.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from synesthesia.data.images import ImageSet
from synesthesia.metrics.fid import feature_frechet_distance
from synesthesia.nets.classifier import ClassifierConfig, HierarchicalSensoryNet

#: The evaluator's accuracy on held-out real digits needed before its scores are trusted.
TRUSTED_ACCURACY = 0.98
EVALUATOR_KIND = "digit-evaluator"


def cache_dir() -> Path:
    """The user cache folder: ``$SYNESTHESIA_CACHE`` or ``~/.cache/synesthesia`` (checked)."""
    from synesthesia.io import user_cache_dir

    return user_cache_dir()


def data_key(train: ImageSet) -> str:
    """A short name for a training set: its name plus a hash of its pixels and labels."""
    h = hashlib.sha1()
    h.update(train.images.numpy().tobytes())
    h.update(train.labels.numpy().tobytes())
    return f"{train.name or 'data'}-{h.hexdigest()[:10]}"


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels (background -1 fills the border)."""
    b, _, h, w = x.shape
    p = max_shift
    padded = F.pad(x, (p, p, p, p), value=-1.0)
    dx = torch.randint(0, 2 * p + 1, (b,), generator=generator)
    dy = torch.randint(0, 2 * p + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None])[:, None, :, None]  # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w)[None])[:, None, None, :]  # (B, 1, 1, W)
    bidx = torch.arange(b)[:, None, None, None]
    cidx = torch.arange(x.shape[1])[None, :, None, None]
    return padded[bidx, cidx, rows, cols]


def evaluator_loss(
    model: HierarchicalSensoryNet, batch, generator: torch.Generator
) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy on randomly shifted digits (trainer ``loss_fn``)."""
    x, y = batch
    x = random_shift(x, 2, generator)
    logits = model(x)
    loss = F.cross_entropy(logits.float(), y)
    return loss, {"train_acc": (logits.argmax(1) == y).float().mean().item()}


@torch.no_grad()
def predict(
    model: HierarchicalSensoryNet, images: torch.Tensor, batch_size: int = 500
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (N, K), penultimate features (N, D)) of images (N, C, H, W) in [-1, 1]."""
    model.eval()
    logits, feats = [], []
    for chunk in torch.split(images, batch_size):
        f = model.features(chunk.float())
        feats.append(f)
        logits.append(model.decision(f))
    return torch.cat(logits), torch.cat(feats)


def evaluator_accuracy(model: HierarchicalSensoryNet, data: ImageSet) -> float:
    """Top-1 accuracy of the evaluator on real labelled images.

    Scores are computed in float32 on every machine (no autocast), so that they compare
    across CPUs; only the evaluator's training follows the resolved precision.
    """
    logits, _ = predict(model, data.images)
    return (logits.argmax(1) == data.labels).float().mean().item()


def sample_accuracy(
    model: HierarchicalSensoryNet, images: torch.Tensor, labels: torch.Tensor
) -> float:
    """Share of samples asked for class ``labels[i]`` that the evaluator classifies as such."""
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    logits, _ = predict(model, images)
    return (logits.argmax(1).cpu() == labels.cpu()).float().mean().item()


def classifier_fid(
    model: HierarchicalSensoryNet, images: torch.Tensor, reference: torch.Tensor
) -> float:
    """Frechet distance between evaluator features of ``images`` and of real ``reference``."""
    _, f = predict(model, images)
    _, r = predict(model, reference)
    return feature_frechet_distance(f, r)


def score_samples(
    model: HierarchicalSensoryNet,
    images: torch.Tensor,
    labels: torch.Tensor,
    reference: ImageSet,
) -> dict[str, float]:
    """Sample accuracy, classifier-FID (vs ``reference``) and the evaluator's own accuracy."""
    return {
        "sample_accuracy": sample_accuracy(model, images, labels),
        "classifier_fid": classifier_fid(model, images, reference.images),
        "evaluator_accuracy": evaluator_accuracy(model, reference),
        "num_samples": int(images.shape[0]),
    }


def load_evaluator(folder: str | Path) -> tuple[HierarchicalSensoryNet, dict]:
    """An evaluator saved by :func:`train_evaluator` (weights + config.json); clear errors."""
    from synesthesia.errors import InputError
    from synesthesia.io import load_pretrained

    state, config = load_pretrained(folder)
    if config.get("kind") != EVALUATOR_KIND:
        raise InputError(f"{folder}: not a digit evaluator (kind={config.get('kind')!r})")
    try:
        model = HierarchicalSensoryNet(ClassifierConfig.from_dict(config["classifier"]))
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"{folder}: a broken evaluator ({first}); delete the folder to train it again"
        ) from exc
    model.eval()
    return model, config


def fit_classifier(
    model: torch.nn.Module,
    loss_fn,
    train,
    run_dir: Path,
    model_config: dict,
    steps: int,
    batch_size: int,
    seed: int,
    progress: bool = True,
    ema_decay: float = 0.995,
    mixed_precision: str = "auto",
    what: str = "classifier",
):
    """A scoring network's fixed-step fit with the one trainer (AdamW 3e-3, weight decay
    1e-4, 5 % warm-up, EMA); returns the trainer. A fit cut short (Ctrl-C, SIGTERM) is never
    left to be cached as complete: its run folder is removed and KeyboardInterrupt raised."""
    from synesthesia.training import Trainer, TrainerConfig

    trainer = Trainer(
        model,
        loss_fn,
        train,
        TrainerConfig(
            out_dir=str(run_dir),
            batch_size=min(batch_size, len(train)),
            max_steps=steps,
            lr=3e-3,
            weight_decay=1e-4,
            warmup_steps=max(1, steps // 20),
            ema_decay=ema_decay,
            mixed_precision=mixed_precision,
            seed=seed,
            log_every=50,
            checkpoint_every=10 * steps,
            progress=progress,
        ),
        model_config=model_config,
    )
    result = trainer.fit()
    if result.stopped != "max_steps":
        shutil.rmtree(run_dir, ignore_errors=True)
        raise KeyboardInterrupt(
            f"{what} training {result.stopped} at step {result.step} of {steps}; nothing was cached"
        )
    return trainer


def train_evaluator(
    train: ImageSet,
    val: ImageSet,
    folder: str | Path,
    steps: int = 700,
    batch_size: int = 128,
    seed: int = 0,
    progress: bool = True,
) -> tuple[HierarchicalSensoryNet, dict]:
    """Train the evaluator with the project's trainer; save it to ``folder`` and return it.

    The saved config records the accuracy on ``val`` (``val_accuracy``) and whether it
    reaches :data:`TRUSTED_ACCURACY`.
    """
    from synesthesia.io import save_pretrained

    folder = Path(folder)
    _, c, h, w = train.images.shape
    if h != w:
        raise ValueError(f"the evaluator needs square images, got {h} x {w}")
    cfg = ClassifierConfig(in_channels=c, image_size=h, num_classes=int(train.labels.max()) + 1)
    model = HierarchicalSensoryNet(cfg)
    run_dir = folder.with_name(folder.name + "-run")
    model_config = {"kind": EVALUATOR_KIND, "classifier": cfg.to_dict(), "data": train.name}
    trainer = fit_classifier(
        model, evaluator_loss, train, run_dir, model_config, steps, batch_size, seed,
        progress=progress, ema_decay=0.995, what="evaluator",
    )  # fmt: skip
    model = trainer.ema_model.eval()
    acc = evaluator_accuracy(model, val)
    config = {
        **model_config,
        "val_accuracy": acc,
        "val_size": len(val),
        "trusted": acc >= TRUSTED_ACCURACY,
        "train_steps": trainer.step,
        "complete": True,  # written only after the whole schedule ran
        "seed": seed,
    }
    save_pretrained(
        folder, {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}, config
    )
    shutil.rmtree(run_dir, ignore_errors=True)
    return model, config


def get_evaluator(
    train: ImageSet, val: ImageSet, progress: bool = True, folder: str | Path | None = None
) -> tuple[HierarchicalSensoryNet, dict]:
    """The cached evaluator for this training set; trained (about a minute) when missing."""
    folder = Path(folder) if folder else cache_dir() / f"evaluator-{data_key(train)}"
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        model, config = load_evaluator(folder)
        if config.get("complete") is True:
            return model, config
        # saved by an older version, which could cache a partly trained evaluator: retrain
        if progress:
            print(f"{folder}: not marked complete; training the evaluator again")
    if progress:
        print(f"training the digit evaluator once; it is cached in {folder}")
    return train_evaluator(train, val, folder, progress=progress)


def score_class_conditional(
    generate,
    model: HierarchicalSensoryNet,
    reference: ImageSet,
    n_per_class: int = 100,
    seed: int = 0,
) -> dict[str, float]:
    """Score a class-conditional generator: ``generate(labels, generator) -> images``.

    Asks for ``n_per_class`` samples of every class in ``reference`` (labels in class order,
    one torch.Generator seeded with ``seed``) and returns :func:`score_samples`'s numbers plus
    the generation wall time.
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    num_classes = int(reference.labels.max()) + 1
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    images = generate(labels, gen)
    seconds = time.perf_counter() - start
    scores = score_samples(model, images.float().cpu(), labels, reference)
    scores["generate_s"] = seconds
    return scores
