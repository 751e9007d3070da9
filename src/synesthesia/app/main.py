"""The app: every tab in one ``gr.Blocks`` (:func:`build_app`), served on localhost
(:func:`launch`)."""

from __future__ import annotations

import os
from pathlib import Path

from synesthesia.app.common import Checkpoints
from synesthesia.errors import InputError

TITLE = "synesthesia"


def require_gradio():
    """The ``gradio`` module, or an :class:`InputError` saying how to install it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network here
    try:
        import gradio
    except ImportError:
        raise InputError(
            "the web app needs Gradio, which is not installed: pip install -e '.[app]' "
            "(in a clone of synesthesia)"
        ) from None
    return gradio


def build_app(checkpoints: str | Path | Checkpoints, small_steps: int | None = None):
    """The app as a ``gr.Blocks``: one tab per system, serving the runs in ``checkpoints`` (a
    folder, or a :class:`Checkpoints`); ``small_steps`` overrides the steps of every "train a
    small one" button."""
    gr = require_gradio()
    import matplotlib

    matplotlib.use("Agg")  # figures are drawn in worker threads, never shown
    from synesthesia.app import audio, brain, image, joint, probes, samplers, text2image, video

    if not isinstance(checkpoints, Checkpoints):
        checkpoints = Checkpoints(Path(checkpoints), small_steps)
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(
            f"# synesthesia\nMultimodal learning, diffusion generation and multisensory "
            f"integration, on the digit world. Checkpoints from `{checkpoints.folder}`."
        )
        for note in checkpoints.notes:
            gr.Markdown(f"*{note}*")
        with gr.Tabs(overflow_behavior="wrap"):
            for tab in (image, text2image, video, audio, joint):
                tab.build_tab(gr, checkpoints)
            for tab in (samplers, brain, probes):
                tab.build_tab(gr)
    demo.checkpoints = checkpoints
    return demo


def launch(
    checkpoints: str | Path | Checkpoints,
    port: int = 7860,
    host: str = "127.0.0.1",
    block: bool = True,
    small_steps: int | None = None,
):
    """Build the app and serve it at ``http://host:port``; with ``block`` (the command), until
    interrupted. Returns the ``gr.Blocks`` (its ``local_url`` is the address)."""
    demo = build_app(checkpoints, small_steps)
    demo.queue(default_concurrency_limit=1)
    demo.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=not block,
        show_error=True,
        quiet=not block,
        inbrowser=False,
        footer_links=["api"],
    )
    return demo
