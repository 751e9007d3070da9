"""Replanning a time-bounded run at the end of warm-up, from the steps really taken."""

from __future__ import annotations

import math

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


def test_a_schedule_knot_continues_the_cosine_from_where_it_was():
    from synesthesia.training import lr_factor

    old = TrainerConfig(out_dir="x", max_steps=20, warmup_steps=5)
    # by hand: at update 10 the decay is (10 - 5) / 15 = 1/3 through: 0.5 (1 + cos(pi / 3))
    assert abs(lr_factor(10, old) - 0.75) < 1e-12
    new = TrainerConfig(out_dir="x", max_steps=30, warmup_steps=5, schedule_knot=(10, 1 / 3))
    assert abs(lr_factor(10, new) - lr_factor(10, old)) < 1e-12  # continuous at the knot
    # update 20: 1/3 + (2/3) (10 / 20) = 2/3 through; update 30: the floor (0)
    assert abs(lr_factor(20, new) - 0.5 * (1 + math.cos(2 * math.pi / 3))) < 1e-12
    assert lr_factor(30, new) == 0.0
    # before the knot the old formula over the new length (never used again after a replan)
    assert abs(lr_factor(6, new) - 0.5 * (1 + math.cos(math.pi / 25))) < 1e-12
    # without the knot, stretching the schedule at update 10 would jump the rate
    stretched = TrainerConfig(out_dir="x", max_steps=30, warmup_steps=5)
    assert lr_factor(10, stretched) - lr_factor(10, old) > 0.1


def test_a_second_replan_at_half_time_keeps_the_learning_rate_continuous(tmp_path):
    calls = []
    holder = {}

    def replan(step, elapsed_s, seconds_per_step):
        calls.append(step)
        return 20 if len(calls) == 1 else 26

    def loss(model, batch, generator):
        trainer = holder["trainer"]
        if trainer.step == 11:  # as if half of the 10 minutes had gone by during step 12
            trainer._fit_start -= 5 * 60.0
        return _loss(model, batch, generator)

    torch.manual_seed(0)
    cfg = TrainerConfig(
        out_dir=str(tmp_path), batch_size=8, max_steps=40, warmup_steps=5, log_every=1,
        checkpoint_every=100, progress=False, mixed_precision="fp32", max_minutes=10.0,
    )  # fmt: skip
    trainer = Trainer(torch.nn.Linear(4, 1), loss, _Data(), cfg, replan=replan)
    holder["trainer"] = trainer
    rates = []
    original = trainer._train_step

    def recording(batch):
        rates.append(trainer.optimizer.param_groups[0]["lr"] if rates else None)
        out = original(batch)
        rates[-1] = trainer.optimizer.param_groups[0]["lr"]
        return out

    trainer._train_step = recording
    result = trainer.fit()
    assert calls == [5, 12]  # end of warm-up, then the step that crossed half time
    assert result.step == 26 and trainer.config.schedule_knot is not None
    knot_step, knot_progress = trainer.config.schedule_knot
    assert knot_step == 12 and abs(knot_progress - (12 - 5) / (20 - 5)) < 1e-12
    # updates 0-11 ran on the 20-step plan; update 12 (the first after the replan) has the
    # rate the 20-step plan gave it, and the decay then stretches over the 26 steps
    import dataclasses

    from synesthesia.training import lr_at

    plan20 = dataclasses.replace(cfg, max_steps=20, schedule_knot=None)
    for update in range(12):
        assert abs(rates[update] - lr_at(update, plan20)) < 1e-12
    assert abs(rates[12] - lr_at(12, plan20)) < 1e-12
    diffs = [b - a for a, b in zip(rates[5:], rates[6:], strict=False)]
    assert all(d <= 1e-12 for d in diffs)  # never up
    assert rates[13] > lr_at(13, plan20)  # slower decay than the old plan from there on
    assert rates[-1] < 0.01 * cfg.lr  # annealed at the new end
    state = (tmp_path / "checkpoint" / "train" / "trainer_state.json").read_text()
    assert '"schedule_knot": [\n' in state or '"schedule_knot": [12' in state


def test_the_thread_count_the_probe_picks_holds_for_its_run_only(tmp_path, monkeypatch):
    """A probe that finds one thread faster sets it for the run; the next time-bounded run
    in the process must start from the caller's count again, not inherit the pick."""
    from synesthesia.training import budget, timing

    def one_thread_wins(*args, **kwargs):
        torch.set_num_threads(1)
        return timing.StepTiming(0.001, 1, 0.01, [0.001])

    monkeypatch.setattr(timing, "measure_train_step", one_thread_wins)
    seen = []
    fit = Trainer.fit

    def spy(self, *a, **k):
        seen.append(torch.get_num_threads())
        return fit(self, *a, **k)

    monkeypatch.setattr(Trainer, "fit", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for run in ("a", "b"):
            options = budget.BudgetOptions(out_dir=str(tmp_path / run), minutes=0.05, batch_size=8,
                                           precision="fp32", progress=False)  # fmt: skip
            torch.manual_seed(0)
            budget.fit_budgeted(torch.nn.Linear(4, 1), _loss, _Data(), options, {},
                                probe_batch=(_Data().x[:8], _Data().y[:8]))  # fmt: skip
            assert torch.get_num_threads() == 2  # restored on return
        assert seen == [1, 1]  # each run trained on the count its own probe picked
    finally:
        torch.set_num_threads(before)
