"""Contrastive losses against hand computations in float64."""

import math

import pytest
import torch

from synesthesia.multimodal.losses import LogitScale, contrastive_loss, info_nce, sigmoid_loss


def _unit(rows):
    out = []
    for r in rows:
        n = math.sqrt(sum(v * v for v in r))
        out.append([v / n for v in r])
    return out


A = _unit([[1.0, 0.0, 0.5], [0.2, 1.0, -0.3], [-0.4, 0.1, 1.0]])
B = _unit([[0.9, 0.1, 0.4], [0.0, 1.0, 0.0], [0.3, -0.2, 0.8]])
# the scale the module holds: 1 / 0.07 stored as a float32 parameter (checked separately below)
SCALE = LogitScale().double().scale.item()


def _hand_logits(scale, bias=0.0):
    return [
        [scale * sum(a * b for a, b in zip(A[i], B[j])) + bias for j in range(3)] for i in range(3)
    ]


def _log_softmax(values):
    m = max(values)
    lse = m + math.log(sum(math.exp(v - m) for v in values))
    return [v - lse for v in values]


def _tensors():
    return torch.tensor(A, dtype=torch.float64), torch.tensor(B, dtype=torch.float64)


def test_info_nce_equals_hand_computation():
    logits = _hand_logits(SCALE)
    rows = [-_log_softmax(logits[i])[i] for i in range(3)]
    cols = [-_log_softmax([logits[r][j] for r in range(3)])[j] for j in range(3)]
    expected = 0.5 * (sum(rows) / 3 + sum(cols) / 3)
    scale = LogitScale().double()
    a, b = _tensors()
    got = info_nce(scale(a, b))
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_info_nce_with_several_positives_equals_hand_computation():
    # row 0 matches columns 0 and 2 (e.g. two images of the spoken digit), column 2 rows 0 and 2
    mask = [[True, False, True], [False, True, False], [False, False, True]]
    logits = _hand_logits(SCALE)
    rows = []
    for i in range(3):
        lp = _log_softmax(logits[i])
        pos = [j for j in range(3) if mask[i][j]]
        rows.append(-sum(lp[j] for j in pos) / len(pos))
    cols = []
    for j in range(3):
        lp = _log_softmax([logits[r][j] for r in range(3)])
        pos = [i for i in range(3) if mask[i][j]]
        cols.append(-sum(lp[i] for i in pos) / len(pos))
    expected = 0.5 * (sum(rows) / 3 + sum(cols) / 3)
    a, b = _tensors()
    got = info_nce(LogitScale().double()(a, b), torch.tensor(mask))
    assert got.item() == pytest.approx(expected, rel=1e-12)
    # the identity mask gives the plain CLIP loss
    plain = info_nce(LogitScale().double()(a, b), torch.eye(3, dtype=torch.bool))
    assert plain.item() == pytest.approx(info_nce(LogitScale().double()(a, b)).item(), rel=1e-12)


def test_sigmoid_loss_equals_hand_computation():
    scale = LogitScale(10.0, init_bias=-10.0).double()
    logits = _hand_logits(scale.scale.item(), -10.0)  # SigLIP initialisation: scale 10, bias -10
    total = 0.0
    for i in range(3):
        for j in range(3):
            z = 1.0 if i == j else -1.0
            total += math.log(1 + math.exp(-z * logits[i][j]))  # -log sigmoid(z x)
    expected = total / 3
    a, b = _tensors()
    assert sigmoid_loss(scale(a, b)).item() == pytest.approx(expected, rel=1e-12)
    assert contrastive_loss(scale(a, b), kind="siglip").item() == pytest.approx(expected, rel=1e-12)


def test_logit_scale_starts_at_one_over_007_and_is_clamped_at_100():
    scale = LogitScale()
    assert scale.scale.item() == pytest.approx(1 / 0.07, rel=1e-6)
    with torch.no_grad():
        scale.log_scale.fill_(10.0)  # exp(10) ~ 22026
    assert scale.scale.item() == pytest.approx(100.0, rel=1e-6)
    a, b = _tensors()
    logits = scale.double()(a, b)
    assert logits.abs().max().item() <= 100.0 + 1e-9
    with pytest.raises(ValueError, match="init_scale"):
        LogitScale(200.0)


def test_loss_input_errors():
    with pytest.raises(ValueError, match="not square"):
        info_nce(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="every row and column"):
        info_nce(torch.zeros(2, 2), torch.tensor([[True, False], [True, False]]))
    with pytest.raises(ValueError, match="loss kind"):
        contrastive_loss(torch.zeros(2, 2), kind="triplet")


def test_perfect_alignment_drives_the_loss_to_zero():
    e = torch.eye(4, dtype=torch.float64)
    assert info_nce(100.0 * e @ e.t()).item() < 1e-12  # exp(-100) is below float64 resolution
    assert info_nce(0.0 * e).item() == pytest.approx(math.log(4))  # uniform logits: log(batch)
