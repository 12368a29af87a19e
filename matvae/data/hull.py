"""Convex-hull decompositions, one chemical system at a time, agreeing with pymatgen's PhaseDiagram.

For every entry (composition, formation energy per atom) we want what the Materials Project's thermo
documents give: its energy above the convex hull and the stable phases it decomposes to, with their
atomic-fraction amounts. ``pymatgen.analysis.phase_diagram.PatchedPhaseDiagram`` does this for the whole
snapshot in about 35 minutes on a 2-core machine. This module does the same construction in a few tens of
seconds by building each hull only from what can lie on it:

1. Chemical systems (element sets) are visited from the fewest elements to the most.
2. The hull of a system S is built from the *stable* entries of all its proper subsystems (already known)
   plus the lowest-energy entry of each composition with exactly the elements of S, keeping, as pymatgen
   does, only entries with negative formation energy, and the elements at 0 eV/atom as references.
3. As in ``PhaseDiagram._compute``: the points are (fractions of all elements but the first, energy per
   atom), an extra point above all others closes the hull, qhull runs with options ``"Qt i"``, facets
   that touch the extra point or are degenerate (|det| <= 1e-14) are dropped. The vertices of the
   remaining facets are the stable entries of S.
4. Each entry of S is decomposed by the barycentric coordinates of the first facet that contains it
   (tolerance ``PhaseDiagram.numerical_tol / 10``); amounts below ``PhaseDiagram.numerical_tol`` are
   dropped, exactly as in ``PhaseDiagram.get_decomposition``.

Systems of ``lp_min_elements`` or more elements (a handful of 7-9 element systems whose hulls are slow in
high dimension) use a linear program instead: minimise the energy of a mix of candidate phases with the
entry's composition; the support of the optimum is the decomposition and its amounts are re-solved exactly
on that support. Both paths are checked against pymatgen's ``PhaseDiagram`` in the tests.

Ties: each reduced composition has one ground state, the lowest energy per atom, ties going to the entry
that comes first in the input. Other entries of that composition decompose to it (one component).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from pymatgen.analysis.phase_diagram import PhaseDiagram
from scipy.optimize import linprog
from scipy.spatial import ConvexHull, QhullError

from matvae.progress import progress_bar

HULL_VERSION: int = 1
"""Bumped whenever the algorithm's output could change; part of every cache key."""

NUMERICAL_TOL: float = PhaseDiagram.numerical_tol
FORMATION_ENERGY_TOL: float = PhaseDiagram.formation_energy_tol


@dataclass(frozen=True)
class HullDecomposition:
    """Decompositions of n entries over E elements.

    Component indices point into the input rows; ``n + e`` stands for the reference of element ``e`` at
    0 eV/atom (used only where the input has no elemental entry at or below 0 eV/atom); -1 pads.
    """

    energy_above_hull: np.ndarray  # (n,) eV/atom, 0 for stable entries
    is_stable: np.ndarray  # (n,) bool: a vertex of its system's hull
    component_index: np.ndarray  # (n, k) int64, -1 padded; empty (all -1) for stable entries
    component_amount: np.ndarray  # (n, k) float64 atomic fractions, rows sum to 1 (0 for stable)

    @property
    def n_components(self) -> np.ndarray:
        """(n,) int: number of decomposition components, 0 for a stable entry."""
        return (self.component_index >= 0).sum(axis=1)


def _chemical_systems(present: np.ndarray) -> list[tuple[int, ...]]:
    """(n, E) bool -> the sorted tuple of element indices present in each row."""
    rows, cols = np.nonzero(present)
    splits = np.cumsum(present.sum(axis=1))[:-1]
    return [tuple(part) for part in np.split(cols, splits)]


