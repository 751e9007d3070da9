"""The one trainer: any ``torch.nn.Module``, any loss function, any map-style dataset.

It is built on HF accelerate, so the same code runs on a CPU, a GPU, and under
``accelerate launch`` / ``torchrun`` with several processes (only the main process writes
checkpoints, the CSV and the progress bar; each process reads its own share of every batch).

A step: ``loss_fn(model, batch, generator)`` under bf16 autocast (when enabled), backward,
gradient clipping, AdamW with warm-up + cosine learning rate, EMA update. Data order comes
from a seeded permutation per epoch and the trainer's ``generator`` is checkpointed, so
``fit(resume=True)`` continues with exactly the losses an uninterrupted run would have had;
the checkpoint also carries the partial logging window, so the resumed ``metrics.csv`` has
the uninterrupted run's rows. A resume refuses settings that would change the run unless the
caller names them in ``allow_changes``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from synesthesia import __version__
from synesthesia.errors import InputError, MissingInputError
from synesthesia.io import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    atomic_folder,
    atomic_write_json,
    read_json,
    read_safetensors,
    recover_folder,
    tensors_to_bytes,
)
from synesthesia.training.config import (
    ConfigChangedError,
    TrainerConfig,
    TrainResult,
    check_allowed_changes,
    config_changes,
)
from synesthesia.training.distributed import (
    PeerFailedError,
    agree,
    is_peer_failure,
    reduce_max,
)
from synesthesia.training.logs import LogWindow, MetricsCSV
from synesthesia.training.precision import autocast, resolve_precision
from synesthesia.training.schedule import ema_decay_at, lr_at, schedule_progress
from synesthesia.training.state import (
    check_trainer_state,
    decode_bytes_tensor,
    encode_bytes_tensor,
    host_rng_state,
    optimizer_state_from_files,
    optimizer_state_to_files,
    set_host_rng_state,
)

LossFn = Callable[[nn.Module, Any, torch.Generator], "torch.Tensor | tuple[torch.Tensor, dict]"]
EvalFn = Callable[[nn.Module, int, Path], "dict[str, float] | None"]

STATE_FORMAT = 1
STATE_PATH = Path("checkpoint") / "train" / "trainer_state.json"


class NonFiniteLossError(FloatingPointError, InputError):
    """The loss (or the gradient norm) became NaN or infinite; nothing was saved for that step.

    An :class:`~synesthesia.errors.InputError`: the user fixes it (a lower learning rate,
    clipping, float32), so the command prints it as one line naming the step."""


def read_run_state(out_dir: str | Path) -> dict:
    """The saved state of the training run in ``out_dir`` (from its latest checkpoint).

    Returns the checkpoint's trainer state: ``step``, ``epoch``, ``config`` (the
    :class:`TrainerConfig` fields as saved), ``mixed_precision``, ``elapsed_s``, ... Callers
    read a run's settings through this function, never by opening the files themselves.
    Raises :class:`~synesthesia.errors.InputError` naming the file when it is missing or bad.
    """
    folder = Path(out_dir) / "checkpoint"
    recover_folder(folder)
    path = Path(out_dir) / STATE_PATH
    if not path.exists():
        raise MissingInputError(f"{folder}: no checkpoint to resume; train without --resume first")
    state = read_json(path, what="trainer state")
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise InputError(f"{path}: not a trainer state (format {STATE_FORMAT})")
    if not isinstance(state.get("config"), dict):
        raise InputError(f"{path}: has no saved trainer configuration")
    return state


def read_run(out_dir: str | Path, kind: str, what: str) -> tuple[dict, dict]:
    """``(trainer state, checkpoint config.json)`` of the training run in ``out_dir``, whose
    config must say ``"kind": kind``; else :class:`~synesthesia.errors.InputError` naming the
    file: ``"...config.json: not {what} run (kind='image')"`` (``what``: "an image-diffusion",
    "a text-to-audio", ...)."""
    state = read_run_state(out_dir)
    path = Path(out_dir) / "checkpoint" / CONFIG_NAME
    config = read_json(path, what="config file")
    if not isinstance(config, dict) or config.get("kind") != kind:
        found = config.get("kind") if isinstance(config, dict) else None
        raise InputError(f"{path}: not {what} run (kind={found!r})")
    return state, config


def kept_settings(out_dir: str | Path, kind: str, what: str, **from_config: str) -> dict:
    """What a resumption of the run in ``out_dir`` keeps: ``batch_size`` and ``seed`` from
    its trainer state, and each ``name=key`` of ``from_config`` from its config.json."""
    state, config = read_run(out_dir, kind, what)
    saved = state["config"]
    kept = {name: config.get(key) for name, key in from_config.items()}
    return {**kept, "batch_size": saved.get("batch_size"), "seed": saved.get("seed")}


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed derived from ``seed`` and ``keys`` (independent streams per purpose)."""
    digest = hashlib.sha256(repr((int(seed), *keys)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order in which epoch ``epoch`` visits the ``n`` items: a seeded permutation."""
    generator = torch.Generator().manual_seed(derive_seed(seed, "data", epoch))
    return torch.randperm(n, generator=generator)


def parameter_groups(model: nn.Module, config: TrainerConfig) -> list[dict]:
    """AdamW's parameter groups of ``model``'s trainable parameters: weight decay on matrices
    and kernels only, not on biases, norm scales or embeddings' 1-d vectors (as in nanoGPT /
    minGPT's configure_optimizers), and per :attr:`TrainerConfig.lr_scales` a learning-rate
    factor (``"lr_scale"``, by the longest matching name prefix). Without ``lr_scales``: the
    decayed group, then the rest, each in the model's order."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("model has no trainable parameters")
    scales = config.lr_scales or {}
    unused = [k for k in scales if not any(n.startswith(k) for n, _ in named)]
    if unused:
        raise InputError(
            f"TrainerConfig.lr_scales: no trainable parameter's name starts with {unused}"
        )

    def scale_of(name: str) -> float:
        hits = [k for k in scales if name.startswith(k)]
        return scales[max(hits, key=len)] if hits else 1.0

    groups: dict[tuple[bool, float], list] = {}
    for decay in (True, False):
        for name, p in named:
            if (p.ndim >= 2) == decay:
                groups.setdefault((decay, scale_of(name)), []).append(p)
    return [
        {"params": ps, "weight_decay": config.weight_decay if decay else 0.0, "lr_scale": scale}
        for (decay, scale), ps in groups.items()
    ]


class _Interrupt:
    """First Ctrl-C (SIGINT) or SIGTERM: stop after the current step; second: raise at once.

    SIGTERM is what schedulers (SLURM preemption, ``kill``) send: the run saves and stops
    instead of dying mid-step. Inside :meth:`critical` (the optimizer update and the
    bookkeeping that goes with it) a second signal waits for the block to end, so a step is
    either wholly done or not at all.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}
        self._critical = 0
        self._deferred = False

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            if self._critical:
                self._deferred = True
                return
            raise KeyboardInterrupt
        self.requested = True
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(
            f"\ntraining: {name} received; finishing this step and saving a checkpoint "
            "(press Ctrl-C again to stop at once)",
            flush=True,
        )

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        """A block that a second signal does not cut short (it raises when the block ends)."""
        self._critical += 1
        try:
            yield
        finally:
            self._critical -= 1
        if self._deferred and not self._critical:
            self._deferred = False
            raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)


@dataclasses.dataclass
class _Step:
    """One optimizer step's numbers after the step's single collective."""

    loss: float
    grad_norm: float
    extras: dict[str, float]
    time_up: bool
    interrupted: bool
    halfway: bool = False  # half of the time budget spent (on some rank)


@dataclasses.dataclass
class _Run:
    """What one :meth:`Trainer.fit` call keeps while it runs."""

    start: float
    bar: Any
    losses: list[float] = dataclasses.field(default_factory=list)
    stopped: str | None = None
    snapshot: tuple | None = None  # RNG states before the step under way (None: none is)
    # A completed step whose row is not written yet: {"row": {...}, "evaluate": bool}
    unfinished: dict[str, Any] | None = None
    step_ends: list[float] = dataclasses.field(default_factory=list)  # for replan
    replanned: bool = False
    replanned_halfway: bool = False
    first_replan: tuple[int, float] | None = None  # (step, time) of the warm-up replan


class Trainer:
    """Train ``model`` by minimising ``loss_fn(model, batch, generator)`` over ``train_dataset``.

    Args:
        model: the module to train (its current weights are the starting point).
        loss_fn: ``(model, batch, generator) -> loss`` or ``(loss, {name: number})``; must use
            ``generator`` (a ``torch.Generator`` on the training device, checkpointed) for all
            its randomness, e.g. ``torch.randn(shape, generator=generator,
            device=generator.device)``. Under several processes ``model`` is the DDP wrapper:
            call it (its ``forward``) so gradients are synchronised.
        train_dataset: a map-style dataset (``__len__`` and ``__getitem__``).
        config: a :class:`TrainerConfig`.
        model_config: JSON-serialisable dict written as ``config.json`` in every checkpoint, so
            that the model can be rebuilt from the checkpoint folder.
        eval_fn: optional ``(ema_model, step, out_dir) -> {name: number}``, called on the main
            process every ``config.eval_every`` steps and at the end (under ``torch.no_grad``;
            the global RNG is restored afterwards so evaluation never changes training).
        collate_fn: how a list of items becomes a batch (default: torch's default_collate).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        train_dataset: Any,
        config: TrainerConfig,
        model_config: dict | None = None,
        eval_fn: EvalFn | None = None,
        collate_fn: Callable[[list], Any] | None = None,
        replan: Callable[[int, float, float], int] | None = None,
    ) -> None:
        from accelerate import Accelerator

        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(config, TrainerConfig):
            raise ValueError(f"config must be a TrainerConfig, got {type(config).__name__}")
        if not callable(loss_fn):
            raise ValueError("loss_fn must be callable: loss_fn(model, batch, generator)")
        try:
            n_items = len(train_dataset)
        except TypeError as exc:
            raise ValueError("train_dataset must have a length (a map-style dataset)") from exc
        model_config = {} if model_config is None else model_config
        if not isinstance(model_config, dict):
            raise ValueError(f"model_config must be a dict, got {type(model_config).__name__}")
        try:
            json.dumps(model_config)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"model_config must be JSON-serialisable ({exc})") from exc

        self.config = config
        self.loss_fn = loss_fn
        self.train_dataset = train_dataset
        self.model_config = model_config
        self.eval_fn = eval_fn
        self.collate_fn = collate_fn
        # replan(step, fit_seconds, seconds_per_step) -> max_steps, called once in a fresh run
        # at the end of the learning-rate warm-up (where the LR does not yet depend on
        # max_steps), from the steps really taken: a time budget is then used, not guessed.
        self.replan = replan
        self._resumed = False
        # Mixed precision is applied by this trainer (torch.autocast around loss_fn), not by
        # Accelerator(mixed_precision=...): accelerate's state is a process-wide singleton that
        # cannot switch precision between two trainers in one process.
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
        acc = self.accelerator
        self.device = acc.device
        # every rank runs at rank 0's precision ("auto" is measured per process)
        self.mixed_precision = agree(resolve_precision(config.mixed_precision, self.device))
        if acc.mixed_precision not in ("no", self.mixed_precision):
            warnings.warn(
                f"accelerate is configured for mixed_precision={acc.mixed_precision!r} (accelerate "
                f"launch / config) but the trainer uses {self.mixed_precision!r}; leave "
                "accelerate's at 'no' and set TrainerConfig.mixed_precision",
                stacklevel=2,
            )

        world = acc.num_processes
        if config.batch_size % (world * config.grad_accumulation):
            raise InputError(
                f"batch_size={config.batch_size} must be divisible by the number of "
                f"processes ({world}) times grad_accumulation ({config.grad_accumulation})"
            )
        if n_items < config.batch_size:
            raise InputError(
                f"train_dataset has {n_items} items, fewer than batch_size={config.batch_size}; "
                "lower batch_size"
            )
        self.n_items = n_items
        self.batches_per_epoch = n_items // config.batch_size  # the last partial batch is dropped

        optimizer = torch.optim.AdamW(
            parameter_groups(model, config), lr=config.lr, betas=config.betas
        )
        self._train_model, self.optimizer = acc.prepare(model, optimizer)
        self.model: nn.Module = acc.unwrap_model(self._train_model)
        if config.compile:
            self._train_model = torch.compile(self._train_model)
        # float16 needs its gradients scaled (its range is narrow); bf16 and float32 do not
        self.scaler = (
            torch.amp.GradScaler(self.device.type) if self.mixed_precision == "fp16" else None
        )
        if config.ema_decay is not None:
            self.ema_model: nn.Module = copy.deepcopy(self.model).eval().requires_grad_(False)
        else:
            self.ema_model = self.model
        self.generator = torch.Generator(device=self.device)

        self.step = 0
        self.epoch = 0
        self.position = 0  # batches of the current epoch already consumed
        self.ema_updates = 0
        self.elapsed_before = 0.0  # training seconds of earlier fit calls (resumed runs)
        self.last_checkpoint_step: int | None = None
        self._window = LogWindow()  # the steps since the last log row (checkpointed)
        self._overrides: list[dict] = []  # settings changed on resume, as allowed (checkpointed)
        self._unfinished: dict[str, Any] | None = None  # a step's evaluation cut short (same)
        self._fitted = False
        self._fit_start = time.perf_counter()
        self._interrupt: _Interrupt | None = None

    # ------------------------------------------------------------------ paths
    @property
    def out_dir(self) -> Path:
        """The run folder."""
        return Path(self.config.out_dir)

    @property
    def checkpoint_dir(self) -> Path:
        """``out_dir/checkpoint``: the latest complete checkpoint."""
        return self.out_dir / "checkpoint"

    # ------------------------------------------------------------------ fit
    def fit(self, resume: bool = False, allow_changes: Iterable[str] = ()) -> TrainResult:
        """Train until ``max_steps``, ``max_minutes`` or Ctrl-C; returns a :class:`TrainResult`.

        ``resume=True`` first loads ``out_dir/checkpoint`` (weights, EMA, optimizer, data
        position, RNG states, logging window) and continues exactly where it stopped. A
        setting that differs from the saved run (other than ``out_dir``, ``max_minutes``,
        ``progress``, ``log_every``, ``checkpoint_every``, ``eval_every``), a dataset of
        another length or another resolved precision raises :class:`ConfigChangedError`
        naming it and both values, unless named in ``allow_changes`` (e.g.
        ``allow_changes={"max_steps"}`` to extend a run; the schedule then follows the new
        ``max_steps``). ``resume=False`` starts at step 0 from the model's current weights
        (and overwrites the run's metrics.csv; the old checkpoint is replaced at the first save).
        """
        allowed = check_allowed_changes(allow_changes)
        self._begin(resume, allowed)
        run = _Run(start=time.perf_counter(), bar=self._progress_bar())
        self._fit_start = run.start
        self._window.restart_clock(run.start)
        try:
            with _Interrupt() as interrupt:
                self._interrupt = interrupt
                self._complete_resumed_step(run)
                batches = self._batches()
                while run.stopped is None and self.step < self.config.max_steps:
                    run.stopped = self._iteration(batches, run)
        except KeyboardInterrupt:
            self._save_abandoned(run)
            run.stopped = "interrupted"
        finally:
            run.bar.close()
            self._interrupt = None
        return self._finish(run)

    def _begin(self, resume: bool, allowed: frozenset[str]) -> None:
        """Load the checkpoint (resume) or start at step 0; open the metrics CSV."""
        acc = self.accelerator
        if resume:
            self._load_checkpoint(allowed)
        elif self._fitted:
            raise ValueError("this Trainer has already trained: call fit(resume=True) to go on")
        else:
            if acc.is_main_process and (self.checkpoint_dir / "train").is_dir():
                warnings.warn(
                    f"{self.checkpoint_dir} exists and will be replaced by this new run at its "
                    "first checkpoint; pass resume=True to continue it instead",
                    stacklevel=3,
                )
            self._fresh_start()
        self._fitted = True
        self._resumed = resume
        if acc.is_main_process:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            # an unfinished step's partial row is dropped here and rewritten whole below
            kept = self.step - (self._unfinished is not None) if resume else None
            self.metrics = MetricsCSV(self.out_dir / "metrics.csv", resume_step=kept)
        self._train_model.train()

    def _complete_resumed_step(self, run: _Run) -> None:
        """A resumed run whose last step's evaluation was cut short: evaluate, write its row."""
        if self._unfinished is not None:
            run.unfinished, self._unfinished = self._unfinished, None
            self._complete_row(run.unfinished)

    def _progress_bar(self) -> Any:
        from tqdm.auto import tqdm

        cfg = self.config
        return tqdm(
            total=cfg.max_steps,
            initial=self.step,
            desc="train",
            unit="step",
            disable=not (cfg.progress and self.accelerator.is_main_process),
            dynamic_ncols=True,
        )

    def _iteration(self, batches: Iterator[Any], run: _Run) -> str | None:
        """Next batch, one step, its log row, evaluation and checkpoint; why to stop, if so."""
        run.snapshot = self._rng_snapshot()
        step = self._train_step(next(batches))
        assert self._interrupt is not None
        with self._interrupt.critical():
            self._commit_step()
            run.snapshot = None
            run.losses.append(step.loss)
            run.unfinished = {
                "row": self._log_window(step, run),
                "evaluate": self._evaluation_due(step),
            }
        self._maybe_replan(run, step)
        self._evaluate_log_checkpoint(step, run)
        return self._stop_reason(step)

    def _maybe_replan(self, run: _Run, step: _Step) -> None:
        """In a fresh run, let ``replan`` reset ``max_steps`` from the measured step time (at
        warm-up the median of the last ten steps, at half time the mean since warm-up): once
        at the end of warm-up (where the learning rate
        does not yet depend on ``max_steps``), and once when half of the time budget is spent
        (the warm-up's steps can be slower or faster than the later ones; the cosine then
        continues from where it was, :attr:`TrainerConfig.schedule_knot`). Under several
        processes every rank replans at the same step (the halfway flag went through the
        step's collective) from the slowest rank's numbers, so all agree."""
        run.step_ends.append(time.perf_counter())
        cfg = self.config
        if self.replan is None or self._resumed:
            return
        if not run.replanned:
            if self.step < max(cfg.warmup_steps, 4):
                return
            run.replanned = True
        elif step.halfway and not run.replanned_halfway and self.step < cfg.max_steps:
            run.replanned_halfway = True
        else:
            return
        ends = run.step_ends[-11:]
        if run.first_replan is None:  # end of warm-up: the median of the last ten steps
            gaps = sorted(b - a for a, b in zip(ends, ends[1:], strict=False))
            local = gaps[len(gaps) // 2] if gaps else (ends[-1] - run.start)
            run.first_replan = (self.step, ends[-1])
        else:  # half time: the mean step since warm-up (a passing load moves it little)
            step0, time0 = run.first_replan
            local = (ends[-1] - time0) / max(self.step - step0, 1)
        seconds = reduce_max(local)
        elapsed = reduce_max(ends[-1] - run.start)
        new = int(self.replan(self.step, elapsed, seconds))
        if new != cfg.max_steps and new > self.step:
            if self.step > cfg.warmup_steps and cfg.lr_schedule != "constant":
                # the decay is under way: continue it from here over the new length
                cfg.schedule_knot = (self.step, schedule_progress(self.step, cfg))
            cfg.max_steps = new
            run.bar.total = new
            run.bar.refresh()

    def _log_window(self, step: _Step, run: _Run) -> dict[str, object] | None:
        """Add the step to the logging window; the window's row when one is due."""
        cfg = self.config
        self._window.add({"loss": step.loss, "grad_norm": step.grad_norm, **step.extras})
        if self.step % cfg.log_every and self.step < cfg.max_steps:
            return None
        row: dict[str, object] = self._window.close(cfg.batch_size)
        row["lr"] = lr_at(self.step - 1, cfg)
        run.bar.set_postfix(
            loss=f"{row['loss']:.4g}", lr=f"{row['lr']:.2e}", items_s=f"{row['items_per_s']:.0f}"
        )
        return row

    def _evaluation_due(self, step: _Step) -> bool:
        """Every ``eval_every`` steps, and when training ends other than by an interrupt."""
        cfg = self.config
        if not cfg.eval_every:
            return False
        last = self.step >= cfg.max_steps
        return self.step % cfg.eval_every == 0 or last or (step.time_up and not step.interrupted)

    def _evaluate_log_checkpoint(self, step: _Step, run: _Run) -> None:
        """Evaluate when due, write the step's row, save when due or when training ends.

        Every process takes the same decisions: the flags went through the step's collective.
        """
        cfg = self.config
        run.bar.update(1)
        assert run.unfinished is not None
        self._complete_row(run.unfinished)
        ending = self.step >= cfg.max_steps or step.time_up or step.interrupted
        if self.step % cfg.checkpoint_every == 0 or ending:
            self.save_checkpoint()

    def _complete_row(self, unfinished: dict[str, Any]) -> None:
        """Evaluate if due and write the step's row (loss window and evaluation numbers);
        ``unfinished`` is emptied as the row is written (once, whatever the signals)."""
        row = dict(unfinished["row"] or {})
        if unfinished["evaluate"]:
            row.update(self._evaluate())
        assert self._interrupt is not None
        with self._interrupt.critical():
            if row:
                self._log_row(row)
            unfinished.update(row=None, evaluate=False)

    def _stop_reason(self, step: _Step) -> str | None:
        if self.step >= self.config.max_steps:
            return "max_steps"
        if step.interrupted:
            return "interrupted"
        if step.time_up:
            return "max_minutes"
        return None

    def _save_abandoned(self, run: _Run) -> None:
        """A second Ctrl-C: back to the state after the last completed step, and save it.

        A completed step whose evaluation was cut short has its loss row written now and its
        evaluation kept in the checkpoint; a resume evaluates it and rewrites the whole row.
        """
        if run.snapshot is not None:  # a step was under way: undo what it drew
            self._rng_restore(run.snapshot)
        self.optimizer.zero_grad(set_to_none=True)
        if run.unfinished is not None:
            row, evaluate = run.unfinished["row"], run.unfinished["evaluate"]
            if row:
                self._log_row(row)
            if evaluate:
                self._unfinished = {"row": row, "evaluate": True}
            run.unfinished = None
        self.save_checkpoint(collective=False)

    def _finish(self, run: _Run) -> TrainResult:
        cfg = self.config
        wall = time.perf_counter() - run.start
        self.elapsed_before += wall
        self._fit_start = time.perf_counter()  # later manual saves count from here
        has_checkpoint = self.last_checkpoint_step is not None
        result = TrainResult(
            step=self.step,
            stopped=run.stopped or "max_steps",
            losses=run.losses,
            wall_s=wall,
            checkpoint=self.checkpoint_dir if has_checkpoint else None,
            epoch=self.epoch,
            items_per_s=len(run.losses) * cfg.batch_size / max(wall, 1e-9),
            metrics_csv=self.out_dir / "metrics.csv",
            max_steps=cfg.max_steps,
            checkpoint_step=self.last_checkpoint_step,
        )
        if self.accelerator.is_main_process and (cfg.progress or result.interrupted):
            print(f"training: {result.summary()}", flush=True)
        return result

    # ------------------------------------------------------------------ one step
    def _autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.mixed_precision, self.device)

    def _train_step(self, micro_batches: list[Any]) -> _Step:
        """Forward and backward of each micro-batch, clipping, and the step's collective;
        nothing is applied yet."""
        cfg, acc = self.config, self.accelerator
        lr = lr_at(self.step, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        losses: list[torch.Tensor] = []
        extras_sum: dict[str, float] = {}
        for i, batch in enumerate(micro_batches):
            last = i == len(micro_batches) - 1
            # gradients are synchronised across processes on the last micro-batch only
            sync = contextlib.nullcontext() if last else acc.no_sync(self._train_model)
            with sync:
                loss, extras = self._micro_step(batch, len(micro_batches))
            losses.append(loss)
            for k, v in extras.items():
                extras_sum[k] = extras_sum.get(k, 0.0) + v / len(micro_batches)
        loss = torch.stack(losses).mean()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        max_norm = cfg.grad_clip if cfg.grad_clip is not None else math.inf
        grad_norm = acc.clip_grad_norm_(self._train_model.parameters(), max_norm)
        grad_norm = torch.as_tensor(grad_norm, dtype=torch.float32, device=self.device)
        fit_s = time.perf_counter() - self._fit_start
        time_up = cfg.max_minutes is not None and fit_s >= cfg.max_minutes * 60.0
        halfway = cfg.max_minutes is not None and fit_s >= cfg.max_minutes * 30.0
        # One collective per step: mean loss, grad norm, and the flags of every process.
        numbers = torch.stack(
            [
                loss.detach() / acc.num_processes,
                grad_norm.reshape(()),
                torch.tensor(float(time_up), device=self.device),
                torch.tensor(float(self._requested()), device=self.device),
                torch.tensor(float(halfway), device=self.device),
            ]
        )
        if acc.num_processes > 1:
            numbers = self._collective(lambda: acc.reduce(numbers, reduction="sum"))
        loss_value, norm_value, time_flag, int_flag, half_flag = numbers.tolist()
        # under float16 an infinite gradient is the scaler's business: it skips the step
        scaled_overflow = self.scaler is not None and not math.isfinite(norm_value)
        if not math.isfinite(loss_value) or (not math.isfinite(norm_value) and not scaled_overflow):
            self.optimizer.zero_grad(set_to_none=True)
            raise self._non_finite(loss_value, norm_value)
        return _Step(loss_value, norm_value, extras_sum, time_flag > 0, int_flag > 0, half_flag > 0)

    def _micro_step(self, batch: Any, n_micro: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Forward and backward of one micro-batch (its loss divided by ``n_micro``).

        A rank whose ``loss_fn`` raises ends its process with its own traceback; the other
        ranks' next exchange (this backward's gradients, or the step's collective) then fails,
        and :meth:`_collective` turns that into :class:`PeerFailedError`."""
        from accelerate.utils import send_to_device

        batch = send_to_device(batch, self.device, non_blocking=True)
        with self._autocast():
            out = self.loss_fn(self._train_model, batch, self.generator)
        loss, extras = out if isinstance(out, tuple) else (out, {})
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError("loss_fn must return a scalar tensor (or (scalar tensor, dict))")
        loss = loss.reshape(()).float()
        backward = loss / n_micro
        if self.scaler is not None:
            backward = self.scaler.scale(backward)
        self._collective(lambda: self.accelerator.backward(backward))
        numbers = {
            k: float(v.detach().float().mean()) if isinstance(v, torch.Tensor) else float(v)
            for k, v in extras.items()
        }
        return loss.detach(), numbers

    def _collective(self, fn: Callable[[], Any]) -> Any:
        """``fn()``, a call that exchanges data with the other processes; a peer that went
        away becomes :class:`PeerFailedError` (the last checkpoint is intact)."""
        try:
            return fn()
        except Exception as exc:
            if self.accelerator.num_processes > 1 and is_peer_failure(exc):
                message = self._peer_message(f"another process stopped ({exc})")
                raise PeerFailedError(message) from exc
            raise

    def _peer_message(self, what: str) -> str:
        acc = self.accelerator
        return (
            f"process {acc.process_index} of {acc.num_processes}: {what} at step "
            f"{self.step + 1} (its traceback is in its own output); this process stops too, "
            f"and {self._kept()}"
        )

    def _kept(self) -> str:
        if self.last_checkpoint_step is None:
            return "no checkpoint was written before it"
        return (
            f"the last good checkpoint ({self.checkpoint_dir}, step "
            f"{self.last_checkpoint_step}) is intact"
        )

    def _commit_step(self) -> None:
        """Apply the step: AdamW update (skipped by the float16 scaler on overflow), EMA,
        counters."""
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema_model is not self.model:
            self._update_ema()
        self.step += 1
        self.position += 1

    def _non_finite(self, loss_value: float, norm_value: float) -> NonFiniteLossError:
        what = "loss" if not math.isfinite(loss_value) else "gradient norm"
        value = loss_value if what == "loss" else norm_value
        kept = self._kept()
        return NonFiniteLossError(
            f"non-finite {what} ({value}) at step {self.step + 1} (epoch {self.epoch}, "
            f"batch {self.position} of the epoch); nothing was saved for this step and {kept}. "
            "Lower lr, set grad_clip, or use mixed_precision='no'."
        )

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = ema_decay_at(self.ema_updates, self.config)
        pairs = list(zip(self.ema_model.parameters(), self.model.parameters(), strict=True))
        ema_params = [e for e, p in pairs if p.requires_grad]
        params = [p.detach() for _, p in pairs if p.requires_grad]
        # exponential moving average: e <- decay * e + (1 - decay) * p (one fused pass)
        torch._foreach_mul_(ema_params, decay)
        torch._foreach_add_(ema_params, params, alpha=1.0 - decay)
        for e, p in pairs:  # frozen parts (a frozen text tower, an autoencoder): copied exactly
            if not p.requires_grad:
                e.copy_(p)
        for e, b in zip(self.ema_model.buffers(), self.model.buffers(), strict=True):
            e.copy_(b)
        self.ema_updates += 1

    # ------------------------------------------------------------------ data
    def _batches(self) -> Iterator[list[Any]]:
        """This process's share of each step's batch (a list of ``grad_accumulation``
        micro-batches), from the current position on, epoch after epoch."""
        n = self.config.grad_accumulation
        while True:
            if self.position >= self.batches_per_epoch:
                self.epoch, self.position = self.epoch + 1, 0
            micro: list[Any] = []
            for batch in self._loader(self.epoch, self.position):
                micro.append(batch)
                if len(micro) == n:
                    yield micro
                    micro = []

    def _loader(self, epoch: int, position: int) -> Any:
        """A DataLoader over this process's share of epoch ``epoch``, from batch ``position``:
        global batch ``b`` is items ``order[b * B : (b + 1) * B]``, of which process ``r`` takes
        the ``r``-th of ``P`` equal slices, in ``grad_accumulation`` consecutive micro-batches."""
        from torch.utils.data import DataLoader

        cfg, acc = self.config, self.accelerator
        order = epoch_permutation(self.n_items, cfg.seed, epoch)
        per_process = cfg.batch_size // acc.num_processes
        micro = per_process // cfg.grad_accumulation
        lo = acc.process_index * per_process
        starts = [
            b * cfg.batch_size + lo + m * micro
            for b in range(position, self.batches_per_epoch)
            for m in range(cfg.grad_accumulation)
        ]
        batches = [order[start : start + micro].tolist() for start in starts]
        # A DataLoader without its own generator draws its base seed from the global RNG,
        # which would make a resumed run differ from an uninterrupted one.
        base = torch.Generator().manual_seed(derive_seed(cfg.seed, "loader", epoch, position))
        return DataLoader(
            self.train_dataset,
            batch_sampler=batches,
            collate_fn=self.collate_fn,
            pin_memory=self.device.type == "cuda",
            generator=base,
        )

    def _requested(self) -> bool:
        return self._interrupt is not None and self._interrupt.requested

    # ------------------------------------------------------------------ randomness
    def _rng_snapshot(self) -> tuple:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        return self.generator.get_state(), torch.get_rng_state(), cuda

    def _rng_restore(self, snapshot: tuple) -> None:
        gen, cpu, cuda = snapshot
        self.generator.set_state(gen)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)

    def _fresh_start(self) -> None:
        from accelerate.utils import set_seed

        cfg, acc = self.config, self.accelerator
        set_seed(cfg.seed, device_specific=True)
        self.generator.manual_seed(derive_seed(cfg.seed, "loss", acc.process_index))
        self.step = self.epoch = self.position = self.ema_updates = 0
        self.elapsed_before = 0.0
        self.last_checkpoint_step = None
        self._window = LogWindow()
        self._overrides = []
        self._unfinished = None

    def _rng_states(self, collective: bool) -> dict[str, Any]:
        """RNG states of every process (gathered when ``collective``), JSON-able."""
        acc = self.accelerator
        local = [self.generator.get_state(), torch.get_rng_state()]
        if torch.cuda.is_available():
            local.append(torch.cuda.get_rng_state(self.device))
        if collective and acc.num_processes > 1:
            per_process: list[list[torch.Tensor]] = [[] for _ in range(acc.num_processes)]
            for state in local:
                gathered = acc.gather(state.to(self.device).unsqueeze(0)).cpu()
                for rank in range(acc.num_processes):
                    per_process[rank].append(gathered[rank])
        else:
            per_process = [local]
        names = ["loss_generator", "torch", "cuda"]
        processes = [
            {names[i]: encode_bytes_tensor(s) for i, s in enumerate(states)}
            for states in per_process
        ]
        return {"processes": processes, "host": host_rng_state()}

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, collective: bool = True) -> Path:
        """Write ``out_dir/checkpoint`` atomically (main process); returns its path."""
        acc = self.accelerator
        rng = self._rng_states(collective)
        if acc.is_main_process:
            cfg = self.config
            opt_tensors, opt_meta = optimizer_state_to_files(self.optimizer.state_dict())
            state = {
                "format": STATE_FORMAT,
                "step": self.step,
                "epoch": self.epoch,
                "position_in_epoch": self.position,
                "batches_per_epoch": self.batches_per_epoch,
                "dataset_len": self.n_items,
                "num_processes": acc.num_processes,
                "ema_updates": self.ema_updates,
                "elapsed_s": self.elapsed_before + (time.perf_counter() - self._fit_start),
                "lr_schedule": {
                    "kind": cfg.lr_schedule,
                    "next_step": self.step,
                    "last_lr": lr_at(max(self.step - 1, 0), cfg),
                },
                "mixed_precision": self.mixed_precision,
                "grad_scaler": None if self.scaler is None else self.scaler.state_dict(),
                "rng": rng,
                "config": dataclasses.asdict(cfg),
                "log_window": self._window.state(),
                "overrides": self._overrides,
                "unfinished_step": self._unfinished,
                "versions": {"synesthesia": __version__, "torch": torch.__version__},
            }
            with atomic_folder(self.checkpoint_dir) as tmp:
                (tmp / "train").mkdir()
                (tmp / WEIGHTS_NAME).write_bytes(tensors_to_bytes(self.ema_model.state_dict()))
                (tmp / CONFIG_NAME).write_text(json.dumps(self.model_config, indent=2) + "\n")
                train = tmp / "train"
                (train / "model.safetensors").write_bytes(tensors_to_bytes(self.model.state_dict()))
                (train / "optimizer.safetensors").write_bytes(tensors_to_bytes(opt_tensors))
                atomic_write_json(train / "optimizer.json", opt_meta)
                atomic_write_json(train / "trainer_state.json", state)
        if collective:
            acc.wait_for_everyone()
        self.last_checkpoint_step = self.step
        return self.checkpoint_dir

    def _load_checkpoint(self, allowed: frozenset[str] = frozenset()) -> None:
        """Read and check every file first, then apply them (nothing is applied on an error)."""
        state = read_run_state(self.out_dir)
        path = self.out_dir / STATE_PATH
        check_trainer_state(state, path, self.device)
        weights, ema, opt_state = self._read_checkpoint_files()
        self._check_resume_settings(state, path, allowed)
        self._apply_weights(weights, ema, opt_state)
        self._apply_state(state)

    def _check_resume_settings(self, state: dict, path: Path, allowed: frozenset[str]) -> None:
        """Refuse a setting that would change the run unless it is in ``allowed``."""
        cfg, acc = self.config, self.accelerator
        changes = config_changes(state["config"], cfg)
        facts = {"dataset_len": self.n_items, "mixed_precision": self.mixed_precision}
        for name, now in facts.items():
            if state.get(name) is not None and state[name] != now:
                changes[name] = (state[name], now)
        refused = {k: v for k, v in changes.items() if k not in allowed}
        if refused:
            raise ConfigChangedError(path, refused)
        if cfg.max_steps < state["step"]:
            raise InputError(
                f"{path}: max_steps={cfg.max_steps} is below step {state['step']}, which the "
                "saved run already reached; give a larger max_steps"
            )
        history = list(state.get("overrides", []))
        for name, (old, new) in sorted(changes.items()):
            history.append({"step": state["step"], "field": name, "saved": old, "now": new})
            if acc.is_main_process and cfg.progress:
                print(f"training: resuming at step {state['step']} with {name} {old} -> {new}")
        self._overrides = history
        if state.get("num_processes", 1) != acc.num_processes:
            warnings.warn(
                f"the run was saved by {state.get('num_processes')} processes, resumed by "
                f"{acc.num_processes}: the data order is kept, the per-process noise is not",
                stacklevel=4,
            )

    def _read_checkpoint_files(self) -> tuple[dict, dict | None, dict]:
        """Raw weights, EMA weights (None without EMA), optimizer state; InputError naming a
        missing or damaged file."""
        folder = self.checkpoint_dir
        train = folder / "train"
        raw = read_safetensors(train / "model.safetensors")
        ema = read_safetensors(folder / WEIGHTS_NAME) if self.ema_model is not self.model else None
        opt_tensors = read_safetensors(train / "optimizer.safetensors")
        opt_meta = read_json(train / "optimizer.json", what="optimizer state")
        try:
            opt_state = optimizer_state_from_files(opt_tensors, opt_meta)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise InputError(
                f"{train / 'optimizer.json'}: malformed optimizer state ({exc})"
            ) from exc
        return raw, ema, opt_state

    def _apply_weights(self, raw: dict, ema: dict | None, opt_state: dict) -> None:
        folder = self.checkpoint_dir
        for name, module, weights, path in (
            ("raw", self.model, raw, folder / "train" / "model.safetensors"),
            ("EMA", self.ema_model, ema, folder / WEIGHTS_NAME),
        ):
            if weights is None:
                continue
            try:
                module.load_state_dict(weights, strict=True)
            except RuntimeError as exc:
                first = str(exc).splitlines()[0]
                raise InputError(
                    f"{path}: the {name} weights do not fit this model ({first}); "
                    "build the model with the checkpoint's config.json"
                ) from exc
        try:
            self.optimizer.load_state_dict(opt_state)
        except (ValueError, KeyError, RuntimeError, TypeError) as exc:
            raise InputError(
                f"{folder / 'train' / 'optimizer.json'}: does not fit this model ({exc})"
            ) from exc

    def _apply_state(self, state: dict) -> None:
        """Counters, logging window and RNG streams (already checked)."""
        cfg, acc = self.config, self.accelerator
        self.step = state["step"]
        self.epoch = state["epoch"]
        self.position = state["position_in_epoch"]
        self.ema_updates = state.get("ema_updates", self.step)
        self.elapsed_before = float(state.get("elapsed_s", 0.0))
        self.last_checkpoint_step = self.step
        self._window = LogWindow.from_state(state.get("log_window", {"steps": 0, "sums": {}}))
        self._unfinished = state.get("unfinished_step")
        if self.scaler is not None and isinstance(state.get("grad_scaler"), dict):
            self.scaler.load_state_dict(state["grad_scaler"])
        rng = state["rng"]
        processes = rng["processes"]
        if acc.process_index < len(processes):
            mine = processes[acc.process_index]
            self.generator.set_state(decode_bytes_tensor(mine["loss_generator"]))
            torch.set_rng_state(decode_bytes_tensor(mine["torch"]))
            if "cuda" in mine and torch.cuda.is_available():
                torch.cuda.set_rng_state(decode_bytes_tensor(mine["cuda"]), self.device)
        else:  # saved by fewer processes (or by an interrupt): a fresh, derived stream
            self.generator.manual_seed(
                derive_seed(cfg.seed, "loss", acc.process_index, "resume", self.step)
            )
            torch.manual_seed(derive_seed(cfg.seed, "torch", acc.process_index, self.step))
        if acc.is_main_process:
            set_host_rng_state(rng["host"])

    # ------------------------------------------------------------------ eval and logs
    def _evaluate(self) -> dict[str, float]:
        acc = self.accelerator
        numbers: dict[str, float] = {}
        if acc.is_main_process and self.eval_fn is not None:
            devices = [self.device] if self.device.type == "cuda" else []
            was_training = self.ema_model.training
            self.ema_model.eval()
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                result = self.eval_fn(self.ema_model, self.step, self.out_dir) or {}
            self.ema_model.train(was_training)
            numbers = {f"eval_{k}": float(v) for k, v in result.items()}
        acc.wait_for_everyone()
        return numbers

    def _log_row(self, row: dict[str, object]) -> None:
        if not self.accelerator.is_main_process:
            return
        full: dict[str, object] = {
            "step": self.step,
            "epoch": self.epoch,
            "elapsed_s": self.elapsed_before + (time.perf_counter() - self._fit_start),
        }
        full.update(row)
        self.metrics.write(full)
