"""The materials table: its columnar form, its cache file and the pandas DataFrame users see.

Column names follow the Materials Project's thermo documents (``material_id``, ``formation_energy_per_atom``,
``energy_above_hull``, ``is_stable``, ``decomposes_to`` with ``material_id``/``formula``/``amount``), so that
a table from the embedded snapshot and one from the live Materials Project look the same.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from matvae.composition import reduced_formula
from matvae.elements import ELEMENTS, N_ELEMENTS
from matvae.files import DamagedFileError, read_checked, write_checked

TABLE_VERSION: int = 2
"""Bumped whenever the cache file layout changes (2: the ``.npz`` inside a SHA-256-checked container)."""

TABLE_COLUMNS: tuple[str, ...] = (
    "material_id",
    "formula",
    "composition_reduced",
    "chemsys",
    "n_elements",
    "formation_energy_per_atom",
    "energy_above_hull",
    "is_stable",
    "decomposes_to",
    "n_components",
)
"""Columns of :func:`matvae.load_materials`' DataFrame, in order."""


class CacheError(ValueError):
    """A cache file is truncated, corrupt or from another version."""


@dataclass(frozen=True)
class MaterialColumns:
    """The table as arrays (n materials, k = widest decomposition).

    Components are rows of this table (``component_row >= 0``), padding (-1), or "external" phases that
    are not rows (``-2 - j`` -> ``external_id[j]``, ``external_formula[j]``): the element references of the
    hull construction, or Materials Project components outside the fetched set.
    """

    material_id: np.ndarray  # (n,) str
    counts: np.ndarray  # (n, 89) int64 reduced atom counts (GCD 1 per row)
    formation_energy_per_atom: np.ndarray  # (n,) float64 eV/atom
    energy_above_hull: np.ndarray  # (n,) float64 eV/atom
    is_stable: np.ndarray  # (n,) bool
    component_row: np.ndarray  # (n, k) int64
    component_amount: np.ndarray  # (n, k) float64 atomic fractions
    external_id: np.ndarray  # (m,) str, "" where the phase has no id
    external_formula: np.ndarray  # (m,) str
    formula: np.ndarray | None = None  # (n,) str reduced formulas; derived from counts when None

    def __post_init__(self) -> None:
        n = len(self.material_id)
        for name in ("counts", "formation_energy_per_atom", "energy_above_hull", "is_stable", "component_row", "component_amount"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"column {name} has {len(getattr(self, name))} rows, material_id has {n}")
        if self.counts.ndim != 2 or self.counts.shape[1] != N_ELEMENTS:
            raise ValueError(f"counts must be (n, {N_ELEMENTS}), got {self.counts.shape}")
        if self.formula is None:
            object.__setattr__(self, "formula", _formulas(self.counts))

    def __len__(self) -> int:
        return len(self.material_id)


def _formulas(counts: np.ndarray) -> np.ndarray:
    """Reduced formulas, computed once per distinct composition."""
    unique, inverse = np.unique(counts, axis=0, return_inverse=True)
    names = np.array([reduced_formula(row) for row in unique], dtype=object)
    return names[inverse.ravel()].astype(str)


def to_frame(columns: MaterialColumns) -> pd.DataFrame:
    """The user-facing DataFrame (see :data:`TABLE_COLUMNS`)."""
    ids = columns.material_id.astype(object)
    formulas = columns.formula.astype(object)
    external_ids = [i or None for i in columns.external_id.tolist()]
    external_formulas = columns.external_formula.tolist()
    present = columns.counts > 0
    symbols = np.array(ELEMENTS, dtype=object)

    decomposes_to: list[list[dict]] = []
    for rows, amounts in zip(columns.component_row.tolist(), columns.component_amount.tolist()):
        parts = []
        for row, amount in zip(rows, amounts):
            if row >= 0:
                parts.append({"material_id": ids[row], "formula": formulas[row], "amount": amount})
            elif row <= -2:
                j = -2 - row
                parts.append({"material_id": external_ids[j], "formula": external_formulas[j], "amount": amount})
        decomposes_to.append(parts)

    compositions = [
        {symbols[c]: int(columns.counts[r, c]) for c in np.flatnonzero(present[r])} for r in range(len(columns))
    ]
    frame = pd.DataFrame(
        {
            "material_id": ids,
            "formula": formulas,
            "composition_reduced": compositions,
            "chemsys": ["-".join(sorted(c)) for c in compositions],
            "n_elements": present.sum(axis=1),
            "formation_energy_per_atom": columns.formation_energy_per_atom,
            "energy_above_hull": columns.energy_above_hull,
            "is_stable": columns.is_stable,
            "decomposes_to": decomposes_to,
            "n_components": (columns.component_row != -1).sum(axis=1),
        }
    )
    return frame


def save_columns(columns: MaterialColumns, path: str | Path, *, key: str) -> None:
    """Write the columns as a compressed ``.npz`` inside a checked container (:func:`matvae.files.write_checked`),
    atomically, tagged with ``key`` (the cache key)."""
    rows, cols = np.nonzero(columns.counts)
    meta = json.dumps({"key": key, "table_version": TABLE_VERSION, "n": len(columns)})
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        meta=np.array(meta),
        material_id=columns.material_id.astype(str),
        formula=columns.formula.astype(str),
        count_rows=rows.astype(np.int32),
        count_cols=cols.astype(np.int8),
        count_values=columns.counts[rows, cols].astype(np.int64),
        formation_energy_per_atom=columns.formation_energy_per_atom,
        energy_above_hull=columns.energy_above_hull,
        is_stable=columns.is_stable,
        component_row=columns.component_row,
        component_amount=columns.component_amount,
        external_id=columns.external_id.astype(str),
        external_formula=columns.external_formula.astype(str),
    )
    write_checked(path, buffer.getvalue(), kind="cache")


def load_columns(path: str | Path, *, key: str) -> MaterialColumns:
    """Read columns written by :func:`save_columns`; ``CacheError`` if the file is damaged or stale."""
    try:
        payload = read_checked(path, kind="cache")
        with np.load(io.BytesIO(payload), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("key") != key or meta.get("table_version") != TABLE_VERSION:
                raise CacheError(f"cache {Path(path).name} was written for another input or version")
            n = int(meta["n"])
            counts = np.zeros((n, N_ELEMENTS), dtype=np.int64)
            counts[data["count_rows"], data["count_cols"].astype(np.int64)] = data["count_values"]
            return MaterialColumns(
                material_id=data["material_id"],
                counts=counts,
                formation_energy_per_atom=data["formation_energy_per_atom"],
                energy_above_hull=data["energy_above_hull"],
                is_stable=data["is_stable"],
                component_row=data["component_row"],
                component_amount=data["component_amount"],
                external_id=data["external_id"],
                external_formula=data["external_formula"],
                formula=data["formula"],
            )
    except CacheError:
        raise
    except DamagedFileError as exc:
        raise CacheError(str(exc)) from None
    except (OSError, ValueError, KeyError, EOFError, IndexError, TypeError, zipfile.BadZipFile, zlib.error, json.JSONDecodeError) as exc:
        raise CacheError(f"cache {Path(path).name} is unreadable ({type(exc).__name__}: {exc})") from None
