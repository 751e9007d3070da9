"""The metrics CSV: one row per logged step; new columns extend the header."""

from __future__ import annotations

import csv
import io
from pathlib import Path

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
