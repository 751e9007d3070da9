"""Quadrature against Monte Carlo where a threshold on p(C=1|x) matters, and the room's arrows."""

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from synesthesia.brain import koerding_observer
from synesthesia.brain.quadrature import TOLERANCE

BRAIN = Path(__file__).parents[2] / "src" / "synesthesia" / "brain"
STIMULI = np.array([[0.0, 0.0], [5.0, -5.0], [10.0, 10.0]])


@pytest.fixture(scope="module")
def posterior_samples():
    """p(C=1|x) of 400,000 simulated measurements per stimulus (p_common 0.7): the reference."""
    m = koerding_observer(p_common=0.7)
    sim = m.simulate(STIMULI, 400_000, "averaging", torch.Generator().manual_seed(7))
    return m, sim["posterior_common"]


def _agree(quad, mc, n):
    se = np.sqrt(np.maximum(mc * (1 - mc), 1e-6) / n)
    return np.abs(quad - mc) <= 4 * se + TOLERANCE


@pytest.mark.parametrize("criterion", [0.3, 0.6, 0.7, 0.8, 0.82])
def test_unity_reports_near_the_largest_posterior_match_monte_carlo(posterior_samples, criterion):
    # the largest posterior these measurements reach is about 0.84: at criterion 0.8 only a
    # small region of x lies above it (the grid of 4 nodes per sigma gave 0.0015 for 0.0081)
    m, post = posterior_samples
    mc = (post > criterion).mean(1)
    quad = m.unity_probability(STIMULI, "averaging", criterion=criterion)
    assert np.all(_agree(quad, mc, post.shape[1])), (criterion, quad, mc)


@pytest.mark.parametrize("criterion", [0.3, 0.5, 0.8])
def test_selection_uses_the_reports_criterion(posterior_samples, criterion):
    # selection picks the common cause when p(C=1|x) > criterion, and reports unity with it
    m, post = posterior_samples
    mc = (post > criterion).mean(1)
    quad = m.unity_probability(STIMULI, "selection", criterion=criterion)
    assert np.all(_agree(quad, mc, post.shape[1])), (criterion, quad, mc)


def test_selection_buttons_follow_the_criterion():
    # the localisation reports of a selection observer with criterion 0.8 against Monte Carlo
    m = koerding_observer(p_common=0.7)
    lv = np.array([-10.0, -5.0, 0.0, 5.0, 10.0])
    cond = np.array([[0.0, 0.0], [-5.0, 5.0]])
    p = m.response_probabilities(cond, lv, "selection", report="auditory", criterion=0.8)
    n = 100_000
    g = torch.Generator().manual_seed(3)
    sim = m.simulate(cond, n, "selection", g, levels=lv, criterion=0.8)
    idx = np.abs(sim["responses"][..., 1, None] - lv).argmin(-1)
    mc = np.stack([np.bincount(idx[c], minlength=lv.size) / n for c in range(len(cond))])
    assert np.all(np.abs(p - mc) <= 4 * np.sqrt(p * (1 - p) / n) + TOLERANCE), (p, mc)
    # and the criterion matters: at 0.5 the auditory reports are pulled toward vision
    p5 = m.response_probabilities(cond, lv, "selection", report="auditory", criterion=0.5)
    assert np.abs(p5 - p).max() > 0.05


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_the_rooms_arrows_point_one_way():
    # closed_forms <- quadrature <- causal_inference: no cycle, no private name across modules
    assert not {m for m in _imports(BRAIN / "closed_forms.py") if m.startswith("synesthesia.")} - {
        "synesthesia.errors"
    }
    assert "synesthesia.brain.causal_inference" not in _imports(BRAIN / "quadrature.py")
    for path in BRAIN.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("synesthesia"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, (path.name, node.module, private)
            if isinstance(node, ast.Attribute) and node.attr == "_log_odds":
                raise AssertionError(f"{path.name} calls the private _log_odds")
        if path.name != "fitting.py":
            assert (
                "simulate_trials"
                not in {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
                or path.name == "simulation.py"
            )
