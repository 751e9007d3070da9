"""Gradient accumulation and the float16 gradient scaler in one process (issue 12).

References: the same global batch without accumulation (the mean gradient is the same
number), and torch's GradScaler contract (an overflowing step leaves the weights unchanged
and halves the scale).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from synesthesia.errors import InputError
from synesthesia.training import Trainer, TrainerConfig, read_run_state


def _data() -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 6, generator=g)
    return torch.utils.data.TensorDataset(x, x @ torch.linspace(-1, 1, 6))


def _mse(model, batch, generator):
    x, y = batch
    return ((model(x).squeeze(-1) - y) ** 2).mean()


def _train(tmp_path, name: str, **config) -> Trainer:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1))
    defaults = dict(
        batch_size=12, max_steps=8, lr=1e-2, warmup_steps=2, ema_decay=0.9,
        mixed_precision="fp32", progress=False, log_every=1, checkpoint_every=4,
    )  # fmt: skip
    cfg = TrainerConfig(out_dir=str(tmp_path / name), **{**defaults, **config})
    trainer = Trainer(model, _mse, _data(), cfg, {})
    trainer.fit()
    return trainer


@pytest.mark.parametrize("accumulation", [2, 3, 4])
def test_accumulated_micro_batches_train_like_the_whole_batch(tmp_path, accumulation):
    whole = _train(tmp_path, "whole")
    split = _train(tmp_path, f"acc{accumulation}", grad_accumulation=accumulation)
    for a, b in zip(whole.model.parameters(), split.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    for a, b in zip(whole.ema_model.parameters(), split.ema_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert read_run_state(tmp_path / f"acc{accumulation}")["config"]["grad_accumulation"] == (
        accumulation
    )


def test_a_wrong_micro_batch_split_would_be_caught(tmp_path):
    """Summing micro-batch losses instead of averaging them doubles the gradient: the
    comparison above must see it (Adam is scale-invariant, so use plain SGD's view: the
    gradient itself)."""
    torch.manual_seed(1)
    model = nn.Linear(6, 1)
    x, y = _data().tensors
    whole = torch.autograd.grad(((model(x[:12]).squeeze(-1) - y[:12]) ** 2).mean(), model.weight)
    halves = [((model(x[i : i + 6]).squeeze(-1) - y[i : i + 6]) ** 2).mean() for i in (0, 6)]
    summed = torch.autograd.grad(halves[0] + halves[1], model.weight, retain_graph=True)
    averaged = torch.autograd.grad((halves[0] + halves[1]) / 2, model.weight)
    torch.testing.assert_close(averaged[0], whole[0])
    assert not torch.allclose(summed[0], whole[0])


def test_the_batch_must_divide_into_micro_batches(tmp_path):
    torch.manual_seed(1)
    cfg = TrainerConfig(out_dir=str(tmp_path), batch_size=10, grad_accumulation=3, progress=False)
    with pytest.raises(InputError, match=r"batch_size=10 .* grad_accumulation \(3\)"):
        Trainer(nn.Linear(6, 1), _mse, _data(), cfg, {})
    with pytest.raises(InputError, match="grad_accumulation must be a positive integer"):
        TrainerConfig(out_dir=str(tmp_path), grad_accumulation=0)


def test_float16_trains_through_the_gradient_scaler(tmp_path):
    fp32 = _train(tmp_path, "fp32")
    fp16 = _train(tmp_path, "fp16", mixed_precision="fp16", max_steps=30)
    assert fp16.mixed_precision == "fp16" and fp16.scaler is not None
    assert fp32.scaler is None
    losses = [float(r["loss"]) for r in _rows(tmp_path / "fp16" / "metrics.csv")]
    assert losses[-1] < 0.5 * losses[0]
    # torch's initial scale 2**16 overflows this small model's float16 gradients: the first
    # steps are skipped and the scale backs off, as the scaler is meant to do
    scale = fp16.scaler.get_scale()
    assert scale < 2.0**16
    state = read_run_state(tmp_path / "fp16")
    assert state["grad_scaler"]["scale"] == scale


def _rows(path) -> list[dict]:
    import csv

    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_an_overflowing_float16_step_is_skipped_and_the_scale_halved(tmp_path):
    torch.manual_seed(1)
    model = nn.Linear(6, 1)
    calls = [0]

    def loss_fn(net, batch, generator):
        calls[0] += 1
        loss = _mse(net, batch, generator)
        return loss * 1e30 if calls[0] == 2 else loss  # step 2's scaled gradients overflow

    cfg = TrainerConfig(out_dir=str(tmp_path), batch_size=12, max_steps=3, lr=1e-2,
                        warmup_steps=0, ema_decay=None, mixed_precision="fp16",
                        progress=False, grad_clip=None)  # fmt: skip
    trainer = Trainer(model, loss_fn, _data(), cfg, {})
    # start at scale 1 so that only the poisoned step overflows (2**16 would overflow step 1)
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=1.0)
    weights = []
    original_commit = trainer._commit_step

    def commit():
        original_commit()
        weights.append(trainer.model.weight.detach().clone())

    trainer._commit_step = commit
    start_scale = trainer.scaler.get_scale()
    initial = trainer.model.weight.detach().clone()
    result = trainer.fit()
    assert result.step == 3
    assert not torch.equal(weights[0], initial)  # step 1 updated
    torch.testing.assert_close(weights[1], weights[0], atol=0, rtol=0)  # step 2 skipped
    assert trainer.scaler.get_scale() == start_scale / 2
    assert not torch.equal(weights[2], weights[1])  # step 3 trained again
