"""Section 13.2.4: the time-conditioned U-Net that diffusion models denoise with.

A few seconds on one CPU thread. The U-Net of ``synesthesia demo`` (preset "small"), built and
inspected, then fitted for a few steps on one batch of digits:

1. the sinusoidal time embedding against its formula (Vaswani et al. 2017, sec. 3.5), where
   the chapter's sketch feeds the raw timestep into a linear layer;
2. the resolutions every block works at (28, 14 and 7 pixels down, the same back up) and the
   skip connections: each up block reads one tensor the down path saved;
3. a fresh U-Net predicts exactly zero (its output convolution starts at zero, so training
   starts from "no correction"), and once it has weights the timestep and the class label
   change its prediction;
4. a few optimiser steps of the library's diffusion loss on one fixed batch lower that loss.

For real quality train it with the recipe of ``examples/class_to_image.py`` /
``synesthesia train image --minutes 10`` (this file only shows the network).

    python examples/s13_2_4_unet.py
"""

from __future__ import annotations

import math

import torch

from synesthesia.data.images import load_image_splits
from synesthesia.diffusion import NoiseSchedule, diffusion_loss
from synesthesia.nets.layers import timestep_embedding
from synesthesia.nets.unet import UNet, unet_preset


def time_embedding() -> None:
    t, dim = torch.tensor([0.0, 1.0, 250.5, 999.0]), 16
    freqs = [10000 ** (-i / (dim // 2)) for i in range(dim // 2)]  # Vaswani et al. 2017, 3.5
    here = torch.tensor(
        [[math.cos(v * f) for f in freqs] + [math.sin(v * f) for f in freqs] for v in t.tolist()]
    )
    err = float((timestep_embedding(t, dim) - here).abs().max())
    print(f"time embedding vs the formula: max |difference| {err:.1e}")
    assert err < 1e-4  # float32 arguments up to 999 radians


def layout(unet: UNet) -> None:
    sizes: dict[str, int] = {}

    def record(name):
        return lambda module, args, out: sizes.__setitem__(name, out.shape[-1])

    for i, blocks in enumerate(unet.down):
        blocks[-1].register_forward_hook(record(f"down{i}"))
    for i, blocks in enumerate(unet.up):
        blocks[-1].register_forward_hook(record(f"up{i}"))
    unet.mid2.register_forward_hook(record("middle"))
    with torch.no_grad():
        out = unet(torch.randn(2, 1, 28, 28), torch.tensor([10.0, 900.0]), torch.tensor([3, 7]))
    print("block resolutions:", sizes)
    assert [sizes[f"down{i}"] for i in range(3)] == [28, 14, 7] and sizes["middle"] == 7
    assert [sizes[f"up{i}"] for i in range(3)] == [7, 14, 28]
    resampled = sum(not isinstance(d, torch.nn.Identity) for d in unet.downsample)
    n_down = sum(len(b) for b in unet.down) + resampled
    n_up = sum(len(b) for b in unet.up)
    print(f"skip tensors saved going down: {n_down + 1} (stem included); up blocks: {n_up}")
    assert n_down + 1 == n_up
    n_params = sum(p.numel() for p in unet.parameters())
    print(f"parameters: {n_params / 1e6:.2f} M; a fresh U-Net predicts 0: {bool((out == 0).all())}")
    assert (out == 0).all()


def conditioning(unet: UNet) -> None:
    torch.manual_seed(0)
    with torch.no_grad():  # the zero-initialised layers get weights, as if trained a little
        for p in unet.parameters():
            if p.abs().max() == 0:
                p.normal_(std=0.05)
        x = torch.randn(1, 1, 28, 28).expand(2, -1, -1, -1)
        by_time = unet(x, torch.tensor([10.0, 900.0]), torch.tensor([3, 3]))
        by_class = unet(x, torch.tensor([500.0, 500.0]), torch.tensor([3, unet.null_class]))
    dt = float((by_time[0] - by_time[1]).abs().mean())
    dc = float((by_class[0] - by_class[1]).abs().mean())
    print(f"prediction change: t 10 -> 900 {dt:.4f}; class 3 -> null class {dc:.4f} per pixel")
    assert dt > 0 and dc > 0


def fit_one_batch() -> None:
    train, _ = load_image_splits("mnist5k")
    x0, labels = train.images[:8], train.labels[:8]
    torch.manual_seed(0)
    unet = UNet(unet_preset("small"))
    schedule = NoiseSchedule("cosine", 1000)
    g = torch.Generator().manual_seed(0)
    t = torch.randint(0, 1000, (8,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    fixed = dict(schedule=schedule, prediction="v", cond={"labels": labels}, t=t, noise=noise)
    opt = torch.optim.AdamW(unet.parameters(), lr=2e-3)
    losses = []
    for _ in range(15):
        loss = diffusion_loss(unet, x0, **fixed)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(f"v-loss on one fixed batch: step 1 {losses[0]:.4f}, step 15 {losses[-1]:.4f}")
    assert losses[-1] < 0.8 * losses[0]


def main() -> None:
    time_embedding()
    torch.manual_seed(0)
    unet = UNet(unet_preset("small")).eval()  # 28 x 28 digits, 10 classes + the null class
    layout(unet)
    conditioning(unet)
    fit_one_batch()


if __name__ == "__main__":
    main()
