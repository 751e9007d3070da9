"""The ventriloquist on a trained network (Koerding et al. 2007 design, fitted like people).

Scenes: with probability ``p_train`` one source at ``s ~ N(mu, sd^2)`` drives both senses, else
the visual and the auditory source are drawn independently from the same prior (the generative
model of causal inference, Koerding et al. 2007, Fig. 1). Each sense sees its source through a
population code (:mod:`synesthesia.probes.population`), vision sharper than audition. A small
MLP (:mod:`synesthesia.nets.mlp`) reads both codes and reports both locations (squared error,
whose minimiser is the posterior mean, i.e. model averaging) and whether there was one source
(cross-entropy, whose minimiser is p(C=1 | r)). Nothing tells the network the generative model:
it sees scenes and their true sources.

The probe is the Koerding et al. 2007 design: 5 x 5 visual-auditory positions, repeated trials
with fresh input noise; the network's reports go to the nearest of the five buttons. The
brain module's models are fitted to them by maximum likelihood (:mod:`synesthesia.probes.runner`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from synesthesia.brain.causal_inference import CausalInference
from synesthesia.brain.paradigms import (
    KOERDING_POSITIONS,
    VentriloquistResult,
    full_design,
    koerding_observer,
    ventriloquist,
)
from synesthesia.brain.trials import Trials
from synesthesia.errors import InputError
from synesthesia.nets.mlp import MLP, MLPConfig
from synesthesia.probes.population import PopulationCode
from synesthesia.probes.runner import (
    MODELS,
    ModelComparison,
    Responses,
    condition_means,
    fit_models,
    run_paradigm,
)
from synesthesia.probes.train import NetSettings, build, check_positive, train_with


@dataclass
class VentriloquistConfig(NetSettings):
    """The world, the network and its training.

    sigma_v, sigma_a: the sensory noise (deg) the population codes carry (their Cramer-Rao
    bound); width_v, width_a: tuning widths; prior_mean, prior_sd: the source prior of the
    training scenes; and the network and training fields of :class:`NetSettings`.
    """

    sigma_v: float = 2.0
    sigma_a: float = 8.0
    width_v: float = 12.0
    width_a: float = 40.0
    n_neurons: int = 160
    low: float = -120.0
    high: float = 120.0
    prior_mean: float = 0.0
    prior_sd: float = 10.0

    def __post_init__(self) -> None:
        check_positive(self, ("sigma_v", "sigma_a", "width_v", "width_a", "prior_sd"))
        self.check_training()

    def codes(self) -> tuple[PopulationCode, PopulationCode]:
        """The visual and the auditory population code."""
        kw = {"n_neurons": self.n_neurons, "low": self.low, "high": self.high}
        return (
            PopulationCode.with_sigma(self.sigma_v, self.width_v, **kw),
            PopulationCode.with_sigma(self.sigma_a, self.width_a, **kw),
        )

    def to_dict(self) -> dict:
        """JSON-able."""
        return asdict(self)


@dataclass
class Scenes:
    """A batch of scenes: codes (B, 2 n), sources (B, 2) visual, auditory; common (B,) 0/1."""

    codes: torch.Tensor
    sources: torch.Tensor
    common: torch.Tensor


def encode(
    config: VentriloquistConfig, sources: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Noisy visual and auditory codes of sources (B, 2), concatenated: (B, 2 n)."""
    code_v, code_a = config.codes()
    return torch.cat(
        [code_v.encode(sources[:, 0], generator), code_a.encode(sources[:, 1], generator)], dim=-1
    )


def sample_scenes(
    config: VentriloquistConfig, p_common: float, batch: int, generator: torch.Generator
) -> Scenes:
    """Scenes of the causal-inference world with prior probability ``p_common`` of one source."""
    if not 0.0 <= p_common <= 1.0:
        raise InputError(f"p_common: must be in [0, 1], got {p_common!r}")
    common = torch.rand(batch, generator=generator, dtype=torch.float64) < p_common
    s = config.prior_mean + config.prior_sd * torch.randn(
        (batch, 2), generator=generator, dtype=torch.float64
    )
    s[:, 1] = torch.where(common, s[:, 0], s[:, 1])
    return Scenes(encode(config, s, generator), s.float(), common.float())


