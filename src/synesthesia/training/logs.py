"""The metrics CSV (one row per logged step; new columns extend the header) and the logging
window whose sums a checkpoint carries, so that a resumed run logs the rows of an
uninterrupted one."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

from synesthesia.io import atomic_write_bytes

CORE_FIELDS = ("step", "epoch", "loss", "lr", "grad_norm", "items_per_s", "elapsed_s")


class MetricsCSV:
    """Rows of numbers keyed by column name, written to ``path`` as they come.

    A row with a column not seen before rewrites the file with the wider header (the file
    is small: one row per ``log_every`` steps); other rows are appended.
    """

    def __init__(self, path: str | Path, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.fields: list[str] = list(CORE_FIELDS)
        self.rows: list[dict[str, object]] = []
        if resume_step is not None and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                for name in reader.fieldnames or []:
                    if name not in self.fields:
                        self.fields.append(name)
                for row in reader:
                    try:
                        step = int(float(row.get("step") or "nan"))
                    except ValueError:
                        continue
                    if step <= resume_step:  # rows after the checkpoint are redone
                        self.rows.append({k: v for k, v in row.items() if v not in ("", None)})
        self._rewrite()

    def _render(self, rows: list[dict[str, object]], header: bool) -> bytes:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.fields, lineterminator="\n")
        if header:
            writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(v) for k, v in row.items()})
        return buffer.getvalue().encode("utf-8")

    def _rewrite(self) -> None:
        atomic_write_bytes(self.path, self._render(self.rows, header=True))

    def write(self, row: dict[str, object]) -> None:
        """Add one row (a dict of column -> number)."""
        self.rows.append(row)
        new = [k for k in row if k not in self.fields]
        if new:
            self.fields.extend(new)
            self._rewrite()
        else:
            with open(self.path, "ab") as handle:
                handle.write(self._render([row], header=False))


def _fmt(value: object) -> object:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


class LogWindow:
    """The numbers of the steps since the last logged row, summed.

    A row holds their means (``loss``, ``grad_norm``, the loss function's extras) and the
    items per second of the steps timed in this process. :meth:`state` goes into every
    checkpoint and :meth:`from_state` restores it, so the first row after a resume averages
    the same steps, with the same sums in the same order, as in an uninterrupted run.
    """

    def __init__(self, sums: dict[str, float] | None = None, steps: int = 0) -> None:
        self.sums: dict[str, float] = dict(sums or {})
        self.steps = int(steps)
        self.restart_clock()

    def restart_clock(self, now: float | None = None) -> None:
        """Time from ``now`` on (the start of a :meth:`Trainer.fit` call)."""
        self._clock = time.perf_counter() if now is None else now
        self._timed = 0

    def add(self, numbers: dict[str, float]) -> None:
        """Count one step with its numbers."""
        for key, value in numbers.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.steps += 1
        self._timed += 1

    def close(self, items_per_step: int, now: float | None = None) -> dict[str, float]:
        """The row of this window (means, ``items_per_s``); the window starts again empty."""
        now = time.perf_counter() if now is None else now
        row = {key: value / self.steps for key, value in self.sums.items()}
        row["items_per_s"] = self._timed * items_per_step / max(now - self._clock, 1e-9)
        self.sums, self.steps = {}, 0
        self.restart_clock(now)
        return row

    def state(self) -> dict[str, Any]:
        """The sums and the count, JSON-able (floats round-trip exactly through JSON)."""
        return {"steps": self.steps, "sums": dict(self.sums)}

    @classmethod
    def from_state(cls, state: Any) -> LogWindow:
        """Inverse of :meth:`state`; ValueError if ``state`` is not of its form."""
        if not isinstance(state, dict) or set(state) != {"steps", "sums"}:
            raise ValueError("expected {'steps': count, 'sums': {name: number}}")
        steps, sums = state["steps"], state["sums"]
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError(f"steps must be a count, got {steps!r}")
        if not isinstance(sums, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in sums.values()
        ):
            raise ValueError("sums must map names to numbers")
        if (steps == 0) != (not sums):
            raise ValueError(f"{steps} steps but {len(sums)} sums")
        return cls({str(k): float(v) for k, v in sums.items()}, steps)
