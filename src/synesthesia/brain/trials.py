"""Tidy trial tables for audiovisual experiments: one row per trial, CSV in and out.

Columns: ``stim_v`` and ``stim_a`` (stimulus values; required), and at least one response:
``resp_v``, ``resp_a`` (reported visual / auditory value or button) and ``unity`` (1 when the
participant reported one common cause, else 0). An optional ``subject`` column is kept as text.
Every malformed file raises one :class:`synesthesia.errors.InputError` naming the file and the
row (1-based data row, the header not counted) and column: bad bytes (not UTF-8 text, a binary
file), a malformed CSV record, a duplicate column, a row with more or fewer fields than the
header, a cell that is not a finite number of sensible size. A UTF-8 byte-order mark (as Excel
writes) is allowed. Values in messages are shortened.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synesthesia.errors import InputError, MissingInputError, short

STIMULUS_COLUMNS = ("stim_v", "stim_a")
RESPONSE_COLUMNS = ("resp_v", "resp_a")
UNITY_COLUMN = "unity"
# the largest magnitude a stimulus or response may have: the models square differences and
# exponentiate them; no unit used here (degrees, counts, ms) comes near it
VALUE_LIMIT = 1e12


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


def _number(text: object, where: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{where}: {short(text)} is not a number; give a numeric value") from None
    if not math.isfinite(value):
        raise InputError(
            f"{where}: value is {short(text)} (NaN or infinite); every cell must be a finite number"
        )
    if abs(value) > VALUE_LIMIT:
        raise InputError(
            f"{where}: {short(text)} is too large in magnitude (at most {VALUE_LIMIT:g})"
        )
    return value


def _check_levels(levels: np.ndarray | list[float] | None) -> np.ndarray | None:
    if levels is None:
        return None
    try:
        lv = np.asarray(levels, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"levels: expected numbers, got {short(levels)}") from None
    if not np.all(np.isfinite(lv)):
        raise InputError(f"levels: must be finite numbers, got {short(lv.tolist())}")
    if lv.size < 2 or np.unique(lv).size != lv.size:
        raise InputError(f"levels: give at least two distinct response levels, got {lv.tolist()}")
    return lv


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
        have = short(", ".join(columns) or "none", 120)
        raise InputError(
            f"{source}: missing column(s) {', '.join(missing)} (have: {have}); "
            "a trial table needs stim_v, stim_a and at least one of resp_v, resp_a, unity"
        )
    reported = tuple(m for m, c in enumerate(RESPONSE_COLUMNS) if c in columns)
    has_unity = UNITY_COLUMN in columns
    if not reported and not has_unity:
        raise InputError(
            f"{source}: no response column; add resp_v, resp_a (reported values) or unity (0/1)"
        )
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise InputError(f"{source}: columns have different lengths {sorted(lengths)}")
    n = lengths.pop()
    if n == 0:
        raise InputError(f"{source}: the table has no trials (a header row and no data rows)")
    lv = _check_levels(levels)

    def col(name: str) -> np.ndarray:
        return np.array(
            [
                _number(v, f"{source}: row {i + 1}, column '{name}'")
                for i, v in enumerate(columns[name])
            ],
            dtype=float,
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
                    raise InputError(
                        f"{source}: row {i + 1}, column '{RESPONSE_COLUMNS[m]}': response "
                        f"{responses[i, j]:g} is not one of the allowed levels {lv.tolist()}"
                    )
    unity = None
    if has_unity:
        unity = col(UNITY_COLUMN)
        bad = ~np.isin(unity, (0.0, 1.0))
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(
                f"{source}: row {i + 1}, column 'unity': {unity[i]:g} is not allowed; "
                "use 1 (one common cause) or 0 (separate causes)"
            )
    subject = [str(s) for s in columns["subject"]] if "subject" in columns else None
    return Trials(stimuli, responses, reported, unity, subject, source)


def _column(name: str) -> str:
    """A column name for a message: quoted, or its shortened repr when odd or long."""
    return f"'{name}'" if name.isprintable() and len(name) <= 40 else short(name, 40)


def _decode(data: bytes | str, source: str) -> str:
    """Text of a table: UTF-8 (a byte-order mark allowed); binary or other encodings refused."""
    if isinstance(data, str):
        text = data
    else:
        if b"\x00" in data:
            line = data[: data.index(b"\x00")].count(b"\n") + 1
            raise InputError(
                f"{source}: line {line}: a NUL byte; this is a binary file, not a CSV text table"
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise InputError(
                f"{source}: line {line} (row {line - 1}): byte 0x{data[exc.start]:02x} is not "
                "UTF-8 text; save the table as UTF-8 CSV (Latin-1 and other encodings are not read)"
            ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise InputError(
            f"{source}: line {line}: a NUL character; this is a binary file, not a CSV text table"
        )
    return text.removeprefix("\ufeff")


def _records(text: str, source: str) -> list[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank CSV record."""
    reader = csv.reader(io.StringIO(text, newline=""))
    out: list[tuple[int, list[str]]] = []
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return out
        except csv.Error as exc:
            line = reader.line_num
            header = out[0][1] if out else []
            where = f"{source}: line {line}" + (f" (row {len(out)})" if out else " (the header)")
            reason = str(exc)
            if "field larger than field limit" in reason:
                limit = csv.field_size_limit()
                physical = text.splitlines()[line - 1] if line <= len(text.splitlines()) else ""
                parts = physical.split(",")
                long = next((i for i, p in enumerate(parts) if len(p) > limit), None)
                if long is not None and long < len(header):
                    where += f", column {_column(header[long].strip())}"
                reason = f"a field longer than {limit:,} characters; is this a trial table?"
            raise InputError(f"{where}: malformed CSV ({reason})") from None
        if any(f.strip() for f in fields):
            out.append((reader.line_num, fields))