class Localiser(torch.nn.Module):
    """The MLP with the probe's read-out: (visual, auditory) location and a one-cause logit."""

    def __init__(self, config: VentriloquistConfig) -> None:
        super().__init__()
        self.config = config
        self.mlp = MLP(MLPConfig(2 * config.n_neurons, 3, config.hidden, config.depth))

    def forward(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Locations (B, 2) in degrees and the one-cause logits (B,)."""
        out = self.mlp(codes)
        c = self.config
        return c.prior_mean + c.prior_sd * out[:, :2], out[:, 2]


def loss_fn(net: Localiser, scenes: Scenes) -> torch.Tensor:
    """Squared location error in prior sd units plus the one-cause cross-entropy."""
    loc, logit = net(scenes.codes)
    mse = ((loc - scenes.sources) / net.config.prior_sd).pow(2).sum(-1).mean()
    return mse + F.binary_cross_entropy_with_logits(logit, scenes.common)


@dataclass
class TrainedLocaliser:
    """A trained network with what it was trained on and how long it took."""

    net: Localiser
    p_train: float
    seed: int
    losses: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0


def train_localiser(
    p_train: float,
    config: VentriloquistConfig | None = None,
    seed: int = 0,
    progress: bool = False,
) -> TrainedLocaliser:
    """Train a :class:`Localiser` on fresh scenes with one source with probability ``p_train``.

    AdamW with the trainer's warm-up + cosine schedule (:func:`synesthesia.training.lr_at`);
    the weights and every scene come from ``seed``.
    """
    config = config or VentriloquistConfig()
    if not 0.0 <= float(p_train) <= 1.0:
        raise InputError(f"p_train: must be in [0, 1], got {p_train!r}")
    net = build(lambda: Localiser(config), seed)
    p = float(p_train)
    batch = lambda g: sample_scenes(config, p, config.batch, g)  # noqa: E731
    log = train_with(config, net, batch, loss_fn, int(seed) + 1, progress, f"train p_train={p:g}")
    return TrainedLocaliser(net, p, seed, log.losses, log.wall_s, log.cpu_s)


class NetworkResponder:
    """A trained :class:`Localiser` as a responder: fresh population-code noise every trial."""

    def __init__(self, net: Localiser, chunk: int = 8192) -> None:
        self.net = net
        self.chunk = chunk

    @torch.no_grad()
    def outputs(
        self, conditions: np.ndarray, n: int, generator: torch.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Locations (C, n, 2) and p(one cause) (C, n) of the network on n trials each."""
        cond = torch.as_tensor(np.repeat(np.asarray(conditions, dtype=float), n, axis=0))
        locs, probs = [], []
        for start in range(0, cond.shape[0], self.chunk):
            codes = encode(self.net.config, cond[start : start + self.chunk], generator)
            loc, logit = self.net(codes)
            locs.append(loc.double())
            probs.append(torch.sigmoid(logit).double())
        c = len(conditions)
        return torch.cat(locs).reshape(c, n, 2).numpy(), torch.cat(probs).reshape(c, n).numpy()

    def respond(
        self,
        conditions: np.ndarray,
        n: int,
        generator: torch.Generator,
        levels: np.ndarray | None = None,
    ) -> Responses:
        """The network's location reports and one-cause reports (p > 1/2)."""
        loc, p = self.outputs(conditions, n, generator)
        return Responses(loc, (p > 0.5).astype(float))


@dataclass
class VentriloquistProbe:
    """One network probed with the Koerding design and the brain's models fitted to it."""

    p_train: float
    trials: Trials  # location reports (buttons) and unity reports
    comparison: ModelComparison
    network_bias: np.ndarray  # (C,) auditory bias toward vision per condition (NaN at d = 0)
    fitted: VentriloquistResult  # predictions of the causal-inference fit (averaging)
    levels: np.ndarray
    train_wall_s: float = 0.0
    train_cpu_s: float = 0.0
    fit_wall_s: float = 0.0

    @property
    def p_common(self) -> tuple[float, float]:
        """The fitted p_common (averaging) and its standard error."""
        f = self.comparison.fits["averaging"]
        return f.params["p_common"], f.se.get("p_common", float("nan"))

    def to_dict(self) -> dict:
        """JSON-able summary: fits, ranking, BIC differences, biases per condition."""
        cond, means = condition_means(self.trials)
        comp = self.comparison
        out = {
            "p_train": self.p_train,
            "n_trials": len(self.trials),
            "levels": self.levels.tolist(),
            "conditions": cond.tolist(),
            "mean_reports": means.tolist(),
            "p_unity_report": _unity_by_condition(self.trials).tolist(),
            "network_auditory_bias": _nan_to_none(self.network_bias),
            "fitted_auditory_bias": _nan_to_none(self.fitted.auditory_bias()),
            "models": comp.to_dict(),
            "train_wall_s": self.train_wall_s,
            "train_cpu_s": self.train_cpu_s,
            "fit_wall_s": self.fit_wall_s,
        }
        fitted = comp.fits
        if "averaging" in fitted:
            for other in ("fusion", "segregation"):
                if other in fitted:
                    out[f"delta_bic_averaging_vs_{other}"] = comp.delta_bic("averaging", other)
        return out


def _nan_to_none(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=float)]


