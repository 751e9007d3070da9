"""Video scores against hand-built videos: real moving digits score perfectly, a wrong
direction, a jitter, a changing identity or shuffled frames are caught."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from synesthesia.data.images import ImageSet, load_image_splits
from synesthesia.data.moving_digits import (
    MovingDigitsConfig,
    PromptMotion,
    make_videos,
    parse_prompt,
    render,
)
from synesthesia.errors import InputError
from synesthesia.metrics.video import (
    centre_of_ink,
    crop_digits,
    frame_predictions,
    frechet_scores,
    identity_consistency,
    motion_agrees,
    score_videos,
    smoothness,
    video_features,
)


class Centroids(torch.nn.Module):
    """A stand-in evaluator: nearest class centroid of 4 x 4-pooled images (features: minus
    squared distances), tolerant of the pixel or two a centred crop may be off by."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, pool: int = 4):
        super().__init__()
        self.pool = pool
        flat = F.avg_pool2d(images, pool).flatten(1)
        self.register_buffer("c", torch.stack([flat[labels == k].mean(0) for k in range(10)]))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return -(torch.cdist(F.avg_pool2d(x, self.pool).flatten(1), self.c) ** 2)

    def decision(self, f: torch.Tensor) -> torch.Tensor:
        return f


def _digits(n: int = 50, seed: int = 0) -> ImageSet:
    """Ten distinct blob patterns (one per class) with a little noise: easy to classify."""
    g = torch.Generator().manual_seed(seed)
    protos = (torch.rand(10, 1, 20, 20, generator=g) > 0.6).float()
    labels = torch.arange(n) % 10
    ink = torch.zeros(n, 1, 28, 28)
    ink[:, :, 4:24, 4:24] = protos[labels]
    flip = torch.rand(ink.shape, generator=g) < 0.02
    ink = torch.where(flip, 1 - ink, ink)
    return ImageSet(ink * 2 - 1, labels, "blobs")


@pytest.fixture(scope="module")
def world():
    digits = _digits()
    return digits, Centroids(digits.images, digits.labels)


def test_centre_of_ink_by_hand():
    v = torch.full((1, 2, 1, 30, 30), -1.0)
    v[0, 0, 0, 4, 7] = 1.0  # one pixel at x = 7, y = 4
    v[0, 1, 0, 10, 2] = 1.0  # two pixels: x = 2 and 6 on row 10 -> centre (4, 10)
    v[0, 1, 0, 10, 6] = 1.0
    np.testing.assert_allclose(centre_of_ink(v)[0], [[7, 4], [4, 10]])


def test_crops_follow_the_digit_exactly(world):
    digits, _ = world
    positions = np.array([[0, 0], [2, 1], [4, 4]])
    video = render(digits.images[3], positions, 32)[None]
    crops = crop_digits(video)
    assert torch.equal(crops[0], crops[1]) and torch.equal(crops[1], crops[2])
    still = crop_digits(digits.images[3][None, None])  # the digit alone, a 28 x 28 "video"
    assert torch.equal(crops[0], still[0])


def test_real_moving_digits_score_perfectly(world):
    digits, evaluator = world
    vids = make_videos(digits, 60, MovingDigitsConfig(), seed=0)
    motions = [parse_prompt(t) for t in vids.captions]
    # each frame's crop is the crop of its digit alone (test above), classified directly
    alone = crop_digits(digits.images[vids.digit_index][:, None])
    direct = evaluator.decision(evaluator.features(alone)).argmax(1)
    s = score_videos(evaluator, vids.videos, motions, reference=vids.videos)
    assert s["frame_accuracy"] == pytest.approx((direct == vids.labels).float().mean().item())
    assert s["frame_accuracy"] > 0.95  # the blobs are easy for the centroid classifier
    assert s["identity_consistency"] == 1.0
    assert s["motion_agreement"] == 1.0
    assert s["speed_agreement"] == 1.0
    assert s["smoothness"] == pytest.approx(0.0, abs=1e-9)  # centres: sums of floats
    assert s["frame_fd"] == pytest.approx(0.0, abs=1e-6)  # against itself
    assert s["difference_fd"] == pytest.approx(0.0, abs=1e-6)


