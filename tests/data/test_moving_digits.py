"""Moving digits: bouncing against a hand computation, the digit always inside the canvas,
determinism per seed, captions that say what the trajectory does, the training items."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from synesthesia.data.images import ImageSet
from synesthesia.data.moving_digits import (
    VIDEO_VOCABULARY,
    MovingDigitsConfig,
    MovingDigitsDataset,
    bounce_trajectory,
    canonical_prompts,
    make_videos,
    parse_prompt,
    render,
)
from synesthesia.errors import InputError
from synesthesia.nets.tokenizer import WordTokenizer


def _digits(n: int = 40, seed: int = 0) -> ImageSet:
    """Blobs of ink in 28 x 28 boxes (touching the box's edge sometimes), labels 0..9."""
    g = torch.Generator().manual_seed(seed)
    ink = (torch.rand(n, 1, 28, 28, generator=g) > 0.7).float()
    ink[:, :, 0, 0] = 1.0  # ink in the corners: a paste outside the canvas would lose it
    ink[:, :, 27, 27] = 1.0
    return ImageSet(ink * 2 - 1, torch.arange(n) % 10, "blobs")


def test_bounce_against_a_hand_computation():
    # room 4: 0 1 2 3 4 | reflect: 3 2 1 0 | reflect: 1
    assert bounce_trajectory(0, 1, 10, 4).tolist() == [0, 1, 2, 3, 4, 3, 2, 1, 0, 1]
    # from 3 at +2: 5 reflects to 3 (v = -2), then 1, -1 reflects to 1 (v = +2), then 3, 5 -> 3
    assert bounce_trajectory(3, 2, 6, 4).tolist() == [3, 3, 1, 1, 3, 3]
    assert bounce_trajectory(2, 0, 3, 4).tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match="start"):
        bounce_trajectory(5, 1, 3, 4)


@settings(max_examples=60, deadline=None)
@given(
    room=st.integers(2, 20),
    speed=st.integers(1, 2),
    sign=st.sampled_from([-1, 1]),
    frames=st.integers(2, 30),
    data=st.data(),
)
def test_bounce_is_the_folded_free_motion(room, speed, sign, frames, data):
    """Reflection at 0 and R is free motion z = start + k v folded by the triangle wave of
    period 2R: p = R - |(z mod 2R) - R| (the closed form of specular reflection)."""
    start = data.draw(st.integers(0, room))
    p = bounce_trajectory(start, sign * speed, frames, room)
    z = start + sign * speed * np.arange(frames)
    np.testing.assert_array_equal(p, room - np.abs(np.mod(z, 2 * room) - room))
    assert p.min() >= 0 and p.max() <= room


def test_videos_keep_the_whole_digit_inside_the_canvas():
    digits = _digits()
    world = MovingDigitsConfig(canvas=34, frames=9)
    vids = make_videos(digits, 30, world, seed=3)
    assert vids.videos.shape == (30, 9, 1, 34, 34)
    ink = (vids.videos + 1) / 2
    source = (digits.images[vids.digit_index] + 1) / 2
    # every frame holds all of its digit's ink: nothing was cut at an edge
    assert torch.allclose(ink.sum(dim=(2, 3, 4)), source.sum(dim=(1, 2, 3))[:, None].expand(-1, 9))
    assert vids.positions.min() >= 0 and vids.positions.max() <= world.room
    for i in range(5):  # and it is where the trajectory says
        for k in (0, 4, 8):
            x, y = vids.positions[i, k]
            assert torch.equal(
                vids.videos[i, k, :, y : y + 28, x : x + 28], digits.images[vids.digit_index[i]]
            )


