"""The samplers tab: the diffusion samplers and classifier-free guidance on the exact denoiser of
a 2-D Gaussian mixture (:class:`synesthesia.diffusion.GaussianMixtureOracle`; no training), the
samples drawn over the true density, redrawn as the sliders move."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from synesthesia.app.common import (
    check_number,
    choice,
    figure,
    page_errors,
    seed_value,
    to_image,
    whole,
)
from synesthesia.app.image import METHODS

MAX_SAMPLES = 20_000
MAX_COMPONENTS = 12
#: The target of guidance: a component of the mixture, or none (the unconditional mixture).
UNCONDITIONAL = "none"
RADIUS, STD, LIMIT = 2.5, 0.35, 4.2


def ring_mixture(components: int):
    """``(means, stds)`` (K x 2 each, float64) of ``components`` equal Gaussians on a circle."""
    import torch

    angle = torch.arange(components, dtype=torch.float64) * (2 * torch.pi / components)
    means = RADIUS * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return means, torch.full_like(means, STD)


def log_density(points, means, stds, component: int | None = None):
    """``log p(x)`` (N,) of the equal-weight mixture of diagonal Gaussians at ``points``
    (N x 2), or of one component's Gaussian: ``log sum_k w_k prod_d N(x_d; m_kd, s_kd^2)``."""
    import torch

    x = torch.as_tensor(points, dtype=torch.float64)[:, None, :]
    z = (x - means[None]) / stds[None]
    per = -0.5 * z**2 - torch.log(stds[None]) - 0.5 * math.log(2 * math.pi)
    per = per.sum(-1)  # N x K: log N(x; m_k, diag s_k^2)
    if component is not None:
        return per[:, component]
    return torch.logsumexp(per, dim=1) - math.log(means.shape[0])


@dataclass
class MixtureSamples:
    """Samples of a sampler on the exact mixture denoiser, with what the tab reports."""

    x: Any  # (n, 2) float64 samples
    truth: Any  # (n, 2) true draws of the same target (the mixture, or the guided class)
    means: Any
    stds: Any
    component: int | None  # the guided class (None: unconditional)
    evaluations: int  # denoiser calls the sampler made (one batched call per step)
    share: float | None  # fraction of samples nearest the guided class's mean
    log_density: float  # mean log density of the samples under the target's true density
    true_log_density: float  # the same for the true draws


def sample_mixture(
    method: str = "dpmpp_2m",
    steps: int = 20,
    guidance: float = 1.0,
    component: int | None = 0,
    components: int = 6,
    n: int = 1000,
    seed: int = 0,
) -> MixtureSamples:
    """``n`` samples of ``method`` in ``steps`` steps on the exact denoiser of a ring of
    ``components`` Gaussians (eps prediction, linear schedule of 1000 steps), guided towards
    ``component`` with classifier-free guidance of scale ``guidance`` (None: unconditional)."""
    import torch

    from synesthesia.diffusion import (
        CountingDenoiser,
        GaussianMixtureOracle,
        NoiseSchedule,
        cfg_denoiser,
        sample,
    )

    means, stds = ring_mixture(components)
    schedule = NoiseSchedule("linear", 1000)
    oracle = GaussianMixtureOracle(means, stds, schedule, prediction="eps")
    counter = CountingDenoiser(oracle)
    denoiser, kw, labels = counter, {}, None
    if component is not None:
        null = torch.tensor([components])  # the oracle's null class: the whole mixture
        denoiser = cfg_denoiser(counter, guidance, {"labels": null})
        labels = torch.full((n,), component, dtype=torch.long)
        kw["cond"] = {"labels": labels}
    x = sample(
        denoiser,
        (n, 2),
        schedule,
        method=method,
        steps=steps,
        generator=torch.Generator().manual_seed(seed),
        progress=False,
        dtype=torch.float64,
        **kw,
    )
    truth = oracle.sample_data(n, torch.Generator().manual_seed(seed + 1), labels)
    nearest = torch.cdist(x, means).argmin(1)
    return MixtureSamples(
        x,
        truth,
        means,
        stds,
        component,
        counter.calls,
        None if component is None else float((nearest == component).double().mean()),
        float(log_density(x, means, stds, component).mean()),
        float(log_density(truth, means, stds, component).mean()),
    )


