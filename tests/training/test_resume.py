"""Resume against the uninterrupted run: the log row for row, settings that would change the
run refused (or stated as overrides), a damaged trainer state named in one clear error."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from synesthesia.errors import InputError
from synesthesia.training import Trainer, TrainerConfig

WALL_CLOCK = ("elapsed_s", "items_per_s")


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.1), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def make_model(seed: int = 1) -> MLP:
    torch.manual_seed(seed)
    return MLP()


def dataset(n: int = 64) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return torch.utils.data.TensorDataset(x, x @ torch.linspace(-1.0, 1.0, 4))


def noisy_mse(model, batch, generator):
    x, y = batch
    x = x + 0.05 * torch.randn(x.shape, generator=generator, device=generator.device)
    err = model(x) - y
    return (err**2).mean(), {"abs_err": float(err.detach().abs().mean())}


def rng_eval(ema_model, step, out_dir):
    torch.rand(10)  # consumes the global RNG: the trainer must restore it
    return {"w": float(sum(p.sum() for p in ema_model.parameters()))}


def config(out_dir, **kw) -> TrainerConfig:
    base = dict(
        batch_size=16,
        max_steps=13,
        lr=1e-2,
        warmup_steps=2,
        mixed_precision="no",
        progress=False,
        log_every=5,
        checkpoint_every=1000,
        eval_every=6,
        ema_decay=0.9,
    )
    base.update(kw)
    return TrainerConfig(out_dir=str(out_dir), **base)


def read_log(path: Path, drop: tuple[str, ...] = WALL_CLOCK) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = [{k: v for k, v in row.items() if k not in drop} for row in reader]
        return list(reader.fieldnames or []), rows


def interrupted_at(n: int, second: bool = False):
    """A loss function that is sent SIGINT during call ``n`` (twice with ``second``)."""
    calls = {"n": 0}

    def loss_fn(model, batch, generator):
        calls["n"] += 1
        out = noisy_mse(model, batch, generator)
        if calls["n"] == n:
            os.kill(os.getpid(), signal.SIGINT)
            if second:
                os.kill(os.getpid(), signal.SIGINT)
        return out

    return loss_fn


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("reference")
    trainer = Trainer(make_model(), noisy_mse, dataset(), config(out), {}, eval_fn=rng_eval)
    result = trainer.fit()
    return {
        "out": out,
        "losses": result.losses,
        "log": read_log(out / "metrics.csv"),
        "state": {k: v.clone() for k, v in trainer.model.state_dict().items()},
        "files": {
            name: (out / "checkpoint" / name).read_bytes()
            for name in (
                "model.safetensors",
                "train/model.safetensors",
                "train/optimizer.safetensors",
                "train/optimizer.json",
            )
        },  # fmt: skip
    }


@pytest.mark.parametrize("stop_at", range(1, 13))
def test_interrupt_at_any_step_then_resume_logs_the_uninterrupted_rows(
    tmp_path, reference, stop_at
):
    # log_every=5, eval_every=6: interrupts fall before, on and after log and eval steps.
    part = Trainer(
        make_model(), interrupted_at(stop_at), dataset(), config(tmp_path), {}, eval_fn=rng_eval
    )
    first = part.fit()
    assert (first.stopped, first.step) == ("interrupted", stop_at)
    rest = Trainer(make_model(seed=5), noisy_mse, dataset(), config(tmp_path), {}, rng_eval)
    second = rest.fit(resume=True)
    assert first.losses + second.losses == reference["losses"]
    assert read_log(tmp_path / "metrics.csv") == reference["log"]
    for name, blob in reference["files"].items():
        assert (tmp_path / "checkpoint" / name).read_bytes() == blob, name


def test_second_ctrl_c_mid_window_still_logs_the_uninterrupted_rows(tmp_path, reference):
    # The second press raises inside step 8: back to the state after step 7, window included.
    first = Trainer(
        make_model(), interrupted_at(8, second=True), dataset(), config(tmp_path), {}, rng_eval
    ).fit()
    assert (first.stopped, first.step) == ("interrupted", 7)
    Trainer(make_model(), noisy_mse, dataset(), config(tmp_path), {}, rng_eval).fit(resume=True)
    assert read_log(tmp_path / "metrics.csv") == reference["log"]


def test_second_ctrl_c_during_the_update_lets_the_step_finish(tmp_path, reference):
    # Two presses right after AdamW changed the weights, before the EMA and the counters:
    # stopping there would save step 6's weights labelled step 5. The step completes first.
    trainer = Trainer(make_model(), noisy_mse, dataset(), config(tmp_path), {}, rng_eval)
    inner = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
    updates = {"n": 0}

    def press_twice(optimizer, args, kwargs):
        updates["n"] += 1
        if updates["n"] == 6:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    inner.register_step_post_hook(press_twice)
    first = trainer.fit()
    assert (first.stopped, first.step) == ("interrupted", 6)
    Trainer(make_model(), noisy_mse, dataset(), config(tmp_path), {}, rng_eval).fit(resume=True)
    assert read_log(tmp_path / "metrics.csv") == reference["log"]
    for name, blob in reference["files"].items():
        assert (tmp_path / "checkpoint" / name).read_bytes() == blob, name


@pytest.mark.parametrize("at_step", [6, 13])  # an eval-only row; the last row (loss + eval)
def test_second_ctrl_c_during_an_evaluation_is_redone_on_resume(tmp_path, reference, at_step):
    def pressing_eval(model, step, out_dir):
        if step == at_step:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return rng_eval(model, step, out_dir)

    first = Trainer(make_model(), noisy_mse, dataset(), config(tmp_path), {}, pressing_eval).fit()
    assert (first.stopped, first.step) == ("interrupted", at_step)
    _, rows = read_log(tmp_path / "metrics.csv")
    assert [r["step"] for r in rows][-1] == ("13" if at_step == 13 else "5")  # loss row kept
    rest = Trainer(make_model(), noisy_mse, dataset(), config(tmp_path), {}, rng_eval)
    assert rest.fit(resume=True).stopped == "max_steps"
    assert read_log(tmp_path / "metrics.csv") == reference["log"]


def test_logged_loss_is_the_mean_of_the_window_by_hand(reference):
    header, rows = reference["log"]
    losses = reference["losses"]
    logged = {int(r["step"]): float(r["loss"]) for r in rows if r["loss"]}
    assert sorted(logged) == [5, 10, 13]  # every log_every steps and the last one
    for step, start in ((5, 0), (10, 5), (13, 10)):
        assert logged[step] == pytest.approx(sum(losses[start:step]) / (step - start), rel=1e-5)


def test_changed_log_every_rows_average_the_steps_since_the_previous_row(tmp_path, reference):
    # log_every is free to change: after the change a row covers the steps since the last row.
    Trainer(make_model(), interrupted_at(7), dataset(), config(tmp_path), {}, rng_eval).fit()
    Trainer(make_model(), noisy_mse, dataset(), config(tmp_path, log_every=3), {}, rng_eval).fit(
        resume=True
    )
    _, rows = read_log(tmp_path / "metrics.csv")
    logged = {int(r["step"]): float(r["loss"]) for r in rows if r["loss"]}
    assert sorted(logged) == [5, 9, 12, 13]
    losses = reference["losses"]
    for step, start in ((5, 0), (9, 5), (12, 9), (13, 12)):
        assert logged[step] == pytest.approx(sum(losses[start:step]) / (step - start), rel=1e-5)


def _interrupted_run(out: Path, stop_at: int = 6, **kw) -> None:
    result = Trainer(make_model(), interrupted_at(stop_at), dataset(), config(out, **kw), {}).fit()
    assert result.stopped == "interrupted"


@pytest.mark.parametrize(
    "field, value, shown",
    [
        ("lr", 0.02, "0.01"),
        ("max_steps", 20, "13"),
        ("batch_size", 8, "16"),
        ("seed", 3, "0"),
        ("ema_decay", None, "0.9"),
        ("betas", (0.8, 0.99), "0.999"),
    ],
)
def test_resume_with_a_changed_setting_names_it_and_both_values(tmp_path, field, value, shown):
    _interrupted_run(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    trainer = Trainer(make_model(), noisy_mse, dataset(), config(tmp_path, **{field: value}), {})
    with pytest.raises(InputError, match=rf"{field}: saved .*{re.escape(shown)}.*, now") as info:
        trainer.fit(resume=True)
    assert "trainer_state.json" in str(info.value)
    assert info.value.changes[field][1] == value
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_free_settings_may_change_on_resume(tmp_path, reference):
    _interrupted_run(tmp_path, stop_at=4)
    cfg = config(tmp_path, max_minutes=30.0, checkpoint_every=2, eval_every=6, progress=False)
    result = Trainer(make_model(), noisy_mse, dataset(), cfg, {}, rng_eval).fit(resume=True)
    assert result.step == 13
    assert read_log(tmp_path / "metrics.csv") == reference["log"]


def test_longer_max_steps_is_an_explicit_override(tmp_path):
    _interrupted_run(tmp_path, stop_at=6)
    trainer = Trainer(make_model(), noisy_mse, dataset(), config(tmp_path, max_steps=20), {})
    result = trainer.fit(resume=True, allow_changes={"max_steps"})
    assert (result.step, result.stopped, result.max_steps) == (20, "max_steps", 20)
    state = json.loads((tmp_path / "checkpoint/train/trainer_state.json").read_text())
    assert state["config"]["max_steps"] == 20
    assert state["overrides"] == [{"step": 6, "field": "max_steps", "saved": 13, "now": 20}]
    # the cosine schedule now ends at step 20: the last update used lr_at(19) of the new config
    assert state["lr_schedule"]["last_lr"] == pytest.approx(0.0, abs=1e-4)


def test_max_steps_below_the_saved_step_is_refused(tmp_path):
    _interrupted_run(tmp_path, stop_at=8)
    trainer = Trainer(make_model(), noisy_mse, dataset(), config(tmp_path, max_steps=5), {})
    with pytest.raises(InputError, match=r"max_steps=5.*step 8"):
        trainer.fit(resume=True, allow_changes={"max_steps"})


def test_changed_dataset_is_refused_unless_allowed(tmp_path):
    _interrupted_run(tmp_path, stop_at=3)
    trainer = Trainer(make_model(), noisy_mse, dataset(80), config(tmp_path), {})
    with pytest.raises(InputError, match=r"dataset_len.*saved 64.*now 80"):
        trainer.fit(resume=True)
    trainer = Trainer(make_model(), noisy_mse, dataset(80), config(tmp_path), {})
    assert trainer.fit(resume=True, allow_changes=["dataset_len"]).step == 13


def test_unknown_override_name_is_a_programming_error(tmp_path):
    _interrupted_run(tmp_path, stop_at=3)
    trainer = Trainer(make_model(), noisy_mse, dataset(), config(tmp_path), {})
    with pytest.raises(ValueError, match="max_step"):
        trainer.fit(resume=True, allow_changes={"max_step"})


def _edit_state(key: str, value):
    def edit(state: dict) -> None:
        target = state
        *parents, last = key.split(".")
        for name in parents:
            target = target[name] if not name.isdigit() else target[int(name)]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return edit


_DELETE = object()


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (_edit_state("step", _DELETE), "step"),
        (_edit_state("step", "ten"), "step"),
        (_edit_state("step", -1), "step"),
        (_edit_state("epoch", 1.5), "epoch"),
        (_edit_state("position_in_epoch", None), "position_in_epoch"),
        (_edit_state("rng", _DELETE), "rng"),
        (_edit_state("rng.processes", []), "rng"),
        (_edit_state("rng.processes.0.torch", "not base64!"), "rng"),
        (_edit_state("rng.processes.0.loss_generator", "AAAA"), "rng"),
        (_edit_state("rng.host.python", [3, [1, 2], None]), "rng"),
        (_edit_state("rng.host", _DELETE), "rng"),
        (_edit_state("log_window", {"steps": "x", "sums": {}}), "log_window"),
        (_edit_state("config", [1, 2]), "config"),
        (_edit_state("format", 7), "format"),
        (lambda state: state.clear(), "format"),
    ],
)
def test_damaged_trainer_state_is_one_error_naming_the_file(tmp_path, edit, fragment):
    _interrupted_run(tmp_path, stop_at=3)
    path = tmp_path / "checkpoint" / "train" / "trainer_state.json"
    state = json.loads(path.read_text())
    edit(state)
    path.write_text(json.dumps(state))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    trainer = Trainer(make_model(), noisy_mse, dataset(), config(tmp_path), {})
    with pytest.raises(InputError, match=str(path)) as info:
        trainer.fit(resume=True)
    assert fragment in str(info.value)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("blob", [b"", b"{\n", b"\xff\xfe garbage", b"[1, 2]", b"null"])
def test_unreadable_trainer_state_json_names_the_file(tmp_path, blob):
    _interrupted_run(tmp_path, stop_at=3)
    path = tmp_path / "checkpoint" / "train" / "trainer_state.json"
    path.write_bytes(blob)
    trainer = Trainer(make_model(), noisy_mse, dataset(), config(tmp_path), {})
    with pytest.raises(InputError, match=str(path)):
        trainer.fit(resume=True)


def test_interrupted_result_says_so_and_how_far(tmp_path, capsys):
    result = Trainer(make_model(), interrupted_at(4), dataset(), config(tmp_path), {}).fit()
    assert result.interrupted and not result.complete
    assert (result.step, result.max_steps, result.checkpoint_step) == (4, 13, 4)
    assert result.exit_code == 130
    out = capsys.readouterr().out  # printed even with progress=False
    assert "interrupted at step 4 of 13" in out and str(result.checkpoint) in out
    done = Trainer(make_model(), noisy_mse, dataset(), config(tmp_path), {}).fit(resume=True)
    assert done.complete and not done.interrupted and done.exit_code == 0


def test_ctrl_c_on_the_last_step_finishes_the_run(tmp_path, reference):
    evals = []

    def eval_fn(model, step, out_dir):
        evals.append(step)
        return rng_eval(model, step, out_dir)

    result = Trainer(
        make_model(), interrupted_at(13), dataset(), config(tmp_path), {}, eval_fn
    ).fit()
    assert (result.stopped, result.step) == ("max_steps", 13) and evals == [6, 12, 13]
    assert read_log(tmp_path / "metrics.csv") == reference["log"]


def _paths(value, prefix=(), depth=3):
    """Key paths into a JSON value, down to ``depth`` (long lists are entered only at 0)."""
    yield prefix
    if depth == 0:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key), depth - 1)
    elif isinstance(value, list) and len(value) <= 5:
        for i, item in enumerate(value):
            yield from _paths(item, (*prefix, i), depth - 1)


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("saved")
    result = Trainer(make_model(), interrupted_at(6), dataset(), config(out), {}).fit()
    assert result.interrupted
    return out


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_damage_to_the_trainer_state_resumes_or_is_one_input_error(tmp_path, saved_run, data):
    import shutil
    import tempfile

    run = Path(tempfile.mkdtemp(dir=tmp_path)) / "run"
    shutil.copytree(saved_run, run)
    path = run / "checkpoint" / "train" / "trainer_state.json"
    state = json.loads(path.read_text())
    where = data.draw(st.sampled_from([p for p in _paths(state) if p]))
    parent = state
    for key in where[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = data.draw(_JSON)
    path.write_text(json.dumps(state))
    trainer = Trainer(make_model(), noisy_mse, dataset(), config(run), {})
    try:
        result = trainer.fit(resume=True)
    except InputError as exc:
        assert str(path) in str(exc)
    else:
        assert result.step == 13
    finally:
        shutil.rmtree(run.parent)
