"""Moving digits: the Moving-MNIST recipe (Srivastava et al. 2015) over the built-in digits.

A 28 x 28 digit moves at a constant integer velocity on a square canvas (default 32 x 32,
8 frames), along one axis, and bounces off the walls: the digit's 28 x 28 box always stays
inside the canvas. With ``R = canvas - 28`` the top-left corner ``p`` of the box lies in
``[0, R]``; one frame later it is ``p + v``, reflected at the walls (Srivastava et al. 2015,
sec. 3: "bounce off the edges"):

    p' = p + v;  if p' > R: p' = 2R - p', v = -v;  if p' < 0: p' = -p', v = -v.

The first step never touches a wall (the starting direction is turned away from a wall it
would hit), so the caption's direction is the direction of the first displacement. The true
trajectory (corner positions per frame), the velocity and the digit's class are kept.

Captions come from the trajectory and reuse the digit captions of
:mod:`synesthesia.data.captions` for the noun phrase: "a 3 moving left", "the digit seven
moving up fast", "a handwritten two bouncing left and right slowly". The speed word ("slowly"
for 1 pixel a frame, "fast" for 2) may be left out; "bouncing ..." names the axis only and is
used only when the digit does bounce. :data:`VIDEO_VOCABULARY` holds every word they can contain.

Videos are float32 ``(N, F, 1, S, S)`` in [-1, 1] (frames first, as a pipeline returns them);
the network's layout ``(B, C, F, H, W)`` is ``videos.transpose(1, 2)``. Everything is drawn
from a seed: the same seed gives the same videos. Validation videos are made from validation
digits (:func:`synesthesia.data.images.load_image_splits`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from synesthesia.data.captions import CAPTION_TEMPLATES, NUMBER_WORDS, VOCABULARY, caption
from synesthesia.data.images import ImageSet
from synesthesia.errors import InputError

#: The side of a digit's box (MNIST digits are 28 x 28).
DIGIT_SIZE = 28
#: Direction words per axis: index 0 is the negative direction (left, up; y points down).
DIRECTIONS: dict[str, tuple[str, str]] = {"x": ("left", "right"), "y": ("up", "down")}
#: The axis words of a bouncing caption.
BOUNCE_WORDS: dict[str, str] = {"x": "left and right", "y": "up and down"}
#: Speed words by pixels per frame.
SPEED_WORDS: dict[int, str] = {1: "slowly", 2: "fast"}


@dataclass(frozen=True)
class MovingDigitsConfig:
    """The size of the moving-digit world: canvas side, frames, speeds (pixels per frame)."""

    canvas: int = 32
    frames: int = 8
    speeds: tuple[int, ...] = (1, 2)

    def __post_init__(self) -> None:
        object.__setattr__(self, "speeds", tuple(int(s) for s in self.speeds))
        if self.canvas <= DIGIT_SIZE:
            raise InputError(
                f"canvas {self.canvas} is not larger than a digit ({DIGIT_SIZE} x {DIGIT_SIZE}): "
                f"give a canvas of at least {DIGIT_SIZE + 2}"
            )
        if self.frames < 2:
            raise InputError(f"frames must be at least 2 to show motion, got {self.frames}")
        if not self.speeds or any(s not in SPEED_WORDS for s in self.speeds):
            raise InputError(f"speeds must be among {sorted(SPEED_WORDS)}, got {self.speeds}")
        if 2 * max(self.speeds) > self.room:
            raise InputError(
                f"speed {max(self.speeds)} needs a canvas of at least "
                f"{DIGIT_SIZE + 2 * max(self.speeds)} (the first step must fit), got {self.canvas}"
            )

    @property
    def room(self) -> int:
        """``R``: the largest corner coordinate (the digit's box spans ``[p, p + 27]``)."""
        return self.canvas - DIGIT_SIZE

    def to_dict(self) -> dict:
        return {"canvas": self.canvas, "frames": self.frames, "speeds": list(self.speeds)}


def bounce_trajectory(start: int, velocity: int, frames: int, room: int) -> np.ndarray:
    """Corner coordinates (frames,) on one axis from ``start`` at ``velocity``, reflected at
    0 and ``room`` (the rule in the module docstring)."""
    if not 0 <= start <= room or abs(velocity) > room:
        raise ValueError(f"start {start} must lie in [0, {room}] and |velocity| <= {room}")
    out = np.empty(frames, dtype=np.int64)
    p, v = int(start), int(velocity)
    for k in range(frames):
        out[k] = p
        p += v
        if p > room:  # reflection at the far wall (Srivastava et al. 2015, sec. 3)
            p, v = 2 * room - p, -v
        elif p < 0:
            p, v = -p, -v
    return out


def render(digit: torch.Tensor, positions: np.ndarray, canvas: int) -> torch.Tensor:
    """Frames (F, 1, canvas, canvas) in [-1, 1]: ``digit`` (1, 28, 28) pasted with its
    top-left corner at ``positions[k] = (x, y)`` on a background of -1."""
    frames = torch.full((len(positions), 1, canvas, canvas), -1.0)
    for k, (x, y) in enumerate(np.asarray(positions, dtype=np.int64)):
        frames[k, :, y : y + DIGIT_SIZE, x : x + DIGIT_SIZE] = digit
    return frames


@dataclass
class Motion:
    """One digit's motion: axis ("x" or "y"), sign (-1 left/up, +1 right/down), speed."""

    axis: str
    sign: int
    speed: int
    start: tuple[int, int]  # (x, y) of the top-left corner in frame 0

    @property
    def velocity(self) -> tuple[int, int]:
        v = self.sign * self.speed
        return (v, 0) if self.axis == "x" else (0, v)

    @property
    def direction(self) -> str:
        return DIRECTIONS[self.axis][(self.sign + 1) // 2]

    def positions(self, config: MovingDigitsConfig) -> np.ndarray:
        """(F, 2) corner positions (x, y) per frame."""
        vx, vy = self.velocity
        xs = bounce_trajectory(self.start[0], vx, config.frames, config.room)
        ys = bounce_trajectory(self.start[1], vy, config.frames, config.room)
        return np.stack([xs, ys], axis=1)

    def bounces(self, config: MovingDigitsConfig) -> bool:
        """Whether the digit hits a wall within the clip."""
        steps = np.diff(self.positions(config), axis=0)
        along = steps[:, 0 if self.axis == "x" else 1]
        return bool((np.sign(along) != self.sign).any())


def draw_motion(rng: np.random.Generator, config: MovingDigitsConfig) -> Motion:
    """A random motion: axis, direction and speed uniform, start uniform in ``[0, R]^2``; a
    first step that would hit a wall is turned around (so the caption names it)."""
    axis = "xy"[int(rng.integers(2))]
    sign = int(rng.choice((-1, 1)))
    speed = int(config.speeds[int(rng.integers(len(config.speeds)))])
    start = (int(rng.integers(config.room + 1)), int(rng.integers(config.room + 1)))
    along = start[0] if axis == "x" else start[1]
    if not 0 <= along + sign * speed <= config.room:
        sign = -sign
    return Motion(axis, sign, speed, start)


def motion_caption(
    label: int,
    motion: Motion,
    config: MovingDigitsConfig,
    rng: np.random.Generator,
    speed_drop: float = 0.3,
) -> str:
    """A caption of a moving digit: a digit noun phrase of :mod:`~synesthesia.data.captions`,
    then "moving DIRECTION" (or "bouncing AXIS" when it bounces, half the time), then the
    speed word unless dropped with probability ``speed_drop``."""
    noun = caption(int(label), None, int(rng.integers(len(CAPTION_TEMPLATES))))
    if motion.bounces(config) and rng.random() < 0.5:
        verb = f"bouncing {BOUNCE_WORDS[motion.axis]}"
    else:
        verb = f"moving {motion.direction}"
    speed = "" if rng.random() < speed_drop else f" {SPEED_WORDS[motion.speed]}"
    return f"{noun} {verb}{speed}"


def canonical_prompts(config: MovingDigitsConfig | None = None) -> list[str]:
    """One prompt per digit, direction and speed of ``config`` ("a seven moving left fast"):
    10 x 4 x len(speeds) prompts, the evaluation set of a video model."""
    config = config or MovingDigitsConfig()
    return [
        f"{caption(d, None, 0)} moving {direction} {SPEED_WORDS[s]}"
        for d in range(len(NUMBER_WORDS))
        for pair in DIRECTIONS.values()
        for direction in pair
        for s in config.speeds
    ]


def _video_vocabulary() -> tuple[str, ...]:
    from synesthesia.nets.tokenizer import split_words

    words = set(VOCABULARY)
    phrases = [f"moving {d}" for pair in DIRECTIONS.values() for d in pair]
    phrases += [f"bouncing {b}" for b in BOUNCE_WORDS.values()]
    for phrase, speed in itertools.product(phrases, [*SPEED_WORDS.values(), ""]):
        words.update(split_words(f"{phrase} {speed}"))
    return tuple(sorted(words))


#: Every word a moving-digit caption can contain (digit captions' words plus the motion words).
VIDEO_VOCABULARY: tuple[str, ...] = _video_vocabulary()


@dataclass
class MovingDigits:
    """A set of moving-digit videos with their ground truth.

    ``videos`` (N, F, 1, S, S) in [-1, 1]; ``labels`` (N,); ``positions`` (N, F, 2) corner
    (x, y) per frame; ``motions`` one :class:`Motion` each; ``captions`` one caption each;
    ``digit_index`` the row of the source image set each video shows.
    """

    videos: torch.Tensor
    labels: torch.Tensor
    positions: np.ndarray
    motions: list[Motion]
    captions: list[str]
    digit_index: np.ndarray
    config: MovingDigitsConfig

    def __len__(self) -> int:
        return len(self.labels)


def _check_source(images: ImageSet) -> None:
    if tuple(images.images.shape[1:]) != (1, DIGIT_SIZE, DIGIT_SIZE):
        raise InputError(
            f"moving digits need 28 x 28 single-channel digits (mnist5k or an MNIST folder), "
            f"got images of shape {tuple(images.images.shape[1:])} from {images.name or 'data'}"
        )
    if len(images) == 0:
        raise InputError("moving digits need at least one digit; the image set is empty")


def draw_video(
    images: ImageSet,
    config: MovingDigitsConfig,
    rng: np.random.Generator,
    speed_drop: float = 0.3,
) -> tuple[torch.Tensor, int, np.ndarray, Motion, str, int]:
    """One video from ``rng``: (frames (F, 1, S, S), label, positions, motion, caption, index)."""
    index = int(rng.integers(len(images)))
    label = int(images.labels[index])
    motion = draw_motion(rng, config)
    positions = motion.positions(config)
    frames = render(images.images[index], positions, config.canvas)
    text = motion_caption(label, motion, config, rng, speed_drop)
    return frames, label, positions, motion, text, index


def make_videos(
    images: ImageSet,
    n: int,
    config: MovingDigitsConfig | None = None,
    seed: int = 0,
    speed_drop: float = 0.3,
) -> MovingDigits:
    """``n`` moving-digit videos of the digits in ``images``, drawn with ``seed``."""
    config = config or MovingDigitsConfig()
    _check_source(images)
    if n < 1:
        raise InputError(f"the number of videos must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    rows = [draw_video(images, config, rng, speed_drop) for _ in range(n)]
    return MovingDigits(
        videos=torch.stack([r[0] for r in rows]),
        labels=torch.tensor([r[1] for r in rows], dtype=torch.long),
        positions=np.stack([r[2] for r in rows]),
        motions=[r[3] for r in rows],
        captions=[r[4] for r in rows],
        digit_index=np.array([r[5] for r in rows], dtype=np.int64),
        config=config,
    )


class MovingDigitsDataset(torch.utils.data.Dataset):
    """Training items ``(video (1, F, S, S), caption ids (K, L), independent)``, item ``i``
    drawn from ``(seed, i)``: a virtual set of ``length`` videos, the same on every call.

    With probability ``image_fraction`` an item is a stack of F independent images instead
    (F different digits of one class, each at its own still position, with plain class
    captions), flagged ``independent=True``: joint image-video training, where the model's
    temporal layers are masked out for that item (Ho et al. 2022, sec. 3.2).
    """

    def __init__(
        self,
        images: ImageSet,
        tokenizer,
        config: MovingDigitsConfig | None = None,
        seed: int = 0,
        length: int = 100_000,
        captions_per_video: int = 4,
        image_fraction: float = 0.0,
        speed_drop: float = 0.3,
    ) -> None:
        _check_source(images)
        if not 0.0 <= image_fraction <= 1.0:
            raise InputError(f"image_fraction must lie in [0, 1], got {image_fraction}")
        if captions_per_video < 1:
            raise InputError(f"captions_per_video must be >= 1, got {captions_per_video}")
        self.images, self.tokenizer = images, tokenizer
        self.config = config or MovingDigitsConfig()
        self.seed, self.length = int(seed), int(length)
        self.k, self.image_fraction, self.speed_drop = (
            captions_per_video,
            image_fraction,
            speed_drop,
        )
        labels = images.labels.numpy()
        self.by_class = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}

    def __len__(self) -> int:
        return self.length

    def _ids(self, texts: list[str]) -> torch.Tensor:
        ids, _ = self.tokenizer(texts)
        out = torch.full((len(texts), self.tokenizer.max_length), self.tokenizer.pad_id)
        out[:, : ids.shape[1]] = ids
        return out

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(i)])
        cfg = self.config
        if self.image_fraction > 0 and rng.random() < self.image_fraction:
            label = int(self.images.labels[int(rng.integers(len(self.images)))])
            pool = self.by_class[label]
            picks = rng.choice(pool, size=cfg.frames, replace=len(pool) < cfg.frames)
            frames = torch.cat(
                [
                    render(
                        self.images.images[j], rng.integers(cfg.room + 1, size=(1, 2)), cfg.canvas
                    )
                    for j in picks
                ]
            )
            texts = [caption(label, None, int(rng.integers(len(CAPTION_TEMPLATES))))
                     for _ in range(self.k)]  # fmt: skip
            return frames.transpose(0, 1), self._ids(texts), torch.tensor(True)
        frames, label, _, motion, first, _ = draw_video(self.images, cfg, rng, self.speed_drop)
        texts = [first] + [
            motion_caption(label, motion, cfg, rng, self.speed_drop) for _ in range(self.k - 1)
        ]
        return frames.transpose(0, 1), self._ids(texts), torch.tensor(False)


