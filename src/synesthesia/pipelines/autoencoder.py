"""The KL autoencoder of latent diffusion: train it, measure its scaling factor, save, load, score.

- :func:`train_autoencoder`: a time-bounded (or resumed) run through the one home of such
  runs, :func:`synesthesia.training.budget.fit_budgeted`, with :func:`autoencoder_loss_fn`
  (a reconstruction loss plus a small KL term, optionally an evaluator feature loss). After
  the fit the latent scaling factor is measured with the EMA model on the whole training set
  (:func:`measure_scaling_factor`) and written into the checkpoint's ``config.json``.
- A checkpoint folder of kind ``"autoencoder"``: ``config.json`` =
  ``{"kind": "autoencoder", "autoencoder": AutoencoderConfig, "recipe": ..., "data": ...,
  "scaling": {...}}`` + ``model.safetensors``; :func:`save_autoencoder`,
  :func:`load_autoencoder` (clear errors naming the file).
- :func:`reconstruction_scores`: PSNR, evaluator accuracy on originals and reconstructions,
  and the latent std after scaling, on held-out images.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from synesthesia.data.images import ImageSet
from synesthesia.errors import InputError
from synesthesia.nets.autoencoder import AutoencoderConfig, AutoencoderKL

if TYPE_CHECKING:
    from synesthesia.training import TrainResult

KIND = "autoencoder"  # the "kind" entry of an autoencoder checkpoint's config.json


@dataclass
class AutoencoderRecipe:
    """How the autoencoder is trained (saved in its config.json).

    The loss per batch is ``l1_weight * mean|x_hat - x| + mse_weight * mean (x_hat - x)^2
    + kl_weight * KL / P + feature_weight * mean (f(x_hat) - f(x))^2``, with KL the closed-form
    KL of an item's posterior against N(0, I) summed over its latent elements and P its pixel
    count: per pixel, as in Rombach et al. 2022's first stage, whose KL weight 1e-6 multiplies
    a KL summed per item against an L1 loss summed per item. ``f`` is the digit evaluator's
    penultimate layer (:mod:`synesthesia.metrics.evaluator`), frozen.
    """

    kl_weight: float = 1e-6
    # MSE rather than L1 (Rombach et al.'s choice, beside a perceptual loss): 28.1 vs 25.7 dB
    # PSNR after 600 steps, the same evaluator accuracy (benchmarks/RESULTS-autoencoder.md)
    l1_weight: float = 0.0
    mse_weight: float = 1.0
    feature_weight: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"AutoencoderRecipe.{f.name} must be a number >= 0, got {value!r}")
        if self.l1_weight == 0 and self.mse_weight == 0:
            raise ValueError("give a reconstruction loss: l1_weight or mse_weight > 0")

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AutoencoderRecipe:
        """The inverse of :meth:`to_dict`; unknown keys raise a clear ValueError."""
        if not isinstance(d, dict):
            raise ValueError(f"a recipe must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown AutoencoderRecipe keys {unknown}; known: {sorted(known)}")
        return cls(**d)


def _images_of(batch: Any) -> torch.Tensor:
    """The images of a batch: ``(images, labels)`` (an :class:`ImageSet`'s) or images alone."""
    return batch[0] if isinstance(batch, tuple | list) else batch


def autoencoder_loss_fn(recipe: AutoencoderRecipe, evaluator: torch.nn.Module | None = None):
    """The trainer's ``loss_fn(model, batch, generator) -> (loss, {"rec", "kl", ...})``.

    The posterior sample of every item is drawn from ``generator`` (the reparameterisation
    trick, Kingma & Welling 2014, sec. 2.4). ``"kl"`` is reported in nats per item.
    ``evaluator`` (a network with ``features(x)``) is needed when ``recipe.feature_weight``
    is above 0; it is used frozen.
    """
    if recipe.feature_weight > 0:
        if evaluator is None:
            raise ValueError("recipe.feature_weight > 0 needs the evaluator network")
        evaluator = evaluator.eval().requires_grad_(False)

    def loss_fn(model, batch, generator: torch.Generator):
        x = _images_of(batch)
        reconstruction, posterior = model(x, generator=generator)
        reconstruction = reconstruction.float()
        error = reconstruction - x.float()
        rec = torch.zeros((), device=x.device)
        if recipe.l1_weight:
            rec = rec + recipe.l1_weight * error.abs().mean()
        if recipe.mse_weight:
            rec = rec + recipe.mse_weight * error.pow(2).mean()
        kl = posterior.kl().float().mean()  # nats per item
        loss = rec + recipe.kl_weight * kl / x[0].numel()
        extras = {"rec": rec.detach(), "kl": kl.detach()}
        if recipe.feature_weight:
            target = evaluator.features(x.float()).detach()
            feat = (evaluator.features(reconstruction) - target).pow(2).mean()
            loss = loss + recipe.feature_weight * feat
            extras["feat"] = feat.detach()
        return loss, extras

    return loss_fn


def default_autoencoder_config(images: torch.Tensor, **overrides) -> AutoencoderConfig:
    """The default :class:`AutoencoderConfig` fitted to the data's channels and image size."""
    _, c, h, w = images.shape
    if h != w:
        raise InputError(f"the autoencoder needs square images, got {h} x {w}")
    return AutoencoderConfig(**{"in_channels": c, "image_size": h, **overrides})


# ---------------------------------------------------------------------- scaling factor
@torch.no_grad()
def latent_moments(
    ae: AutoencoderKL,
    images: torch.Tensor | ImageSet,
    batch_size: int = 500,
    seed: int | None = 0,
    scaled: bool = False,
) -> dict[str, float]:
    """Mean and std over every element of the latents of ``images`` (float32, no autocast).

    Posterior samples drawn from one generator seeded with ``seed``, or the posterior means
    when ``seed`` is None; unscaled unless ``scaled``. Sums are kept in float64.
    """
    x_all = images.images if isinstance(images, ImageSet) else images
    if x_all.shape[0] < 1:
        raise InputError("no images to measure the latents on")
    was_training = ae.training
    ae.eval()
    device = next(ae.parameters()).device
    gen = None if seed is None else torch.Generator(device=device).manual_seed(int(seed))
    total = total_sq = 0.0
    count = 0
    for chunk in torch.split(x_all, batch_size):
        posterior = ae.encode(chunk.to(device).float())
        z = (posterior.mode() if gen is None else posterior.sample(gen)).double()
        if scaled:
            z = z * ae.config.scaling_factor
        total += float(z.sum())
        total_sq += float(z.pow(2).sum())
        count += z.numel()
    ae.train(was_training)
    mean = total / count
    # population variance from the two sums: E[z^2] - E[z]^2
    var = max(total_sq / count - mean**2, 0.0)
    return {"mean": mean, "std": math.sqrt(var), "elements": count}


def measure_scaling_factor(
    ae: AutoencoderKL, images: torch.Tensor | ImageSet, batch_size: int = 500, seed: int = 0
) -> float:
    """The latent scaling factor: 1 / std of posterior samples over all of ``images``.

    Rombach et al. 2022, sec. 4.3 (and diffusers' ``scaling_factor``): the latents are scaled
    to unit variance before diffusion. The std is taken over every element of every latent
    (about the overall mean, as ``1 / z.flatten().std()`` in their scripts), over the whole
    set rather than a first batch. Samples, not means, because the latent diffusion model is
    trained on samples (diffusers' training scripts use ``latent_dist.sample()``); with the
    small KL weight the posterior std is tiny and the two agree closely.
    """
    std = latent_moments(ae, images, batch_size, seed=seed)["std"]
    if not (std > 0 and math.isfinite(std)):
        raise InputError(f"the latents have std {std}: cannot scale them to unit variance")
    return 1.0 / std


# ---------------------------------------------------------------------- save / load
def autoencoder_config_dict(config: AutoencoderConfig, **extra: Any) -> dict:
    """The ``config.json`` of an autoencoder folder: kind, the network's config, ``extra``."""
    return {"kind": KIND, "autoencoder": config.to_dict(), **extra}


def save_autoencoder(ae: AutoencoderKL, folder: str | Path, **extra: Any) -> Path:
    """Write ``folder`` (``config.json`` of kind "autoencoder" + ``model.safetensors``)
    atomically; other files already there are kept. ``extra`` goes into the config."""
    from synesthesia.io import save_pretrained

    state = {k: v.detach().float().contiguous() for k, v in ae.state_dict().items()}
    return save_pretrained(folder, state, autoencoder_config_dict(ae.config, **extra))


def read_autoencoder(
    folder: str | Path, device: str | torch.device = "cpu"
) -> tuple[AutoencoderKL, dict]:
    """``(autoencoder in eval mode, its config.json)`` from a folder of kind "autoencoder".

    Raises :class:`InputError` naming the file: missing or corrupt files, another kind, a
    config that does not describe an autoencoder, weights that do not fit it.
    """
    from synesthesia.io import CONFIG_NAME, WEIGHTS_NAME, load_pretrained

    folder = Path(folder)
    state, config = load_pretrained(folder, device=device)
    path = folder / CONFIG_NAME
    if config.get("kind") != KIND:
        raise InputError(f"{path}: not an autoencoder (kind={config.get('kind')!r})")
    if "autoencoder" not in config:
        raise InputError(f"{path}: incomplete autoencoder config, missing 'autoencoder'")
    try:
        ae_config = AutoencoderConfig.from_dict(config["autoencoder"])
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: bad 'autoencoder' entry ({exc})") from exc
    ae = AutoencoderKL(ae_config)
    try:
        ae.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise InputError(
            f"{folder / WEIGHTS_NAME}: the weights do not fit the autoencoder of "
            f"{CONFIG_NAME} ({first})"
        ) from exc
    return ae.to(device).eval(), config


def load_autoencoder(folder: str | Path, device: str | torch.device = "cpu") -> AutoencoderKL:
    """The autoencoder saved in ``folder`` (eval mode); see :func:`read_autoencoder`."""
    return read_autoencoder(folder, device)[0]


# ---------------------------------------------------------------------- scores
@torch.no_grad()
def reconstruct(ae: AutoencoderKL, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Deterministic reconstructions ``decode(encode(x).mean)`` (float32, no autocast), in the
    CPU's memory."""
    was_training = ae.training
    ae.eval()
    device = next(ae.parameters()).device
    out = [
        ae.decode(ae.encode(chunk.to(device).float()).mode()).float().cpu()
        for chunk in torch.split(images, batch_size)
    ]
    ae.train(was_training)
    return torch.cat(out)


def psnr_db(images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """PSNR per image (N,) in dB of images in [-1, 1], on the [0, 1] scale: 10 log10(1 / MSE).

    The images are clamped to [-1, 1] first (pixels cannot leave the range).
    """
    a = (images.float().clamp(-1, 1) + 1) / 2
    b = (reference.float().clamp(-1, 1) + 1) / 2
    mse = (a - b).pow(2).flatten(1).mean(dim=1)
    # peak signal-to-noise ratio with peak 1: 10 log10(MAX^2 / MSE)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-12))


def reconstruction_scores(
    ae: AutoencoderKL,
    val: ImageSet,
    evaluator: torch.nn.Module | None = None,
    batch_size: int = 500,
    seed: int = 0,
) -> dict[str, Any]:
    """How well ``ae`` reconstructs held-out images, and how its scaled latents are spread.

    - ``psnr_db``: the mean over images of each image's PSNR (:func:`psnr_db`);
      ``psnr_pooled_db``: the PSNR of the MSE pooled over all images (never higher);
    - ``evaluator_accuracy_original`` / ``_reconstruction``: the evaluator's accuracy on the
      images and on their reconstructions ``decode(encode(x).mean)`` (with ``evaluator``);
    - ``latent_std_scaled``: std of scaled posterior samples (seeded with ``seed``) over every
      element; ``latent_std_scaled_mean``: the same of the posterior means;
      ``latent_mean_scaled``: their mean.
    """
    start = time.perf_counter()
    rec = reconstruct(ae, val.images, batch_size)
    per_image = psnr_db(rec, val.images)
    a = (rec.clamp(-1, 1) + 1) / 2
    b = (val.images.float().clamp(-1, 1) + 1) / 2
    mse = float((a - b).pow(2).mean())
    samples = latent_moments(ae, val.images, batch_size, seed=seed, scaled=True)
    means = latent_moments(ae, val.images, batch_size, seed=None, scaled=True)
    scores: dict[str, Any] = {
        "psnr_db": float(per_image.mean()),
        "psnr_pooled_db": 10.0 * math.log10(1.0 / max(mse, 1e-12)),
        "psnr_min_db": float(per_image.min()),
        "mse_01": mse,
        "l1": float((rec - val.images).abs().mean()),
        "latent_std_scaled": samples["std"],
        "latent_std_scaled_mean": means["std"],
        "latent_mean_scaled": samples["mean"],
        "scaling_factor": ae.config.scaling_factor,
        "latent_shape": list(ae.config.latent_shape),
        "num_images": len(val),
    }
    if evaluator is not None:
        from synesthesia.metrics.evaluator import evaluator_accuracy

        original = evaluator_accuracy(evaluator, val)
        reconstructed = evaluator_accuracy(evaluator, ImageSet(rec, val.labels, val.name))
        scores.update(
            evaluator_accuracy_original=original,
            evaluator_accuracy_reconstruction=reconstructed,
            evaluator_accuracy_drop=original - reconstructed,
        )
    scores["score_s"] = time.perf_counter() - start
    return scores


def class_spread(labels: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of ``n`` items taking the classes in turn (0, 1, ..., 9, 0, 1, ...): the first
    item of each class, then the second, ... (data sorted by class would otherwise show one)."""
    labels = torch.as_tensor(labels)
    if labels.numel() == 0:
        return labels.long()
    order = torch.argsort(labels, stable=True)
    sorted_labels = labels[order]
    # rank of each item within its class, in data order
    first = torch.searchsorted(sorted_labels, sorted_labels, right=False)
    rank = torch.arange(len(labels)) - first
    key = rank * (int(labels.max()) + 1) + sorted_labels
    return order[torch.argsort(key, stable=True)][:n]


def comparison_grid(
    ae: AutoencoderKL, images: torch.Tensor, path: str | Path, nrow: int = 16, scale: int = 2
) -> Path:
    """A PNG: rows of originals, each above the row of their reconstructions."""
    from synesthesia.pipelines.image import save_image_grid

    rec = reconstruct(ae, images).clamp(-1, 1)
    nrow = max(1, min(nrow, images.shape[0]))
    rows = []
    for lo in range(0, images.shape[0], nrow):
        orig, back = images[lo : lo + nrow].float(), rec[lo : lo + nrow]
        if orig.shape[0] < nrow:  # a short last row is padded with blank (-1) tiles
            pad = torch.full((nrow - orig.shape[0], *orig.shape[1:]), -1.0)
            orig, back = torch.cat([orig, pad]), torch.cat([back, pad])
        rows += [orig, back]
    return save_image_grid(torch.cat(rows), path, nrow=nrow, scale=scale)


# ---------------------------------------------------------------------- training
@dataclass
class AutoencoderTrainOptions:
    """Options of :func:`train_autoencoder` (the trainer's knobs that matter here)."""

    out_dir: str
    minutes: float | None = 5.0  # time budget of the whole call (probe and scaling included)
    max_steps: int | None = None  # explicit schedule length; wins over the planned one
    batch_size: int = 64
    lr: float = 2e-3
    warmup_steps: int = 50
    ema_decay: float | None = 0.995
    precision: str = "auto"  # "auto" (bf16 where native and faster), "fp32", "bf16"
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 500
    progress: bool = True
    pick_threads: bool = True
    grad_accumulation: int = 1  # micro-batches per step (batch_size: the global batch)
    compile: bool = False  # torch.compile the training forward
    recipe: AutoencoderRecipe = field(default_factory=AutoencoderRecipe)
    config: dict = field(default_factory=dict)  # AutoencoderConfig overrides


#: Seconds kept out of a time budget for measuring the scaling factor and the final save.
SCALING_RESERVE_S = 10.0


def _saved_run(out_dir: str | Path) -> tuple[dict, dict]:
    """``(trainer state, model config)`` of the autoencoder run in ``out_dir``; clear errors."""
    from synesthesia.training import read_run

    return read_run(out_dir, KIND, "an autoencoder")


def resumable_settings(out_dir: str | Path) -> dict:
    """The settings of the run in ``out_dir`` that a resumption must keep: data, batch_size,
    seed."""
    from synesthesia.training import kept_settings

    return kept_settings(out_dir, KIND, "an autoencoder", data="data")


def _resumed_config(out_dir: Path, options: AutoencoderTrainOptions, data: str) -> dict:
    """The saved model config of the run in ``out_dir``, after checking ``options`` against it."""
    state, config = _saved_run(out_dir)
    saved = state["config"]
    for name, was, now in (
        ("data", config.get("data"), data),
        ("batch_size", saved.get("batch_size"), options.batch_size),
        ("seed", saved.get("seed"), options.seed),
    ):
        if was is not None and was != now:
            raise InputError(
                f"{name}: the run in {out_dir} used {was!r}, this call gives {now!r}; resume "
                "with the run's own settings, or start a new run in another --out"
            )
    for key in ("autoencoder", "recipe"):
        if not isinstance(config.get(key), dict):
            raise InputError(f"{out_dir / 'checkpoint' / 'config.json'}: no {key!r} entry")
    return config


def train_autoencoder(
    train: ImageSet,
    options: AutoencoderTrainOptions,
    resume: bool = False,
    evaluator: torch.nn.Module | None = None,
) -> tuple[AutoencoderKL, TrainResult, dict]:
    """Train a KL autoencoder on ``train`` within ``options.minutes`` (or ``max_steps``).

    Returns ``(EMA autoencoder with its measured scaling factor, result, plan)``. The run
    folder ``options.out_dir`` holds ``checkpoint/`` (a folder :func:`load_autoencoder`
    reads, which ``resume=True`` continues) and ``metrics.csv``. The scaling factor is
    measured after every fit (finished, out of time or interrupted) and written into
    ``checkpoint/config.json`` (``autoencoder.scaling_factor`` and the ``scaling`` record).
    ``evaluator`` is needed when the recipe has a feature loss.
    """
    from synesthesia.io import CONFIG_NAME, read_json, save_pretrained
    from synesthesia.training.budget import BudgetOptions, fit_budgeted
    from synesthesia.training.distributed import barrier, is_main_process

    start = time.perf_counter()
    out_dir = Path(options.out_dir)
    if resume:
        model_config = _resumed_config(out_dir, options, train.name)
        try:
            ae_config = AutoencoderConfig.from_dict(model_config["autoencoder"])
            recipe = AutoencoderRecipe.from_dict(model_config["recipe"])
        except (TypeError, ValueError) as exc:
            raise InputError(f"{out_dir / 'checkpoint' / CONFIG_NAME}: {exc}") from exc
    else:
        recipe = options.recipe
        ae_config = default_autoencoder_config(train.images, **options.config)
        model_config = autoencoder_config_dict(
            ae_config,
            recipe=recipe.to_dict(),
            data=train.name,
            scaling=None,
        )
    torch.manual_seed(options.seed)
    model = AutoencoderKL(ae_config)
    loss_fn = autoencoder_loss_fn(recipe, evaluator)
    minutes = options.minutes
    if minutes is not None and not resume and options.max_steps is None:
        minutes = max(minutes - SCALING_RESERVE_S / 60.0, minutes / 2)
    n = min(options.batch_size, len(train))
    budget = BudgetOptions.from_options(options, minutes=minutes)
    trainer, result, plan = fit_budgeted(
        model,
        loss_fn,
        train,
        budget,
        model_config,
        probe_batch=lambda: (train.images[:n], train.labels[:n]),
        resume=resume,
        started=start,
    )
    ae = trainer.ema_model.eval()
    if result.checkpoint is not None:
        measured = time.perf_counter()
        moments = latent_moments(ae, train, seed=options.seed)  # as measure_scaling_factor
        if not (moments["std"] > 0 and math.isfinite(moments["std"])):
            raise InputError(f"the latents have std {moments['std']}: cannot scale them")
        ae.config.scaling_factor = 1.0 / moments["std"]
        folder = Path(result.checkpoint)
        saved = read_json(folder / CONFIG_NAME, what="config file")  # as the trainer wrote it
        saved["autoencoder"] = ae.config.to_dict()
        saved["scaling"] = {
            "factor": ae.config.scaling_factor,
            "latent_std": moments["std"],
            "latent_mean": moments["mean"],
            "of": "posterior samples",
            "data": train.name,
            "items": len(train),
            "seed": options.seed,
            "step": result.checkpoint_step,
        }
        state = {k: v.detach().float().contiguous() for k, v in ae.state_dict().items()}
        if is_main_process():  # several processes: rank 0 writes, the others wait for it
            save_pretrained(folder, state, saved)  # atomic; carries checkpoint/train along
        barrier()
        plan["scaling"] = saved["scaling"]
        plan["scaling_s"] = time.perf_counter() - measured
    plan["total_s"] = time.perf_counter() - start
    return ae, result, plan
