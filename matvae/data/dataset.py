"""The training data: normalised vectors X, classes Y, decompositions as row indices, and the split."""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from matvae.elements import ELEMENT_INDEX, N_ELEMENTS, check_elements
from matvae.files import DamagedFileError, check_file_path, read_checked, write_checked
from matvae.params import check_choice, check_float, check_int, check_seed, check_str, store_checked

N_CLASSES: int = 10
"""Classes Y = number of decomposition components, 0 (stable) .. 9, as in the paper."""

MAX_N_CLASSES: int = 1000
"""Largest number of classes a config accepts (a material has at most 89 elements, so far fewer occur)."""


@dataclass(frozen=True)
class MaterialsDataset:
    """Arrays for n materials, row-aligned with the table they came from.

    ``component_row[i]`` lists the rows that material i decomposes to, with ``component_amount[i]`` their
    atomic fractions; -1 pads, and also marks a component that is not a row of the table (then
    ``complete_decomposition[i]`` is False).
    """

    material_id: np.ndarray  # (n,) str
    formula: np.ndarray  # (n,) str, reduced
    counts: np.ndarray  # (n, 89) int64 reduced atom counts
    x: np.ndarray  # (n, 89) float32, rows sum to 1
    y: np.ndarray  # (n,) int64 in [0, n_classes)
    component_row: np.ndarray  # (n, k) int64
    component_amount: np.ndarray  # (n, k) float64
    complete_decomposition: np.ndarray  # (n,) bool

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_elements(self) -> np.ndarray:
        """(n,) number of distinct elements per material."""
        return (self.counts > 0).sum(axis=1)

    def subset(self, rows: np.ndarray) -> MaterialsDataset:
        """The materials at ``rows``; decompositions that point outside the subset become -1 (incomplete)."""
        rows = np.asarray(rows)
        position = np.full(len(self), -1, dtype=np.int64)
        position[rows] = np.arange(len(rows))
        old = self.component_row[rows]
        new = np.where(old >= 0, position[np.maximum(old, 0)], -1)
        lost = ((old >= 0) & (new < 0)).any(axis=1)
        return MaterialsDataset(
            material_id=self.material_id[rows],
            formula=self.formula[rows],
            counts=self.counts[rows],
            x=self.x[rows],
            y=self.y[rows],
            component_row=new,
            component_amount=np.where(new >= 0, self.component_amount[rows], 0.0),
            complete_decomposition=self.complete_decomposition[rows] & ~lost,
        )


def check_dataset(
    name: str, data: MaterialsDataset, *, n_elements: int = N_ELEMENTS, n_classes: int = N_CLASSES
) -> MaterialsDataset:
    """Check that ``data`` is a non-empty :class:`MaterialsDataset` a model of ``n_elements`` inputs and
    ``n_classes`` classes can train on: x (n, n_elements) finite, >= 0, rows summing to 1; y (n,) integers
    in [0, n_classes); counts of x's shape. ``ValueError`` naming ``name``, the bad value and what is allowed.
    """
    from matvae.composition import ROW_SUM_TOLERANCE

    if not isinstance(data, MaterialsDataset):
        raise ValueError(
            f"{name} must be a matvae MaterialsDataset (from build_dataset, or SplitData.train / .test), "
            f"got {type(data).__name__}"
        )
    x, y = np.asarray(data.x), np.asarray(data.y)
    if x.ndim != 2 or x.shape[1] != n_elements:
        raise ValueError(f"{name}.x must have shape (n, {n_elements}) for this model, got shape {x.shape}")
    if len(x) == 0:
        raise ValueError(f"{name} is empty (0 materials); both splits need materials")
    if y.shape != (len(x),):
        raise ValueError(f"{name}.y must hold one class per row of x, shape ({len(x)},), got shape {y.shape}")
    if np.shape(data.counts) != x.shape:
        raise ValueError(f"{name}.counts must have the shape of x, {x.shape}, got {np.shape(data.counts)}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name}.x must hold floating-point fractions, got dtype {x.dtype}")
    bad = ~np.isfinite(x) | (x < 0)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"{name}.x must hold finite fractions >= 0, got {x[row, col]} at row {row}, column {col}")
    sums = x.sum(axis=1, dtype=np.float64)
    off = np.abs(sums - 1.0) > ROW_SUM_TOLERANCE
    if off.any():
        row = int(np.argmax(off))
        raise ValueError(f"{name}.x row {row} sums to {sums[row]:.6g}; rows must sum to 1 within {ROW_SUM_TOLERANCE:g}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name}.y must hold integer classes, got dtype {y.dtype}")
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{name}.y must lie in [0, {n_classes}) (n_classes={n_classes}), got {y[row]} at row {row}")
    return data


