"""``training.distributed`` in one process: every helper returns its input (the multi-rank
behaviour is tested under torchrun in test_ddp.py)."""

from __future__ import annotations

import torch

from synesthesia.training import distributed


def test_one_process_agrees_with_itself():
    assert distributed.rank_and_size() == (0, 1)
    assert distributed.is_main_process()
    assert distributed.agree({"plan": [3, 4]}) == {"plan": [3, 4]}
    assert distributed.reduce_max(2) == 2.0
    distributed.barrier()  # nothing to wait for


def test_peer_failures_are_told_from_other_errors():
    dist_error = getattr(torch.distributed, "DistError", None)
    if dist_error is not None:
        assert distributed.is_peer_failure(dist_error("collective failed"))
    gloo = RuntimeError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer [1]")
    assert distributed.is_peer_failure(gloo)
    assert not distributed.is_peer_failure(RuntimeError("shape mismatch"))
    assert not distributed.is_peer_failure(ValueError("Connection closed by peer"))
