"""The trainer against independent references: hand-computed EMA and LR, exact equality of
resumed and uninterrupted runs, norms computed by hand, files checked byte for byte."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from synesthesia.errors import InputError
from synesthesia.io import load_pretrained
from synesthesia.training import NonFiniteLossError, Trainer, TrainerConfig, lr_at


class MLP(nn.Module):
    """A small regression MLP with dropout (so the global RNG matters for exact resume)."""

    def __init__(self, dim: int = 4, hidden: int = 16, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.Dropout(dropout), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def make_model(seed: int = 1, **kwargs) -> MLP:
    torch.manual_seed(seed)
    return MLP(**kwargs)


def regression_data(n: int = 64, dim: int = 4, seed: int = 0) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    w = torch.linspace(-1.0, 1.0, dim)
    return torch.utils.data.TensorDataset(x, x @ w)


def noisy_mse(model: nn.Module, batch, generator: torch.Generator):
    """MSE with input noise drawn from the trainer's generator."""
    x, y = batch
    x = x + 0.05 * torch.randn(x.shape, generator=generator, device=generator.device)
    loss = ((model(x) - y) ** 2).mean()
    return loss, {"abs_err": float((model(x) - y).detach().abs().mean())}


def folder_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (relative path -> hex digest)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def data() -> torch.utils.data.TensorDataset:
    return regression_data()


def config(out_dir, **kw) -> TrainerConfig:
    base = dict(
        batch_size=16,
        max_steps=12,
        lr=1e-2,
        warmup_steps=3,
        mixed_precision="no",
        progress=False,
        log_every=1,
        checkpoint_every=100,
        ema_decay=0.9,
    )
    base.update(kw)
    return TrainerConfig(out_dir=str(out_dir), **base)


def rng_eval(ema_model, step, out_dir):
    """An evaluation that consumes the global RNG (it must not disturb training)."""
    torch.rand(100)
    return {"w_norm": float(sum(p.norm() for p in ema_model.parameters()))}


def test_loss_falls_on_toy_regression(tmp_path, data):
    model = make_model(dropout=0.0)
    cfg = config(tmp_path, max_steps=80, lr=5e-2, warmup_steps=5, log_every=40)
    result = Trainer(model, noisy_mse, data, cfg).fit()
    assert result.stopped == "max_steps" and result.step == 80 and len(result.losses) == 80
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-5:]) / 5
    assert last < 0.05 * first


def _crash_at(n: int, exc: type[BaseException]):
    calls = {"n": 0}

    def loss_fn(model, batch, generator):
        calls["n"] += 1
        out = noisy_mse(model, batch, generator)  # consumes randomness before failing
        if calls["n"] == n:
            raise exc("boom")
        return out

    return loss_fn


