"""``synesthesia app``: its options, and the errors it gives before serving anything."""

from __future__ import annotations

import socket
import sys

from synesthesia.cli import main


def _error(capsys) -> str:
    return capsys.readouterr().err.strip()


def test_without_gradio_it_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["app", "--checkpoints", str(tmp_path), "--port", str(port)]) == 2
    err = _error(capsys)
    assert err.startswith("synesthesia: error: the web app needs Gradio")
    assert "pip install -e '.[app]'" in err and "Traceback" not in err


def test_a_port_in_use_is_named(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["app", "--checkpoints", str(tmp_path), "--port", str(port)]) == 2
    err = _error(capsys)
    assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in err
    assert err.endswith("pick another port")


def test_help_names_the_options(capsys):
    try:
        main(["app", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    assert "--checkpoints DIR" in out and "--port PORT" in out
