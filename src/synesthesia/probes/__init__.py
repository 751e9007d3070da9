"""The brain's paradigms run on trained networks, and the brain's models fitted to their reports.

Depends on :mod:`synesthesia.brain` (paradigms, trial tables, likelihood fitting), on
:mod:`synesthesia.nets` (the networks) and on the training helpers; nothing depends on it.

- :mod:`~synesthesia.probes.runner`: responders, :func:`run_paradigm` (trial tables the brain's
  fitting takes) and :func:`fit_models` (causal inference per strategy, forced fusion, full
  segregation; BIC);
- :mod:`~synesthesia.probes.population`: population-coded encodings of a position;
- :mod:`~synesthesia.probes.ventriloquist`: a localisation network trained on causal-inference
  scenes, probed with the Koerding et al. 2007 design;
- :mod:`~synesthesia.probes.plots`: figures (``ax=`` in, ``ax`` returned).
"""

from synesthesia.probes.runner import (
    MODELS,
    ModelComparison,
    ObserverResponder,
    Responder,
    Responses,
    fit_models,
    nearest_level,
    run_paradigm,
)

__all__ = [
    "MODELS",
    "ModelComparison",
    "ObserverResponder",
    "Responder",
    "Responses",
    "fit_models",
    "nearest_level",
    "run_paradigm",
]