# ---------------------------------------------------------------------- reading prompts
@dataclass
class PromptMotion:
    """What a prompt asks for: digit (or None), axis, sign (0 for "bouncing"), speed (or None)."""

    label: int | None
    axis: str | None
    sign: int
    speed: int | None


def parse_prompt(text: str) -> PromptMotion:
    """Read the digit, the motion and the speed a moving-digit prompt names."""
    from synesthesia.nets.tokenizer import split_words

    words = split_words(text)
    label = None
    for w in words:
        if w in NUMBER_WORDS:
            label = NUMBER_WORDS.index(w)
            break
        if w.isdigit():
            label = int(w)
            break
    axis, sign = None, 0
    for ax, (neg, pos) in DIRECTIONS.items():
        if "bouncing" in words and (neg in words and pos in words):
            axis, sign = ax, 0
        elif "moving" in words and (neg in words or pos in words):
            axis, sign = ax, -1 if neg in words else 1
    speed = next((s for s, w in SPEED_WORDS.items() if w in words), None)
    return PromptMotion(label, axis, sign, speed)


__all__ = [
    "BOUNCE_WORDS",
    "DIGIT_SIZE",
    "DIRECTIONS",
    "Motion",
    "MovingDigits",
    "MovingDigitsConfig",
    "MovingDigitsDataset",
    "PromptMotion",
    "SPEED_WORDS",
    "VIDEO_VOCABULARY",
    "bounce_trajectory",
    "canonical_prompts",
    "draw_motion",
    "draw_video",
    "make_videos",
    "motion_caption",
    "parse_prompt",
    "render",
]