def test_the_wrong_direction_or_no_motion_disagrees(world):
    digits, _ = world
    right = np.array([[k, 2] for k in range(5)])
    video = render(digits.images[0], right, 32)[None]
    track = centre_of_ink(video)[0]
    assert motion_agrees(track, PromptMotion(0, "x", 1, 1))
    assert not motion_agrees(track, PromptMotion(0, "x", -1, 1))  # asked left
    assert not motion_agrees(track, PromptMotion(0, "y", 1, 1))  # asked down
    assert not motion_agrees(track, PromptMotion(0, "x", 0, 1))  # asked to bounce: no reversal
    still = centre_of_ink(render(digits.images[0], np.array([[2, 2]] * 5), 32)[None])[0]
    assert not motion_agrees(still, PromptMotion(0, "x", 1, 1))
    bounce = np.array([[k, 0] for k in (2, 3, 4, 3, 2)])
    track = centre_of_ink(render(digits.images[0], bounce, 32)[None])[0]
    assert motion_agrees(track, PromptMotion(0, "x", 1, 1))  # right, then a bounce
    assert motion_agrees(track, PromptMotion(0, "x", 0, None))  # "bouncing left and right"


def test_smoothness_by_hand():
    # x steps 1, 2, 1 (no bounce): |accelerations| 1, 1; y still: 0, 0 -> mean 0.5
    centres = np.array([[[0, 5], [1, 5], [3, 5], [4, 5]]], dtype=float)
    assert smoothness(centres) == pytest.approx(0.5)
    # a reversal is a bounce, not an acceleration: steps 2, -2 -> nothing counted on x
    centres = np.array([[[0, 5], [2, 5], [0, 5]]], dtype=float)
    assert smoothness(centres) == pytest.approx(0.0)


def test_identity_consistency_by_hand():
    assert identity_consistency(np.array([[1, 1, 1], [1, 2, 1], [4, 4, 4], [0, 0, 9]])) == 0.5


def test_a_changing_digit_loses_identity(world):
    digits, evaluator = world
    pos = np.array([[k, 0] for k in range(4)])
    shown = (0, 0, 1, 1)  # digit 0 (class 0) in frames 0-1, digit 1 (class 1) in frames 2-3
    frames = torch.cat([render(digits.images[d], pos[k : k + 1], 32) for k, d in enumerate(shown)])
    preds = frame_predictions(evaluator, frames[None])
    assert preds.tolist() == [[0, 0, 1, 1]]
    assert identity_consistency(preds) == 0.0


def test_shuffled_frames_keep_the_frame_fd_and_raise_the_difference_fd(world):
    digits, evaluator = world
    evaluator = Centroids(digits.images, digits.labels, pool=1)  # features that see position
    vids = make_videos(digits, 80, MovingDigitsConfig(), seed=2).videos
    g = torch.Generator().manual_seed(0)
    shuffled = torch.stack([v[torch.randperm(v.shape[0], generator=g)] for v in vids])
    s = frechet_scores(video_features(evaluator, shuffled), video_features(evaluator, vids))
    assert s["frame_fd"] == pytest.approx(0.0, abs=1e-6)  # the same frames, in another order
    assert s["difference_fd"] > 1.0  # the order of the frames is what it sees


def test_bad_videos_are_one_clear_error(world):
    _, evaluator = world
    with pytest.raises(InputError, match=r"\(N, F, 1, H, W\)"):
        score_videos(evaluator, torch.zeros(2, 1, 32, 32), [])
    with pytest.raises(InputError, match="smaller than a digit"):
        score_videos(evaluator, torch.zeros(1, 2, 1, 20, 20), [PromptMotion(1, "x", 1, 1)])
    with pytest.raises(InputError, match="2 videos but 1 prompts"):
        score_videos(evaluator, torch.zeros(2, 2, 1, 32, 32), [PromptMotion(1, "x", 1, 1)])


@pytest.mark.slow
def test_real_mnist_moving_digits_score_near_100_percent_under_the_real_evaluator():
    from synesthesia.metrics.evaluator import get_evaluator

    train, val = load_image_splits("mnist5k")
    evaluator, config = get_evaluator(train, val, progress=False)
    vids = make_videos(val, 200, MovingDigitsConfig(), seed=0)
    motions = [parse_prompt(t) for t in vids.captions]
    s = score_videos(evaluator, vids.videos, motions)
    assert s["frame_accuracy"] >= config["val_accuracy"] - 0.02
    assert s["identity_consistency"] >= 0.97
    assert s["motion_agreement"] == 1.0 and s["smoothness"] == 0.0
