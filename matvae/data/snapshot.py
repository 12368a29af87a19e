"""The embedded Materials Project snapshot (see ``embedded/PROVENANCE.md``), verified by checksum."""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from matvae.elements import ELEMENT_INDEX, N_ELEMENTS
from matvae.files import sha256_file

SNAPSHOT_PATH: Path = Path(__file__).with_name("embedded") / "matbench_mp_e_form.csv.gz"
SNAPSHOT_SHA256: str = "5e5a424cd78b90054c04792eaa6b412899faa822a92f1d0705e74f30d2fdf88a"
SNAPSHOT_ROWS: int = 132_752

_CELL_FORMULA = re.compile(r"(?:[A-Z][a-z]?\d+)+")
_ELEMENT_COUNT = re.compile(r"([A-Z][a-z]?)(\d+)")


class SnapshotError(ValueError):
    """The snapshot file is missing, altered or malformed."""


def read_snapshot(path: str | Path = SNAPSHOT_PATH, *, sha256: str | None = SNAPSHOT_SHA256) -> pd.DataFrame:
    """Read the snapshot CSV (columns ``formula``, ``target``) after checking its SHA-256.

    Pass ``sha256=None`` to read another file of the same format without the check.
    """
    path = Path(path)
    if not path.is_file():
        raise SnapshotError(f"snapshot file not found: {path.name}; reinstall matvae or pass a path")
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256:
            raise SnapshotError(
                f"snapshot {path.name} fails its checksum: sha256 {actual[:16]}... != expected {sha256[:16]}...; "
                "the file is damaged or altered; reinstall matvae (or restore the file from git)"
            )
    try:
        with gzip.open(path, "rb") as handle:
            table = pd.read_csv(io.BytesIO(handle.read()))
    except (OSError, EOFError, pd.errors.ParserError) as exc:
        raise SnapshotError(f"cannot read snapshot {path.name}: {exc}") from None
    if list(table.columns) != ["formula", "target"]:
        raise SnapshotError(f"snapshot {path.name} has columns {list(table.columns)}, expected ['formula', 'target']")
    return table


def parse_cell_formulas(formulas: pd.Series | list[str]) -> np.ndarray:
    """Cell formulas written with explicit integer counts ('Ga1Mo4S8') -> (n, 89) float64 atom counts.

    A fast path for the snapshot's format (the tests check it against :func:`matvae.composition.encode`).
    """
    formulas = list(formulas)
    counts = np.zeros((len(formulas), N_ELEMENTS))
    for row, formula in enumerate(formulas):
        if not isinstance(formula, str) or not _CELL_FORMULA.fullmatch(formula):
            raise SnapshotError(f"row {row}: formula {formula!r} is not in the form 'Ga1Mo4S8'")
        for symbol, count in _ELEMENT_COUNT.findall(formula):
            column = ELEMENT_INDEX.get(symbol)
            if column is None:
                raise SnapshotError(f"row {row}: formula {formula!r} has {symbol}, not one of the 89 elements")
            counts[row, column] += int(count)
    if (counts.sum(axis=1) == 0).any():
        raise SnapshotError("a formula has no atoms")
    return counts