@pytest.mark.parametrize(
    "how, precision",
    [("crash", "no"), ("keyboard_interrupt", "no"), ("keyboard_interrupt", "bf16")],
)
def test_resume_reproduces_uninterrupted_run_exactly(tmp_path, data, how, precision):
    # 4 batches per epoch, 14 steps: the run crosses 3 epoch boundaries; dropout, input noise
    # from the trainer's generator and an RNG-consuming eval all have to be restored.
    kw = dict(max_steps=14, eval_every=4, mixed_precision=precision)
    ref_trainer = Trainer(make_model(), noisy_mse, data, config(tmp_path / "ref", **kw), {})
    reference = ref_trainer.fit()

    out = tmp_path / "run"
    if how == "crash":  # checkpoint at step 5, crash during step 8
        cfg = config(out, checkpoint_every=5, **kw)
        with pytest.raises(RuntimeError, match="boom"):
            Trainer(make_model(), _crash_at(8, RuntimeError), data, cfg, {}, eval_fn=rng_eval).fit()
        first: list[float] = reference.losses[:5]
    else:  # Ctrl-C raised inside loss_fn during step 7: checkpoint of step 6
        cfg = config(out, **kw)
        part = Trainer(make_model(), _crash_at(7, KeyboardInterrupt), data, cfg, {}, rng_eval)
        result = part.fit()
        assert result.stopped == "interrupted" and result.step == 6
        first = result.losses
    state = json.loads((out / "checkpoint/train/trainer_state.json").read_text())
    assert state["step"] == len(first)

    fresh = make_model(seed=123)  # different initial weights: everything comes from disk
    resumed = Trainer(fresh, noisy_mse, data, config(out, **kw), {}, eval_fn=rng_eval)
    rest = resumed.fit(resume=True)
    assert rest.step == 14 and rest.stopped == "max_steps"
    assert first + rest.losses == reference.losses  # bitwise equal on CPU fp32
    for a, b in zip(resumed.model.state_dict().values(), ref_trainer.model.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(resumed.ema_model.parameters(), ref_trainer.ema_model.parameters()):
        assert torch.equal(a, b)
    steps = [int(r.split(",")[0]) for r in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == sorted(set(steps)) and steps[-1] == 14  # no duplicated rows after resume


def test_checkpoint_contents(tmp_path, data):
    model_config = {"kind": "mlp", "hidden": 16}
    trainer = Trainer(make_model(), noisy_mse, data, config(tmp_path, max_steps=6), model_config)
    result = trainer.fit()
    ckpt = tmp_path / "checkpoint"
    assert result.checkpoint == ckpt
    assert sorted(p.name for p in ckpt.iterdir()) == ["config.json", "model.safetensors", "train"]
    names = sorted(p.name for p in (ckpt / "train").iterdir())
    assert names == ["model.safetensors", "optimizer.json", "optimizer.safetensors",
                     "trainer_state.json"]  # fmt: skip
    state_dict, cfg = load_pretrained(ckpt)
    assert cfg == model_config
    for k, v in trainer.ema_model.state_dict().items():  # inference weights are the EMA
        assert torch.equal(state_dict[k], v)
    raw = load_file(ckpt / "train/model.safetensors")
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(raw[k], v)
    state = json.loads((ckpt / "train/trainer_state.json").read_text())
    assert (state["step"], state["epoch"], state["position_in_epoch"]) == (6, 1, 2)
    assert state["config"]["max_steps"] == 6 and state["ema_updates"] == 6
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[:7] == ["step", "epoch", "loss", "lr", "grad_norm", "items_per_s", "elapsed_s"]
    assert "abs_err" in header


def test_failed_checkpoint_write_keeps_previous(tmp_path, data, monkeypatch):
    import synesthesia.training.trainer as trainer_module

    trainer = Trainer(make_model(), noisy_mse, data, config(tmp_path, max_steps=4), {"a": 1})
    trainer.fit()
    before = folder_digest(tmp_path / "checkpoint")
    real = trainer_module.tensors_to_bytes
    calls = {"n": 0}

    def failing(tensors, metadata=None):
        calls["n"] += 1
        if calls["n"] == 3:  # in the middle of writing the folder
            raise OSError("disk full")
        return real(tensors, metadata)

    monkeypatch.setattr(trainer_module, "tensors_to_bytes", failing)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint()
    assert folder_digest(tmp_path / "checkpoint") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint", "metrics.csv"]


@pytest.mark.parametrize(
    "victim, damage",
    [
        ("train/model.safetensors", "truncate"),
        ("model.safetensors", "garbage"),
        ("train/optimizer.safetensors", "truncate"),
        ("train/trainer_state.json", "truncate"),
        ("train/optimizer.json", "garbage"),
    ],
)
def test_corrupted_checkpoint_clear_error_overwrites_nothing(tmp_path, data, victim, damage):
    Trainer(make_model(), noisy_mse, data, config(tmp_path, max_steps=4), {}).fit()
    path = tmp_path / "checkpoint" / victim
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2] if damage == "truncate" else b"\x00garbage{" * 4)
    before = folder_digest(tmp_path)
    trainer = Trainer(make_model(), noisy_mse, data, config(tmp_path, max_steps=8), {})
    with pytest.raises(ValueError, match=str(path).replace("\\", "\\\\")):
        trainer.fit(resume=True)
    assert folder_digest(tmp_path) == before


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, data):
    trainer = Trainer(make_model(), noisy_mse, data, config(tmp_path / "none"), {})
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume"):
        trainer.fit(resume=True)


def test_nan_loss_names_the_step_and_keeps_last_checkpoint(tmp_path, data):
    def nan_at_7(model, batch, generator):
        loss, extra = noisy_mse(model, batch, generator)
        return (loss * float("nan"), extra) if nan_at_7.calls == 6 else (loss, extra)

    nan_at_7.calls = 0

    def counting(model, batch, generator):
        out = nan_at_7(model, batch, generator)
        nan_at_7.calls += 1
        return out

    cfg = config(tmp_path, max_steps=10, checkpoint_every=5)
    trainer = Trainer(make_model(), counting, data, cfg, {})
    snapshot: dict[str, str] = {}

    def spy(model, batch, generator):
        if nan_at_7.calls == 6:
            snapshot.update(folder_digest(tmp_path / "checkpoint"))
        return counting(model, batch, generator)

    trainer.loss_fn = spy
    with pytest.raises(NonFiniteLossError, match=r"at step 7\b.*step 5\)") as info:
        trainer.fit()
    assert isinstance(info.value, ValueError)
    assert folder_digest(tmp_path / "checkpoint") == snapshot
    state = json.loads((tmp_path / "checkpoint/train/trainer_state.json").read_text())
    assert state["step"] == 5
    assert all(torch.isfinite(p.detach()).all() for p in trainer.model.parameters())


