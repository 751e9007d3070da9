"""One rank of a multi-process check, run by tests/training/test_ddp.py under torchrun (or
alone, as the single-process reference): ``python ddp_worker.py MODE OUT [ACCUMULATION]``.

Modes: ``train`` (6 steps; rank r writes its raw and EMA weights to OUT/rank{r}.safetensors;
rank 1 is given another run folder, which must stay unwritten), ``interrupt`` (rank 1 asks
to stop during step 3; both must stop there), ``resume`` (continue the interrupted run),
``fail`` (rank 1's loss raises in step 4; rank 0 writes what it caught to OUT/rank0_error.txt),
``contrastive`` (a CLIP loss on gathered embeddings; rank r writes the loss and gradients).
The data, the noise and the diffusion times are fixed items of the dataset, so the run's
result does not depend on how the global batch is split.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from synesthesia.nets.unet import UNet, UNetConfig
from synesthesia.training import Trainer, TrainerConfig
from synesthesia.training.distributed import (
    PeerFailedError,
    leave_process_group,
    process_state,
    rank_and_size,
)

BATCH = 8
STEPS = 6


def dataset() -> torch.utils.data.TensorDataset:
    """32 items: an 8 x 8 image, its noise, its diffusion time and its class."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(32, 1, 8, 8, generator=g) * 2 - 1
    noise = torch.randn(32, 1, 8, 8, generator=g)
    t = torch.randint(0, 1000, (32,), generator=g)
    labels = torch.randint(0, 10, (32,), generator=g)
    return torch.utils.data.TensorDataset(x0, noise, t, labels)


def model() -> UNet:
    torch.manual_seed(1)
    config = UNetConfig(
        image_size=8, base_channels=8, channel_mults=(1, 2), attention_levels=(1,), num_heads=2,
        groups=4,
    )  # fmt: skip
    return UNet(config)


def make_loss(rank: int, mode: str, trainer_box: list):
    calls = [0]

    def loss_fn(net, batch, generator):
        x0, noise, t, labels = batch
        calls[0] += 1
        if mode == "fail" and rank == 1 and calls[0] == 4:
            raise ValueError("rank 1 fails on purpose in step 4")
        if mode == "interrupt" and rank == 1 and calls[0] == 3:
            trainer_box[0]._interrupt.requested = True  # as a SIGTERM to this rank would
        a = torch.cos(t.float() / 1000 * torch.pi / 2).view(-1, 1, 1, 1)
        s = torch.sin(t.float() / 1000 * torch.pi / 2).view(-1, 1, 1, 1)
        x_t = a * x0 + s * noise  # a fixed point on the forward process (no fresh noise)
        return ((net(x_t, t, labels) - noise) ** 2).mean()

    return loss_fn


def train(mode: str, out: Path, accumulation: int) -> None:
    rank, size = rank_and_size()
    run = out / "run" if rank == 0 or mode != "train" else out / "run-rank1"
    config = TrainerConfig(
        out_dir=str(run), batch_size=BATCH, max_steps=STEPS, lr=3e-3, warmup_steps=2,
        ema_decay=0.9, mixed_precision="fp32", seed=0, log_every=1, checkpoint_every=2,
        progress=False, grad_accumulation=accumulation,
    )  # fmt: skip
    box: list = []
    trainer = Trainer(model(), make_loss(rank, mode, box), dataset(), config, {"kind": "test"})
    box.append(trainer)
    try:
        result = trainer.fit(resume=mode == "resume")
    except PeerFailedError as exc:
        (out / f"rank{rank}_error.txt").write_text(f"{type(exc).__name__}: {exc}")
        return
    weights = {f"raw.{k}": v.contiguous() for k, v in trainer.model.state_dict().items()}
    weights.update({f"ema.{k}": v.contiguous() for k, v in trainer.ema_model.state_dict().items()})
    save_file(weights, out / f"{mode}-rank{rank}.safetensors")
    summary = {"step": result.step, "stopped": result.stopped, "world": size}
    (out / f"{mode}-rank{rank}.json").write_text(json.dumps(summary))


def contrastive(out: Path) -> None:
    """A CLIP loss on a fixed batch of 8 split over the ranks; gradients averaged over the
    ranks afterwards, as DDP's gradient hook does."""
    from synesthesia.multimodal.losses import LogitScale, gather_with_grad, info_nce

    rank, size = rank_and_size()
    g = torch.Generator().manual_seed(3)
    images, texts = torch.randn(8, 5, generator=g), torch.randn(8, 6, generator=g)
    torch.manual_seed(4)
    towers = torch.nn.ModuleDict(
        {"a": torch.nn.Linear(5, 4), "b": torch.nn.Linear(6, 4), "scale": LogitScale(10.0)}
    )
    share = 8 // size
    mine = slice(rank * share, (rank + 1) * share)
    a = gather_with_grad(torch.nn.functional.normalize(towers["a"](images[mine]), dim=-1))
    b = gather_with_grad(torch.nn.functional.normalize(towers["b"](texts[mine]), dim=-1))
    loss = info_nce(towers["scale"](a, b))
    loss.backward()
    for p in towers.parameters():  # what DDP does with the gradients: their mean over ranks
        if size > 1:
            torch.distributed.all_reduce(p.grad)
        p.grad /= size
    grads = {k: p.grad.detach().clone() for k, p in towers.named_parameters()}
    path = out / f"contrastive-rank{rank}.safetensors"
    save_file({"loss": loss.detach().reshape(1), **grads}, path)


if __name__ == "__main__":
    mode, out = sys.argv[1], Path(sys.argv[2])
    accumulation = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    out.mkdir(parents=True, exist_ok=True)
    process_state()  # joins the process group (gloo) under torchrun
    try:
        if mode == "contrastive":
            contrastive(out)
        else:
            train(mode, out, accumulation)
    finally:
        leave_process_group()
