"""The brain tab: the ventriloquist, flash and McGurk models with sliders for their parameters
(the predicted responses redrawn as they move), and a trial table (CSV) fitted by maximum
likelihood into a parameter table. The CSV format is ``synesthesia brain fit``'s: columns
stim_v, stim_a and any of resp_v, resp_a, unity (:func:`synesthesia.brain.read_trials`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synesthesia.app.common import check_number, choice, figure, page_errors, to_image, whole
from synesthesia.errors import InputError

STRATEGIES = ("averaging", "selection", "matching")
MCGURK_STRATEGIES = ("averaging", "selection")
MAX_STARTS = 20


def _params(values: dict[str, tuple[Any, float, float]]) -> dict[str, float]:
    """Each named slider value checked against its range."""
    return {name: check_number(v, name, lo, hi) for name, (v, lo, hi) in values.items()}


def ventriloquist_plot(
    sigma_v: Any = 2.14,
    sigma_a: Any = 9.2,
    sigma_p: Any = 12.3,
    p_common: Any = 0.28,
    strategy: Any = "averaging",
):
    """``(figure image, summary)``: the predicted auditory bias and the posterior probability of
    a common cause against disparity, for the causal-inference observer with these parameters
    on the Koerding et al. 2007 design (defaults: their group fit)."""
    import numpy as np

    from synesthesia.brain import koerding_observer, ventriloquist
    from synesthesia.brain.plots import plot_localisation_bias, plot_p_common

    params = _params(
        {
            "sigma_v": (sigma_v, 0.1, 50.0),
            "sigma_a": (sigma_a, 0.1, 50.0),
            "sigma_p": (sigma_p, 0.1, 100.0),
            "p_common": (p_common, 0.0, 1.0),
        }
    )
    strategy = choice(strategy, "strategy", STRATEGIES)
    result = ventriloquist(koerding_observer(**params), n_per_condition=1, strategy=strategy)
    fig, (a1, a2) = figure(ncols=2, width=4.6, height=3.4)
    plot_localisation_bias(result, ax=a1)
    plot_p_common(result, ax=a2)
    d, b = result.disparity, result.auditory_bias()
    parts = [f"{x:+.0f} deg: {np.nanmean(b[d == x]):.2f}" for x in np.unique(d[d > 0])]
    return to_image(fig), "Auditory bias toward vision at disparity " + ", ".join(parts) + "."


def flash_plot(
    sigma_v: Any = 0.6,
    sigma_a: Any = 0.35,
    sigma_p: Any = 1.5,
    mu_p: Any = 1.5,
    p_common: Any = 0.7,
    strategy: Any = "averaging",
):
    """``(figure image, summary)``: the mean reported flashes per (flashes, beeps) condition and
    the fission illusion against visual noise, for the numerosity observer."""
    import numpy as np

    from synesthesia.brain import fission_vs_visual_noise, flash_illusion, flash_observer
    from synesthesia.brain.plots import plot_fission_trend, plot_flash_illusion

    params = _params(
        {
            "sigma_v": (sigma_v, 0.05, 10.0),
            "sigma_a": (sigma_a, 0.05, 10.0),
            "sigma_p": (sigma_p, 0.05, 20.0),
            "mu_p": (mu_p, -10.0, 10.0),
            "p_common": (p_common, 0.0, 1.0),
        }
    )
    strategy = choice(strategy, "strategy", STRATEGIES)
    observer = flash_observer(**params)
    result = flash_illusion(observer, strategy=strategy)
    noise = np.array([0.2, 0.4, 0.6, 0.8, 1.0, 1.2])
    trend = fission_vs_visual_noise(noise, observer, strategy)
    fig, (a1, a2) = figure(ncols=2, width=4.6, height=3.4)
    plot_flash_illusion(result, ax=a1)
    plot_fission_trend(noise, trend, ax=a2)
    summary = (
        f"Fission: p(2 flashes seen | 1 flash, 2 beeps) = {result.rate(1, 2, 2):.3f}; fusion: "
        f"p(1 flash seen | 2 flashes, 1 beep) = {result.rate(2, 1, 1):.3f}."
    )
    return to_image(fig), summary


def mcgurk_plot(
    p_common: Any = 0.8,
    sigma_category: Any = 0.3,
    sigma_prior: Any = 2.0,
    auditory_sd: Any = 0.25,
    visual_sd: Any = 0.25,
    strategy: Any = "averaging",
):
    """``(figure image, summary)``: the response probabilities of every auditory-visual syllable
    pair under causal inference of audiovisual speech (``auditory_sd``: the acoustic axis's
    encoding noise, ``visual_sd``: the visible axis's; the other axes keep the model's 1.5)."""
    from synesthesia.brain import McGurkModel, mcgurk_rates
    from synesthesia.brain.plots import plot_mcgurk

    p = _params(
        {
            "p_common": (p_common, 0.0, 1.0),
            "sigma_category": (sigma_category, 0.01, 5.0),
            "sigma_prior": (sigma_prior, 0.05, 20.0),
            "auditory_sd": (auditory_sd, 0.01, 5.0),
            "visual_sd": (visual_sd, 0.01, 5.0),
        }
    )
    strategy = choice(strategy, "strategy", MCGURK_STRATEGIES)
    base = McGurkModel()
    model = McGurkModel(
        sigma_auditory=(p["auditory_sd"], base.sigma_auditory[1]),
        sigma_visual=(base.sigma_visual[0], p["visual_sd"]),
        sigma_prior=p["sigma_prior"],
        p_common=p["p_common"],
        sigma_category=p["sigma_category"],
    )
    table = model.table(strategy)
    fig, (ax,) = figure(width=5.6, height=3.8)
    plot_mcgurk(table, model.syllables, ax=ax, title="causal inference of audiovisual speech")
    rates = mcgurk_rates(table, model.syllables)
    return to_image(fig), "; ".join(f"{k}: {v:.3f}" for k, v in rates.items()) + "."


def example_trials(folder: Path, seed: int = 0) -> Path:
    """A trial table to try the fit with: the Koerding et al. 2007 observer simulated on their
    design (10 trials per condition), its visual and auditory reports (the unity judgements
    left out: with them a fit takes about five times longer), written as CSV into ``folder``."""
    from synesthesia.brain import Trials, koerding_observer, ventriloquist, write_trials

    t = ventriloquist(koerding_observer(), n_per_condition=10, seed=seed).trials
    reports = Trials(t.stimuli, t.responses, t.reported, None, source="example")
    return write_trials(reports, Path(folder) / "ventriloquist_trials.csv")


def fit_csv(path: Any, strategy: Any = "averaging", starts: Any = 2, seed: Any = 0):
    """``(parameter rows, fit summary, figure image or None)`` of the causal-inference observer
    fitted by maximum likelihood to the trial table at ``path``. Rows: ``[parameter, estimate,
    standard error, status]``; the figure is the posterior predictive check (button reports)."""
    import math

    from synesthesia.brain import fit_causal_inference, posterior_predictive, read_trials
    from synesthesia.brain.plots import plot_fit

    if path in (None, ""):
        raise InputError("trial table: upload a CSV file first")
    if not isinstance(path, (str, Path)):  # a tempfile object from older Gradio clients
        path = getattr(path, "name", path)
    strategy = choice(strategy, "strategy", STRATEGIES)
    starts = whole(starts, "optimiser starts", 1, MAX_STARTS)
    trials = read_trials(Path(path))
    fit = fit_causal_inference(
        trials, strategy, n_starts=starts, seed=whole(seed, "seed", 0, 2**31)
    )
    rows = []
    for name, value in fit.params.items():
        status = (
            "free"
            if name in fit.free
            else f"tied to {fit.tied[name]}"
            if name in fit.tied
            else "fixed"
        )
        se = fit.se.get(name, math.nan) if name in fit.free else math.nan
        rows.append(
            [name, round(float(value), 4), None if math.isnan(se) else round(se, 4), status]
        )
    summary = (
        f"{fit.n_trials} trials, strategy {fit.strategy}: log L = {-fit.nll:.2f}, AIC = "
        f"{fit.aic:.2f}, BIC = {fit.bic:.2f}, "
        f"{'converged' if fit.converged else 'not converged'}."
    )
    image = None
    if fit.report.kind == "discrete" and fit.report.modalities:
        check = posterior_predictive(fit, trials, n_sims=200, seed=0)
        fig, axes = figure(ncols=len(fit.report.modalities), width=4.4, height=3.4)
        for j, ax in enumerate(axes):
            plot_fit(check, j, ax=ax)
            ax.set_title(("visual", "auditory")[fit.report.modalities[j]] + " reports")
        image = to_image(fig)
        summary += f" Posterior predictive coverage (95%): {check.coverage:.2f}."
    return rows, summary, image


def _live(gr, fn, inputs, plot, note, api_name: str) -> None:
    """Redraw ``plot`` and ``note`` from ``fn(*inputs)`` whenever one of ``inputs`` changes."""
    gr.on(
        [c.change for c in inputs],
        page_errors(fn),
        inputs=inputs,
        outputs=[plot, note],
        api_name=api_name,
        trigger_mode="always_last",
    )


def build_tab(gr) -> None:
    """The tab's components and events (inside an open ``gr.Blocks``)."""
    import tempfile

    with gr.Tab("Brain", id="brain"), gr.Tabs(overflow_behavior="wrap"):
        with gr.Tab("Ventriloquist", id="brain-ventriloquist"):
            gr.Markdown(
                "Causal inference of where a sound came from when a light flashes "
                "elsewhere (Koerding et al. 2007; the defaults are their group fit)."
            )
            with gr.Row():
                inputs = [
                    gr.Slider(0.5, 10.0, value=2.14, step=0.01, label="sigma_v (deg)"),
                    gr.Slider(1.0, 30.0, value=9.2, step=0.1, label="sigma_a (deg)"),
                    gr.Slider(1.0, 40.0, value=12.3, step=0.1, label="sigma_p (deg)"),
                    gr.Slider(0.0, 1.0, value=0.28, step=0.01, label="p_common"),
                    gr.Dropdown(list(STRATEGIES), value="averaging", label="strategy"),
                ]
            image, summary = ventriloquist_plot()
            plot = gr.Image(
                value=image, format="png", label="predictions", elem_id="brain-ventriloquist-plot"
            )
            note = gr.Markdown(summary)
            _live(gr, ventriloquist_plot, inputs, plot, note, "ventriloquist")
        with gr.Tab("Flash", id="brain-flash"):
            gr.Markdown("The sound-induced flash illusion: two beeps make one flash look double.")
            with gr.Row():
                inputs = [
                    gr.Slider(0.1, 2.0, value=0.6, step=0.01, label="sigma_v (flashes)"),
                    gr.Slider(0.1, 2.0, value=0.35, step=0.01, label="sigma_a (beeps)"),
                    gr.Slider(0.2, 5.0, value=1.5, step=0.05, label="sigma_p"),
                    gr.Slider(0.0, 4.0, value=1.5, step=0.05, label="mu_p"),
                    gr.Slider(0.0, 1.0, value=0.7, step=0.01, label="p_common"),
                    gr.Dropdown(list(STRATEGIES), value="averaging", label="strategy"),
                ]
            image, summary = flash_plot()
            plot = gr.Image(
                value=image, format="png", label="predictions", elem_id="brain-flash-plot"
            )
            note = gr.Markdown(summary)
            _live(gr, flash_plot, inputs, plot, note, "flash")
        with gr.Tab("McGurk", id="brain-mcgurk"):
            gr.Markdown(
                "Hearing *ba* while seeing *ga*: causal inference of audiovisual speech "
                "(after Magnotti & Beauchamp 2017; illustrative parameters)."
            )
            with gr.Row():
                inputs = [
                    gr.Slider(0.0, 1.0, value=0.8, step=0.01, label="p_common"),
                    gr.Slider(0.05, 1.0, value=0.3, step=0.01, label="sigma_category"),
                    gr.Slider(0.5, 5.0, value=2.0, step=0.05, label="sigma_prior"),
                    gr.Slider(0.05, 2.0, value=0.25, step=0.01, label="auditory sd (acoustic)"),
                    gr.Slider(0.05, 2.0, value=0.25, step=0.01, label="visual sd (visible)"),
                    gr.Dropdown(list(MCGURK_STRATEGIES), value="averaging", label="strategy"),
                ]
            image, summary = mcgurk_plot()
            plot = gr.Image(
                value=image,
                format="png",
                label="response probabilities",
                elem_id="brain-mcgurk-plot",
            )
            note = gr.Markdown(summary)
            _live(gr, mcgurk_plot, inputs, plot, note, "mcgurk")
        with gr.Tab("Fit a trial table", id="brain-fit"):
            gr.Markdown(
                "Upload a CSV with columns `stim_v`, `stim_a` and any of `resp_v`, `resp_a`, "
                "`unity` (one row per trial, as `synesthesia brain fit` reads it); the "
                "causal-inference observer is fitted by maximum likelihood."
            )
            example = example_trials(Path(tempfile.mkdtemp(prefix="synesthesia-app-")))
            with gr.Row():
                upload = gr.File(
                    label="trial table (CSV)",
                    file_types=[".csv"],
                    type="filepath",
                    elem_id="brain-csv",
                )
                gr.File(value=str(example), label="an example table to download", interactive=False)
            with gr.Row():
                strategy_in = gr.Dropdown(list(STRATEGIES), value="averaging", label="strategy")
                starts_in = gr.Slider(1, 5, value=2, step=1, label="optimiser starts")
                seed_in = gr.Number(value=0, precision=0, minimum=0, label="seed")
            button = gr.Button("fit", variant="primary")
            table = gr.Dataframe(
                headers=["parameter", "estimate", "std. error", "status"],
                label="fitted parameters",
                interactive=False,
                elem_id="brain-fit-table",
            )
            summary_out = gr.Markdown()
            check = gr.Image(format="png", label="posterior predictive check")
            button.click(
                page_errors(fit_csv),
                inputs=[upload, strategy_in, starts_in, seed_in],
                outputs=[table, summary_out, check],
                api_name="fit_trials",
            )
