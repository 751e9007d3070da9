"""Scores of moving-digit videos: the digit, its identity over time, its motion, its smoothness.

Videos are (N, F, 1, H, W) in [-1, 1] (a pipeline's ``output_type="pt"``). Per frame, the
centre of ink ``c = sum(ink * position) / sum(ink)`` (ink = (pixel + 1) / 2) locates the digit.

- :func:`frame_predictions`: the digit evaluator (:func:`synesthesia.metrics.get_evaluator`)
  on the 28 x 28 crop centred on each frame's centre of ink (MNIST centres a digit's centre of
  mass in its 28 x 28 box; LeCun et al. 1998);
- ``frame_accuracy``: share of frames classified as the asked digit;
- ``identity_consistency``: share of videos whose frames are all classified as one class;
- ``motion_agreement``: share of videos whose centre of ink moves as the prompt says: along
  the named axis (its path there at least twice as long as across it), and for "moving
  DIRECTION" with a first clear step (>= 0.5 pixel) in that direction; later bounces allowed;
  "bouncing" prompts need a reversal instead;
- ``speed_agreement``: among prompts naming a speed, the median moving step (>= 0.5 pixel)
  along the axis within 0.5 pixel of it;
- ``smoothness``: mean |acceleration| (pixels / frame^2) of the centre of ink, on each axis,
  over the frames that are not a bounce (a step whose sign differs from the previous one's);
  0 for a digit moving at constant speed;
- ``frame_fd`` / ``difference_fd``: Frechet distance between Gaussians fitted to the
  evaluator's features of whole frames (resized to 28 x 28), and of the differences of
  consecutive frames' features, against real moving digits: a light stand-in for FVD
  (Unterthiner et al. 2018, which uses an I3D network pretrained on Kinetics; no such network
  is available offline), with its real-vs-real floor (:func:`frechet_floor`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from synesthesia.data.moving_digits import DIGIT_SIZE, PromptMotion
from synesthesia.errors import InputError
from synesthesia.metrics.evaluator import predict
from synesthesia.metrics.fid import feature_frechet_distance

#: A step shorter than this (pixels) counts as no motion.
STILL = 0.5


def check_videos(videos: torch.Tensor) -> torch.Tensor:
    """``videos`` as float32 CPU (N, F, 1, H, W), or one clear error."""
    if not isinstance(videos, torch.Tensor) or videos.ndim != 5 or videos.shape[2] != 1:
        shape = tuple(videos.shape) if hasattr(videos, "shape") else type(videos).__name__
        raise InputError(f"videos must be a tensor (N, F, 1, H, W) in [-1, 1], got {shape}")
    if min(videos.shape[-2:]) < DIGIT_SIZE:
        raise InputError(f"frames of {tuple(videos.shape[-2:])} are smaller than a digit (28)")
    return videos.detach().float().cpu()


def centre_of_ink(videos: torch.Tensor) -> np.ndarray:
    """(N, F, 2) centre of ink (x, y) per frame, in pixel coordinates; NaN for a blank frame."""
    v = check_videos(videos)
    ink = ((v[:, :, 0] + 1.0) / 2.0).clamp(0.0, 1.0).double().numpy()
    h, w = ink.shape[-2:]
    mass = ink.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = (ink * np.arange(w)).sum(axis=(-2, -1)) / mass
        cy = (ink * np.arange(h)[:, None]).sum(axis=(-2, -1)) / mass
    return np.stack([cx, cy], axis=-1)


def crop_digits(videos: torch.Tensor, centres: np.ndarray | None = None) -> torch.Tensor:
    """(N * F, 1, 28, 28) crops centred on each frame's centre of ink (background -1 outside)."""
    v = check_videos(videos)
    n, f, _, h, w = v.shape
    centres = centre_of_ink(v) if centres is None else centres
    flat = v.reshape(n * f, 1, h, w)
    pad = DIGIT_SIZE
    padded = F.pad(flat, (pad, pad, pad, pad), value=-1.0)
    c = np.nan_to_num(centres.reshape(n * f, 2), nan=0.0)
    corner = np.rint(np.where(np.isfinite(centres.reshape(n * f, 2)), c, [w / 2, h / 2]) - 13.5)
    corner = corner.astype(np.int64) + pad
    crops = torch.stack(
        [padded[i, :, y : y + DIGIT_SIZE, x : x + DIGIT_SIZE] for i, (x, y) in enumerate(corner)]
    )
    return crops


def frame_predictions(evaluator, videos: torch.Tensor) -> np.ndarray:
    """(N, F) evaluator classes of each frame's centred crop."""
    n, f = videos.shape[:2]
    logits, _ = predict(evaluator, crop_digits(videos))
    return logits.argmax(1).reshape(n, f).numpy()


def identity_consistency(predictions: np.ndarray) -> float:
    """Share of videos whose frames all have the same predicted class."""
    p = np.asarray(predictions)
    return float((p == p[:, :1]).all(axis=1).mean())


def _steps(centres: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.diff(centres, axis=1), nan=0.0)  # (N, F-1, 2)