def test_the_first_step_goes_where_the_caption_says():
    vids = make_videos(_digits(), 200, MovingDigitsConfig(), seed=1)
    for pos, motion, text, label in zip(vids.positions, vids.motions, vids.captions, vids.labels):
        axis = 0 if motion.axis == "x" else 1
        step = pos[1] - pos[0]
        assert step[axis] == motion.sign * motion.speed and step[1 - axis] == 0
        asked = parse_prompt(text)
        assert asked.label == int(label) and asked.axis == motion.axis
        assert asked.sign in (0, motion.sign)  # 0: a "bouncing" caption names the axis only
        if asked.sign == 0:
            assert motion.bounces(vids.config)
        assert asked.speed in (None, motion.speed)


def test_videos_are_deterministic_per_seed_and_differ_across_seeds():
    digits = _digits()
    a, b = make_videos(digits, 8, seed=5), make_videos(digits, 8, seed=5)
    c = make_videos(digits, 8, seed=6)
    assert torch.equal(a.videos, b.videos) and a.captions == b.captions
    assert not torch.equal(a.videos, c.videos)


def test_every_caption_word_is_in_the_video_vocabulary():
    tok = WordTokenizer(VIDEO_VOCABULARY)
    vids = make_videos(_digits(), 300, seed=2, speed_drop=0.5)
    texts = vids.captions + canonical_prompts()
    assert all(not tok.unknown_words(t) for t in texts)
    assert any("bouncing" in t for t in texts) and any("fast" in t for t in texts)
    assert len(canonical_prompts()) == 10 * 4 * 2


def test_parse_prompt():
    p = parse_prompt("a seven bouncing up and down fast")
    assert (p.label, p.axis, p.sign, p.speed) == (7, "y", 0, 2)
    p = parse_prompt("the number 3 moving left")
    assert (p.label, p.axis, p.sign, p.speed) == (3, "x", -1, None)
    p = parse_prompt("an eight moving down slowly")
    assert (p.label, p.axis, p.sign, p.speed) == (8, "y", 1, 1)


def test_a_canvas_smaller_than_a_digit_is_one_clear_error():
    with pytest.raises(InputError, match="canvas 20 is not larger than a digit"):
        MovingDigitsConfig(canvas=20)
    with pytest.raises(InputError, match="speed 2 needs a canvas of at least 32"):
        MovingDigitsConfig(canvas=30)
    with pytest.raises(InputError, match="frames"):
        MovingDigitsConfig(frames=1)
    small = ImageSet(torch.zeros(4, 1, 8, 8), torch.arange(4), "digits8x8")
    with pytest.raises(InputError, match="28 x 28"):
        make_videos(small, 2)


def test_render_pastes_at_the_corner():
    digit = torch.full((1, 28, 28), -1.0)
    digit[0, 3, 5] = 1.0
    frames = render(digit, np.array([[0, 0], [2, 1]]), 30)
    assert frames.shape == (2, 1, 30, 30)
    assert frames[0, 0, 3, 5] == 1 and frames[1, 0, 4, 7] == 1
    assert (frames > -1).sum() == 2


def test_training_items_are_fixed_per_index_and_joint_items_are_independent_images():
    digits = _digits()
    tok = WordTokenizer(VIDEO_VOCABULARY)
    ds = MovingDigitsDataset(digits, tok, seed=4, captions_per_video=3, image_fraction=0.4)
    v, ids, ind = ds[7]
    v2, ids2, ind2 = ds[7]
    assert torch.equal(v, v2) and torch.equal(ids, ids2) and bool(ind) == bool(ind2)
    assert v.shape == (1, 8, 32, 32) and ids.shape == (3, tok.max_length)
    flags = np.array([bool(ds[i][2]) for i in range(200)])
    assert 0.3 < flags.mean() < 0.5
    i = int(np.flatnonzero(flags)[0])
    frames, caps, _ = ds[i]
    texts = [tok.decode(row) for row in caps.tolist()]
    assert not any("moving" in t or "bouncing" in t for t in texts)  # plain class captions
    j = int(np.flatnonzero(~flags)[0])
    texts = [tok.decode(row) for row in ds[j][1].tolist()]
    assert all("moving" in t or "bouncing" in t for t in texts)
