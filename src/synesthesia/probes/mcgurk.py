"""The McGurk effect on a trained audiovisual syllable network (McGurk & MacDonald 1976).

Audio: the digit world's eSpeak syllables "ba", "da", "ga" (:func:`synesthesia.data.speech.
synthesize_syllables`: many voices, rates and pitches, recorded noise), as log-mel features,
with Gaussian feature noise on every trial (the listening condition). Vision: a rendered mouth,
a sequence of small frames of a lip ellipse around a dark opening whose height follows the
syllable's articulation: for "ba" the lips close (no opening) and then release into the vowel;
for "da" and "ga" the lips stay apart during the closure (the tongue makes it, out of sight),
a little wider for the velar "ga" (the jaw lower), then open into the vowel. So vision separates
"ba" from the others sharply and confuses "da" with "ga", as real visemes do. Every rendering
draws a talker (mouth size), a timing and pixel noise.

The network (two MLP branches, one fused MLP) is trained on *congruent* pairs only, to name the
syllable. The probe plays every auditory-visual pair on held-out clips; A-ba/V-ga answered "da"
is the fused McGurk percept. FLMP (:func:`synesthesia.brain.speech.fit_flmp`) and the causal-
inference speech model (:class:`synesthesia.brain.speech.McGurkModel`, fitted here by maximum
likelihood) are fitted to the response counts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize

from synesthesia.brain.speech import SYLLABLES, FLMPFit, McGurkModel, fit_flmp
from synesthesia.errors import InputError
from synesthesia.nets.mlp import MLP, MLPConfig
from synesthesia.probes.train import NetSettings, build, check_counts, check_positive, train_with

# opening height (fraction of the lip height) at the closure and in the vowel, per syllable:
# bilabial closure for ba; the lips apart for the alveolar da and, a little wider, the velar ga
CLOSURE = {"ba": 0.0, "da": 0.35, "ga": 0.45}
VOWEL = 0.8


@dataclass
class McGurkConfig(NetSettings):
    """The syllable world, the network and its training.

    n_per: synthesised clips per syllable (a third held out for the probe); frames, mel_bins:
    the audio feature size; video_frames, size: the mouth movie; noise_a: the auditory feature
    noise levels of training (one drawn per trial; sd in units of the features' sd); noise_v:
    pixel noise sd; and the network and training fields of :class:`NetSettings`.
    """

    n_per: int = 400
    mel_frames: int = 32
    video_frames: int = 6
    size: int = 12
    noise_a: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
    noise_v: float = 0.3
    seed: int = 0
    steps: int = 2000  # NetSettings' fields with this probe's defaults
    batch: int = 256
    lr: float = 2e-3

    def __post_init__(self) -> None:
        self.noise_a = tuple(float(v) for v in self.noise_a)
        if not self.noise_a or not all(math.isfinite(v) and v >= 0 for v in self.noise_a):
            raise InputError(f"noise_a: need noise levels >= 0, got {self.noise_a}")
        check_positive(self, ("noise_v",), allow_zero=True)
        check_counts(self, ("n_per", "mel_frames", "video_frames", "size"))
        self.check_training()
        if self.n_per < 3:
            raise InputError(f"n_per: need at least 3 clips per syllable, got {self.n_per}")

    def to_dict(self) -> dict:
        """JSON-able."""
        return asdict(self)


def render_mouth(
    syllables: torch.Tensor, config: McGurkConfig, generator: torch.Generator
) -> torch.Tensor:
    """Mouth movies (B, video_frames * size * size) for syllable indices (B,) into SYLLABLES.

    Frame t shows lips (grey, 0.5) as an ellipse of half-width w and half-height h and the
    opening (1.0) inside, of half-height aperture(t) * h: the closure value for the first third
    of the frames (onset jittered by one frame), then the vowel's. Talker: w, h scaled by a
    factor in [0.85, 1.15]. Plus pixel noise of sd ``noise_v``.
    """
    b, f, s = syllables.shape[0], config.video_frames, config.size
    closure = torch.tensor([CLOSURE[k] for k in SYLLABLES], dtype=torch.float64)[syllables]
    onset = f // 3 + torch.randint(-1, 2, (b,), generator=generator)  # release frame
    t = torch.arange(f)[None, :]
    aperture = torch.where(
        t < onset[:, None], closure[:, None], torch.full((1, 1), VOWEL, dtype=torch.float64)
    )
    aperture = aperture * (1 + 0.05 * torch.randn((b, f), generator=generator, dtype=torch.float64))
    scale = 0.85 + 0.3 * torch.rand((b, 1, 1, 1), generator=generator, dtype=torch.float64)
    c = torch.linspace(-1.0, 1.0, s, dtype=torch.float64)
    y, x = c[:, None], c[None, :]
    w, h = 0.8 * scale, 0.5 * scale
    lips = ((x / w) ** 2 + (y / h) ** 2 <= 1.0).double()  # (B, 1, s, s)
    inner = aperture[..., None, None].clamp_min(1e-6) * h
    opening = ((x / (0.8 * w)) ** 2 + (y / inner) ** 2 <= 1.0).double()
    frames = 0.5 * lips + 0.5 * opening * lips
    frames = frames + config.noise_v * torch.randn(
        frames.shape, generator=generator, dtype=frames.dtype
    )
    return frames.reshape(b, -1).float()


@dataclass
class AudioBank:
    """Standardised log-mel features of synthesised syllables, split for training and probing."""

    train: torch.Tensor  # (N, mel_bins * mel_frames)
    train_labels: torch.Tensor
    test: torch.Tensor
    test_labels: torch.Tensor
    mean: torch.Tensor = field(repr=False, default=None)
    std: torch.Tensor = field(repr=False, default=None)


def audio_bank(config: McGurkConfig, cache_dir=None, progress: bool = False) -> AudioBank:
    """Synthesise ``n_per`` clips per syllable (cached), log-mel (40 bands, 10 ms frames) cut or
    padded to ``mel_frames``, standardised per feature on the training clips; the last third of
    each syllable's clips is held out for the probe."""
    from synesthesia.data.audio import LogMelConfig, fix_length, log_mel
    from synesthesia.data.speech import synthesize_syllables

    speech = synthesize_syllables(
        SYLLABLES, config.n_per, seed=config.seed, cache_dir=cache_dir, progress=progress
    )
    feats = log_mel(list(speech.waveforms), speech.sample_rate, LogMelConfig())
    x = torch.stack([fix_length(m, config.mel_frames) for m in feats]).reshape(len(feats), -1)
    labels = speech.labels
    test = torch.zeros(len(labels), dtype=torch.bool)
    for k in range(len(SYLLABLES)):
        idx = torch.nonzero(labels == k).reshape(-1)
        test[idx[(2 * len(idx)) // 3 :]] = True
    mean, std = x[~test].mean(0), x[~test].std(0).clamp_min(1e-3)
    z = (x - mean) / std
    return AudioBank(z[~test], labels[~test], z[test], labels[test], mean, std)


def _draw(
    bank_x: torch.Tensor, bank_y: torch.Tensor, syllables: torch.Tensor, g: torch.Generator
) -> torch.Tensor:
    """A random clip of each requested syllable from a bank."""
    out = torch.empty((syllables.shape[0], bank_x.shape[1]))
    for k in range(len(SYLLABLES)):
        rows = torch.nonzero(syllables == k).reshape(-1)
        pool = torch.nonzero(bank_y == k).reshape(-1)
        if rows.numel():
            out[rows] = bank_x[pool[torch.randint(0, pool.numel(), (rows.numel(),), generator=g)]]
    return out


class SyllableNet(torch.nn.Module):
    """Audio MLP branch + visual MLP branch, concatenated, a fused MLP: logits over SYLLABLES."""

    def __init__(self, config: McGurkConfig, audio_dim: int) -> None:
        super().__init__()
        self.config = config
        video_dim = config.video_frames * config.size**2
        h = config.hidden
        self.audio = MLP(MLPConfig(audio_dim, h, h, 1))
        self.video = MLP(MLPConfig(video_dim, h, h, 1))
        self.fused = MLP(MLPConfig(2 * h, len(SYLLABLES), h, config.depth))

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """Logits (B, 3)."""
        return self.fused(torch.cat([F.gelu(self.audio(audio)), F.gelu(self.video(video))], -1))


def _noisy(x: torch.Tensor, sd: torch.Tensor | float, g: torch.Generator) -> torch.Tensor:
    sd_t = torch.as_tensor(sd, dtype=x.dtype).reshape(-1, 1)
    return x + sd_t * torch.randn(x.shape, generator=g, dtype=x.dtype)


@dataclass
class TrainedSyllableNet:
    """A trained network, its audio bank and its training log."""

    net: SyllableNet
    bank: AudioBank
    losses: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0


def train_syllable_net(
    config: McGurkConfig | None = None,
    bank: AudioBank | None = None,
    progress: bool = False,
) -> TrainedSyllableNet:
    """Train on congruent audio-visual pairs of the training clips (names the syllable)."""
    config = config or McGurkConfig()
    bank = bank or audio_bank(config, progress=progress)
    net = build(lambda: SyllableNet(config, bank.train.shape[1]), config.seed)
    levels = torch.tensor(config.noise_a)

    def batch(g: torch.Generator):
        y = torch.randint(0, len(SYLLABLES), (config.batch,), generator=g)
        sd = levels[torch.randint(0, len(levels), (config.batch,), generator=g)]
        audio = _noisy(_draw(bank.train, bank.train_labels, y, g), sd, g)
        return audio, render_mouth(y, config, g), y

    def loss(model: SyllableNet, data) -> torch.Tensor:
        audio, video, y = data
        return F.cross_entropy(model(audio, video), y)

    log = train_with(config, net, batch, loss, config.seed + 1, progress, "train syllable net")
    return TrainedSyllableNet(net, bank, log.losses, log.wall_s, log.cpu_s)


@torch.no_grad()
def response_counts(
    trained: TrainedSyllableNet, noise_a: float, n_per_pair: int = 200, seed: int = 0
) -> np.ndarray:
    """Counts (A, V, K) of the network's answers for every auditory-visual pair of held-out
    clips at auditory noise ``noise_a`` (fresh noise, clip and rendering on every trial)."""
    g = torch.Generator().manual_seed(int(seed))
    k = len(SYLLABLES)
    counts = np.zeros((k, k, k))
    bank, cfg = trained.bank, trained.net.config
    for a in range(k):
        for v in range(k):
            ya = torch.full((n_per_pair,), a)
            audio = _noisy(_draw(bank.test, bank.test_labels, ya, g), noise_a, g)
            video = render_mouth(torch.full((n_per_pair,), v), cfg, g)
            answers = trained.net(audio, video).argmax(-1)
            counts[a, v] = np.bincount(answers.numpy(), minlength=k)
    return counts


def fit_mcgurk_model(
    counts: np.ndarray,
    strategy: str = "averaging",
    nodes: int = 6,
    seed: int = 0,
    starts: int = 2,
    maxiter: int = 1000,
) -> tuple[McGurkModel, float]:
    """Maximum-likelihood fit of the causal-inference speech model to counts (A, V, K).

    Free: the two auditory and two visual sds, the prior sd, p_common and the categorisation
    sd (7 parameters; the prototypes keep the brain module's geometry). Log / logit transforms,
    Nelder-Mead from the brain module's defaults and ``starts - 1`` jittered starts (the
    likelihood is a quadrature without a gradient). Returns the model and the NLL.
    """
    c = np.asarray(counts, dtype=float)
    k = len(SYLLABLES)
    if c.shape != (k, k, k) or np.any(c < 0) or not np.all(np.isfinite(c)):
        raise InputError(f"counts: need finite non-negative counts of shape {(k, k, k)}")
    base = McGurkModel()

    def model_at(z: np.ndarray) -> McGurkModel:
        e = np.exp(np.clip(z[:5], -6, 4))
        pc = 1.0 / (1.0 + math.exp(-float(np.clip(z[5], -30, 30))))
        return replace(
            base,
            sigma_auditory=(float(e[0]), float(e[1])),
            sigma_visual=(float(e[2]), float(e[3])),
            sigma_prior=float(e[4]),
            p_common=pc,
            sigma_category=float(np.exp(np.clip(z[6], -6, 4))),
        )

    def nll(z: np.ndarray) -> float:
        m = model_at(z)
        total = 0.0
        for a, sa in enumerate(SYLLABLES):
            for v, sv in enumerate(SYLLABLES):
                p = np.clip(m.probabilities(sa, sv, strategy, nodes), 1e-12, 1.0)
                total -= float(c[a, v] @ np.log(p))  # multinomial log likelihood
        return total

    z0 = np.array(
        [
            *np.log(base.sigma_auditory),
            *np.log(base.sigma_visual),
            math.log(base.sigma_prior),
            math.log(base.p_common / (1 - base.p_common)),
            math.log(base.sigma_category),
        ]
    )
    best = None
    rng = np.random.default_rng(seed)
    points = [z0] + [z0 + rng.normal(0, 0.5, z0.size) for _ in range(max(starts, 1) - 1)]
    for start in points:
        res = minimize(
            nll, start, method="Nelder-Mead", options={"maxiter": maxiter, "xatol": 1e-4}
        )
        if best is None or res.fun < best.fun:
            best = res
    return model_at(best.x), float(best.fun)


def multinomial_nll(counts: np.ndarray, probabilities: np.ndarray) -> float:
    """-sum counts log p: the NLL of response counts under predicted probabilities."""
    p = np.clip(np.asarray(probabilities, dtype=float), 1e-12, 1.0)
    return float(-(np.asarray(counts, dtype=float) * np.log(p)).sum())


@dataclass
class McGurkProbe:
    """Response counts of the network at one auditory noise level and the fitted models."""

    noise_a: float
    counts: np.ndarray  # (A, V, K)
    flmp: FLMPFit
    ci: McGurkModel
    ci_nll: float

    def rates(self) -> dict[str, float]:
        """p("da" | A-ba V-ga) (McGurk fusion), p("da" | A-ga V-ba), and the auditory accuracy
        on congruent pairs."""
        p = self.counts / self.counts.sum(-1, keepdims=True)
        da = SYLLABLES.index("da")
        ba, ga = SYLLABLES.index("ba"), SYLLABLES.index("ga")
        return {
            "ba+ga->da": float(p[ba, ga, da]),
            "ga+ba->da": float(p[ga, ba, da]),
            "ba+ga->ba (auditory)": float(p[ba, ga, ba]),
            "ba+ga->ga (visual)": float(p[ba, ga, ga]),
            "congruent_accuracy": float(np.mean([p[i, i, i] for i in range(len(SYLLABLES))])),
        }

    def to_dict(self) -> dict:
        """JSON-able: counts, rates and both fits (NLL, AIC, BIC; FLMP 18 supports, CI 7)."""
        n = float(self.counts.sum())
        flmp_p = self.flmp.probabilities()
        k_flmp, k_ci = self.flmp.auditory.size + self.flmp.visual.size, 7
        ci_p = np.array(
            [[self.ci.probabilities(a, v, nodes=6) for v in SYLLABLES] for a in SYLLABLES]
        )
        return {
            "noise_a": self.noise_a,
            "counts": self.counts.tolist(),
            "rates": self.rates(),
            "flmp": {
                "auditory": self.flmp.auditory.tolist(),
                "visual": self.flmp.visual.tolist(),
                "nll": self.flmp.nll,
                "k": k_flmp,
                "bic": k_flmp * math.log(n) + 2 * self.flmp.nll,
                "ba+ga->da": float(flmp_p[0, 2, 1]),
            },
            "causal_inference": {
                "sigma_auditory": list(self.ci.sigma_auditory),
                "sigma_visual": list(self.ci.sigma_visual),
                "sigma_prior": self.ci.sigma_prior,
                "p_common": self.ci.p_common,
                "sigma_category": self.ci.sigma_category,
                "nll": self.ci_nll,
                "k": k_ci,
                "bic": k_ci * math.log(n) + 2 * self.ci_nll,
                "ba+ga->da": float(ci_p[0, 2, 1]),
            },
            "saturated_nll": multinomial_nll(
                self.counts, self.counts / self.counts.sum(-1, keepdims=True)
            ),
        }


def probe_mcgurk(
    trained: TrainedSyllableNet,
    noise_a: float = 1.0,
    n_per_pair: int = 200,
    seed: int = 0,
    ci_starts: int = 2,
    ci_maxiter: int = 1000,
) -> McGurkProbe:
    """Counts at one auditory noise level, FLMP and causal inference fitted to them (the
    latter by :func:`fit_mcgurk_model` with ``ci_starts`` starts of ``ci_maxiter`` steps)."""
    counts = response_counts(trained, noise_a, n_per_pair, seed)
    flmp = fit_flmp(counts, seed=seed)
    ci, ci_nll = fit_mcgurk_model(counts, seed=seed, starts=ci_starts, maxiter=ci_maxiter)
    return McGurkProbe(float(noise_a), counts, flmp, ci, ci_nll)
