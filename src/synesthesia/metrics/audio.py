"""The SC09 protocol for spoken digits, with the project's own classifier of real speech.

DiffWave (Kong et al. 2021, sec. 5.2) and SaShiMi (Goel et al. 2022, sec. 5.2) score
generated spoken digits with a classifier trained on real speech: the accuracy of clips asked
for digit k (here), and from its class probabilities p(y|x):

- Inception Score (Salimans et al. 2016): ``IS = exp(E_x KL(p(y|x) || p(y)))``, p(y) the
  mean of p(y|x) over the clips; 1 to 10 for ten digits (confident and balanced);
- modified Inception Score (Gurumurthy et al. 2017, eq. 3):
  ``mIS = exp(E_{x_i, x_j} KL(p(y|x_i) || p(y|x_j)))`` over pairs of different clips; it
  also rewards diversity within a class;
- AM score (Zhou et al. 2018, eq. 7): ``AM = KL(p*(y) || p(y)) + E_x H(p(y|x))``, p*(y) the
  class marginal of the classifier on its training clips; 0 is best;
- a Frechet distance (Heusel et al. 2017) in the classifier's penultimate features.

Each is reported beside the same number for real held-out clips (the ceiling); the Frechet
distances are measured against the real training clips, as SaShiMi's SC09 evaluation does.
The classifier (:class:`SpeechDigitClassifier`: the speech tower :class:`~synesthesia.nets.encoders
.AudioEncoder` of the joint model, a feature layer and a decision layer) is trained on the
FSDD training speakers and tested on the held-out speakers
(:data:`synesthesia.data.digit_world.FSDD_VAL_SPEAKERS`), with the project's one trainer,
and cached under ``$SYNESTHESIA_CACHE`` (default ``~/.cache/synesthesia``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synesthesia.data.audio import LogMelConfig, log_mel
from synesthesia.data.spoken_digits import SpokenDigits
from synesthesia.errors import InputError
from synesthesia.metrics.fid import feature_frechet_distance
from synesthesia.nets.encoders import AudioEncoder, AudioEncoderConfig

CLASSIFIER_KIND = "speech-digit-classifier"
#: Bumped whenever the classifier or its training changes, so old caches are not reused.
CLASSIFIER_VERSION = 2


def _default_mel() -> dict:
    # 25 ms Hann windows every 20 ms at 8 kHz, 40 mel bands up to 4 kHz (51 frames a second)
    return LogMelConfig(sample_rate=8_000, n_fft=256, win_length=200, hop=160, n_mels=40).to_dict()


@dataclass
class SpeechClassifierConfig:
    """Settings of :class:`SpeechDigitClassifier` (saved in its config.json)."""

    log_mel: dict = field(default_factory=_default_mel)
    channels: tuple[int, ...] = (16, 32, 64, 64)
    feature_dim: int = 128
    num_classes: int = 10
    dropout: float = 0.2

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SpeechClassifierConfig:
        return cls(**{**d, "channels": tuple(d["channels"])})


class SpeechDigitClassifier(nn.Module):
    """Clips (B, samples) at the log-mel config's rate -> digit logits (B, 10)."""

    def __init__(self, config: SpeechClassifierConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or SpeechClassifierConfig()
        self.mel = LogMelConfig.from_dict(cfg.log_mel)
        self.encoder = AudioEncoder(
            AudioEncoderConfig(n_mels=self.mel.n_mels, channels=cfg.channels)
        )
        self.feature = nn.Sequential(
            nn.Dropout(cfg.dropout), nn.Linear(self.encoder.out_dim, cfg.feature_dim)
        )
        self.decision = nn.Sequential(
            nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.feature_dim, cfg.num_classes)
        )

    def log_mels(self, clips: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """The classifier's input features of clips (B, samples) at ``sample_rate``."""
        return log_mel(clips.float(), sample_rate, self.mel)

    def features(self, mels: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, feature_dim) of log-mels (B, n_mels, frames)."""
        return self.feature(self.encoder(mels))

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        return self.decision(self.features(mels))


@torch.no_grad()
def classify(
    model: SpeechDigitClassifier,
    clips: torch.Tensor | np.ndarray,
    sample_rate: int,
    batch: int = 250,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(probabilities (N, 10), features (N, D))`` of clips (N, samples), in float32."""
    model.eval()
    x = torch.as_tensor(np.asarray(clips, dtype=np.float32))
    if x.ndim != 2:
        raise InputError(f"clips must be (N, samples), got shape {tuple(x.shape)}")
    probs, feats = [], []
    for chunk in torch.split(x, batch):
        f = model.features(model.log_mels(chunk, sample_rate))
        feats.append(f)
        probs.append(F.softmax(model.decision(f).float(), dim=1))
    return torch.cat(probs), torch.cat(feats)


# ---------------------------------------------------------------------- scores of p(y|x)
def _probs(p: torch.Tensor | np.ndarray) -> np.ndarray:
    p = np.asarray(p.detach().cpu() if isinstance(p, torch.Tensor) else p, dtype=np.float64)
    if p.ndim != 2 or len(p) < 1:
        raise ValueError(f"probabilities must be (N, classes), got shape {p.shape}")
    if np.any(p < 0) or not np.allclose(p.sum(1), 1.0, atol=1e-4):
        raise ValueError("each row of probabilities must be non-negative and sum to 1")
    return p


def _xlogy(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """p log q with 0 log 0 = 0 (scipy.special.xlogy), q floored at 1e-12."""
    from scipy.special import xlogy

    return xlogy(p, np.maximum(q, 1e-12))


def inception_score(probs: torch.Tensor | np.ndarray) -> float:
    """exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016, sec. 4)."""
    p = _probs(probs)
    marginal = p.mean(0, keepdims=True)
    kl = (_xlogy(p, p) - _xlogy(p, marginal)).sum(1)
    return float(np.exp(kl.mean()))


def modified_inception_score(probs: torch.Tensor | np.ndarray) -> float:
    """exp(E_{i != j} KL(p(y|x_i) || p(y|x_j))) over every ordered pair of different clips
    (Gurumurthy et al. 2017, eq. 3)."""
    p = _probs(probs)
    n = len(p)
    if n < 2:
        raise ValueError("the modified Inception Score needs at least 2 clips")
    neg_entropy = _xlogy(p, p).sum(1)  # sum_y p_i log p_i
    cross = p @ np.log(np.maximum(p, 1e-12)).T  # [i, j] = sum_y p_i log p_j
    kl = neg_entropy[:, None] - cross
    return float(np.exp((kl.sum() - np.trace(kl)) / (n * (n - 1))))


def am_score(
    probs: torch.Tensor | np.ndarray, reference_marginal: torch.Tensor | np.ndarray
) -> float:
    """KL(p*(y) || p(y)) + E_x H(p(y|x)) (Zhou et al. 2018, eq. 7); lower is better."""
    p = _probs(probs)
    ref = np.asarray(reference_marginal, dtype=np.float64).reshape(1, -1)
    _probs(ref)
    marginal = p.mean(0, keepdims=True)
    kl = float((_xlogy(ref, ref) - _xlogy(ref, marginal)).sum())
    entropy = float(-_xlogy(p, p).sum(1).mean())
    return kl + entropy


def score_clips(
    model: SpeechDigitClassifier,
    clips: torch.Tensor | np.ndarray,
    labels: torch.Tensor,
    sample_rate: int,
    reference: torch.Tensor,
    train_marginal: np.ndarray,
) -> dict[str, float]:
    """Accuracy (asked-for digit ``labels``), IS, mIS, AM and the Frechet distance to the
    classifier features of real ``reference`` clips."""
    probs, feats = classify(model, clips, sample_rate)
    _, ref_feats = classify(model, reference, sample_rate)
    labels = torch.as_tensor(labels).cpu()
    return {
        "accuracy": float((probs.argmax(1) == labels).float().mean()),
        "inception_score": inception_score(probs),
        "modified_inception_score": modified_inception_score(probs),
        "am_score": am_score(probs, train_marginal),
        "frechet_distance": feature_frechet_distance(feats, ref_feats),
        "num_clips": int(len(labels)),
    }


# ---------------------------------------------------------------------- the classifier
def split_reference(val: SpokenDigits) -> tuple[SpokenDigits, SpokenDigits]:
    """Two disjoint halves of the held-out real clips (alternate clips of each digit): the
    "real" side of every score, and the reference its Frechet distance is measured against."""
    a, b = [], []
    for digit in range(10):
        idx = torch.nonzero(val.labels == digit).flatten().tolist()
        a += idx[0::2]
        b += idx[1::2]
    return val.subset(sorted(a)), val.subset(sorted(b))


def _fsdd_key(folder: str | Path) -> str:
    from synesthesia.data.fsdd import fsdd_entries

    _, entries = fsdd_entries(folder)
    h = hashlib.sha1(json.dumps([CLASSIFIER_VERSION, SpeechClassifierConfig().to_dict()]).encode())
    for *_, path in sorted(entries):
        h.update(f"{path.name}:{path.stat().st_size};".encode())
    return h.hexdigest()[:12]


def augment_clips(clips: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Speed perturbation (one factor in [0.85, 1.15] per batch, which moves pitch and formants
    as another speaker would; Ko et al. 2015), re-centred to the same length, and white noise
    at a signal-to-noise ratio drawn in [10, 40] dB per clip."""
    from synesthesia.data.audio import fix_length

    factor = 0.85 + 0.3 * float(torch.rand((), generator=generator))
    y = F.interpolate(clips[:, None], scale_factor=factor, mode="linear")[:, 0]
    y = fix_length(y, clips.shape[1], pad_value=0.0, align="center")
    snr_db = 10.0 + 30.0 * torch.rand(len(y), 1, generator=generator)
    power = y.pow(2).mean(1, keepdim=True)  # SNR = 10 log10(P_signal / P_noise)
    noise = torch.randn(y.shape, generator=generator) * (power / 10 ** (snr_db / 10)).sqrt()
    return y + noise


def _loss(model: SpeechDigitClassifier, batch, generator: torch.Generator):  # noqa: ANN001
    """Cross-entropy on augmented clips (:func:`augment_clips`) whose log-mels are shifted in
    time by up to 15 frames and masked (SpecAugment, Park et al. 2019)."""
    from synesthesia.multimodal.augment import spec_augment

    clips, y = batch
    mels = model.log_mels(augment_clips(clips, generator), model.mel.sample_rate)
    mels = spec_augment(mels, generator, 15, 2, 6, 2, 5)
    logits = model(mels)
    loss = F.cross_entropy(logits.float(), y)
    return loss, {"train_acc": float((logits.argmax(1) == y).float().mean())}


def train_speech_classifier(
    train: SpokenDigits,
    test: SpokenDigits,
    folder: str | Path,
    steps: int = 500,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> tuple[SpeechDigitClassifier, dict]:
    """Train the classifier on ``train`` with the one trainer, test it on ``test`` (held-out
    speakers), save both to ``folder``; returns ``(model, config)``."""
    from synesthesia.io import save_pretrained
    from synesthesia.metrics.evaluator import fit_classifier

    folder = Path(folder)
    cfg = SpeechClassifierConfig()
    if train.sample_rate != LogMelConfig.from_dict(cfg.log_mel).sample_rate:
        raise InputError(f"the classifier takes 8 kHz clips, got {train.sample_rate} Hz")
    torch.manual_seed(seed)
    model = SpeechDigitClassifier(cfg)
    run_dir = folder.with_name(folder.name + "-run")
    model_config = {"kind": CLASSIFIER_KIND, "classifier": cfg.to_dict()}
    trainer = fit_classifier(
        model, _loss, train, run_dir, model_config, steps, batch_size, seed,
        progress=progress, ema_decay=0.99, mixed_precision="no", what="speech classifier",
    )  # fmt: skip
    model = trainer.ema_model.eval()
    probs, _ = classify(model, test.waveforms, test.sample_rate)
    train_probs, _ = classify(model, train.waveforms, train.sample_rate)
    config = {
        **model_config,
        "test_accuracy": float((probs.argmax(1) == test.labels).float().mean()),
        "test_clips": len(test),
        "test_speakers": sorted(set(test.speakers)),
        "train_speakers": sorted(set(train.speakers)),
        "train_accuracy": float((train_probs.argmax(1) == train.labels).float().mean()),
        "train_marginal": train_probs.mean(0).tolist(),
        "train_steps": trainer.step,
        "seed": seed,
        "complete": True,
    }
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    save_pretrained(folder, state, config)
    shutil.rmtree(run_dir, ignore_errors=True)
    return model, config


def load_speech_classifier(folder: str | Path) -> tuple[SpeechDigitClassifier, dict]:
    """A classifier saved by :func:`train_speech_classifier`; clear errors."""
    from synesthesia.io import load_pretrained

    state, config = load_pretrained(folder)
    if config.get("kind") != CLASSIFIER_KIND:
        raise InputError(f"{folder}: not a speech digit classifier (kind={config.get('kind')!r})")
    try:
        model = SpeechDigitClassifier(SpeechClassifierConfig.from_dict(config["classifier"]))
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"{folder}: a broken speech classifier ({first}); delete the folder"
        ) from exc
    return model.eval(), config


def get_speech_classifier(
    fsdd_folder: str | Path | None, progress: bool = True, folder: str | Path | None = None
) -> tuple[SpeechDigitClassifier, dict]:
    """The cached classifier for the FSDD recordings in ``fsdd_folder`` (trained, about a
    minute, when missing). The folder is required: a missing one raises naming it."""
    from synesthesia.data.spoken_digits import fsdd_digits
    from synesthesia.io import user_cache_dir

    if fsdd_folder is None:
        raise InputError(
            "scoring spoken digits needs the Free Spoken Digit Dataset: pass --fsdd FOLDER "
            "(its recordings/ folder; https://github.com/Jakobovski/free-spoken-digit-dataset)"
        )
    key = _fsdd_key(fsdd_folder)  # raises naming a missing or empty folder
    folder = Path(folder) if folder else user_cache_dir() / f"speech-classifier-{key}"
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        model, config = load_speech_classifier(folder)
        if config.get("complete") is True:
            return model, config
    if progress:
        print(f"training the spoken-digit classifier once; it is cached in {folder}")
    splits = fsdd_digits(fsdd_folder)
    return train_speech_classifier(splits["train"], splits["val"], folder, progress=progress)


__all__ = [
    "SpeechClassifierConfig",
    "SpeechDigitClassifier",
    "am_score",
    "classify",
    "get_speech_classifier",
    "inception_score",
    "load_speech_classifier",
    "modified_inception_score",
    "balanced_subset",
    "score_clips",
    "split_reference",
    "train_speech_classifier",
]


def balanced_subset(clips: SpokenDigits, per_digit: int) -> SpokenDigits:
    """The first ``per_digit`` clips of each digit (all of a digit's clips if it has fewer)."""
    keep: list[int] = []
    for digit in range(10):
        keep += torch.nonzero(clips.labels == digit).flatten().tolist()[:per_digit]
    return clips.subset(sorted(keep))


def score_generator(
    generate,  # noqa: ANN001 - generate(prompts: list[str], generator) -> clips (N, samples)
    model: SpeechDigitClassifier,
    classifier_config: dict,
    val: SpokenDigits,
    sample_rate: int,
    n_per_digit: int = 25,
    seed: int = 0,
    *,
    reference: SpokenDigits,
) -> dict:
    """Score a prompted generator by the SC09 protocol, beside real held-out clips.

    Asks for ``n_per_digit`` clips of each digit by its number word ("seven"), one
    ``torch.Generator`` seeded with ``seed``. As in SaShiMi's SC09 evaluation (Goel et al.
    2022; DiffWave's protocol), both Frechet distances are measured against the classifier
    features of the real *training* clips ``reference`` (the speech the classifier learnt
    from), and the ceiling ("real") is the same numbers for ``n_per_digit`` real held-out
    clips of each digit from ``val`` (SaShiMi's "Test" row: held-out speakers against the
    training speakers). ``held_out`` adds the distance of the generated clips to the other
    held-out clips and that of two disjoint halves of ``val`` (:func:`split_reference`), a
    stricter floor of the same speakers against themselves.
    """
    import time

    from synesthesia.data.captions import NUMBER_WORDS

    if n_per_digit < 1:
        raise InputError(f"n_per_digit must be >= 1, got {n_per_digit}")
    for name, clips in (("real held-out", val), ("reference", reference)):
        if sample_rate != clips.sample_rate:
            raise InputError(
                f"the generator makes {sample_rate} Hz clips, the {name} clips are "
                f"{clips.sample_rate} Hz"
            )
    real = balanced_subset(val, n_per_digit)
    marginal = np.asarray(classifier_config["train_marginal"])
    labels = torch.arange(10).repeat_interleave(n_per_digit)
    start = time.perf_counter()
    clips = generate([NUMBER_WORDS[int(d)] for d in labels], torch.Generator().manual_seed(seed))
    seconds = time.perf_counter() - start
    clips = torch.as_tensor(np.asarray(clips, dtype=np.float32))
    generated = score_clips(model, clips, labels, sample_rate, reference.waveforms, marginal)
    ceiling = score_clips(
        model, real.waveforms, real.labels, sample_rate, reference.waveforms, marginal
    )
    half_a, half_b = split_reference(val)
    _, gen_feats = classify(model, clips, sample_rate)
    _, a_feats = classify(model, half_a.waveforms, sample_rate)
    _, b_feats = classify(model, half_b.waveforms, sample_rate)
    return {
        "generated": generated,
        "real": ceiling,
        "fd_ratio": generated["frechet_distance"] / max(ceiling["frechet_distance"], 1e-12),
        "generate_s": seconds,
        "reference": "real training clips (SC09 protocol)",
        "reference_clips": len(reference),
        "held_out": {
            "generated_fd_to_half_b": feature_frechet_distance(gen_feats, b_feats),
            "half_a_fd_to_half_b": feature_frechet_distance(a_feats, b_feats),
            "half_clips": len(half_b),
        },
        "classifier": {
            k: classifier_config.get(k)
            for k in ("test_accuracy", "test_speakers", "train_speakers", "test_clips")
        },
    }
