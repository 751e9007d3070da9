"""Cross-modal retrieval metrics: Recall@K, mean and median rank, in both directions.

For a query (a row of the similarity matrix) the gallery is sorted by decreasing similarity; the
*rank* is the 1-based position of the first relevant item. Ties are counted against the query
(an irrelevant item scoring exactly as high as the best relevant one ranks before it), so a
constant similarity never looks good. ``R@K`` is the fraction of queries with rank <= K (as in
open_clip's ``get_clip_metrics``, which assumes one relevant item per query; here a query may have
several, e.g. every image of the digit a spoken word names).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def relevance_from_labels(query_labels: torch.Tensor, gallery_labels: torch.Tensor) -> torch.Tensor:
    """``Q x G`` boolean matrix: True where query and gallery item share a label."""
    q = torch.as_tensor(query_labels).reshape(-1, 1)
    g = torch.as_tensor(gallery_labels).reshape(1, -1)
    return q == g


def retrieval_ranks(similarity: torch.Tensor, relevant: torch.Tensor | None = None) -> torch.Tensor:
    """Rank (1-based) of the best relevant gallery item for each query row; ties pessimistic.

    ``relevant`` is a ``Q x G`` boolean matrix, or None for the diagonal (query i <-> item i).
    """
    sim = torch.as_tensor(similarity).detach().float().cpu()
    if sim.ndim != 2:
        raise ValueError(f"similarity must be Q x G, got shape {tuple(sim.shape)}")
    if relevant is None:
        if sim.shape[0] != sim.shape[1]:
            raise ValueError(f"similarity {tuple(sim.shape)} is not square: give relevant (Q x G)")
        relevant = torch.eye(sim.shape[0], dtype=torch.bool)
    relevant = torch.as_tensor(relevant).bool().cpu()
    if relevant.shape != sim.shape:
        raise ValueError(
            f"relevant {tuple(relevant.shape)} must match similarity {tuple(sim.shape)}"
        )
    missing = (~relevant.any(dim=1)).nonzero().flatten()
    if len(missing):
        raise ValueError(f"query rows {missing[:5].tolist()} have no relevant gallery item")
    best = sim.masked_fill(~relevant, float("-inf")).amax(dim=1, keepdim=True)
    return 1 + ((sim >= best) & ~relevant).sum(dim=1)


def retrieval_metrics(
    similarity: torch.Tensor,
    relevant: torch.Tensor | None = None,
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """``{"R@1": ..., "R@5": ..., "R@10": ..., "mean_rank": ..., "median_rank": ...}``."""
    ranks = retrieval_ranks(similarity, relevant).numpy()
    out = {f"R@{k}": float(np.mean(ranks <= k)) for k in ks}
    out["mean_rank"] = float(np.mean(ranks))
    out["median_rank"] = float(np.median(ranks))
    return out


def bidirectional_retrieval(
    emb_a: torch.Tensor,
    emb_b: torch.Tensor,
    relevant: torch.Tensor | None = None,
    names: tuple[str, str] = ("a", "b"),
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, dict[str, float]]:
    """Retrieval metrics a->b (queries from ``emb_a``) and b->a, on cosine similarity.

    ``relevant`` is ``len(a) x len(b)`` (None: item i of a matches item i of b).
    """
    if emb_a.ndim != 2 or emb_b.ndim != 2 or emb_a.shape[1] != emb_b.shape[1]:
        raise ValueError(
            f"embeddings must be N x D and M x D, got {tuple(emb_a.shape)} and {tuple(emb_b.shape)}"
        )
    sim = emb_a.float().cpu() @ emb_b.float().cpu().t()
    rel_t = None if relevant is None else torch.as_tensor(relevant).t()
    a, b = names
    return {
        f"{a}_to_{b}": retrieval_metrics(sim, relevant, ks),
        f"{b}_to_{a}": retrieval_metrics(sim.t(), rel_t, ks),
    }
