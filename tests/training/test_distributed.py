"""Two CPU processes under torchrun: sharded data, exact resume (slow: process start-up)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys, torch
    from torch import nn
    from synesthesia.training import Trainer, TrainerConfig

    out, mode = sys.argv[1], sys.argv[2]
    reductions = [0]  # all-reduces: the trainer's one collective per step
    _all_reduce = torch.distributed.all_reduce

    def counting_all_reduce(*args, **kwargs):
        reductions[0] += 1
        return _all_reduce(*args, **kwargs)

    torch.distributed.all_reduce = counting_all_reduce
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    data = torch.utils.data.TensorDataset(x, x @ torch.linspace(-1, 1, 4))
    calls = [0]

    def loss_fn(model, batch, gen):
        xb, yb = batch
        xb = xb + 0.05 * torch.randn(xb.shape, generator=gen, device=gen.device)
        calls[0] += 1
        if mode == "crash" and calls[0] == 8:
            raise RuntimeError("boom")
        return ((model(xb).squeeze(-1) - yb) ** 2).mean()

    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.1), nn.ReLU(), nn.Linear(16, 1))
    cfg = TrainerConfig(out_dir=out, batch_size=16, max_steps=12, lr=1e-2, warmup_steps=3,
                        mixed_precision="no", progress=False, log_every=1, checkpoint_every=5)
    trainer = Trainer(model, loss_fn, data, cfg, {})
    try:
        result = trainer.fit(resume=mode == "resume")
    except RuntimeError:
        sys.exit(0)
    if trainer.accelerator.is_main_process:
        json.dump({"losses": result.losses, "world": trainer.accelerator.num_processes,
                   "reductions": reductions[0]}, open(f"{out}/{mode}.json", "w"))
    """
)


def _torchrun(script, *args) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", script, *args]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)


@pytest.mark.slow
def test_two_processes_resume_exactly(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    full, part = tmp_path / "full", tmp_path / "part"
    _torchrun(script, str(full), "full")
    _torchrun(script, str(part), "crash")  # crashes in step 8; checkpoint of step 5 remains
    _torchrun(script, str(part), "resume")
    reference = json.loads((full / "full.json").read_text())
    resumed = json.loads((part / "resume.json").read_text())
    assert reference["world"] == 2
    assert len(reference["losses"]) == 12
    assert resumed["losses"] == reference["losses"][5:]
    assert (reference["reductions"], resumed["reductions"]) == (12, 7)  # one per step
    # the resumed log has the uninterrupted rows (wall-clock columns aside)
    assert _rows(part / "metrics.csv") == _rows(full / "metrics.csv")


def _rows(path) -> list[dict]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: v for k, v in r.items() if k not in ("elapsed_s", "items_per_s")} for r in rows]
