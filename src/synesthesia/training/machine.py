"""The machine record every benchmark JSON carries, and process CPU time / wall time.

>>> from synesthesia.training.machine import machine_record, CpuWallClock
>>> with CpuWallClock() as clock:
...     pass
>>> record = machine_record(precision="no", cpu_wall=clock.ratio)

The CPU model, torch's CPU capability (``AVX2``, ``AVX512``, ...), whether bf16 is native,
the thread count and the precision used decide how fast everything here runs: a figure
without them cannot be compared with another.
"""

from __future__ import annotations

import os
import platform
import time

import torch


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_record(precision: str | None = None, **extra: object) -> dict:
    """A JSON-able description of this machine (and the run's precision, CPU/wall, ...)."""
    from synesthesia.training.precision import native_bf16

    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # older torch
        capability = "unknown"
    record: dict = {
        "cpu_model": cpu_model(),
        "torch_cpu_capability": capability,
        "native_bf16": native_bf16("cpu"),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "aten_cpu_capability": os.environ.get("ATEN_CPU_CAPABILITY"),
    }
    if precision is not None:
        record["precision"] = precision
    record.update(extra)
    return record


class CpuWallClock:
    """Process CPU seconds and wall seconds of a block; ``ratio`` = CPU / wall.

    On 2 cores a run whose ratio falls well below the thread count was contended.
    """

    def __enter__(self) -> CpuWallClock:
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        self.cpu_s = self.wall_s = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu_s = time.process_time() - self._cpu
        self.wall_s = time.perf_counter() - self._wall

    @property
    def ratio(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s > 0 else float("nan")