def test_ema_matches_hand_computation_over_three_steps(tmp_path, data):
    model = make_model(dropout=0.0)
    initial = [p.detach().clone() for p in model.parameters()]
    seen: list[list[torch.Tensor]] = []

    def recording(model, batch, generator):
        seen.append([p.detach().clone() for p in model.parameters()])
        return noisy_mse(model, batch, generator)

    cfg = config(tmp_path, max_steps=3, ema_decay=0.9, ema_warmup=True)
    trainer = Trainer(model, recording, data, cfg, {})
    trainer.fit()
    after = seen[1:] + [[p.detach() for p in trainer.model.parameters()]]  # p1, p2, p3
    ema = initial
    for n, params in enumerate(after):
        d = min(0.9, (1 + n) / (10 + n))  # 0.1, 2/11, 0.25
        ema = [d * e + (1 - d) * p for e, p in zip(ema, params)]
    for e, mine in zip(ema, trainer.ema_model.parameters()):
        torch.testing.assert_close(mine, e, rtol=1e-6, atol=1e-7)
    assert not torch.equal(ema[0], after[-1][0])  # the EMA is not just the last weights


def test_lr_in_the_log_follows_the_closed_form(tmp_path, data):
    cfg = config(tmp_path, max_steps=10, warmup_steps=4, lr=1e-2, min_lr_ratio=0.1)
    Trainer(make_model(), noisy_mse, data, cfg, {}).fit()
    rows = [r.split(",") for r in (tmp_path / "metrics.csv").read_text().splitlines()]
    lr_col = rows[0].index("lr")
    logged = [float(r[lr_col]) for r in rows[1:]]
    # hand computation: warm-up (s+1)/4, then 0.1 + 0.9 * (1 + cos(pi (s-4)/6)) / 2
    expected = [1e-2 * (s + 1) / 4 for s in range(4)] + [
        1e-2 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - 4) / 6))) for s in range(4, 10)
    ]
    assert logged == pytest.approx(expected, rel=1e-5)
    assert expected == pytest.approx([lr_at(s, cfg) for s in range(10)])


def test_grad_clipping_bounds_the_norm(tmp_path, data):
    model = nn.Linear(4, 1)
    numel = sum(p.numel() for p in model.parameters())

    def linear_loss(model, batch, generator):  # d loss / d p = 1000 for every parameter
        return 1000.0 * sum(p.sum() for p in model.parameters())

    cfg = config(tmp_path, max_steps=3, grad_clip=0.5, ema_decay=None)
    trainer = Trainer(model, linear_loss, data, cfg, {})
    norms = []
    inner = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
    inner.register_step_pre_hook(
        lambda opt, args, kw: norms.append(
            float(
                torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
            )
        )
    )
    trainer.fit()
    assert norms == pytest.approx([0.5] * 3, rel=1e-5)
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    col = rows[0].split(",").index("grad_norm")
    logged = [float(r.split(",")[col]) for r in rows[1:]]
    assert logged == pytest.approx([1000.0 * math.sqrt(numel)] * 3, rel=1e-5)  # pre-clip norm


def test_max_minutes_stops_and_saves(tmp_path, data):
    import time

    def slow(model, batch, generator):
        time.sleep(0.03)
        return noisy_mse(model, batch, generator)

    cfg = config(tmp_path, max_steps=10_000, max_minutes=0.2 / 60)
    result = Trainer(make_model(), slow, data, cfg, {}).fit()
    assert result.stopped == "max_minutes"
    assert 1 <= result.step < 50
    state = json.loads((tmp_path / "checkpoint/train/trainer_state.json").read_text())
    assert state["step"] == result.step


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_finishes_the_step_saves_and_resumes(tmp_path, data, sig):
    def loss_fn(model, batch, generator):
        loss_fn.calls += 1
        if loss_fn.calls == 5:
            os.kill(os.getpid(), sig)  # as if the user pressed Ctrl-C / the scheduler preempted
        return noisy_mse(model, batch, generator)

    loss_fn.calls = 0
    previous = signal.getsignal(sig)
    result = Trainer(make_model(), loss_fn, data, config(tmp_path, max_steps=8), {}).fit()
    assert signal.getsignal(sig) is previous
    assert result.stopped == "interrupted" and result.step == 5
    rest = Trainer(make_model(), noisy_mse, data, config(tmp_path, max_steps=8), {})
    assert rest.fit(resume=True).step == 8


