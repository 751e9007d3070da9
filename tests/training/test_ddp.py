"""Several processes (issue 12): two CPU ranks under torchrun (gloo) against one process.

Each test starts ``torchrun --nproc_per_node 2`` on tests/training/ddp_worker.py (about 10 s
on 2 cores: two interpreters importing torch). The single-process reference runs the same
worker without torchrun.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("ddp_worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _run(*args: str, processes: int = 2, check: bool = True) -> subprocess.CompletedProcess:
    if processes == 1:
        cmd = [sys.executable, str(WORKER), *args]
    else:
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
            "--master_port", str(29_500 + os.getpid() % 1000), str(WORKER), *args,
        ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=ENV)
    if check and done.returncode != 0:
        raise AssertionError(f"{cmd} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path)


def _assert_close(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0, msg=k)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, torch.Tensor]:
    """Raw and EMA weights of one process after 6 steps of the global batch of 8."""
    out = tmp_path_factory.mktemp("single")
    _run("train", str(out), processes=1)
    return _weights(out / "train-rank0.safetensors")


@pytest.mark.parametrize("accumulation", [1, 2])
def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path, reference, accumulation):
    _run("train", str(tmp_path), str(accumulation))
    rank0 = _weights(tmp_path / "train-rank0.safetensors")
    rank1 = _weights(tmp_path / "train-rank1.safetensors")
    # each rank saw 4 (or 2 x 2) of every 8 items; averaged gradients = the global batch's
    _assert_close(rank0, reference, atol=1e-5)
    # the weights and the EMA are the same on every rank
    _assert_close(rank1, rank0, atol=0)
    summary = json.loads((tmp_path / "train-rank0.json").read_text())
    assert summary == {"step": 6, "stopped": "max_steps", "world": 2}
    # only rank 0 writes: rank 1's own run folder was never created
    assert (tmp_path / "run" / "checkpoint" / "model.safetensors").is_file()
    assert not (tmp_path / "run-rank1").exists()


def test_an_identical_step_count_is_not_enough_to_pass(reference):
    """The comparison above can fail: 6 steps of another global batch order differ."""
    other = {k: v + 1e-3 for k, v in reference.items() if k.startswith("raw.")}
    with pytest.raises(AssertionError):
        _assert_close(other, {k: reference[k] for k in other}, atol=1e-5)


def test_a_stopped_two_process_run_resumes_exactly(tmp_path, reference):
    stopped = _run("interrupt", str(tmp_path))
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    for rank in (0, 1):  # rank 1 asked; the step's collective stopped both at step 3
        summary = json.loads((tmp_path / f"interrupt-rank{rank}.json").read_text())
        assert summary["step"] == 3 and summary["stopped"] == "interrupted"
    _run("resume", str(tmp_path))
    resumed = _weights(tmp_path / "resume-rank0.safetensors")
    _assert_close(resumed, reference, atol=1e-5)


def test_a_failing_rank_stops_the_others_clearly_and_keeps_the_checkpoint(tmp_path):
    from synesthesia.training import read_run_state

    done = _run("fail", str(tmp_path), check=False)
    assert done.returncode != 0  # torchrun reports the failed rank
    assert "rank 1 fails on purpose in step 4" in done.stderr  # rank 1's own traceback
    message = (tmp_path / "rank0_error.txt").read_text()
    assert message.startswith("PeerFailedError: process 0 of 2: another process stopped")
    assert "at step 4" in message and "step 2) is intact" in message
    state = read_run_state(tmp_path / "run")
    assert state["step"] == 2 and state["num_processes"] == 2


def test_the_gathered_contrastive_loss_and_gradients_equal_one_process(tmp_path):
    _run("contrastive", str(tmp_path))
    _run("contrastive", str(tmp_path / "single"), processes=1)
    single = _weights(tmp_path / "single" / "contrastive-rank0.safetensors")
    for rank in (0, 1):
        got = _weights(tmp_path / f"contrastive-rank{rank}.safetensors")
        _assert_close(got, single, atol=1e-6)


def test_gathering_without_gradients_would_give_other_gradients():
    """The pitfall the gather avoids: other ranks' rows as constants change the gradient."""
    from synesthesia.multimodal.losses import LogitScale, info_nce

    g = torch.Generator().manual_seed(3)
    images, texts = torch.randn(8, 5, generator=g), torch.randn(8, 6, generator=g)
    torch.manual_seed(4)
    a_net, b_net, scale = torch.nn.Linear(5, 4), torch.nn.Linear(6, 4), LogitScale(10.0)

    def grads(detach_other_half: bool) -> torch.Tensor:
        a_net.zero_grad()
        a = torch.nn.functional.normalize(a_net(images), dim=-1)
        b = torch.nn.functional.normalize(b_net(texts), dim=-1)
        if detach_other_half:  # rank 0's view after a gather without gradients
            a = torch.cat([a[:4], a[4:].detach()])
            b = torch.cat([b[:4], b[4:].detach()])
        info_nce(scale(a, b)).backward()
        return a_net.weight.grad.clone()

    assert not torch.allclose(grads(False), grads(True), atol=1e-4)
