"""The sound-induced flash illusion on a trained network (Shams et al. 2000, 2005).

Stimuli: a trial is a window of ``bins`` time steps. Each event (a flash, a beep) is a Gaussian
pulse in its stream: the visual kernel is wide (vision resolves rapid events poorly), the
auditory kernel narrow, and each stream carries white Gaussian noise (the visual noise level is
a knob of every trial, as stimulus contrast is). On a *congruent* scene one cause makes both
streams: the same number of events at the same times. On an *incongruent* scene (fraction
``p_incongruent`` of training) the counts (1..max_count, uniform) and times are independent.
The network (an MLP) reports the number of flashes and the number of beeps (cross-entropy on
each).

The probe follows the illusion paradigm: 1-3 flashes with 1-3 beeps, temporally aligned (the
visual events are the first ones of the auditory train, or the reverse), fresh noise on every
trial, at several visual noise levels; the brain's numerosity causal-inference model (Wozny,
Beierholm & Shams 2008: the counts as Gaussian measurements) is fitted to the network's count
reports at each level, next to segregation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from synesthesia.brain.paradigms import flash_illusion, full_design
from synesthesia.brain.trials import Trials
from synesthesia.errors import InputError
from synesthesia.nets.mlp import MLP, MLPConfig
from synesthesia.probes.runner import ModelComparison, Responses, fit_models, run_paradigm
from synesthesia.probes.train import NetSettings, build, check_counts, check_positive, train_with


@dataclass
class FlashConfig(NetSettings):
    """The pulse-train world, the network and its training.

    bins: time steps per trial; max_count: the largest number of events (and of reports);
    min_gap: the fewest bins between two events of one stream; blur_v, blur_a: sd (bins) of the
    visual / auditory pulse; noise_v: the visual noise levels of training (one drawn per
    trial); noise_a: the auditory noise; p_incongruent: the fraction of independent scenes;
    and the network and training fields of :class:`NetSettings`.
    """

    bins: int = 40
    max_count: int = 4
    min_gap: int = 5
    blur_v: float = 2.5
    blur_a: float = 0.8
    noise_v: tuple[float, ...] = (0.4, 0.8, 1.2, 1.6)
    noise_a: float = 0.3
    p_incongruent: float = 0.2

    def __post_init__(self) -> None:
        self.noise_v = tuple(float(v) for v in self.noise_v)
        if not self.noise_v or not all(math.isfinite(v) and v > 0 for v in self.noise_v):
            raise InputError(f"noise_v: need positive noise levels, got {self.noise_v}")
        check_positive(self, ("blur_v", "blur_a", "noise_a"))
        check_counts(self, ("bins", "max_count", "min_gap"))
        self.check_training()
        if self.slots() < self.max_count:
            raise InputError(
                f"bins={self.bins}, min_gap={self.min_gap}: too short a window for "
                f"{self.max_count} events; lengthen bins or shorten min_gap"
            )
        if not 0.0 <= self.p_incongruent <= 1.0:
            raise InputError(f"p_incongruent: must be in [0, 1], got {self.p_incongruent!r}")

    def margin(self) -> int:
        """Bins kept free at each end (so that a pulse is not cut off)."""
        return int(math.ceil(2 * self.blur_v))

    def slots(self) -> int:
        """The number of free onsets once the gaps are set aside (stars and bars)."""
        span = self.bins - 2 * self.margin()
        return span - (self.max_count - 1) * (self.min_gap - 1)

    def to_dict(self) -> dict:
        """JSON-able."""
        return asdict(self)


def event_times(config: FlashConfig, batch: int, generator: torch.Generator) -> torch.Tensor:
    """Onsets (batch, max_count) in increasing order, at least ``min_gap`` apart, uniformly over
    such sets: ``max_count`` distinct slots, sorted, spread by the gaps (stars and bars). The
    first k onsets of a row are a valid train of k events."""
    u = torch.rand((batch, config.slots()), generator=generator)
    pick = u.argsort(-1)[:, : config.max_count].sort(-1).values
    spread = torch.arange(config.max_count) * (config.min_gap - 1)
    return (pick + spread + config.margin()).to(torch.float64)


def stream(
    times: torch.Tensor,
    counts: torch.Tensor,
    blur: float,
    noise: torch.Tensor | float,
    bins: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Pulse trains (B, bins): the first ``counts`` onsets of each row as unit-peak Gaussian
    pulses of sd ``blur``, plus white Gaussian noise of sd ``noise`` (per row or shared)."""
    t = torch.arange(bins, dtype=torch.float64)
    on = torch.arange(times.shape[1])[None, :] < counts[:, None]  # (B, max_count)
    pulses = torch.exp(-0.5 * ((t[None, None, :] - times[..., None]) / blur) ** 2)
    signal = (pulses * on[..., None]).sum(1)
    sd = torch.as_tensor(noise, dtype=torch.float64).reshape(-1, 1)
    eps = torch.randn(signal.shape, generator=generator, dtype=torch.float64)
    return (signal + sd * eps).float()


