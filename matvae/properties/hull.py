"""Place a composition's energy against a convex hull of known phases: the stability half of the oracle.

A :class:`HullReference` holds the phases on a convex hull (the snapshot's stable entries, or those of any
subset of it, such as the training split) with the elements at 0 eV/atom. :meth:`HullReference.place`
answers, for compositions that need not be in the data, what pymatgen's
``PhaseDiagram.get_decomp_and_e_above_hull(entry, allow_negative=True)`` answers for a diagram built from
those phases: the hull energy at the composition, the energy above it, and the phases (with atomic-fraction
amounts) the composition decomposes to. The tests check it against ``PhaseDiagram`` on systems they build.

Each chemical system is solved once per call: its candidate phases are those whose elements all lie in the
system (found from per-element phase lists), the hull is built by qhull as in :mod:`matvae.data.hull`, and a
system of :data:`LP_MIN_ELEMENTS` or more elements (or one qhull cannot build) is solved by a linear program.
Results are cached per reduced composition, so a composition met again costs a dictionary lookup.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.spatial import QhullError

from matvae.composition import check_vectors, reduced_formula
from matvae.data.hull import NUMERICAL_TOL, _decompose_lp, _decompose_qhull, compute_decompositions
from matvae.elements import ELEMENTS, N_ELEMENTS

LP_MIN_ELEMENTS: int = 7
"""Systems with at least this many elements are solved by linear programming instead of qhull."""

AMOUNT_DECIMALS: int = 3
"""Decimals of the amounts written in ``decomposes_to`` strings."""


@dataclass(frozen=True)
class Placement:
    """Where compositions sit against a hull (one entry per input row)."""

    hull_energy: np.ndarray  # (n,) eV/atom: the lowest energy a mix of hull phases reaches at the composition
    components: list[list[tuple[str, float]]]  # per row: (hull phase formula, atomic-fraction amount), largest first

    def e_above_hull(self, energy: np.ndarray) -> np.ndarray:
        """(n,) eV/atom: ``energy - hull_energy`` (negative: below the hull, it would be a new vertex)."""
        return np.asarray(energy, dtype=np.float64) - self.hull_energy

    def decomposes_to(self) -> list[str]:
        """Each row's components as text, e.g. ``'0.5 Fe2O3 + 0.5 FeO'``."""
        return [" + ".join(f"{amount:.{AMOUNT_DECIMALS}g} {formula}" for formula, amount in parts) for parts in self.components]


