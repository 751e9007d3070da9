"""Multisensory enhancement and inverse effectiveness on a trained joint embedding.

A contrastive model of ``synesthesia train clip`` (image, text and speech towers in one
space) names digits zero-shot from text prompts. Here it sees the validation digits as noisy
images (Gaussian pixel noise of sd ``image_noise``, clipped to [-1, 1]), as noisy speech (white
noise at ``snr_db`` on the held-out voices' waveforms), and both: the unit image and speech
embeddings of one digit summed and re-normalised, the integration the joint space itself
offers. Every (image noise, speech SNR) pair is a condition.

Enhancement (Stein & Meredith 1993): combined accuracy minus the better single modality's; as
an index, that difference over the better single accuracy. Inverse effectiveness: the
enhancement grows as the single modalities become less effective. The maximum-likelihood
prediction from single-modality performance alone: each accuracy is turned into a sensitivity
d' of the m-alternative model (Green & Swets 1966: p_correct = integral phi(x - d') Phi(x)^(m -
1) dx), independent Gaussian evidence adds in quadrature (d'_AV^2 = d'_A^2 + d'_V^2, the
d' form of Ernst & Banks 2002), and d'_AV goes back to an accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import optimize
from scipy.stats import norm

from synesthesia.errors import InputError

IMAGE_NOISE = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)
SNR_DB = (20.0, 5.0, 0.0, -5.0, -10.0, -15.0)
_GH_T, _GH_W = np.polynomial.hermite_e.hermegauss(96)  # nodes / weights for E over N(0, 1)
_GH_W = _GH_W / _GH_W.sum()


def mafc_accuracy(d_prime: float, m: int) -> float:
    """p(correct) of the m-alternative forced choice with sensitivity d' (Green & Swets 1966):
    the target's evidence N(d', 1) beats m - 1 distractors' N(0, 1)."""
    if m < 2:
        raise InputError(f"m: need at least 2 alternatives, got {m}")
    # E over z ~ N(0, 1) of Phi(z + d')^(m - 1), by Gauss-Hermite quadrature (smooth integrand)
    return float(_GH_W @ norm.cdf(_GH_T + d_prime) ** (m - 1))


def mafc_d_prime(accuracy: float, m: int, cap: float = 8.0) -> float:
    """The d' whose m-alternative accuracy is ``accuracy`` (0 at or below chance, ``cap`` at 1)."""
    if not 0.0 <= accuracy <= 1.0:
        raise InputError(f"accuracy: must be in [0, 1], got {accuracy!r}")
    if accuracy <= 1.0 / m:
        return 0.0
    if accuracy >= mafc_accuracy(cap, m):
        return cap
    return float(optimize.brentq(lambda d: mafc_accuracy(d, m) - accuracy, 0.0, cap, xtol=1e-9))


def ml_prediction(acc_a: float, acc_b: float, m: int) -> float:
    """Combined accuracy predicted by optimal integration of independent evidence:
    d'_AB = sqrt(d'_A^2 + d'_B^2) in the m-alternative model."""
    d = math.hypot(mafc_d_prime(acc_a, m), mafc_d_prime(acc_b, m))
    return mafc_accuracy(d, m)


@dataclass
class EnhancementResult:
    """Accuracies per condition: ``image`` (I,), ``speech`` (S,), ``combined`` (I, S), the ML
    prediction (I, S); the noise levels; the number of trials per condition."""

    image_noise: tuple[float, ...]
    snr_db: tuple[float, ...]
    image: np.ndarray
    speech: np.ndarray
    combined: np.ndarray
    predicted: np.ndarray
    n_trials: int
    classes: int = 10

    def best_single(self) -> np.ndarray:
        """The better single-modality accuracy per condition (I, S)."""
        return np.maximum(self.image[:, None], self.speech[None, :])

    def enhancement(self) -> np.ndarray:
        """Combined minus the better single accuracy (I, S)."""
        return self.combined - self.best_single()

    def enhancement_index(self) -> np.ndarray:
        """Enhancement as a percentage of the better single accuracy (Stein & Meredith 1993)."""
        return 100.0 * self.enhancement() / self.best_single()

    def inverse_effectiveness(self) -> dict[str, float]:
        """Spearman rank correlation of the enhancement with the better single accuracy over all
        conditions (negative: the gain grows as the single modalities weaken), and the same for
        the ML prediction's gain."""
        from scipy.stats import spearmanr

        best = self.best_single().ravel()
        gain = self.enhancement().ravel()
        gain_ml = (self.predicted - self.best_single()).ravel()

        def rho(x: np.ndarray, y: np.ndarray) -> float:
            if np.ptp(x) == 0 or np.ptp(y) == 0:  # undefined for a constant input
                return float("nan")
            return float(spearmanr(x, y).statistic)

        return {"spearman_network": rho(best, gain), "spearman_ml": rho(best, gain_ml)}

    def to_dict(self) -> dict:
        """JSON-able."""
        return {
            "image_noise": list(self.image_noise),
            "snr_db": list(self.snr_db),
            "image_accuracy": self.image.tolist(),
            "speech_accuracy": self.speech.tolist(),
            "combined_accuracy": self.combined.tolist(),
            "ml_predicted_accuracy": self.predicted.tolist(),
            "enhancement": self.enhancement().tolist(),
            "enhancement_index_percent": self.enhancement_index().tolist(),
            "inverse_effectiveness": self.inverse_effectiveness(),
            "n_trials_per_condition": self.n_trials,
        }