def motion_agrees(centres: np.ndarray, motion: PromptMotion) -> bool:
    """Whether one video's centre-of-ink track (F, 2) moves as ``motion`` asks (module doc)."""
    if motion.axis is None:
        return False
    steps = _steps(centres[None])[0]
    a = 0 if motion.axis == "x" else 1
    along, across = steps[:, a], steps[:, 1 - a]
    if np.abs(along).sum() < 2.0 * np.abs(across).sum() or np.abs(along).max() < STILL:
        return False
    clear = along[np.abs(along) >= STILL]
    if motion.sign == 0:  # "bouncing": a reversal along the axis
        return bool((np.sign(clear) != np.sign(clear[0])).any())
    return bool(np.sign(clear[0]) == motion.sign)


def speed_agrees(centres: np.ndarray, motion: PromptMotion) -> bool | None:
    """Whether the median |step| along the axis, over the steps that move (>= 0.5 pixel), is
    within 0.5 pixel of the asked speed (None when the prompt names no speed or axis).

    Steps that do not move are left out: a fast digit reflected in mid-step at a wall
    comes back to where it was (``3 -> 5 -> 3``), a zero step that is not slowness.
    """
    if motion.speed is None or motion.axis is None:
        return None
    along = _steps(centres[None])[0][:, 0 if motion.axis == "x" else 1]
    moving = np.abs(along)[np.abs(along) >= STILL]
    return bool(moving.size and abs(np.median(moving) - motion.speed) <= 0.5)


def smoothness(centres: np.ndarray) -> float:
    """Mean |acceleration| (pixels / frame^2) outside bounces, over videos, frames and axes."""
    steps = _steps(centres)  # (N, F-1, 2)
    accel = np.abs(np.diff(steps, axis=1))  # (N, F-2, 2)
    sign = np.sign(np.where(np.abs(steps) < STILL, 0.0, steps))
    bounce = sign[:, 1:] != sign[:, :-1]
    keep = ~bounce
    return float(accel[keep].mean()) if keep.any() else float("nan")


def video_features(evaluator, videos: torch.Tensor) -> torch.Tensor:
    """(N, F, D) evaluator features of whole frames resized to 28 x 28 (position kept)."""
    v = check_videos(videos)
    n, f, c, h, w = v.shape
    frames = v.reshape(n * f, c, h, w)
    if (h, w) != (DIGIT_SIZE, DIGIT_SIZE):
        frames = F.interpolate(frames, size=(DIGIT_SIZE, DIGIT_SIZE), mode="bilinear",
                               antialias=True, align_corners=False)  # fmt: skip
    _, feats = predict(evaluator, frames)
    return feats.reshape(n, f, -1)


def frechet_scores(features: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """``frame_fd`` and ``difference_fd`` between two feature sets (N, F, D) and (M, F, D)."""
    d_feat = features[:, 1:] - features[:, :-1]
    d_ref = reference[:, 1:] - reference[:, :-1]
    return {
        "frame_fd": feature_frechet_distance(features.flatten(0, 1), reference.flatten(0, 1)),
        "difference_fd": feature_frechet_distance(d_feat.flatten(0, 1), d_ref.flatten(0, 1)),
    }


def frechet_floor(evaluator, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, float]:
    """The Frechet scores of two disjoint sets of real videos: what a perfect model scores."""
    return frechet_scores(video_features(evaluator, real_a), video_features(evaluator, real_b))


def score_videos(
    evaluator,
    videos: torch.Tensor,
    motions: Sequence[PromptMotion],
    reference: torch.Tensor | None = None,
) -> dict[str, float]:
    """Every score of the module docstring for ``videos`` asked for ``motions`` (one each:
    digit, axis, direction, speed); the Frechet scores against ``reference`` when given."""
    v = check_videos(videos)
    if len(motions) != v.shape[0]:
        raise InputError(f"{v.shape[0]} videos but {len(motions)} prompts")
    centres = centre_of_ink(v)
    preds = frame_predictions(evaluator, v)
    labels = np.array([-1 if m.label is None else m.label for m in motions])
    asked = labels >= 0
    speeds = [speed_agrees(c, m) for c, m in zip(centres, motions)]
    speeds = [s for s in speeds if s is not None]
    scores = {
        "frame_accuracy": float((preds[asked] == labels[asked, None]).mean())
        if asked.any()
        else float("nan"),
        "identity_consistency": identity_consistency(preds),
        "motion_agreement": float(np.mean([motion_agrees(c, m) for c, m in zip(centres, motions)])),
        "speed_agreement": float(np.mean(speeds)) if speeds else float("nan"),
        "smoothness": smoothness(centres),
        "num_videos": int(v.shape[0]),
    }
    if reference is not None:
        scores.update(
            frechet_scores(video_features(evaluator, v), video_features(evaluator, reference))
        )
    return scores


__all__ = [
    "STILL",
    "centre_of_ink",
    "check_videos",
    "crop_digits",
    "frame_predictions",
    "frechet_floor",
    "frechet_scores",
    "identity_consistency",
    "motion_agrees",
    "score_videos",
    "smoothness",
    "speed_agrees",
    "video_features",
]