def draw(
    method: Any = "dpmpp_2m",
    steps: Any = 20,
    guidance: Any = 1.0,
    target: Any = "0",
    components: Any = 6,
    n: Any = 1000,
    seed: Any = 0,
):
    """``(figure image, summary)`` of :func:`sample_mixture` with the page's values (checked):
    the samples over the contours of the true density (grey) and of the guided class (red);
    the summary gives the denoiser evaluations, the samples' mean log density beside the true
    draws' and the share of samples nearest the guided class. ``target`` "none": no guidance."""
    import numpy as np

    method = choice(method, "sampler", METHODS)
    steps = whole(steps, "steps", 1, 1000)
    guidance = check_number(guidance, "guidance", 0.0, 100.0)
    k = whole(components, "components", 2, MAX_COMPONENTS)
    target = choice(str(target), "guided class", (UNCONDITIONAL, *(str(c) for c in range(k))))
    component = None if target == UNCONDITIONAL else int(target)
    s = sample_mixture(
        method, steps, guidance, component, k, whole(n, "samples", 1, MAX_SAMPLES), seed_value(seed)
    )
    grid = np.linspace(-LIMIT, LIMIT, 161)
    gx, gy = np.meshgrid(grid, grid)
    pts = np.stack([gx.ravel(), gy.ravel()], 1)
    fig, (ax,) = figure(width=5.2, height=5.0)

    def contour(c: int | None, levels: int, colour: str) -> None:
        dens = log_density(pts, s.means, s.stds, c).exp().numpy().reshape(gx.shape)
        ax.contour(gx, gy, dens, levels=levels, colors=colour, linewidths=0.8)

    contour(None, 8, "0.55")  # the mixture
    if component is not None:
        contour(component, 4, "C3")  # the guided class alone
    xs = s.x.clamp(-LIMIT, LIMIT).numpy()
    ax.scatter(xs[:, 0], xs[:, 1], s=3, alpha=0.5, color="C0")
    ax.set_xlim(-LIMIT, LIMIT), ax.set_ylim(-LIMIT, LIMIT), ax.set_aspect("equal")
    where = "unconditional" if component is None else f"class {component}, w = {guidance:g}"
    ax.set_title(f"{method}, {steps} steps, {s.evaluations} evaluations ({where})", fontsize=9)
    summary = (
        f"{s.evaluations} denoiser evaluations. Mean log density of the samples "
        f"{s.log_density:.3f}, of {len(s.truth)} true draws {s.true_log_density:.3f}"
        + ("" if s.share is None else f"; {s.share:.1%} lie nearest class {component}")
        + "."
    )
    return to_image(fig), summary


def build_tab(gr) -> None:
    """The tab's components and events (inside an open ``gr.Blocks``)."""
    with gr.Tab("Samplers", id="samplers"):
        gr.Markdown(
            "The samplers on the **exact** denoiser of a Gaussian mixture (no network, no "
            "training): grey contours are the true density, red the guided class's own "
            "Gaussian. Guidance above 1 pushes samples past it; few steps blur them."
        )
        with gr.Row():
            method_in = gr.Dropdown(list(METHODS), value="dpmpp_2m", label="sampler")
            steps_in = gr.Slider(1, 100, value=20, step=1, label="steps")
            guidance_in = gr.Slider(0.0, 10.0, value=1.0, step=0.25, label="guidance scale")
        with gr.Row():
            target_in = gr.Dropdown(
                [UNCONDITIONAL, *(str(c) for c in range(MAX_COMPONENTS))],
                value="0",
                label="guided class",
            )
            k_in = gr.Slider(2, MAX_COMPONENTS, value=6, step=1, label="mixture components")
            n_in = gr.Slider(100, 5000, value=1000, step=100, label="samples")
            seed_in = gr.Number(value=0, precision=0, minimum=0, label="seed")
        image, summary = draw()
        plot = gr.Image(
            value=image, label="samples and the true density", format="png", elem_id="samplers-plot"
        )
        note = gr.Markdown(summary)
        inputs = [method_in, steps_in, guidance_in, target_in, k_in, n_in, seed_in]
        gr.on(
            [c.change for c in inputs],
            page_errors(draw),
            inputs=inputs,
            outputs=[plot, note],
            api_name="samplers",
            trigger_mode="always_last",
        )