def parse_trials(
    data: bytes | str,
    levels: np.ndarray | list[float] | None = None,
    source: str = "trials",
) -> Trials:
    """Parse and validate the bytes (or text) of a CSV trial table; ``source`` names it."""
    records = _records(_decode(data, source), source)
    if not records:
        raise InputError(
            f"{source}: empty file; expected a header row such as stim_v,stim_a,resp_v"
        )
    names = [n.strip() for n in records[0][1]]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name and name in seen:
            raise InputError(
                f"{source}: column {_column(name)} appears twice in the header "
                f"(columns {seen[name] + 1} and {i + 1}); rename or remove one"
            )
        seen[name] = i
    columns: dict[str, list] = {n: [] for n in names if n}
    for row, (_, fields) in enumerate(records[1:], start=1):
        if len(fields) > len(names):
            raise InputError(
                f"{source}: row {row}: {len(fields)} fields but the header names "
                f"{len(names)} columns; remove the extra field or name its column"
            )
        if len(fields) < len(names):
            gone = next((n for n in names[len(fields) :] if n), None)
            if gone is not None:
                raise InputError(
                    f"{source}: row {row}, column {_column(gone)}: missing (the row has "
                    f"{len(fields)} fields, the header {len(names)})"
                )
        for name, value in zip(names, fields):
            if name:
                columns[name].append(value.strip())
    return validate_trials(columns, levels, source=source)


def read_trials(path: str | Path, levels: np.ndarray | list[float] | None = None) -> Trials:
    """Read and validate a CSV trial table (see the module docstring for its columns)."""
    p = Path(path)
    if not p.exists():
        raise MissingInputError(f"{p}: no such trial table (a CSV file with a header row)")
    if p.is_dir():
        raise InputError(f"{p}: is a folder; give a CSV trial table")
    try:
        data = p.read_bytes()
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise InputError(f"{p}: cannot read the trial table ({reason})") from None
    return parse_trials(data, levels, source=str(p))


def write_trials(trials: Trials, path: str | Path) -> Path:
    """Write a trial table as CSV (numbers in repr precision)."""
    p = Path(path)
    cols = trials.to_columns()
    names = list(cols)
    with p.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(names)
        for i in range(len(trials)):
            w.writerow(
                [cols[n][i] if n == "subject" else f"{float(cols[n][i]):.12g}" for n in names]
            )
    return p
