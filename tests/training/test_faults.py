"""Fault tests: a real signal (SIGINT, SIGTERM, or two Ctrl-C) sent to a real training process
at a step drawn by a seeded RNG; the resumed run must equal the uninterrupted one in its
weights, optimizer state and metrics.csv (wall-clock columns aside)."""

from __future__ import annotations

import csv
import json
import random
import runpy
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# The child trains a tiny MLP once per run folder given; before each loss it prints
# "run <i> step <n>" and waits for a line on stdin, so the parent can deliver its signal while
# that step is under way. One child serves every case (starting torch costs seconds).
CHILD = textwrap.dedent(
    """
    import json, sys
    import torch
    from torch import nn
    from synesthesia.training import Trainer, TrainerConfig

    MAX_STEPS = 24

    def build(out, gate=None):
        torch.manual_seed(1)
        model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.1), nn.ReLU(), nn.Linear(16, 1))
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, 4, generator=g)
        data = torch.utils.data.TensorDataset(x, x @ torch.linspace(-1, 1, 4))
        calls = [0]

        def loss_fn(model, batch, gen):
            calls[0] += 1
            if gate is not None:
                gate(calls[0])
            xb, yb = batch
            xb = xb + 0.05 * torch.randn(xb.shape, generator=gen, device=gen.device)
            err = model(xb).squeeze(-1) - yb
            return (err**2).mean(), {"abs_err": float(err.detach().abs().mean())}

        def eval_fn(ema_model, step, out_dir):
            torch.rand(7)  # consumes the global RNG
            return {"w": float(sum(p.sum() for p in ema_model.parameters()))}

        cfg = TrainerConfig(out_dir=out, batch_size=16, max_steps=MAX_STEPS, lr=1e-2,
                            warmup_steps=3, mixed_precision="no", progress=False, log_every=5,
                            checkpoint_every=1000, eval_every=7, ema_decay=0.9)
        return Trainer(model, loss_fn, data, cfg, {"kind": "mlp"}, eval_fn=eval_fn)

    if __name__ == "__main__":
        results = []
        for i, out in enumerate(sys.argv[2:]):
            def gate(n, i=i):
                print(f"run {i} step {n}", flush=True)
                sys.stdin.readline()

            result = build(out, gate).fit()
            results.append({"step": result.step, "stopped": result.stopped,
                            "exit_code": result.exit_code})
        with open(sys.argv[1], "w") as handle:
            json.dump(results, handle)
    """
)

WALL_CLOCK = ("elapsed_s", "items_per_s")
FILES = (
    "model.safetensors",
    "config.json",
    "train/model.safetensors",
    "train/optimizer.safetensors",
    "train/optimizer.json",
)


def _log(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in reader]
        return list(reader.fieldnames or []), rows


def _state(folder: Path) -> dict:
    state = json.loads((folder / "checkpoint/train/trainer_state.json").read_text())
    state.pop("elapsed_s")
    state["config"].pop("out_dir")
    return state


CASES = {  # name: (signal, presses)
    "sigint": (signal.SIGINT, 1),
    "sigterm": (signal.SIGTERM, 1),
    "sigint-twice": (signal.SIGINT, 2),
}


@pytest.fixture(scope="module")
def child(tmp_path_factory) -> tuple[Path, dict]:
    script = tmp_path_factory.mktemp("child") / "child.py"
    script.write_text(CHILD)
    return script, runpy.run_path(str(script))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, child) -> Path:
    out = tmp_path_factory.mktemp("reference")
    result = child[1]["build"](str(out)).fit()
    assert result.step == child[1]["MAX_STEPS"]
    return out


def _target_steps(n: int, max_steps: int) -> list[int]:
    """``n`` different steps to interrupt, drawn by a seeded RNG: inside a log window
    (log_every 5) and off the evaluation steps (eval_every 7)."""
    candidates = [s for s in range(2, max_steps - 1) if s % 5 and s % 7]
    return random.Random(20260215).sample(candidates, n)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, child) -> dict[str, tuple[Path, int, dict]]:
    """Every case run by one child process: {name: (run folder, target step, result)}."""
    script, module = child
    root = tmp_path_factory.mktemp("interrupted")
    names = list(CASES)
    outs = [root / name for name in names]
    targets = _target_steps(len(names), module["MAX_STEPS"])
    report = root / "results.json"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(report), *map(str, outs)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    try:
        for line in proc.stdout:
            if not line.startswith("run "):
                continue
            _, i, _, n = line.split()
            sig, presses = CASES[names[int(i)]]
            if int(n) == targets[int(i)]:
                proc.send_signal(sig)
                if presses == 2:  # the second press once the first was handled
                    for echo in proc.stdout:
                        if "received" in echo:
                            break
                    proc.send_signal(sig)
                    continue  # it stops at once: no line is read from stdin any more
            proc.stdin.write("go\n")
            proc.stdin.flush()
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, proc.stderr.read()
    results = json.loads(report.read_text())
    return {n: (o, t, r) for n, o, t, r in zip(names, outs, targets, results, strict=True)}


@pytest.mark.parametrize("name", list(CASES))
def test_signal_at_a_random_step_then_resume_equals_the_uninterrupted_run(
    child, reference, interrupted, name
):
    module = child[1]
    out, at, stopped = interrupted[name]
    presses = CASES[name][1]
    # one press finishes the step under way; a second abandons it (state after step at - 1)
    assert stopped == {
        "step": at if presses == 1 else at - 1,
        "stopped": "interrupted",
        "exit_code": 130,
    }
    result = module["build"](str(out)).fit(resume=True)
    assert (result.step, result.stopped) == (module["MAX_STEPS"], "max_steps")
    for file in FILES:
        ours, theirs = out / "checkpoint" / file, reference / "checkpoint" / file
        assert ours.read_bytes() == theirs.read_bytes(), file
    assert _state(out) == _state(reference)  # step, epoch, position, RNG streams, log window
    assert _log(out / "metrics.csv") == _log(reference / "metrics.csv")