def _ground_states(fractions: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """(n,) index of the ground-state row of each row's composition (lowest energy, first on ties)."""
    keys = np.round(fractions, 10)
    _, composition_id = np.unique(keys, axis=0, return_inverse=True)
    composition_id = composition_id.ravel()
    order = np.lexsort((np.arange(len(energy)), energy, composition_id))
    first = np.r_[True, composition_id[order][1:] != composition_id[order][:-1]]
    ground_of_composition = np.empty(composition_id.max() + 1, dtype=np.int64)
    ground_of_composition[composition_id[order][first]] = order[first]
    return ground_of_composition[composition_id]


def compute_decompositions(
    counts: np.ndarray,
    energy_per_atom: np.ndarray,
    *,
    lp_min_elements: int = 7,
    show_progress: bool | None = None,
) -> HullDecomposition:
    """Hull decompositions of every row.

    Args:
        counts: (n, E) non-negative atom counts (any multiple of the formula unit).
        energy_per_atom: (n,) formation energy per atom in eV/atom, elements' ground states at 0.
        lp_min_elements: systems with at least this many elements are solved by linear programming.
        show_progress: progress bar over chemical systems (default: when stderr is a terminal).
    """
    counts = np.asarray(counts, dtype=np.float64)
    energy = np.asarray(energy_per_atom, dtype=np.float64)
    if counts.ndim != 2 or energy.shape != (len(counts),):
        raise ValueError(f"counts must be (n, E) and energy (n,), got {counts.shape=} {energy.shape=}")
    if not np.isfinite(energy).all():
        raise ValueError(f"energy_per_atom has {int((~np.isfinite(energy)).sum())} non-finite values")
    n, n_elements = counts.shape
    fractions = counts / counts.sum(axis=1, keepdims=True)
    present = counts > 0
    systems = _chemical_systems(present)
    width = int(present.sum(axis=1).max())

    # Points n.. n+E-1 are the element references at 0 eV/atom.
    point_fraction = np.vstack([fractions, np.eye(n_elements)])
    point_energy = np.r_[energy, np.zeros(n_elements)]

    ground = _ground_states(fractions, energy)
    is_ground = ground == np.arange(n)

    # Each element's reference: pymatgen's el_refs is the lowest elemental entry, the 0 eV/atom reference
    # included, so an elemental ground state at or below 0 eV/atom (to numerical tolerance) is terminal.
    reference_energy = np.zeros(n_elements)
    terminal = n + np.arange(n_elements)
    for row in np.flatnonzero(is_ground & (present.sum(axis=1) == 1)):
        element = systems[row][0]
        if energy[row] <= NUMERICAL_TOL:
            terminal[element] = row
            reference_energy[element] = min(energy[row], 0.0)
    formation = energy - fractions @ reference_energy

    members: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for row, system in enumerate(systems):
        members[system].append(row)

    e_above_hull = np.empty(n)
    component_index = np.full((n, width), -1, dtype=np.int64)
    component_amount = np.zeros((n, width))
    stable_in: dict[tuple[int, ...], list[int]] = {}

    for system in progress_bar(sorted(members, key=len), desc="hulls", unit="system", enabled=show_progress):
        rows = np.asarray(members[system])
        if len(system) == 1:
            point = terminal[system[0]]
            stable_in[system] = [point] if point < n else []
            facet_points = np.full((len(rows), 1), point)
            amounts = np.ones((len(rows), 1))
        else:
            inherited = [
                p for size in range(1, len(system)) for sub in itertools.combinations(system, size) for p in stable_in.get(sub, ())
            ]
            covered = {systems[p][0] for p in inherited if p < n and len(systems[p]) == 1}
            references = [n + e for e in system if e not in covered]
            candidates = rows[is_ground[rows] & (formation[rows] < -FORMATION_ENERGY_TOL)]
            points = np.r_[np.asarray(inherited + references, dtype=np.int64), candidates]
            solver = _decompose_lp if len(system) >= lp_min_elements else _decompose_qhull
            try:
                facet_points, amounts, vertices = solver(system, points, rows, point_fraction, point_energy)
            except QhullError:
                facet_points, amounts, vertices = _decompose_lp(system, points, rows, point_fraction, point_energy)
            new_vertices = set(vertices.tolist()) & set(candidates.tolist())
            stable_in[system] = sorted(new_vertices)
        hull_energy = (amounts * point_energy[facet_points]).sum(axis=1)
        e_above_hull[rows] = energy[rows] - hull_energy
        keep = np.abs(amounts) > NUMERICAL_TOL
        k = facet_points.shape[1]
        component_index[rows, :k] = np.where(keep, facet_points, -1)
        component_amount[rows, :k] = np.where(keep, amounts, 0.0)

    stable = np.zeros(n, dtype=bool)
    for points in stable_in.values():
        stable[[p for p in points if p < n]] = True
    e_above_hull[stable] = 0.0
    component_index[stable] = -1
    component_amount[stable] = 0.0
    # Move the kept components to the front of each row (facet order otherwise).
    order = np.argsort(component_index < 0, axis=1, kind="stable")
    component_index = np.take_along_axis(component_index, order, axis=1)
    component_amount = np.take_along_axis(component_amount, order, axis=1)
    return HullDecomposition(e_above_hull, stable, component_index, component_amount)


def _decompose_qhull(system, points, rows, point_fraction, point_energy):
    """pymatgen's construction: returns (facet point ids (m, d), barycentric amounts (m, d), vertex ids)."""
    columns = list(system)
    dim = len(columns)
    data = np.c_[point_fraction[np.ix_(points, columns[1:])], point_energy[points]]
    extra = np.full(dim, 1.0 / dim)
    extra[-1] = data.max() + 1
    data = np.vstack([data, extra])
    facets = ConvexHull(data, qhull_options="Qt i").simplices
    facets = facets[(facets != len(data) - 1).all(axis=1)]
    matrices = data[facets]
    matrices[:, :, -1] = 1.0
    good = np.abs(np.linalg.det(matrices)) > 1e-14
    facets, matrices = facets[good], matrices[good]
    inverse = np.linalg.inv(matrices)  # barycentric = [coords, 1] @ inverse
    targets = np.c_[point_fraction[np.ix_(rows, columns[1:])], np.ones(len(rows))]
    barycentric = np.einsum("md,fdk->mfk", targets, inverse)
    inside = (barycentric >= -NUMERICAL_TOL / 10).all(axis=2)
    if not inside.any(axis=1).all():
        raise QhullError("a composition fell outside every facet")
    first = inside.argmax(axis=1)
    amounts = barycentric[np.arange(len(rows)), first]
    return points[facets[first]], amounts, points[np.unique(facets)]


def _decompose_lp(system, points, rows, point_fraction, point_energy):
    """Linear-programming path: min sum_j w_j E_j s.t. sum_j w_j x_j = x, w >= 0, for each row."""
    columns = list(system)
    matrix = point_fraction[np.ix_(points, columns)].T  # (d, p)
    costs = point_energy[points]
    dim = len(columns)
    facet_points = np.empty((len(rows), dim), dtype=np.int64)
    amounts = np.zeros((len(rows), dim))
    vertices: set[int] = set()
    for i, row in enumerate(rows):
        target = point_fraction[row, columns]
        result = linprog(costs, A_eq=matrix, b_eq=target, bounds=(0, None), method="highs")
        if result.status != 0:
            raise RuntimeError(f"hull linear program failed for row {row}: {result.message}")
        support = np.flatnonzero(result.x > NUMERICAL_TOL)
        exact, *_ = np.linalg.lstsq(matrix[:, support], target, rcond=None)
        ids = points[support]
        facet_points[i] = np.r_[ids, np.full(dim - len(ids), ids[0])]
        amounts[i, : len(ids)] = exact
        if len(ids) == 1:
            vertices.add(int(ids[0]))
    return facet_points, amounts, np.asarray(sorted(vertices), dtype=np.int64)
