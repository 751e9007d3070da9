"""Fixtures of the web-app tests: tiny checkpoints of every kind (a couple of optimiser steps
each, trained by the app's own "train a small one" code) and the app served in-process."""

from __future__ import annotations

import socket

import pytest

#: The kinds the session trains up front; "image" is left for the page's train button.
PRETRAINED = ("text2image", "text2video", "text2audio", "clip")


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """A folder of runs with tiny text2image, text2video, text2audio and clip checkpoints."""
    pytest.importorskip("gradio", reason="the web app needs gradio: pip install -e '.[app]'")
    from synesthesia.app import audio, joint, text2image, video
    from synesthesia.app.common import Checkpoints

    folder = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNESTHESIA_CACHE", str(tmp_path_factory.mktemp("cache")))
        checkpoints = Checkpoints(folder, small_steps=2)
        for tab in (text2image, video, audio, joint):
            checkpoints.train_small(tab.KIND, progress=False)
    return folder


@pytest.fixture(scope="session")
def served(runs, tmp_path_factory):
    """The app on a free localhost port (its ``local_url``), small models of 2 steps."""
    from synesthesia.app.main import launch

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNESTHESIA_CACHE", str(tmp_path_factory.mktemp("cache-app")))
        demo = launch(runs, port=free_port(), block=False, small_steps=2)
        try:
            yield demo
        finally:
            demo.close()