@dataclass
class FlashScenes:
    """Streams (B, 2 bins) visual then auditory; counts (B, 2) flashes, beeps; noise_v (B,)."""

    streams: torch.Tensor
    counts: torch.Tensor
    noise_v: torch.Tensor


def render(
    config: FlashConfig,
    flashes: torch.Tensor,
    beeps: torch.Tensor,
    noise_v: torch.Tensor,
    generator: torch.Generator,
    aligned: torch.Tensor | None = None,
) -> FlashScenes:
    """Streams for the given counts: where ``aligned`` (default: every row), both streams use
    one set of onsets (the smaller train's events coincide with the first of the larger's),
    elsewhere independent onsets."""
    b = flashes.shape[0]
    shared = event_times(config, b, generator)
    other = event_times(config, b, generator)
    if aligned is None:
        aligned = torch.ones(b, dtype=torch.bool)
    beep_times = torch.where(aligned[:, None], shared, other)
    v = stream(shared, flashes, config.blur_v, noise_v, config.bins, generator)
    a = stream(beep_times, beeps, config.blur_a, config.noise_a, config.bins, generator)
    counts = torch.stack([flashes, beeps], -1).to(torch.int64)
    return FlashScenes(torch.cat([v, a], -1), counts, noise_v.float())


def sample_scenes(
    config: FlashConfig, batch: int, generator: torch.Generator, p_incongruent: float | None = None
) -> FlashScenes:
    """Training scenes: congruent (one cause: equal counts, shared onsets) with probability
    1 - p_incongruent, else independent counts and onsets; a visual noise level per scene."""
    p = config.p_incongruent if p_incongruent is None else p_incongruent
    k = config.max_count
    flashes = torch.randint(1, k + 1, (batch,), generator=generator)
    separate = torch.rand(batch, generator=generator) < p
    beeps = torch.where(separate, torch.randint(1, k + 1, (batch,), generator=generator), flashes)
    levels = torch.tensor(config.noise_v, dtype=torch.float64)
    noise_v = levels[torch.randint(0, len(levels), (batch,), generator=generator)]
    return render(config, flashes, beeps, noise_v, generator, aligned=~separate)


class Counter(torch.nn.Module):
    """The MLP with two count read-outs: logits (B, 2, max_count) over 1..max_count."""

    def __init__(self, config: FlashConfig) -> None:
        super().__init__()
        self.config = config
        k = config.max_count
        self.mlp = MLP(MLPConfig(2 * config.bins, 2 * k, config.hidden, config.depth))

    def forward(self, streams: torch.Tensor) -> torch.Tensor:
        """Logits (B, 2, max_count): flashes, then beeps."""
        return self.mlp(streams).reshape(-1, 2, self.config.max_count)


def loss_fn(net: Counter, scenes: FlashScenes) -> torch.Tensor:
    """Cross-entropy of the flash count plus that of the beep count."""
    logits = net(scenes.streams)
    target = scenes.counts - 1
    return F.cross_entropy(logits.reshape(-1, net.config.max_count), target.reshape(-1)) * 2


@dataclass
class TrainedCounter:
    """A trained :class:`Counter` and its training log."""

    net: Counter
    seed: int
    losses: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0


def train_counter(
    config: FlashConfig | None = None, seed: int = 0, progress: bool = False
) -> TrainedCounter:
    """Train a :class:`Counter` on fresh scenes (see :func:`sample_scenes`)."""
    config = config or FlashConfig()
    net = build(lambda: Counter(config), seed)
    batch = lambda g: sample_scenes(config, config.batch, g)  # noqa: E731
    log = train_with(config, net, batch, loss_fn, int(seed) + 1, progress, "train flash counter")
    return TrainedCounter(net, seed, log.losses, log.wall_s, log.cpu_s)


