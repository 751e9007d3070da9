"""Contrastive losses over a similarity matrix: symmetric InfoNCE (CLIP) and sigmoid (SigLIP).

Both take *logits* ``Q x K`` (already scaled similarities of L2-normalised embeddings) and an
optional boolean ``positive_mask`` (``Q x K``, True where row i and column j belong together).
Without a mask the diagonal holds the pairs, as in CLIP. With a mask a row may have several
positives: the InfoNCE target is then spread uniformly over them (UniCL, Yang et al. 2022, eq. 3),
which is what a batch of spoken digits needs (every image of a seven matches "seven" equally).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from synesthesia.training.distributed import rank_and_size


def _check(logits: torch.Tensor, positive_mask: torch.Tensor | None) -> torch.Tensor:
    if logits.ndim != 2:
        raise ValueError(f"logits must be a 2-D similarity matrix, got shape {tuple(logits.shape)}")
    if positive_mask is None:
        if logits.shape[0] != logits.shape[1]:
            raise ValueError(
                f"logits of shape {tuple(logits.shape)} are not square: give positive_mask"
            )
        return torch.eye(logits.shape[0], dtype=torch.bool, device=logits.device)
    if positive_mask.shape != logits.shape:
        raise ValueError(
            f"positive_mask shape {tuple(positive_mask.shape)} != logits {tuple(logits.shape)}"
        )
    mask = positive_mask.bool()
    if not bool(mask.any(dim=1).all()) or not bool(mask.any(dim=0).all()):
        raise ValueError("positive_mask needs at least one positive in every row and column")
    return mask


def info_nce(logits: torch.Tensor, positive_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE: the mean of row-wise and column-wise cross-entropy (CLIP, Fig. 3).

    With several positives per row the target is uniform over them (UniCL, eq. 3).
    """
    mask = _check(logits, positive_mask)
    if positive_mask is None:
        target = torch.arange(logits.shape[0], device=logits.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
    m = mask.to(logits.dtype)
    rows = -(m / m.sum(1, keepdim=True) * F.log_softmax(logits, dim=1)).sum(1).mean()
    cols = -(m / m.sum(0, keepdim=True) * F.log_softmax(logits, dim=0)).sum(0).mean()
    return 0.5 * (rows + cols)


def sigmoid_loss(logits: torch.Tensor, positive_mask: torch.Tensor | None = None) -> torch.Tensor:
    """SigLIP's pairwise sigmoid loss: -(1/Q) sum_ij log sigmoid(z_ij * logits_ij), z = +-1.

    Zhai et al. 2023, "Sigmoid Loss for Language Image Pre-Training", Algorithm 1; ``logits``
    must already include the learnable scale and bias.
    """
    mask = _check(logits, positive_mask)
    signs = mask.to(logits.dtype) * 2 - 1
    return -F.logsigmoid(signs * logits).sum() / logits.shape[0]


class LogitScale(nn.Module):
    """A learnable logit scale ``exp(s)``, clamped at ``max_scale`` (CLIP: init 1/0.07, max 100).

    For the sigmoid loss it also carries the learnable bias (SigLIP: init scale 10, bias -10).
    """

    def __init__(
        self, init_scale: float = 1 / 0.07, max_scale: float = 100.0, init_bias: float | None = None
    ) -> None:
        super().__init__()
        if not 0 < init_scale <= max_scale:
            raise ValueError(f"init_scale must lie in (0, max_scale={max_scale}], got {init_scale}")
        self.log_scale = nn.Parameter(torch.tensor(math.log(init_scale)))
        self.max_log_scale = math.log(max_scale)
        self.bias = None if init_bias is None else nn.Parameter(torch.tensor(float(init_bias)))

    @property
    def scale(self) -> torch.Tensor:
        """``exp(min(s, log max_scale))``: the clamp keeps the scale at or under ``max_scale``."""
        return self.log_scale.clamp(max=self.max_log_scale).exp()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Scaled similarities ``scale * a @ b.T`` (+ bias) of two batches of unit vectors."""
        # float32 even under bf16 autocast: at scale 100, bf16 would round logits to +-0.5
        with torch.autocast(a.device.type, enabled=False):
            dtype = torch.promote_types(a.dtype, torch.float32)
            logits = self.scale.to(dtype) * a.to(dtype) @ b.to(dtype).t()
        return logits if self.bias is None else logits + self.bias


class _GatherWithGrad(torch.autograd.Function):
    """All ranks' equal-size rows in rank order; backward: the sum over ranks of the gradient
    of this rank's rows (every rank's loss reads every row)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        rank, size = rank_and_size()
        parts = [torch.empty_like(x) for _ in range(size)]
        torch.distributed.all_gather(parts, x.contiguous())
        ctx.rows = (rank * x.shape[0], (rank + 1) * x.shape[0])
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        grad = grad.contiguous().clone()
        torch.distributed.all_reduce(grad)  # sum over ranks of d(loss_r)/d(all rows)
        lo, hi = ctx.rows
        return grad[lo:hi]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """``x`` (B x D on each of P processes) concatenated in rank order (P*B x D), with
    gradients flowing back to every process's own rows; ``x`` itself in one process.

    The contrastive loss then sees every process's embeddings as negatives (as open_clip's
    ``gather_with_grad``). Each rank computes the same global loss; the gather's backward sums
    the ranks' gradients of their rows and DDP averages the parameters' gradients over
    ranks, so the result equals one process on the concatenated batch. Gathering without
    gradients would leave other ranks' rows as constants: a different, wrong gradient.
    Every rank must hold the same number of rows (the trainer's equal shards do).
    """
    _, size = rank_and_size()
    if size == 1:
        return x
    return _GatherWithGrad.apply(x)


def gather_labels(labels: torch.Tensor) -> torch.Tensor:
    """Every process's ``labels`` concatenated in rank order (no gradients), to build the
    positive mask of the gathered batch; ``labels`` itself in one process."""
    _, size = rank_and_size()
    if size == 1:
        return labels
    parts = [torch.empty_like(labels) for _ in range(size)]
    torch.distributed.all_gather(parts, labels.contiguous())
    return torch.cat(parts)


def gather_items(items):
    """Every process's batch ``items`` (a tensor, or a list such as caption strings)
    concatenated in rank order, without gradients: what a positive mask over the gathered
    batch is built from; ``items`` itself in one process."""
    _, size = rank_and_size()
    if size == 1:
        return items
    if isinstance(items, torch.Tensor):
        return gather_labels(items)
    parts: list = [None] * size
    torch.distributed.all_gather_object(parts, list(items))
    return [item for part in parts for item in part]


LOSSES = {"clip": info_nce, "siglip": sigmoid_loss}


def contrastive_loss(
    logits: torch.Tensor, positive_mask: torch.Tensor | None = None, kind: str = "clip"
) -> torch.Tensor:
    """``info_nce`` (kind "clip") or ``sigmoid_loss`` (kind "siglip") of ``logits``."""
    if kind not in LOSSES:
        raise ValueError(f"loss kind must be one of {sorted(LOSSES)}, got {kind!r}")
    return LOSSES[kind](logits, positive_mask)
