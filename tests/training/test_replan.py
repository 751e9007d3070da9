"""Replanning a time-bounded run at the end of warm-up, from the steps really taken."""

from __future__ import annotations

import torch

from synesthesia.training import Trainer, TrainerConfig


class _Data(torch.utils.data.Dataset):
    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0])

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def _loss(model, batch, generator):
    x, y = batch
    noise = torch.randn(y.shape, generator=generator, device=generator.device)
    return (model(x).squeeze(-1) - y - 0.01 * noise).square().mean()


def _fit(out, max_steps, replan=None):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    cfg = TrainerConfig(
        out_dir=str(out), batch_size=8, max_steps=max_steps, warmup_steps=5, log_every=2,
        checkpoint_every=100, progress=False, mixed_precision="fp32", max_minutes=10.0,
    )  # fmt: skip
    trainer = Trainer(model, _loss, _Data(), cfg, replan=replan)
    return trainer, trainer.fit()


def test_replan_at_the_end_of_warm_up_is_the_run_planned_so_from_the_start(tmp_path):
    calls = []

    def replan(step, elapsed_s, seconds_per_step):
        calls.append((step, elapsed_s, seconds_per_step))
        return 9

    trainer, replanned = _fit(tmp_path / "a", 20, replan)
    assert [c[0] for c in calls] == [5] and calls[0][1] > 0 and calls[0][2] > 0
    assert replanned.step == 9 and replanned.max_steps == 9
    _, direct = _fit(tmp_path / "b", 9)
    assert replanned.losses == direct.losses  # the LR of warm-up does not depend on max_steps
    state = (tmp_path / "a" / "checkpoint" / "train" / "trainer_state.json").read_text()
    assert '"max_steps": 9' in state  # a resume continues the replanned run


def test_no_replan_on_resume(tmp_path):
    calls = []
    _fit(tmp_path / "a", 6)
    torch.manual_seed(0)
    cfg = TrainerConfig(
        out_dir=str(tmp_path / "a"), batch_size=8, max_steps=6, warmup_steps=5, log_every=2,
        checkpoint_every=100, progress=False, mixed_precision="fp32",
    )  # fmt: skip
    trainer = Trainer(torch.nn.Linear(4, 1), _loss, _Data(), cfg, replan=lambda *a: calls.append(a))
    trainer.fit(resume=True)
    assert calls == []
