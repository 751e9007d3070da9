"""Simulated trial tables: Monte Carlo of an observer, independent of the quadrature likelihood.

Paradigms, parameter recovery and the tests draw their trial tables here; :mod:`fitting` only
fits them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from synesthesia.brain.causal_inference import CausalInference
from synesthesia.brain.trials import Trials


def simulate_trials(
    model: CausalInference,
    conditions: np.ndarray,
    n_per_condition: int,
    strategy: str = "averaging",
    levels: Sequence[float] | None = None,
    report: Sequence[int] = (0, 1),
    unity: bool = False,
    seed: int = 0,
) -> Trials:
    """Simulate ``n_per_condition`` trials of each stimulus row of ``conditions`` (C, N).

    ``report``: the modalities whose (button, with ``levels``) responses the table keeps;
    ``unity``: also keep the one-cause reports. Drawn by :meth:`CausalInference.simulate`.
    """
    cond = np.asarray(conditions, dtype=float)
    g = torch.Generator().manual_seed(int(seed))
    sim = model.simulate(cond, n_per_condition, strategy, g, levels=levels)
    stimuli = np.repeat(cond, n_per_condition, axis=0)
    rep = tuple(report)
    responses = sim["responses"].reshape(-1, cond.shape[1])[:, list(rep)] if rep else None
    u = sim["unity"].reshape(-1) if unity else None
    return Trials(stimuli, responses, rep, u, source="simulated")