def test_bf16_autocast_is_used_and_trains(tmp_path, data):
    dtypes = []

    def loss_fn(model, batch, generator):
        x, y = batch
        out = model(x)
        dtypes.append(out.dtype)
        return ((out.float() - y) ** 2).mean()

    cfg = config(tmp_path, mixed_precision="bf16", max_steps=40, lr=5e-2, log_every=20)
    result = Trainer(make_model(dropout=0.0), loss_fn, data, cfg, {}).fit()
    assert set(dtypes) == {torch.bfloat16}
    assert sum(result.losses[-5:]) < 0.2 * sum(result.losses[:5])
    weights, _ = load_pretrained(result.checkpoint)
    assert all(w.dtype == torch.float32 for w in weights.values())  # master weights stay fp32


def test_eval_fn_numbers_reach_the_csv(tmp_path, data):
    calls = []

    def eval_fn(ema_model, step, out_dir):
        calls.append((step, ema_model.training))
        return {"score": step * 2.0}

    cfg = config(tmp_path, max_steps=7, eval_every=3, log_every=100)
    Trainer(make_model(), noisy_mse, data, cfg, {}, eval_fn=eval_fn).fit()
    assert calls == [(3, False), (6, False), (7, False)]  # every 3 steps and at the end
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    col = rows[0].split(",").index("eval_score")
    assert [float(r.split(",")[col]) for r in rows[1:] if r.split(",")[col]] == [6.0, 12.0, 14.0]


def test_bad_inputs(tmp_path):
    small = regression_data(n=8)
    with pytest.raises(ValueError, match="batch_size=16"):
        Trainer(make_model(), noisy_mse, small, config(tmp_path), {})
    with pytest.raises(ValueError, match="model_config"):
        Trainer(make_model(), noisy_mse, regression_data(), config(tmp_path), {"f": object()})


def test_weight_decay_spares_biases(tmp_path, data):
    model = nn.Linear(4, 3)
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()

    def zero_grad_loss(model, batch, generator):  # zero gradient: only the decay moves weights
        return 0.0 * sum(p.sum() for p in model.parameters())

    cfg = config(tmp_path, max_steps=1, lr=0.1, warmup_steps=0, weight_decay=0.5, ema_decay=None)
    Trainer(model, zero_grad_loss, data, cfg, {}).fit()
    # decoupled weight decay (Loshchilov & Hutter 2019): p <- p * (1 - lr * wd)
    torch.testing.assert_close(model.weight.detach(), w0 * (1 - 0.1 * 0.5))
    assert torch.equal(model.bias.detach(), b0)


def test_second_sigint_stops_at_once_and_resumes_exactly(tmp_path, data):
    reference = Trainer(make_model(), noisy_mse, data, config(tmp_path / "ref", max_steps=8), {})
    expected = reference.fit().losses

    def loss_fn(model, batch, generator):
        loss_fn.calls += 1
        out = noisy_mse(model, batch, generator)
        if loss_fn.calls == 4:  # two presses during step 4: the second raises right here
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return out

    loss_fn.calls = 0
    first = Trainer(make_model(), loss_fn, data, config(tmp_path / "run", max_steps=8), {}).fit()
    assert first.stopped == "interrupted" and first.step == 3  # step 4 was abandoned
    rest = Trainer(make_model(seed=9), noisy_mse, data, config(tmp_path / "run", max_steps=8), {})
    assert first.losses + rest.fit(resume=True).losses == expected


def test_lr_scales_set_each_groups_step_by_the_longest_prefix(tmp_path):
    """Adam's first step moves each weight by lr * g / (|g| + eps) (bias-corrected moments
    m = g, v = g^2): with lr_scales, by the factor of the longest prefix of its name."""
    data = regression_data(n=16)
    model = make_model(dropout=0.0)
    reference = make_model(dropout=0.0)
    x, y = data.tensors
    ((reference(x) - y) ** 2).mean().backward()  # the whole set is the one batch

    def mse(model, batch, generator):
        bx, by = batch
        return ((model(bx) - by) ** 2).mean()

    scales = {"net.": 0.5, "net.3.": 0.1}
    cfg = config(tmp_path, max_steps=1, lr=0.1, warmup_steps=0, ema_decay=None, grad_clip=None,
                 lr_scales=scales)  # fmt: skip
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    Trainer(model, mse, data, cfg, {}).fit()
    for name, p in model.named_parameters():
        g = dict(reference.named_parameters())[name].grad
        factor = 0.1 if name.startswith("net.3.") else 0.5
        expected = before[name] - 0.1 * factor * g / (g.abs() + 1e-8)
        torch.testing.assert_close(p.detach(), expected, atol=1e-6, rtol=0)


def test_lr_scales_refuse_a_prefix_that_names_nothing(tmp_path, data):
    cfg = config(tmp_path, lr_scales={"encoder.": 0.1})
    with pytest.raises(
        InputError, match=r"no trainable parameter's name starts with \['encoder.'\]"
    ):
        Trainer(make_model(), noisy_mse, data, cfg, {})
    with pytest.raises(InputError, match="positive factor"):
        config(tmp_path, lr_scales={"net.": 0.0})
