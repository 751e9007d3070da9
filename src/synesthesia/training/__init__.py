"""The one trainer for every model: AdamW, warm-up + cosine LR, gradient clipping, EMA,
bf16 autocast, exact resume, atomic safetensors checkpoints, metrics CSV, on HF accelerate.

>>> from synesthesia.training import Trainer, TrainerConfig
>>> # trainer = Trainer(model, loss_fn, dataset, TrainerConfig(out_dir="runs/x"), model_config={})
>>> # result = trainer.fit()            # or fit(resume=True)

It knows nothing of any particular model: it takes a module, a loss function
``loss_fn(model, batch, generator)`` and a map-style dataset.
"""

from synesthesia.training.config import (
    FREE_TO_CHANGE,
    ConfigChangedError,
    TrainerConfig,
    TrainResult,
    config_changes,
)
from synesthesia.training.machine import CpuWallClock, machine_record
from synesthesia.training.precision import (
    autocast,
    native_bf16,
    precision_report,
    resolve_precision,
)
from synesthesia.training.schedule import ema_decay_at, lr_at, lr_factor
from synesthesia.training.trainer import (
    NonFiniteLossError,
    Trainer,
    derive_seed,
    epoch_permutation,
    kept_settings,
    read_run,
    read_run_state,
)

__all__ = [
    "FREE_TO_CHANGE",
    "ConfigChangedError",
    "config_changes",
    "CpuWallClock",
    "autocast",
    "machine_record",
    "native_bf16",
    "precision_report",
    "resolve_precision",
    "NonFiniteLossError",
    "TrainResult",
    "Trainer",
    "TrainerConfig",
    "derive_seed",
    "ema_decay_at",
    "epoch_permutation",
    "lr_at",
    "lr_factor",
    "kept_settings",
    "read_run",
    "read_run_state",
]