class CounterResponder:
    """A trained :class:`Counter` as a responder at one visual noise level: conditions are
    (flashes, beeps); the reports are the most probable counts."""

    def __init__(self, net: Counter, noise_v: float, chunk: int = 8192) -> None:
        if not (math.isfinite(noise_v) and noise_v > 0):
            raise InputError(f"noise_v: must be a finite number > 0, got {noise_v!r}")
        self.net, self.noise_v, self.chunk = net, float(noise_v), chunk

    @torch.no_grad()
    def respond(
        self,
        conditions: np.ndarray,
        n: int,
        generator: torch.Generator,
        levels: np.ndarray | None = None,
    ) -> Responses:
        """Reported (flashes, beeps) per trial, (C, n, 2)."""
        cond = np.asarray(conditions, dtype=float)
        k = self.net.config.max_count
        if np.any(cond < 1) or np.any(cond > k) or np.any(cond != np.round(cond)):
            raise InputError(f"conditions: counts must be whole numbers in 1..{k}")
        rows = torch.as_tensor(np.repeat(cond, n, axis=0)).long()
        out = []
        for start in range(0, rows.shape[0], self.chunk):
            r = rows[start : start + self.chunk]
            noise = torch.full((r.shape[0],), self.noise_v, dtype=torch.float64)
            scenes = render(self.net.config, r[:, 0], r[:, 1], noise, generator)
            out.append(self.net(scenes.streams).argmax(-1) + 1)
        return Responses(torch.cat(out).double().reshape(len(cond), n, 2).numpy())


@dataclass
class FlashLevel:
    """The probe at one visual noise level."""

    noise_v: float
    trials: Trials
    comparison: ModelComparison
    fission: float  # p(report 2 flashes | 1 flash, 2 beeps), the network
    fusion: float  # p(report 1 flash | 2 flashes, 1 beep), the network
    fitted_fission: float  # the same from the fitted causal-inference model
    fitted_fusion: float
    accuracy_congruent: float  # correct flash counts on congruent trials

    def to_dict(self) -> dict:
        """JSON-able."""
        fit = self.comparison.fits["averaging"]
        return {
            "noise_v": self.noise_v,
            "n_trials": len(self.trials),
            "fission_network": self.fission,
            "fusion_network": self.fusion,
            "fission_fitted": self.fitted_fission,
            "fusion_fitted": self.fitted_fusion,
            "accuracy_congruent": self.accuracy_congruent,
            "fit": fit.to_dict(),
            "models": self.comparison.to_dict(),
            "report_table": report_table(self.trials),
        }


def report_table(trials: Trials) -> list[dict]:
    """Per (flashes, beeps) condition: the proportion of each reported flash count."""
    cond, idx = trials.conditions()
    levels = np.unique(trials.responses[:, 0])
    rows = []
    for c in range(len(cond)):
        r = trials.responses[idx == c, 0]
        rows.append(
            {
                "flashes": int(cond[c, 0]),
                "beeps": int(cond[c, 1]),
                "p_reported": {int(v): float((r == v).mean()) for v in levels},
            }
        )
    return rows


def _rate(trials: Trials, flashes: int, beeps: int, reported: int) -> float:
    sel = (trials.stimuli[:, 0] == flashes) & (trials.stimuli[:, 1] == beeps)
    return float((trials.responses[sel, 0] == reported).mean())


def probe_counter(
    trained: TrainedCounter,
    noise_levels: Sequence[float] | None = None,
    n_per_condition: int = 100,
    counts: Sequence[int] = (1, 2, 3),
    seed: int = 0,
    n_starts: int = 2,
    models: Sequence[str] = ("averaging", "segregation"),
) -> list[FlashLevel]:
    """The illusion paradigm at each visual noise level, with the numerosity model fitted to
    both count reports (``models``: causal inference by averaging, always, and by default
    segregation)."""
    models = ("averaging", *[m for m in models if m != "averaging"])
    config = trained.net.config
    levels_v = config.noise_v if noise_levels is None else tuple(noise_levels)
    cond = full_design(counts, counts)
    buttons = np.arange(1, config.max_count + 1, dtype=float)
    out = []
    for i, noise in enumerate(levels_v):
        trials = run_paradigm(
            CounterResponder(trained.net, noise),
            cond,
            n_per_condition,
            levels=buttons,
            seed=seed + i,
            source=f"flash network (visual noise {noise:g})",
        )
        comp = fit_models(trials, buttons, models, n_starts=n_starts, seed=seed)
        model = comp.fits["averaging"].model()
        pred = flash_illusion(model, counts, counts, tuple(int(b) for b in buttons))
        congruent = trials.stimuli[:, 0] == trials.stimuli[:, 1]
        acc = float((trials.responses[congruent, 0] == trials.stimuli[congruent, 0]).mean())
        out.append(
            FlashLevel(
                float(noise),
                trials,
                comp,
                _rate(trials, 1, 2, 2),
                _rate(trials, 2, 1, 1),
                pred.rate(1, 2, 2),
                pred.rate(2, 1, 1),
                acc,
            )
        )
    return out
