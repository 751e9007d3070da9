"""The network-probes tab: a small network trained on noisy audiovisual scenes (a progress bar
while it trains), probed with a psychophysics paradigm (the ventriloquist or the flash
illusion) and fitted with the brain's models, as ``synesthesia probe`` does at full size."""

from __future__ import annotations

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

PARADIGMS = ("ventriloquist", "flash")
MAX_STEPS = 20_000
MAX_TRIALS = 1_000


def run_probe(
    paradigm: Any = "ventriloquist",
    steps: Any = 300,
    trials: Any = 30,
    p_train: Any = 0.5,
    seed: Any = 0,
    progress: bool = False,
):
    """``(figure image, fit summary)``: train the paradigm's network for ``steps`` steps
    (ventriloquist: one source with probability ``p_train``), probe it with ``trials`` trials
    per condition, fit the models to its reports, plot them (the ventriloquist beside the human
    fit of Koerding et al. 2007)."""
    paradigm = choice(paradigm, "paradigm", PARADIGMS)
    steps = whole(steps, "training steps", 1, MAX_STEPS)
    trials = whole(trials, "trials per condition", 1, MAX_TRIALS)
    p_train = check_number(p_train, "p_train", 0.0, 1.0)
    seed = seed_value(seed)
    warmup = min(100, steps // 5)
    if paradigm == "ventriloquist":
        from synesthesia.probes.plots import plot_network_bias
        from synesthesia.probes.ventriloquist import (
            VentriloquistConfig,
            human_reference,
            probe_network,
            train_localiser,
        )

        config = VentriloquistConfig(steps=steps, warmup_steps=warmup)
        trained = train_localiser(p_train, config, seed=seed, progress=progress)
        probe = probe_network(
            trained, trials, models=("averaging", "fusion", "segregation"), seed=seed, n_starts=1
        )
        fig, (ax,) = figure(width=6.0, height=3.8)
        plot_network_bias(probe, human_reference(probe.levels), ax=ax)
        comparison = probe.comparison
        fitted = comparison.fits["averaging"]
    else:
        from synesthesia.probes.flash import FlashConfig, probe_counter, train_counter
        from synesthesia.probes.plots import plot_flash_reports, plot_flash_trend

        config = FlashConfig(steps=steps, warmup_steps=warmup)
        trained = train_counter(config, seed=seed, progress=progress)
        # the lowest and the highest visual noise of training, causal inference alone: every
        # further level or model is another maximum-likelihood fit (about 5 s each, 1 core)
        levels = probe_counter(
            trained,
            (min(config.noise_v), max(config.noise_v)),
            trials,
            seed=seed,
            n_starts=1,
            models=("averaging",),
        )
        fig, (a1, a2) = figure(ncols=2, width=4.6, height=3.6)
        plot_flash_trend(levels, ax=a1)
        plot_flash_reports(levels[-1], ax=a2)
        comparison = levels[-1].comparison
        fitted = comparison.fits["averaging"]
    text = (
        f"Trained {steps} steps in {trained.wall_s:.1f} s. Models fitted to the network's "
        f"reports{'' if paradigm == 'ventriloquist' else ' at the highest visual noise'} "
        f"(BIC order):\n\n```\n{comparison.table()}\n```\n\nCausal inference (averaging):"
        f"\n\n```\n{fitted.table()}\n```"
    )
    return to_image(fig), text


def build_tab(gr) -> None:
    """The tab's components and events (inside an open ``gr.Blocks``)."""
    with gr.Tab("Network probes", id="probes"):
        gr.Markdown(
            "The brain's paradigms run on a trained network, and the brain's models fitted to "
            "its answers. A few hundred steps train in seconds; `synesthesia probe` trains "
            "3000."
        )
        with gr.Row():
            paradigm_in = gr.Radio(list(PARADIGMS), value="ventriloquist", label="paradigm")
            steps_in = gr.Slider(10, 3000, value=300, step=10, label="training steps")
            trials_in = gr.Slider(5, 200, value=30, step=5, label="trials per condition")
            p_in = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="p_train (ventriloquist)")
            seed_in = gr.Number(value=0, precision=0, minimum=0, label="seed")
        button = gr.Button("train and probe", variant="primary")
        plot = gr.Image(format="png", label="the network against the models", elem_id="probes-plot")
        note = gr.Markdown()

        tracked = gr.Progress(track_tqdm=True)  # a fresh tracker per call (Gradio)

        @page_errors
        def run(paradigm, steps, trials, p_train, seed, progress=tracked):
            return run_probe(paradigm, steps, trials, p_train, seed, progress=True)

        button.click(
            run,
            inputs=[paradigm_in, steps_in, trials_in, p_in, seed_in],
            outputs=[plot, note],
            api_name="probe",
        )
