"""The parameter specification of a fit: which parameters are free, fixed or tied, their bounds,
start values and the transform to the optimiser's unbounded coordinates.

One :class:`ParameterSpec` serves the whole fit (bcitoolbox style: named fixed and free
parameters): the search runs in transformed coordinates ``z`` (:meth:`ParameterSpec.from_z`), the
standard errors differentiate in natural units through the same assembly
(:meth:`ParameterSpec.complete`), so there is one copy of the transform.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from synesthesia.brain.trials import Trials
from synesthesia.errors import InputError, check_finite, short

PARAMETERS = ("sigma_v", "sigma_a", "sigma_p", "mu_p", "p_common", "lapse", "sigma_motor")
FREE_BY_DEFAULT = ("sigma_v", "sigma_a", "sigma_p", "mu_p", "p_common")
# the fit refuses values further than this factor from the stimulus range (float64 grids and
# Gaussians overflow long before 1e308, and no experiment needs them)
RANGE_FACTOR = 1e6


@dataclass(frozen=True)
class Transform:
    """A map between a parameter's natural value v and the optimiser's coordinate z."""

    name: str
    to_z: Callable[[float], float]
    from_z: Callable[[torch.Tensor], torch.Tensor]


LOG = Transform("log", math.log, torch.exp)  # positive parameters
LOGIT = Transform("logit", lambda v: math.log(v / (1.0 - v)), torch.sigmoid)  # probabilities
IDENTITY = Transform("identity", lambda v: v, lambda z: z)
TRANSFORMS = {
    "sigma_v": LOG,
    "sigma_a": LOG,
    "sigma_p": LOG,
    "sigma_motor": LOG,
    "mu_p": IDENTITY,
    "p_common": LOGIT,
    "lapse": IDENTITY,  # may be 0: bounded search in natural units
}


def _scale(trials: Trials) -> tuple[float, float]:
    lo, hi = float(trials.stimuli.min()), float(trials.stimuli.max())
    return max(hi - lo, 1e-6), 0.5 * (lo + hi)


def default_bounds(trials: Trials) -> dict[str, tuple[float, float]]:
    """Search bounds scaled to the stimulus range of a trial table."""
    scale, mid = _scale(trials)
    return {
        "sigma_v": (0.01 * scale, 5.0 * scale),
        "sigma_a": (0.01 * scale, 5.0 * scale),
        "sigma_p": (0.05 * scale, 50.0 * scale),
        "mu_p": (mid - scale, mid + scale),
        "p_common": (1e-4, 1.0 - 1e-4),
        "lapse": (0.0, 0.5),
        "sigma_motor": (0.005 * scale, 2.0 * scale),
    }


def limits(trials: Trials) -> dict[str, tuple[float, float]]:
    """The widest values a fit of this table accepts (fixed, start or bound), per parameter."""
    scale, mid = _scale(trials)
    wide = RANGE_FACTOR * scale
    sigma = (scale / RANGE_FACTOR, wide)
    return {
        "sigma_v": sigma,
        "sigma_a": sigma,
        "sigma_p": sigma,
        "mu_p": (mid - wide, mid + wide),
        "p_common": (0.0, 1.0),
        "lapse": (0.0, 1.0),
        "sigma_motor": (0.0, wide),
    }


def default_start(trials: Trials) -> dict[str, float]:
    """The first start of the search, scaled to the stimulus range."""
    scale, _ = _scale(trials)
    return {
        "sigma_v": 0.1 * scale,
        "sigma_a": 0.3 * scale,
        "sigma_p": 0.6 * scale,
        "mu_p": float(trials.stimuli.mean()),
        "p_common": 0.5,
        "lapse": 0.02,
        "sigma_motor": 0.05 * scale,
    }


def _known(name: str, what: str) -> str:
    if name not in PARAMETERS:
        raise InputError(
            f"{what}: unknown parameter {short(name)}; parameters are {', '.join(PARAMETERS)}"
        )
    return name


def check_value(name: str, value: object, allowed: tuple[float, float], what: str) -> float:
    """``value`` as a float valid for parameter ``name`` and inside ``allowed``; else InputError."""
    v = check_finite(value, f"{what}: {name}")
    if name in ("sigma_v", "sigma_a", "sigma_p") and v <= 0:
        raise InputError(f"{what}: {name}: a noise parameter must be > 0, got {v:g}")
    if name == "sigma_motor" and v < 0:
        raise InputError(f"{what}: sigma_motor: must be >= 0, got {v:g}")
    if name in ("p_common", "lapse") and not 0.0 <= v <= 1.0:
        raise InputError(f"{what}: {name}: a probability must be in [0, 1], got {v:g}")
    lo, hi = allowed
    if not lo <= v <= hi and not (name == "sigma_motor" and v == 0.0):
        raise InputError(
            f"{what}: {name}={v:g} is outside the range this table's fit can use "
            f"[{lo:.3g}, {hi:.3g}] ({RANGE_FACTOR:g} times the stimulus range)"
        )
    return v


@dataclass(frozen=True)
class ParameterSpec:
    """Free, fixed and tied parameters with bounds, starts and transforms (see module doc).

    ``free``: names the search estimates, in :data:`PARAMETERS` order; ``fixed``: held values;
    ``tied``: name -> the free or fixed parameter whose value it shares; ``bounds`` (natural
    units) and ``start`` cover every free parameter.
    """

    free: tuple[str, ...]
    fixed: dict[str, float]
    tied: dict[str, str] = field(default_factory=dict)
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    start: dict[str, float] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        trials: Trials,
        *,
        fixed: dict[str, float] | None = None,
        free: Sequence[str] | None = None,
        tied: dict[str, str] | None = None,
        start: dict[str, float] | None = None,
        bounds: dict[str, tuple[float, float]] | None = None,
        continuous: bool = False,
    ) -> ParameterSpec:
        """The specification for a table, defaults completed and every entry checked.

        Free by default: sigma_v, sigma_a, sigma_p, mu_p, p_common (and sigma_motor for
        continuous responses); fixed by default: lapse = 0 (and sigma_motor = 0 for buttons).
        A name the caller lists in ``fixed``, ``free`` or ``tied`` overrides its default; a name
        in two of them is an error.
        """
        allowed = limits(trials)
        user_fixed = {
            _known(k, "fixed"): check_value(k, v, allowed[k], "fixed")
            for k, v in (fixed or {}).items()
        }
        user_free = [_known(k, "free") for k in (free or ())]
        user_tied = {_known(k, "tied"): _known(t, "tied") for k, t in (tied or {}).items()}
        given = {"fixed": user_fixed, "free": user_free, "tied": user_tied}
        for name in PARAMETERS:
            said = [what for what, names in given.items() if name in names]
            if len(said) > 1:
                raise InputError(f"{name}: given as both {said[0]} and {said[1]}; choose one")
        defaults_free = set(FREE_BY_DEFAULT) | ({"sigma_motor"} if continuous else set())
        mentioned = set(user_fixed) | set(user_free) | set(user_tied)
        fixed_all = dict(user_fixed)
        if "lapse" not in mentioned:
            fixed_all["lapse"] = 0.0
        if not continuous and "sigma_motor" not in mentioned:
            fixed_all["sigma_motor"] = 0.0
        free_set = set(user_free) | (defaults_free - mentioned)
        free_names = tuple(p for p in PARAMETERS if p in free_set)
        if not free_names:
            raise InputError("no free parameters: free at least one (fixed and tied cover all)")
        for k, target in user_tied.items():
            if target == k or target in user_tied:
                raise InputError(f"tied: {k} is tied to {target}, which is itself tied")
            if target not in free_names and target not in fixed_all:
                raise InputError(f"tied: {k} is tied to {target}, which is neither free nor fixed")
            if TRANSFORMS[k] is not TRANSFORMS[target]:
                same = [p for p in PARAMETERS if TRANSFORMS[p] is TRANSFORMS[k] and p != k]
                raise InputError(
                    f"tied: {k} can share a value only with a parameter of its kind "
                    f"({', '.join(same) or 'none'}), not {target}"
                )
            if target in fixed_all:
                check_value(k, fixed_all[target], allowed[k], "tied")
        bnd = default_bounds(trials)
        for k, b in (bounds or {}).items():
            _known(k, "bounds")
            try:
                lo, hi = (check_value(k, v, allowed[k], "bounds") for v in b)
            except (TypeError, ValueError):
                raise InputError(f"bounds: {k} needs (low, high), got {short(b)}") from None
            if not lo < hi:
                raise InputError(f"bounds: {k} needs low < high, got ({lo:g}, {hi:g})")
            bnd[k] = (lo, hi)
        init = default_start(trials)
        for k, v in (start or {}).items():
            init[_known(k, "start")] = check_value(k, v, allowed[k], "start")
        for k in free_names:  # a start strictly inside its bounds (transforms need it)
            lo, hi = bnd[k]
            init[k] = min(max(init[k], lo + 1e-9 * (hi - lo)), hi - 1e-9 * (hi - lo))
            if TRANSFORMS[k] is LOG and lo <= 0:
                bnd[k] = (max(lo, 1e-12), hi)
        return cls(
            free_names,
            fixed_all,
            user_tied,
            {k: bnd[k] for k in free_names},
            {k: init[k] for k in free_names},
        )

    @property
    def n_free(self) -> int:
        """Number of free parameters."""
        return len(self.free)

    def z_bounds(self) -> list[tuple[float, float]]:
        """Bounds of the free parameters in the optimiser's coordinates."""
        return [tuple(TRANSFORMS[k].to_z(v) for v in self.bounds[k]) for k in self.free]

    def to_z(self, values: dict[str, float]) -> np.ndarray:
        """Free parameters' natural values -> optimiser coordinates."""
        return np.array([TRANSFORMS[k].to_z(float(values[k])) for k in self.free])

    def from_z(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Optimiser coordinates -> the free parameters' natural values (tensors)."""
        return {k: TRANSFORMS[k].from_z(z[i]) for i, k in enumerate(self.free)}

    def complete(self, free_values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every parameter of the observer: the free values given, fixed values, tied copies."""
        params = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in free_values.items()}
        for k, v in self.fixed.items():
            params[k] = torch.tensor(v, dtype=torch.float64)
        for k, target in self.tied.items():
            params[k] = params[target]
        return {k: params[k] for k in PARAMETERS}

    def params_at(self, z: np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
        """Every parameter at optimiser coordinates ``z``."""
        return self.complete(self.from_z(torch.as_tensor(z, dtype=torch.float64)))

    def start_points(self, n_starts: int, seed: int) -> list[np.ndarray]:
        """The first start from ``start``; the others jittered around it within the bounds:
        a factor 3 for log-scale parameters, +-1.5 logits for p_common, +-20 % of the bound
        range otherwise (random with ``seed``)."""
        zb = np.array(self.z_bounds())
        first = self.to_z(self.start)
        width = np.array(
            [
                {"log": math.log(3.0), "logit": 1.5}.get(TRANSFORMS[k].name, 0.2 * (hi - lo))
                for k, (lo, hi) in zip(self.free, zb)
            ]
        )
        rng = np.random.default_rng(seed)
        starts = [first]
        for _ in range(n_starts - 1):
            jitter = width * rng.uniform(-1.0, 1.0, len(self.free))
            starts.append(np.clip(first + jitter, zb[:, 0] + 1e-9, zb[:, 1] - 1e-9))
        return starts

    def at_bound(self, z: np.ndarray) -> tuple[str, ...]:
        """The free parameters whose estimate ``z`` sits on a bound."""
        return tuple(
            k
            for k, zi, (lo, hi) in zip(self.free, z, self.z_bounds())
            if min(abs(zi - lo), abs(zi - hi)) < 1e-6 * (1 + abs(zi))
        )