def build_dataset(table: pd.DataFrame, *, n_classes: int = N_CLASSES) -> MaterialsDataset:
    """Arrays from a :func:`matvae.load_materials` table (in its row order)."""
    missing = {"material_id", "formula", "composition_reduced", "decomposes_to", "n_components"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks the columns {sorted(missing)}; build it with matvae.load_materials")
    n = len(table)
    if n == 0:
        raise ValueError("table is empty")
    counts = np.zeros((n, N_ELEMENTS), dtype=np.int64)
    for row, composition in enumerate(table["composition_reduced"]):
        for symbol, amount in composition.items():
            counts[row, ELEMENT_INDEX[symbol]] = int(amount)
    y = table["n_components"].to_numpy(dtype=np.int64)
    if y.max() >= n_classes:
        worst = table["formula"].iloc[int(y.argmax())]
        raise ValueError(f"{worst} has {y.max()} decomposition components but n_classes={n_classes}; raise n_classes")

    row_of = {material_id: row for row, material_id in enumerate(table["material_id"]) if material_id is not None}
    width = max(1, int(y.max()))
    component_row = np.full((n, width), -1, dtype=np.int64)
    component_amount = np.zeros((n, width))
    complete = np.ones(n, dtype=bool)
    for row, parts in enumerate(table["decomposes_to"]):
        for k, part in enumerate(parts):
            target = row_of.get(part["material_id"])
            if target is None:
                complete[row] = False
                continue
            component_row[row, k] = target
            component_amount[row, k] = part["amount"]
    x = (counts / counts.sum(axis=1, keepdims=True)).astype(np.float32)
    return MaterialsDataset(
        material_id=table["material_id"].to_numpy(dtype=str),
        formula=table["formula"].to_numpy(dtype=str),
        counts=counts,
        x=x,
        y=y,
        component_row=component_row,
        component_amount=component_amount,
        complete_decomposition=complete,
    )


def split_by_formula(formulas: np.ndarray, *, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test split grouped by reduced formula: no composition lands on both sides.

    Formulas are shuffled with ``numpy.random.default_rng(seed)`` and taken into the test side until it
    holds ``test_fraction`` of the materials (to within one formula's polymorphs).

    Returns: (train_rows, test_rows), sorted int64 arrays.
    """
    if not (isinstance(test_fraction, (int, float)) and 0.0 < test_fraction < 1.0):
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    seed = check_seed("seed", seed)
    formulas = np.asarray(formulas)
    if len(formulas) < 2:
        raise ValueError(f"need at least 2 materials to split, got {len(formulas)}")
    unique, group, sizes = np.unique(formulas, return_inverse=True, return_counts=True)
    if len(unique) < 2:
        raise ValueError("all materials share one formula; a grouped split needs at least two formulas")
    order = np.random.default_rng(seed).permutation(len(unique))
    cumulative = np.cumsum(sizes[order])
    n_test_groups = int(np.searchsorted(cumulative, test_fraction * len(formulas))) + 1
    n_test_groups = min(max(n_test_groups, 1), len(unique) - 1)
    in_test = np.zeros(len(unique), dtype=bool)
    in_test[order[:n_test_groups]] = True
    test = in_test[group.ravel()]
    return np.flatnonzero(~test), np.flatnonzero(test)


@dataclass(frozen=True)
class DataConfig:
    """Which materials, and how they are split (the data notebook's parameters)."""

    source: str = "snapshot"  # "snapshot" (embedded) or "mp" (live Materials Project, needs MP_API_KEY)
    elements: str = ""  # closed chemical space such as "Ga,Mo,S"; "" keeps every material
    test_fraction: float = 0.2  # share of materials in the test split (grouped by reduced formula)
    seed: int = 0  # seed of the split
    n_classes: int = N_CLASSES  # classes Y = 0 .. n_classes-1 decomposition components

    def __post_init__(self) -> None:
        from matvae.data.materials import SOURCES

        check_choice("source", self.source, SOURCES)
        check_elements(check_str("elements", self.elements) or None)
        store_checked(
            self,
            test_fraction=check_float(
                "test_fraction", self.test_fraction, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
            ),
            seed=check_seed("seed", self.seed),
            n_classes=check_int("n_classes", self.n_classes, minimum=2, maximum=MAX_N_CLASSES),
        )


@dataclass(frozen=True)
class SplitData:
    """A dataset with its train/test rows and the config that made it; saved between notebooks."""

    dataset: MaterialsDataset
    train_rows: np.ndarray  # (n_train,) int64 rows of dataset
    test_rows: np.ndarray  # (n_test,) int64 rows of dataset
    config: DataConfig

    @property
    def train(self) -> MaterialsDataset:
        return self.dataset.subset(self.train_rows)

    @property
    def test(self) -> MaterialsDataset:
        return self.dataset.subset(self.test_rows)

    def save(self, path: str | Path) -> None:
        """Write the arrays plus the config as JSON: an ``.npz`` inside a SHA-256-checked container
        (:func:`matvae.files.write_checked`), atomically, under exactly the name given."""
        arrays = {f.name: getattr(self.dataset, f.name) for f in fields(MaterialsDataset)}
        arrays["material_id"] = arrays["material_id"].astype(str)
        arrays["formula"] = arrays["formula"].astype(str)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            config=np.array(json.dumps(asdict(self.config))),
            train_rows=self.train_rows,
            test_rows=self.test_rows,
            **arrays,
        )
        write_checked(path, buffer.getvalue(), kind="data")

    @classmethod
    def load(cls, path: str | Path) -> SplitData:
        """Read a file written by :meth:`save`; ``ValueError`` naming the file if it is missing, not a data
        file, or damaged (any changed byte fails the SHA-256 check)."""
        try:
            path = check_file_path(path, what="data file")
        except ValueError as exc:
            raise ValueError(f"{exc}; run the data notebook (01_data) first") from None
        try:
            payload = read_checked(path, kind="data")
        except DamagedFileError as exc:
            raise ValueError(f"{exc}; rerun 01_data") from None
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as data:
                config = DataConfig(**json.loads(str(data["config"])))
                dataset = MaterialsDataset(**{f.name: data[f.name] for f in fields(MaterialsDataset)})
                return cls(dataset, data["train_rows"], data["test_rows"], config)
        except (OSError, KeyError, EOFError, zipfile.BadZipFile, zlib.error, json.JSONDecodeError, TypeError, ValueError) as exc:
            raise ValueError(f"data file {path.name} is damaged ({type(exc).__name__}: {exc}); rerun 01_data") from None


def prepare_data(
    config: DataConfig, *, cache: bool = True, show_progress: bool | None = None
) -> tuple[pd.DataFrame, SplitData]:
    """Load the table for ``config``, build the dataset and split it: everything the data notebook makes."""
    from matvae.data.materials import load_materials

    table = load_materials(config.source, elements=config.elements or None, cache=cache, show_progress=show_progress)
    dataset = build_dataset(table, n_classes=config.n_classes)
    train_rows, test_rows = split_by_formula(dataset.formula, test_fraction=config.test_fraction, seed=config.seed)
    return table, SplitData(dataset, train_rows, test_rows, config)
