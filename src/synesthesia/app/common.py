"""What every tab of the app shares: the checkpoints it serves, user errors shown in the page,
checked values from the page or the API, and figures as images.

:class:`Checkpoints` finds the runs in ``--checkpoints DIR`` (``DIR/RUN/checkpoint``, or a
pipeline folder itself) by the ``"kind"`` of their config.json, as ``synesthesia generate``
does (:func:`synesthesia.commands._shared.checkpoint_kind`), loads them once, and trains a
small one of a kind on request (into ``DIR/app-KIND``).
"""

from __future__ import annotations

import functools
import io
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synesthesia.errors import InputError, short

#: Largest seed the page and the API accept (torch.Generator takes 64-bit integers).
MAX_SEED = 2**63 - 1
#: Sampler steps one call of a tab may take (the page's sliders stop far lower).
MAX_STEPS = 1000


def page_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with the project's :class:`InputError` turned into ``gr.Error(message)``, which
    Gradio shows in the page (and returns to an API client). Any other exception is a bug and
    propagates unchanged, with its traceback."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            import gradio as gr

            message = " ".join(str(exc).split()) or type(exc).__name__
            raise gr.Error(message, print_exception=False) from None

    return run


def whole(value: Any, what: str, lo: int, hi: int) -> int:
    """``value`` (a number from a slider or an API call) as an integer in [lo, hi]."""
    number = check_number(value, what, lo, hi)
    if number != math.floor(number):
        raise InputError(f"{what}: expected a whole number, got {short(value)}")
    return int(number)


def check_number(value: Any, what: str, lo: float, hi: float) -> float:
    """``value`` as a finite float in [lo, hi], or an :class:`InputError` naming ``what``."""
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise InputError(f"{what}: expected a number, got {short(value)}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{what}: expected a number, got {short(value)}") from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise InputError(f"{what}: expected a number in [{lo:g}, {hi:g}], got {short(value)}")
    return number


def seed_value(value: Any) -> int:
    """A seed from the page or the API: a whole number in [0, 2**63 - 1]."""
    return whole(value, "seed", 0, MAX_SEED)


def choice(value: Any, what: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else an :class:`InputError` naming them."""
    if value not in allowed:
        raise InputError(f"{what}: expected one of {', '.join(allowed)}, got {short(value)}")
    return str(value)


def text(value: Any, what: str, limit: int = 500) -> str:
    """A prompt from the page or the API: a string of at most ``limit`` characters."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{what}: expected text, got {short(value)}")
    if len(value) > limit:
        raise InputError(f"{what}: at most {limit} characters, got {len(value)}")
    return value


