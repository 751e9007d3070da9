"""``synesthesia app``: the web app (Gradio) on localhost, one tab per system.

synesthesia app                      # the runs under runs/ (make demo writes runs/demo)
synesthesia app --checkpoints DIR --port 7861

Gradio is an optional dependency (``pip install -e '.[app]'``); it is imported only when the
command runs, so ``synesthesia --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synesthesia.commands import CommandError
from synesthesia.errors import short

DEFAULT_FOLDER = Path("runs")
DEFAULT_PORT = 7860


def _port(text: str) -> int:
    """argparse type: a TCP port, an integer in [1, 65535]."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {short(text, 40)}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port in [1, 65535], got {short(text, 40)}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``app``."""
    p = subparsers.add_parser(
        "app",
        help="the web app: a tab per system, on localhost (needs pip install -e '.[app]')",
        description="Serve a Gradio app on localhost with one tab per system: class- and "
        "text-to-image, video, audio, the joint embedding, the samplers on an exact denoiser, "
        "the brain's models and the network probes. Each generative tab uses the checkpoints "
        "under --checkpoints (DIR/RUN/checkpoint, found by their kind); a tab without one "
        "offers to train a small one. Stop it with Ctrl-C.",
    )
    p.add_argument(
        "--checkpoints",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"folder of training runs (default {DEFAULT_FOLDER}/, where the train commands "
        "and make demo write; small models trained in the app land there too)",
    )
    p.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port on localhost (default {DEFAULT_PORT})",
    )
    p.set_defaults(func=cmd_app)


def check_port_free(port: int, host: str = "127.0.0.1") -> None:
    """A :class:`CommandError` naming ``--port`` when nothing can listen there."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            reason = (exc.strerror or type(exc).__name__).lower()
            raise CommandError(
                f"--port {port}: cannot listen on {host}:{port} ({reason}); pick another port"
            ) from None


def check_folder(folder: Path | None) -> Path:
    """The checkpoints folder: the one given must be a folder that exists; the default
    (``runs``) may not exist yet."""
    if folder is None:
        if DEFAULT_FOLDER.exists() and not DEFAULT_FOLDER.is_dir():
            raise CommandError(f"{DEFAULT_FOLDER}: is a file, expected the folder of runs")
        return DEFAULT_FOLDER
    if not folder.exists():
        raise CommandError(
            f"--checkpoints {folder}: no such folder (give the folder your training runs are "
            "in, e.g. runs)"
        )
    if not folder.is_dir():
        raise CommandError(f"--checkpoints {folder}: is a file, expected a folder of runs")
    return folder


def cmd_app(args: argparse.Namespace) -> int:
    """``synesthesia app``: check the options, then serve until interrupted."""
    from synesthesia.app.main import launch, require_gradio

    folder = check_folder(args.checkpoints)
    check_port_free(args.port)
    require_gradio()
    print(
        f"synesthesia app on http://127.0.0.1:{args.port} (checkpoints from {folder}; "
        "Ctrl-C stops it)"
    )
    launch(folder, port=args.port)
    return 0
