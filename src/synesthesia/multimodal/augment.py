"""Augmentations drawn with an explicit generator: image shifts and SpecAugment.

Images are shifted by up to ``max_shift`` pixels (position is not captioned; rotation and
scaling are not used because they would change the captioned slant, size and thickness);
spectrograms get a random circular time shift and SpecAugment masks (Park et al. 2019:
``time_masks`` masks of up to ``time_mask`` frames, ``freq_masks`` of up to ``freq_mask`` mel
bands, filled with the clip's mean).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def randint(high: torch.Tensor | int, shape: Sequence[int], generator: torch.Generator):
    """Uniform integers in [0, high) (``high`` may be a tensor of per-item bounds), on CPU."""
    u = torch.rand(shape, generator=generator, device=generator.device).cpu()
    return (u * torch.as_tensor(high, dtype=torch.float32)).long()


def shift_images(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each image translated by a random integer offset in [-max_shift, max_shift]^2 (ink-free
    border: pixels shifted in are -1)."""
    if max_shift <= 0:
        return images
    n, _, h, w = images.shape
    offsets = randint(2 * max_shift + 1, (n, 2), generator) - max_shift
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
    shifts = randint(2 * max_shift + 1, (n,), generator) - max_shift if max_shift > 0 else None
    for i in range(n):
        if shifts is not None and shifts[i] != 0:
            x[i] = torch.roll(x[i], int(shifts[i]), dims=-1)
        for _ in range(time_masks):
            width = int(randint(time_mask + 1, (1,), generator))
            start = int(randint(max(frames - width, 0) + 1, (1,), generator))
            x[i, :, start : start + width] = fill[i]
        for _ in range(freq_masks):
            width = int(randint(freq_mask + 1, (1,), generator))
            start = int(randint(max(n_mels - width, 0) + 1, (1,), generator))
            x[i, start : start + width, :] = fill[i]
    return x