def noisy_waveforms(
    waves: Sequence[torch.Tensor], snr_db: float, generator: torch.Generator
) -> list[torch.Tensor]:
    """Each waveform plus white Gaussian noise at ``snr_db`` (signal power over noise power)."""
    out = []
    for w in waves:
        w = torch.as_tensor(w, dtype=torch.float32)
        power = float(w.pow(2).mean()) or 1e-12
        sd = math.sqrt(power / 10.0 ** (snr_db / 10.0))
        out.append(w + sd * torch.randn(w.shape, generator=generator))
    return out


def enhancement_probe(
    model,
    images: torch.Tensor,
    image_labels: torch.Tensor,
    waveforms: Sequence[torch.Tensor],
    speech_labels: torch.Tensor,
    sample_rate: int,
    image_noise: Sequence[float] = IMAGE_NOISE,
    snr_db: Sequence[float] = SNR_DB,
    seed: int = 0,
) -> EnhancementResult:
    """Zero-shot digit naming from noisy images, noisy speech and both, per condition.

    ``model``: a JointEmbeddingModel with image, speech and text towers; each image is paired
    with a random clip of the same digit (drawn with ``seed``); fresh noise per condition.
    """
    from synesthesia.multimodal.zeroshot import ZeroShotClassifier

    for m in ("image", "speech", "text"):
        if m not in model.config.modalities:
            raise InputError(
                f"the checkpoint has no {m} tower (it has {', '.join(model.config.modalities)}); "
                "train one with image, text and speech: synesthesia train clip"
            )
    g = torch.Generator().manual_seed(int(seed))
    labels = torch.as_tensor(image_labels)
    sl = torch.as_tensor(speech_labels)
    pick = torch.empty(len(labels), dtype=torch.long)
    for k in torch.unique(labels).tolist():
        rows = torch.nonzero(labels == k).reshape(-1)
        pool = torch.nonzero(sl == k).reshape(-1)
        if pool.numel() == 0:
            raise InputError(f"speech: no clip of digit {k}; the speech set must cover every digit")
        pick[rows] = pool[torch.randint(0, pool.numel(), (rows.numel(),), generator=g)]
    waves = [waveforms[int(i)] for i in pick]
    clf = ZeroShotClassifier.from_prompts(model)
    emb_i, acc_i = [], []
    for s in image_noise:
        x = (images + float(s) * torch.randn(images.shape, generator=g)).clamp(-1.0, 1.0)
        e = model.embed_images(x)
        emb_i.append(e)
        acc_i.append(clf.accuracy(e, labels))
    emb_s, acc_s = [], []
    for snr in snr_db:
        e = model.embed_audio(noisy_waveforms(waves, float(snr), g), sample_rate)
        emb_s.append(e)
        acc_s.append(clf.accuracy(e, labels))
    n_classes = len(clf.class_names)
    combined = np.zeros((len(image_noise), len(snr_db)))
    predicted = np.zeros_like(combined)
    for i, ei in enumerate(emb_i):
        for j, es in enumerate(emb_s):
            combined[i, j] = clf.accuracy(ei + es, labels)  # logits re-normalise the sum
            predicted[i, j] = ml_prediction(acc_i[i], acc_s[j], n_classes)
    return EnhancementResult(
        tuple(float(v) for v in image_noise),
        tuple(float(v) for v in snr_db),
        np.array(acc_i),
        np.array(acc_s),
        combined,
        predicted,
        len(labels),
        n_classes,
    )


def checkpoint_model(path):
    """The joint embedding model of a ``synesthesia train clip`` checkpoint folder (a run folder
    or its ``checkpoint`` sub-folder); a folder of another kind is one clear error."""
    from pathlib import Path

    from synesthesia.io import read_json
    from synesthesia.multimodal.model import JointEmbeddingModel

    p = Path(path)
    if (p / "checkpoint" / "config.json").is_file() and not (p / "config.json").is_file():
        p = p / "checkpoint"
    if not p.exists():
        raise InputError(f"--checkpoint {path}: no such folder")
    if not (p / "config.json").is_file():
        raise InputError(f"--checkpoint {path}: not a checkpoint folder (no config.json in it)")
    kind = read_json(p / "config.json", what="config file")
    kind = kind.get("kind") if isinstance(kind, dict) else None
    if kind != "clip":
        raise InputError(
            f"--checkpoint {path}: a {kind!r} checkpoint; the enhancement probe needs a 'clip' "
            "checkpoint (synesthesia train clip)"
        )
    return JointEmbeddingModel.from_pretrained(p)


def probe_digit_world(
    model,
    n_speech: int = 2000,
    cache_dir=None,
    seed: int = 0,
    progress: bool = False,
) -> EnhancementResult:
    """:func:`enhancement_probe` on the digit world's validation images and held-out voices,
    built as ``model``'s towers expect them (``n_speech`` synthesised clips, cached)."""
    from synesthesia.multimodal.evaluate import build_world_for

    world = build_world_for(model, n_speech=n_speech, cache_dir=cache_dir, progress=progress)
    val, pool = world.images["val"], world.speech_pool("synthetic", "val")
    return enhancement_probe(
        model,
        val.images,
        val.labels,
        pool.clips.waveforms,
        pool.clips.labels,
        pool.clips.sample_rate,
        seed=seed,
    )
