"""The hull decompositions against pymatgen's PhaseDiagram built on the same entries."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

from matvae.composition import reduced_formula
from matvae.data.hull import compute_decompositions
from matvae.elements import ELEMENT_INDEX, ELEMENTS

TOL = 1e-6


def closed_space(snapshot_raw, symbols):
    """Rows of the snapshot made only of ``symbols``: (cell formulas, energies, counts)."""
    formulas, energies, counts = snapshot_raw
    allowed = np.zeros(len(ELEMENTS), dtype=bool)
    allowed[[ELEMENT_INDEX[s] for s in symbols]] = True
    keep = ~(counts[:, ~allowed] > 0).any(axis=1)
    return formulas[keep], energies[keep], counts[keep]


def ours(formulas, energies, counts, **options):
    n_atoms = counts.sum(axis=1)
    hull = compute_decompositions(counts, energies * n_atoms / n_atoms, **options)
    names = [reduced_formula(c) for c in counts]
    result = []
    for i in range(len(formulas)):
        if hull.is_stable[i]:
            decomposition = {names[i]: 1.0}
        else:
            decomposition = {}
            for j, amount in zip(hull.component_index[i], hull.component_amount[i]):
                if j < 0:
                    continue
                name = names[j] if j < len(formulas) else reduced_formula(np.eye(89)[j - len(formulas)])
                decomposition[name] = decomposition.get(name, 0.0) + amount
        result.append((decomposition, hull.energy_above_hull[i], bool(hull.is_stable[i])))
    return hull, result


def reference(formulas, energies, symbols):
    """pymatgen: entries named by row (zero-padded, so name order is row order) plus elements at 0 eV/atom."""
    entries = [
        PDEntry(Composition(f), e * Composition(f).num_atoms, name=f"row-{i:06d}")
        for i, (f, e) in enumerate(zip(formulas, energies))
    ]
    diagram = PhaseDiagram(entries + [PDEntry(Composition(s), 0.0, name=f"ref-{s}") for s in symbols])
    result = []
    for entry in entries:
        decomposition: dict[str, float] = {}
        for part, amount in diagram.get_decomposition(entry.composition).items():
            name = part.composition.reduced_formula
            decomposition[name] = decomposition.get(name, 0.0) + amount
        result.append((decomposition, diagram.get_e_above_hull(entry, allow_negative=True)))
    stable_formulas = {e.composition.reduced_formula for e in diagram.stable_entries}
    return result, stable_formulas


SYSTEMS = [
    ("Ga", "Mo", "S"),  # the paper's example
    ("Li", "Fe", "P", "O"),  # a quaternary with many polymorphs
    ("Mg", "Si"),
    ("Cr", "O", "Si"),  # has exact duplicate energies
    ("Na", "Cl", "K"),
]


@pytest.mark.parametrize("symbols", SYSTEMS, ids=["-".join(s) for s in SYSTEMS])
@pytest.mark.parametrize("lp_min_elements", [7, 2], ids=["qhull", "linear-program"])
def test_agrees_with_pymatgen_phase_diagram(snapshot_raw, symbols, lp_min_elements):
    formulas, energies, counts = closed_space(snapshot_raw, symbols)
    assert len(formulas) > 10
    hull, mine = ours(formulas, energies, counts, lp_min_elements=lp_min_elements)
    theirs, stable_formulas = reference(formulas, energies, symbols)
    for i, ((decomp, e_hull, stable), (pm_decomp, pm_e_hull)) in enumerate(zip(mine, theirs)):
        assert set(decomp) == set(pm_decomp), (formulas[i], decomp, pm_decomp)
        for name in decomp:
            assert abs(decomp[name] - pm_decomp[name]) < TOL, (formulas[i], decomp, pm_decomp)
        assert abs(e_hull - pm_e_hull) < TOL, (formulas[i], e_hull, pm_e_hull)
    names = np.array([reduced_formula(c) for c in counts])
    assert set(names[hull.is_stable]) == stable_formulas
    # one stable entry per stable composition
    assert len(set(names[hull.is_stable])) == hull.is_stable.sum()


def test_papers_worked_example(snapshot_raw):
    formulas, energies, counts = closed_space(snapshot_raw, ("Ga", "Mo", "S"))
    hull, mine = ours(formulas, energies, counts)
    row = list(formulas).index("Ga1Mo4S8")
    decomposition, e_hull, stable = mine[row]
    assert not stable
    assert decomposition.keys() == {"Ga31Mo6", "MoS2", "GaS"}
    assert decomposition["Ga31Mo6"] == pytest.approx(0.0662, abs=5e-5)
    assert decomposition["MoS2"] == pytest.approx(0.8909, abs=5e-5)
    assert decomposition["GaS"] == pytest.approx(0.0429, abs=5e-5)
    assert e_hull == pytest.approx(0.0401, abs=1e-4)
    assert hull.n_components[row] == 3


def counts_of(*formulas):
    from matvae.composition import encode

    return np.array([encode(f) for f in formulas])


def test_polymorphs_and_ties_decompose_to_the_first_ground_state():
    counts = counts_of("Na", "Cl", "NaCl", "Na2Cl2", "NaCl", "Na")
    energies = np.array([0.0, 0.0, -2.0, -2.0, -1.5, 0.3])
    hull = compute_decompositions(counts, energies)
    assert hull.is_stable.tolist() == [True, True, True, False, False, False]
    # the exact tie (row 3) and the higher polymorph (row 4) decompose to row 2 alone
    for row, e_hull in [(3, 0.0), (4, 0.5), (5, 0.3)]:
        assert hull.n_components[row] == 1
        assert hull.component_amount[row, 0] == pytest.approx(1.0)
        assert hull.energy_above_hull[row] == pytest.approx(e_hull)
    assert hull.component_index[3, 0] == 2 and hull.component_index[5, 0] == 0
    assert (hull.component_index[hull.is_stable] == -1).all()


def test_element_references_stand_in_for_missing_elements():
    counts = counts_of("NaCl", "Na2Cl")
    hull = compute_decompositions(counts, np.array([-2.0, -1.0]))
    n = len(counts)
    assert hull.is_stable.tolist() == [True, False]
    parts = dict(zip(hull.component_index[1][:2].tolist(), hull.component_amount[1][:2].tolist()))
    # Na2Cl -> 2/3 NaCl + 1/3 Na (the 0 eV/atom reference of Na)
    assert parts == pytest.approx({0: 2 / 3, n + ELEMENT_INDEX["Na"]: 1 / 3})
    assert hull.energy_above_hull[1] == pytest.approx(-1.0 - 2 / 3 * -2.0)


def test_positive_formation_energy_is_never_stable():
    counts = counts_of("NaCl", "Na", "Cl")
    hull = compute_decompositions(counts, np.array([0.2, 0.0, 0.0]))
    assert hull.is_stable.tolist() == [False, True, True]
    assert hull.energy_above_hull[0] == pytest.approx(0.2)
    assert hull.n_components[0] == 2


def test_bad_input():
    with pytest.raises(ValueError, match="counts must be"):
        compute_decompositions(np.ones((3, 89)), np.zeros(2))
    with pytest.raises(ValueError, match="non-finite"):
        compute_decompositions(counts_of("NaCl"), np.array([np.nan]))