@dataclass(frozen=True)
class HullReference:
    """Phases on a convex hull of formation energies, elements at 0 eV/atom included.

    Build one with :meth:`from_table` (the snapshot's hull or a subset's) or :meth:`from_phases`.
    """

    formula: np.ndarray  # (m,) str reduced formulas of the hull phases
    fractions: np.ndarray  # (m, 89) float64 atomic fractions
    energy: np.ndarray  # (m,) float64 formation energy per atom, eV/atom
    known: frozenset[str]  # reduced formulas of every entry the hull was built from (for novelty)
    _by_element: list[np.ndarray] = field(init=False, repr=False, compare=False)  # phases holding each element
    _n_elements: np.ndarray = field(init=False, repr=False, compare=False)  # (m,) elements per phase
    _cache: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        present = self.fractions > 0
        object.__setattr__(self, "_by_element", [np.flatnonzero(present[:, e]) for e in range(N_ELEMENTS)])
        object.__setattr__(self, "_n_elements", present.sum(axis=1))
        object.__setattr__(self, "_cache", {})

    def __len__(self) -> int:
        return len(self.formula)

    @classmethod
    def from_phases(cls, counts: np.ndarray, energy: np.ndarray, *, known: frozenset[str] | None = None) -> HullReference:
        """A hull from phases known to be stable (any others are harmless, only slower), plus 0 eV/atom
        references for the elements that have no elemental phase among them.

        Args:
            counts: (m, 89) non-negative atom counts of the phases.
            energy: (m,) formation energy per atom, eV/atom.
            known: reduced formulas that count as known for novelty (default: the phases' formulas).
        """
        counts = np.asarray(counts, dtype=np.float64).reshape(-1, N_ELEMENTS)
        energy = np.asarray(energy, dtype=np.float64).reshape(-1)
        if len(counts) != len(energy):
            raise ValueError(f"counts and energy must have the same length, got {len(counts)=} {len(energy)=}")
        if not np.isfinite(energy).all():
            raise ValueError(f"energy has {int((~np.isfinite(energy)).sum())} non-finite values")
        if len(counts):
            check_vectors(counts, name="counts")
        formulas = np.array([reduced_formula(row) for row in counts], dtype=object)
        fractions = counts / counts.sum(axis=1, keepdims=True) if len(counts) else counts
        elemental = (counts > 0).sum(axis=1) == 1
        covered = set(np.argmax(counts[elemental], axis=1).tolist())
        missing = [e for e in range(N_ELEMENTS) if e not in covered]
        formulas = np.r_[formulas, np.array([ELEMENTS[e] for e in missing], dtype=object)].astype(str)
        fractions = np.vstack([fractions, np.eye(N_ELEMENTS)[missing]])
        energy = np.r_[energy, np.zeros(len(missing))]
        return cls(formulas, fractions, energy, frozenset(known if known is not None else formulas[: len(counts)].tolist()))

    @classmethod
    def from_table(cls, table: pd.DataFrame, rows: np.ndarray | None = None, *, show_progress: bool | None = None) -> HullReference:
        """The hull of a :func:`matvae.load_materials` table (its ``is_stable`` rows), or of ``rows`` of it
        alone (recomputed from those rows: what the hull would be had only they been known)."""
        from matvae.data.dataset import build_dataset

        data = build_dataset(table)
        energy = table["formation_energy_per_atom"].to_numpy(dtype=np.float64)
        if rows is None:
            stable = table["is_stable"].to_numpy(dtype=bool)
            return cls.from_phases(data.counts[stable], energy[stable], known=frozenset(data.formula.tolist()))
        rows = np.asarray(rows, dtype=np.int64)
        if rows.ndim != 1 or len(rows) == 0 or rows.min() < 0 or rows.max() >= len(table):
            raise ValueError(f"rows must be a non-empty 1-D array of row numbers in [0, {len(table)})")
        hull = compute_decompositions(data.counts[rows], energy[rows], show_progress=show_progress)
        keep = rows[hull.is_stable]
        return cls.from_phases(data.counts[keep], energy[keep], known=frozenset(data.formula[rows].tolist()))

    def is_known(self, formulas: list[str]) -> np.ndarray:
        """(n,) bool: reduced formula among the entries the hull was built from."""
        return np.array([f in self.known for f in formulas], dtype=bool)

    def candidates(self, system: tuple[int, ...]) -> np.ndarray:
        """Indices of the hull phases whose elements all lie in ``system`` (element indices)."""
        holders = np.concatenate([self._by_element[e] for e in system])
        inside = np.bincount(holders, minlength=len(self.formula))
        return np.flatnonzero((inside == self._n_elements) & (inside > 0))

    def place(self, counts: np.ndarray) -> Placement:
        """Hull energy and decomposition at each composition.

        Args:
            counts: (n, 89) non-negative atom counts or fractions (rows with a positive sum).
        """
        matrix = check_vectors(counts, name="counts")
        fractions = matrix / matrix.sum(axis=1, keepdims=True)
        keys = [row.tobytes() for row in np.round(fractions, 12)]
        todo: dict[tuple[int, ...], dict[bytes, int]] = {}
        for row, key in enumerate(keys):
            if key not in self._cache:
                system = tuple(np.flatnonzero(fractions[row] > 0).tolist())
                todo.setdefault(system, {}).setdefault(key, row)
        for system, first_rows in todo.items():
            self._solve(system, list(first_rows), fractions[list(first_rows.values())])
        hull_energy = np.array([self._cache[key][0] for key in keys])
        return Placement(hull_energy, [self._cache[key][1] for key in keys])

    def _solve(self, system: tuple[int, ...], keys: list[bytes], targets: np.ndarray) -> None:
        """Solve the compositions ``targets`` (k, 89) of one chemical system into the cache."""
        phases = self.candidates(system)
        n_phases = len(phases)
        point_fraction = np.vstack([self.fractions[phases], targets])
        point_energy = np.r_[self.energy[phases], np.zeros(len(targets))]
        points, rows = np.arange(n_phases), n_phases + np.arange(len(targets))
        if len(system) == 1:
            best = points[np.argmin(point_energy[points])]
            facet_points, amounts = np.full((len(targets), 1), best), np.ones((len(targets), 1))
        else:
            solver = _decompose_lp if len(system) >= LP_MIN_ELEMENTS else _decompose_qhull
            try:
                facet_points, amounts, _ = solver(system, points, rows, point_fraction, point_energy)
            except QhullError:
                facet_points, amounts, _ = _decompose_lp(system, points, rows, point_fraction, point_energy)
        for key, facet, amount in zip(keys, facet_points, amounts):
            keep = np.abs(amount) > NUMERICAL_TOL
            merged: dict[str, float] = {}
            for point, a in zip(facet[keep], amount[keep]):
                formula = str(self.formula[phases[point]])
                merged[formula] = merged.get(formula, 0.0) + float(a)
            parts = sorted(merged.items(), key=lambda item: -item[1])
            hull_energy = float((amount * point_energy[facet]).sum())
            self._cache[key] = (hull_energy, parts)
