"""Tidy trial tables for audiovisual experiments: one row per trial, CSV in and out.

Columns: ``stim_v`` and ``stim_a`` (stimulus values; required), and at least one response:
``resp_v``, ``resp_a`` (reported visual / auditory value or button) and ``unity`` (1 when the
participant reported one common cause, else 0). An optional ``subject`` column is kept as text.
Every bad cell raises one ValueError naming the file, the row (1-based data row) and column.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STIMULUS_COLUMNS = ("stim_v", "stim_a")
RESPONSE_COLUMNS = ("resp_v", "resp_a")
UNITY_COLUMN = "unity"


@dataclass
class Trials:
    """A validated trial table.

    stimuli: (T, 2) stimulus values (visual, auditory); responses: (T, k) reported values for
    the modalities in ``reported`` (0 visual, 1 auditory); unity: (T,) of 0/1 or None.
    """

    stimuli: np.ndarray
    responses: np.ndarray | None = None
    reported: tuple[int, ...] = ()
    unity: np.ndarray | None = None
    subject: list[str] | None = None
    source: str = "trials"

    def __len__(self) -> int:
        return int(self.stimuli.shape[0])

    def conditions(self) -> tuple[np.ndarray, np.ndarray]:
        """Unique stimulus rows (C, 2) and each trial's condition index (T,)."""
        cond, inv = np.unique(self.stimuli, axis=0, return_inverse=True)
        return cond, inv.reshape(-1)

    def response_levels(self) -> np.ndarray:
        """The distinct response values found in the reported columns."""
        if self.responses is None:
            return np.zeros(0)
        return np.unique(self.responses)

    def to_columns(self) -> dict[str, np.ndarray | list[str]]:
        """The table as named columns (for writing)."""
        cols: dict[str, np.ndarray | list[str]] = {}
        if self.subject is not None:
            cols["subject"] = self.subject
        cols["stim_v"], cols["stim_a"] = self.stimuli[:, 0], self.stimuli[:, 1]
        for j, m in enumerate(self.reported):
            cols[RESPONSE_COLUMNS[m]] = self.responses[:, j]
        if self.unity is not None:
            cols[UNITY_COLUMN] = self.unity
        return cols


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {text!r} is not a number; give a numeric value") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: value is {text!r} (NaN or infinite); every cell must be set")
    return value


def validate_trials(
    columns: dict[str, list],
    levels: np.ndarray | list[float] | None = None,
    source: str = "trials",
) -> Trials:
    """Check and convert named columns (name -> list of cells) into :class:`Trials`.

    ``levels``: the allowed response values of button responses (None: any number).
    """
    missing = [c for c in STIMULUS_COLUMNS if c not in columns]
    if missing:
        have = ", ".join(columns) or "none"
        raise ValueError(
            f"{source}: missing column(s) {', '.join(missing)} (have: {have}); "
            "a trial table needs stim_v, stim_a and at least one of resp_v, resp_a, unity"
        )
    reported = tuple(m for m, c in enumerate(RESPONSE_COLUMNS) if c in columns)
    has_unity = UNITY_COLUMN in columns
    if not reported and not has_unity:
        raise ValueError(
            f"{source}: no response column; add resp_v, resp_a (reported values) or unity (0/1)"
        )
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise ValueError(f"{source}: columns have different lengths {sorted(lengths)}")
    n = lengths.pop()
    if n == 0:
        raise ValueError(f"{source}: the table has no trials")
    lv = None if levels is None else np.asarray(levels, dtype=float)

    def col(name: str) -> np.ndarray:
        return np.array(
            [
                _number(v, f"{source}: row {i + 1}, column '{name}'")
                for i, v in enumerate(columns[name])
            ]
        )

    stimuli = np.stack([col(c) for c in STIMULUS_COLUMNS], axis=1)
    responses = None
    if reported:
        responses = np.stack([col(RESPONSE_COLUMNS[m]) for m in reported], axis=1)
        if lv is not None:
            for j, m in enumerate(reported):
                ok = np.isclose(responses[:, j, None], lv[None, :]).any(1)
                if not ok.all():
                    i = int(np.argmin(ok))
                    raise ValueError(
                        f"{source}: row {i + 1}, column '{RESPONSE_COLUMNS[m]}': response "
                        f"{responses[i, j]:g} is not one of the allowed levels {lv.tolist()}"
                    )
    unity = None
    if has_unity:
        unity = col(UNITY_COLUMN)
        bad = ~np.isin(unity, (0.0, 1.0))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"{source}: row {i + 1}, column 'unity': {unity[i]:g} is not allowed; "
                "use 1 (one common cause) or 0 (separate causes)"
            )
    subject = [str(s) for s in columns["subject"]] if "subject" in columns else None
    return Trials(stimuli, responses, reported, unity, subject, source)


def read_trials(path: str | Path, levels: np.ndarray | list[float] | None = None) -> Trials:
    """Read and validate a CSV trial table (see the module docstring for its columns)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such trial table (a CSV file with a header row)")
    with p.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            raise ValueError(f"{p}: empty file; expected a header row such as stim_v,stim_a,resp_v")
        names = [n.strip() for n in reader.fieldnames]
        columns: dict[str, list] = {n: [] for n in names}
        for row in reader:
            for raw, name in zip(reader.fieldnames, names):
                value = row.get(raw)
                columns[name].append("" if value is None else value.strip())
    return validate_trials(columns, levels, source=str(p))


def write_trials(trials: Trials, path: str | Path) -> Path:
    """Write a trial table as CSV (numbers in repr precision)."""
    p = Path(path)
    cols = trials.to_columns()
    names = list(cols)
    with p.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for i in range(len(trials)):
            w.writerow(
                [cols[n][i] if n == "subject" else f"{float(cols[n][i]):.12g}" for n in names]
            )
    return p
