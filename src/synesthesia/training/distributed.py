"""Several processes (``accelerate launch`` / ``torchrun``): what every rank must agree on.

The engines start the processes and set ``RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR``;
accelerate's :class:`~accelerate.PartialState` (created by :func:`process_state`, as the
trainer's ``Accelerator`` does) joins the process group: NCCL on GPUs, gloo on CPUs. Nothing
here launches a process.

Decisions one rank takes alone would split a run: "auto" precision is measured per process,
a time budget is planned from a step time each process measures on its own clock. These
helpers make the ranks take one decision: :func:`agree` (rank 0's value for everyone),
:func:`reduce_max` (the slowest rank's number). With one process they return their input.
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch

T = TypeVar("T")


class PeerFailedError(RuntimeError):
    """Another process of a multi-process run failed (or died); this one stops too.

    Not an input error: the failing process prints its own traceback; this one says which
    process failed, at which step, and that the last checkpoint is intact.
    """


def process_state():
    """accelerate's process state (joins the process group when launched with several)."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def leave_process_group() -> None:
    """Leave the process group at the end of a multi-process command (nothing to do alone).

    Exiting with a gloo group still open lets its threads be torn down by the interpreter's
    exit, which aborts now and then ("terminate called without an active exception", exit
    -6): each rank destroys its group before it exits.
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_and_size() -> tuple[int, int]:
    """``(rank, number of processes)``; ``(0, 1)`` outside a process group."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """True on rank 0 (and in a single process): the one that writes files and prints."""
    return rank_and_size()[0] == 0


def barrier() -> None:
    """Wait until every rank gets here (nothing to wait for in one process)."""
    if rank_and_size()[1] > 1:
        torch.distributed.barrier()


def agree(value: T) -> T:
    """Rank 0's ``value`` on every rank (any picklable object); ``value`` itself alone."""
    rank, size = rank_and_size()
    if size == 1:
        return value
    box: list[Any] = [value if rank == 0 else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def reduce_max(value: float) -> float:
    """The largest ``value`` over all ranks (the slowest rank's step time, say)."""
    rank, size = rank_and_size()
    if size == 1:
        return float(value)
    device = _collective_device()
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return float(t.item())


def is_peer_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective that failed because another process went away."""
    dist_error = getattr(torch.distributed, "DistError", None)
    if dist_error is not None and isinstance(exc, dist_error):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        s in text for s in ("Connection closed by peer", "Connection reset by peer", "[gloo")
    )


def _collective_device() -> torch.device:
    backend = torch.distributed.get_backend()
    if backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