def _unity_by_condition(trials: Trials) -> np.ndarray:
    if trials.unity is None:
        return np.zeros(0)
    cond, idx = trials.conditions()
    return np.bincount(idx, weights=trials.unity, minlength=len(cond)) / np.bincount(idx)


def network_bias(trials: Trials, fitted: VentriloquistResult) -> np.ndarray:
    """The network's auditory bias toward vision per condition of ``fitted``: (its mean
    auditory report - the fitted observer's report with p_common = 0) / disparity, the measure
    of :meth:`VentriloquistResult.auditory_bias` with the network's reports in place of the
    model's. NaN at zero disparity."""
    cond, means = condition_means(trials)
    if trials.reported != (0, 1):
        raise InputError("trials: need both the visual and the auditory location reports")
    order = [int(np.flatnonzero((cond == c).all(1))[0]) for c in fitted.conditions]
    shift = means[order, 1] - fitted.baseline[:, 1]
    d = fitted.disparity
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d != 0, shift / np.where(d != 0, d, 1.0), np.nan)


def probe_network(
    trained: TrainedLocaliser,
    n_per_condition: int = 100,
    positions: Sequence[float] = KOERDING_POSITIONS,
    models: Sequence[str] = MODELS,
    seed: int = 0,
    n_starts: int = 2,
    fixed: dict[str, float] | None = None,
) -> VentriloquistProbe:
    """Probe ``trained`` with the Koerding design; fit ``models`` to its location reports
    (``fixed``: parameters held in every fit, e.g. the scenes' prior)."""
    lv = np.sort(np.asarray(positions, dtype=float))
    cond = full_design(lv, lv)
    trials = run_paradigm(
        NetworkResponder(trained.net),
        cond,
        n_per_condition,
        levels=lv,
        unity=True,
        seed=seed,
        source=f"network (p_train={trained.p_train:g})",
    )
    loc_only = Trials(trials.stimuli, trials.responses, trials.reported, None, source=trials.source)
    t0 = time.perf_counter()
    comparison = fit_models(loc_only, lv, models, fixed=fixed, n_starts=n_starts, seed=seed)
    fit_wall = time.perf_counter() - t0
    base = comparison.fits.get("averaging") or next(iter(comparison.fits.values()))
    fitted = ventriloquist(
        base.model(), positions=lv, n_per_condition=1, strategy=base.strategy, seed=seed
    )
    return VentriloquistProbe(
        trained.p_train,
        trials,
        comparison,
        network_bias(trials, fitted),
        fitted,
        lv,
        trained.wall_s,
        trained.cpu_s,
        fit_wall,
    )


def human_reference(positions: Sequence[float] = KOERDING_POSITIONS) -> VentriloquistResult:
    """The Koerding et al. 2007 group fit's predictions on the same design (the human curve)."""
    return ventriloquist(koerding_observer(), positions=positions, n_per_condition=1)


def ideal_observer(
    config: VentriloquistConfig, p_common: float
) -> CausalInference:  # the Bayes-optimal observer of the training world
    """The causal-inference observer matched to the world a network was trained in: the codes'
    Cramer-Rao noise at the centre, the scenes' prior and ``p_common``."""
    code_v, code_a = config.codes()
    return CausalInference(
        sigma_v=code_v.sigma(config.prior_mean),
        sigma_a=code_a.sigma(config.prior_mean),
        sigma_p=config.prior_sd,
        mu_p=config.prior_mean,
        p_common=p_common,
    )


@dataclass
class Sweep:
    """Probes at several values of p_train."""

    probes: list[VentriloquistProbe]

    def p_common_table(self) -> list[dict]:
        """p_train, fitted p_common (averaging) with its SE, and the BIC differences."""
        rows = []
        for p in self.probes:
            est, se = p.p_common
            row = {"p_train": p.p_train, "p_common": est, "se": se}
            for other in ("fusion", "segregation"):
                if other in p.comparison.fits:
                    row[f"dbic_vs_{other}"] = p.comparison.delta_bic("averaging", other)
            row["best"] = p.comparison.best
            rows.append(row)
        return rows


def sweep_p_train(
    p_trains: Sequence[float],
    config: VentriloquistConfig | None = None,
    n_per_condition: int = 100,
    models: Sequence[str] = MODELS,
    seed: int = 0,
    progress: bool = False,
    n_starts: int = 2,
) -> Sweep:
    """Train and probe one network per p_train (the seeds differ by network); ``n_starts``
    optimiser starts per fit."""
    config = config or VentriloquistConfig()
    probes = []
    for i, p in enumerate(p_trains):
        trained = train_localiser(float(p), config, seed=seed + 1000 * i, progress=progress)
        probes.append(
            probe_network(trained, n_per_condition, models=models, seed=seed + i, n_starts=n_starts)
        )
    return Sweep(probes)