def figure(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.6):
    """``(fig, axes)``: a matplotlib figure that belongs to no pyplot state (the app's handlers
    run in threads, and pyplot is not thread-safe); ``axes`` is a list, row-major."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def to_image(fig, dpi: int = 100):
    """The figure as an RGB PIL image (a PNG rendering: the same figure gives the same pixels)."""
    from PIL import Image

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    buf.seek(0)
    with Image.open(buf) as img:
        return img.convert("RGB")


def enlarged(image, scale: int):
    """A PIL image enlarged ``scale`` times with nearest-neighbour pixels (for tiny digits)."""
    from PIL import Image

    if scale <= 1:
        return image
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST)


# ---------------------------------------------------------------------- checkpoints
@dataclass
class Kind:
    """How the app loads and trains one kind of checkpoint (each tab module gives one).

    ``load(folder)`` returns the model; ``train_small(out_dir, steps, progress)`` trains a
    tiny one into ``out_dir`` (its checkpoint lands in ``out_dir/checkpoint``) with the
    library's training function for that kind, ``steps`` optimiser steps (None: the kind's
    own small default); ``command`` is how a user trains a real one.
    """

    name: str
    title: str
    load: Callable[[Path], Any]
    train_small: Callable[[Path, int | None, bool], None]
    command: str


@dataclass
class Checkpoints:
    """The checkpoints the app serves, found under ``folder`` by their kind, loaded once.

    ``small_steps`` overrides the steps of every "train a small one" (tests use 1 or 2).
    """

    folder: Path
    small_steps: int | None = None
    found: dict[str, list[Path]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _models: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _training: dict[str, threading.Lock] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self.scan()

    def scan(self) -> None:
        """Look again for checkpoint folders: ``folder`` itself, ``folder/RUN`` and
        ``folder/RUN/checkpoint``; a folder whose config.json cannot be read becomes a note."""
        from synesthesia.commands._shared import checkpoint_kind

        found: dict[str, list[Path]] = {}
        notes: list[str] = []
        candidates = [self.folder]
        if self.folder.is_dir():
            for run in sorted(p for p in self.folder.iterdir() if p.is_dir()):
                candidates += [run, run / "checkpoint"]
        for path in candidates:
            if not (path / "config.json").is_file() or not (path / "model.safetensors").exists():
                continue
            try:
                kind = checkpoint_kind(path)
            except InputError as exc:
                notes.append(f"skipped {path}: {' '.join(str(exc).split())}")
                continue
            found.setdefault(kind, []).append(path)
        with self._lock:
            self.found, self.notes = found, notes

    def choices(self, kind: str) -> list[str]:
        """The checkpoint folders of ``kind``, as the page lists them."""
        return [str(p) for p in self.found.get(kind, [])]

    def resolve(self, kind: Kind, chosen: str | None) -> Path:
        """The folder to use: ``chosen`` (one of :meth:`choices`), or the first of the kind."""
        have = self.choices(kind.name)
        if not have:
            raise InputError(
                f"no {kind.title} checkpoint in {self.folder}: press 'train a small one', or "
                f"train a real one with `{kind.command}` and restart the app"
            )
        if chosen in (None, ""):
            return Path(have[0])
        if chosen not in have:
            raise InputError(
                f"checkpoint {short(chosen)}: not one of the app's {kind.title} checkpoints "
                f"({', '.join(have)})"
            )
        return Path(chosen)

    def load(self, kind: Kind, chosen: str | None) -> Any:
        """The model of the chosen checkpoint (loaded on first use, then kept)."""
        path = self.resolve(kind, chosen)
        key = (kind.name, str(path))
        with self._lock:
            model = self._models.get(key)
        if model is None:
            model = kind.load(path)
            with self._lock:
                self._models[key] = model
        return model

    def train_small(self, kind: Kind, progress: bool = True) -> Path:
        """Train a small model of ``kind`` into a new ``folder/app-KIND[-N]``; its checkpoint."""
        from synesthesia.errors import check_output_dir

        with self._lock:
            lock = self._training.setdefault(kind.name, threading.Lock())
        if not lock.acquire(blocking=False):
            raise InputError(f"a small {kind.title} model is training already; wait for it")
        try:
            check_output_dir(self.folder, "--checkpoints")
            out = self.folder / f"app-{kind.name}"
            n = 2
            while out.exists():
                out, n = self.folder / f"app-{kind.name}-{n}", n + 1
            kind.train_small(out, self.small_steps, progress)
            self.scan()
            checkpoint = out / "checkpoint"
            if str(checkpoint) not in self.choices(kind.name):
                raise RuntimeError(f"training wrote no {kind.name} checkpoint in {checkpoint}")
            return checkpoint
        finally:
            lock.release()


def checkpoint_row(gr, checkpoints: Checkpoints, kind: Kind):
    """The checkpoint picker of a tab and its "train a small one" button (shown only while
    the kind has no checkpoint); returns ``(dropdown, button, status)``. The button trains
    with a progress bar, then selects the new checkpoint and hides itself."""
    have = checkpoints.choices(kind.name)
    with gr.Row():
        dropdown = gr.Dropdown(
            choices=have,
            value=have[0] if have else None,
            label=f"{kind.title} checkpoint",
            info=f"from {checkpoints.folder}",
            allow_custom_value=True,  # resolve() checks it against the folders found now
            scale=3,
        )
        button = gr.Button(
            "train a small one (a few seconds)", visible=not have, variant="secondary", scale=1
        )
    status = gr.Markdown(
        ""
        if have
        else f"No {kind.title} checkpoint yet: train a small one here (its "
        f"samples are rough), or a real one with `{kind.command}`."
    )

    tracked = gr.Progress(track_tqdm=True)  # a fresh tracker per call (Gradio)

    @page_errors
    def train(progress=tracked):
        path = checkpoints.train_small(kind, progress=True)
        choices = checkpoints.choices(kind.name)
        return (
            gr.Dropdown(choices=choices, value=str(path)),
            gr.Button(visible=False),
            f"Trained a small {kind.title} model: {path}",
        )

    button.click(
        train,
        inputs=[],
        outputs=[dropdown, button, status],
        api_name=f"train_small_{kind.name}",
        concurrency_limit=1,
    )
    return dropdown, button, status
