"""Retrieval metrics on hand-built similarity matrices."""

import pytest
import torch

from synesthesia.multimodal.retrieval import (
    bidirectional_retrieval,
    relevance_from_labels,
    retrieval_metrics,
    retrieval_ranks,
)


def test_ranks_and_recall_on_a_hand_built_matrix():
    # the true item of query i is column i; its rank is read off by hand
    sim = torch.tensor(
        [
            [0.9, 0.1, 0.2, 0.0],  # column 0 is the best: rank 1
            [0.8, 0.3, 0.5, 0.4],  # 0.8, 0.5, 0.4 beat 0.3: rank 4
            [0.1, 0.7, 0.6, 0.2],  # 0.7 beats 0.6: rank 2
            [0.4, 0.4, 0.4, 0.4],  # all tied: pessimistic, rank 4
        ]
    )
    assert retrieval_ranks(sim).tolist() == [1, 4, 2, 4]
    m = retrieval_metrics(sim, ks=(1, 2, 5))
    assert m == {"R@1": 0.25, "R@2": 0.5, "R@5": 1.0, "mean_rank": 2.75, "median_rank": 3.0}


def test_several_relevant_items_use_the_best_ranked_one():
    sim = torch.tensor([[0.1, 0.9, 0.5, 0.3], [0.2, 0.1, 0.3, 0.8]])
    rel = relevance_from_labels(torch.tensor([7, 3]), torch.tensor([7, 1, 7, 2]))
    assert rel.tolist() == [[True, False, True, False], [False, False, False, False]]
    with pytest.raises(ValueError, match="no relevant"):
        retrieval_ranks(sim, rel)
    rel = relevance_from_labels(torch.tensor([7, 3]), torch.tensor([7, 3, 7, 2]))
    # query 0: relevant 0.1 and 0.5, only 0.9 above 0.5 -> rank 2; query 1: 0.1 under 3 others
    assert retrieval_ranks(sim, rel).tolist() == [2, 4]


def test_bidirectional_uses_the_transpose():
    a = torch.eye(3)
    b = torch.tensor([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])  # items 1 and 2 swapped
    out = bidirectional_retrieval(a, b, names=("image", "text"))
    assert out["image_to_text"]["R@1"] == pytest.approx(1 / 3)
    assert out["text_to_image"]["R@1"] == pytest.approx(1 / 3)
    rel = torch.tensor([[True, False, False], [False, False, True], [False, True, False]])
    out = bidirectional_retrieval(a, b, rel, names=("image", "text"))
    assert out["image_to_text"]["R@1"] == out["text_to_image"]["R@1"] == 1.0
    # a non-symmetric relevance: query rows of b->a are columns of a->b
    rel = torch.tensor([[True, True, False], [False, False, True], [False, False, True]])
    out = bidirectional_retrieval(a, b, rel)
    assert out["a_to_b"]["R@1"] == pytest.approx(2 / 3)  # a2 wants b2 only, but b1 scores 1 > 0
    assert out["b_to_a"]["R@1"] == pytest.approx(2 / 3)  # b1 wants a0 only, but a2 scores 1 > 0
