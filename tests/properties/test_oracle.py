"""The hull placement against pymatgen's PhaseDiagram, the oracle's table, stability scores and S.U.N. rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

from matvae.composition import encode
from matvae.elements import ELEMENT_INDEX
from matvae.properties.hull import HullReference
from matvae.properties.oracle import PROPERTY_COLUMNS, StabilityOracle, predict_properties, stability_scores
from matvae.properties.sun import SUN_COLUMNS, sample_properties, sun_rates

# Phases of a Li-Fe-O-P system with made-up formation energies (eV/atom), some above the hull.
PHASES = {
    "Li2O": -2.0, "Li2O2": -1.7, "Fe2O3": -1.7, "FeO": -1.4, "Fe3O4": -1.65, "LiFeO2": -1.9, "Li5FeO4": -1.85,
    "FeP": -0.4, "Li3P": -0.7, "LiFePO4": -2.5, "Li3PO4": -2.6, "P2O5": -1.9, "FePO4": -2.1, "Fe2P": -0.3,
    "Li": 0.0, "Fe": 0.0, "O2": 0.0, "P": 0.0, "LiO8": -0.1,
}
QUERIES = ["LiFeO2", "Li2FeO3", "Li3Fe2O4", "FeO2", "LiFeP", "Li2FePO5", "Li4Fe3P2O13", "Fe", "LiO", "Li9Fe2P5O17", "O"]


def entries(phases: dict[str, float]) -> list[PDEntry]:
    return [PDEntry(Composition(f), e * Composition(f).num_atoms) for f, e in phases.items()]


def counts(formulas: list[str]) -> np.ndarray:
    return np.array([encode(f) for f in formulas])


@pytest.fixture(scope="module")
def diagram() -> PhaseDiagram:
    return PhaseDiagram(entries(PHASES))


@pytest.fixture(scope="module")
def reference(diagram) -> HullReference:
    stable = [e for e in diagram.stable_entries]
    return HullReference.from_phases(counts([e.composition.reduced_formula for e in stable]),
                                     [diagram.get_form_energy_per_atom(e) for e in stable])


@pytest.mark.parametrize("energy", [-2.2, -1.0, 0.3])
def test_placement_agrees_with_pymatgen(diagram, reference, energy):
    placement = reference.place(counts(QUERIES))
    e_hull = placement.e_above_hull(np.full(len(QUERIES), energy))
    for formula, ours, parts in zip(QUERIES, e_hull, placement.components):
        entry = PDEntry(Composition(formula), energy * Composition(formula).num_atoms)
        decomposition, theirs = diagram.get_decomp_and_e_above_hull(entry, allow_negative=True)
        assert ours == pytest.approx(theirs, abs=1e-9), formula
        expected = {e.composition.reduced_formula: a for e, a in decomposition.items() if a > 1e-8}
        assert dict(parts) == pytest.approx(expected, abs=1e-9), formula


def test_hull_from_all_phases_equals_hull_from_stable_phases(diagram, reference):
    everything = HullReference.from_phases(counts(list(PHASES)), list(PHASES.values()))
    a, b = everything.place(counts(QUERIES)), reference.place(counts(QUERIES))
    np.testing.assert_allclose(a.hull_energy, b.hull_energy, atol=1e-12)


def test_elements_without_phases_are_references_at_zero():
    reference = HullReference.from_phases(counts(["NaCl"]), [-2.0])
    placement = reference.place(counts(["Na", "Cl", "Na2Cl", "K"]))
    np.testing.assert_allclose(placement.hull_energy, [0.0, 0.0, -2.0 * 2 / 3, 0.0], atol=1e-12)
    assert placement.decomposes_to()[2] == "0.667 NaCl + 0.333 Na"


def test_placement_is_cached_and_order_free(reference):
    forward = reference.place(counts(QUERIES))
    backward = reference.place(counts(QUERIES[::-1]))
    np.testing.assert_array_equal(forward.hull_energy, backward.hull_energy[::-1])
    scaled = reference.place(counts(QUERIES) * 3)
    np.testing.assert_array_equal(forward.hull_energy, scaled.hull_energy)


def test_hull_of_a_table_subset_is_recomputed(small_table):
    full = HullReference.from_table(small_table)
    rows = np.arange(0, len(small_table), 2)
    half = HullReference.from_table(small_table, rows)
    assert half.known == frozenset(small_table["formula"].iloc[rows])
    x = counts(small_table["formula"].iloc[:50].tolist())
    # Fewer phases can only raise the hull.
    assert (half.place(x).hull_energy >= full.place(x).hull_energy - 1e-12).all()
    with pytest.raises(ValueError, match="row numbers"):
        HullReference.from_table(small_table, np.array([len(small_table)]))


def linear_energy(x: np.ndarray) -> np.ndarray:
    """A toy energy model: -1 eV/atom per oxygen fraction."""
    return -1.0 * x[:, ELEMENT_INDEX["O"]]


@pytest.fixture(scope="module")
def oracle(reference) -> StabilityOracle:
    return StabilityOracle(reference, linear_energy)


def test_oracle_table_columns_order_and_values(oracle, diagram):
    frame = oracle.predict(["Fe2O3", "Li2FeO3", "Ga(MoS2)4", "Fe4O6"])
    assert list(frame.columns) == list(PROPERTY_COLUMNS)
    assert frame["formula"].tolist() == ["Fe2O3", "Li2FeO3", "Ga(MoS2)4", "Fe2O3"]
    assert frame["formation_energy_per_atom"].tolist() == pytest.approx([-0.6, -0.5, 0.0, -0.6])
    assert frame["novel"].tolist() == [False, True, True, False]
    entry = PDEntry(Composition("Li2FeO3"), -0.5 * 6)
    assert frame["e_above_hull"][1] == pytest.approx(diagram.get_e_above_hull(entry, allow_negative=True), abs=1e-9)
    assert frame["e_above_hull"][2] == pytest.approx(0.0)  # no phase of Ga-Mo-S: the elements are the hull
    assert frame["decomposes_to"][0] == "1 Fe2O3"


@pytest.mark.parametrize(
    "bad, match",
    [(["Fe2O3", "Xx2"], r"formulas\[1\].*unknown element"), (["Fe2O3", ""], r"formulas\[1\].*empty"),
     (["Og"], "not one of the 89"), ([3.5], "must be a str"), (["CuSO4.5H2O"], "hydrate")],
)
def test_oracle_refuses_bad_formulas_as_encode_does(oracle, bad, match):
    with pytest.raises(ValueError, match=match):
        oracle.predict(bad)


def test_oracle_accepts_one_string_and_nothing(oracle):
    assert oracle.predict("FeO")["formula"].tolist() == ["FeO"]
    empty = oracle.predict([])
    assert list(empty.columns) == list(PROPERTY_COLUMNS) and len(empty) == 0


def test_oracle_checks_its_arguments(reference):
    with pytest.raises(TypeError, match="HullReference"):
        StabilityOracle("hull", linear_energy)
    with pytest.raises(TypeError, match="callable"):
        StabilityOracle(reference, 3)
    broken = StabilityOracle(reference, lambda x: np.zeros(len(x) + 1))
    with pytest.raises(ValueError, match="shape"):
        broken.predict(["FeO"])


def test_stability_scores_counts():
    true = np.array([-0.1, 0.0, 0.05, 0.2, 0.5])
    predicted = np.array([0.05, -0.2, 0.3, 0.0, 0.08])
    scores = stability_scores(true, predicted)
    strict, loose = scores.loc[0.0], scores.loc[0.1]
    assert (strict["truly stable"], strict["predicted stable"]) == (2, 2)
    assert strict["precision"] == 0.5 and strict["recall"] == 0.5
    assert strict["false-positive rate"] == pytest.approx(1 / 3)
    assert (loose["truly stable"], loose["predicted stable"]) == (3, 4)
    assert loose["recall"] == pytest.approx(2 / 3) and loose["precision"] == 0.5
    with pytest.raises(ValueError, match="1-D"):
        stability_scores(true, predicted[:3])


def test_sun_rates_by_hand(oracle):
    formulas = ["Li2FeO3", "Li2FeO3", None, "Fe2O3", "LiFe5"]
    properties = sample_properties(formulas, oracle)
    assert properties["scored"].tolist() == [True, True, False, True, True]
    valid = np.array([True, True, False, True, False])
    rates = sun_rates(formulas, properties, valid)
    assert list(rates) == list(SUN_COLUMNS)
    assert rates["n"] == 5 and rates["valid"] == 0.6
    assert rates["unique"] == 0.6  # Li2FeO3 once, Fe2O3, LiFe5; None never
    assert rates["novel"] == 0.6  # Fe2O3 is known
    # The toy energy puts Li2FeO3 above the hull and LiFe5 (0 eV/atom on the Li-Fe tie line) on it.
    e_hull = properties["e_above_hull"]
    expected = ((e_hull <= 0.1) & np.array([True, False, False, True, True]) & properties["novel"]).mean()
    assert rates["S.U.N."] == pytest.approx(expected)
    with pytest.raises(ValueError, match="lengths differ"):
        sun_rates(formulas, properties, valid[:2])
    with pytest.raises(ValueError, match="no samples"):
        sun_rates([], properties.iloc[:0], valid[:0])


def test_max_elements_leaves_long_formulas_unscored(oracle):
    properties = sample_properties(["LiFeO2", "LiFePO4"], oracle, max_elements=3)
    assert properties["scored"].tolist() == [True, False]
    assert np.isnan(properties["e_above_hull"][1])


def test_predict_properties_uses_the_given_oracle(oracle):
    frame = predict_properties(["FeO", "Li2O"], oracle=oracle)
    assert isinstance(frame, pd.DataFrame) and frame["formula"].tolist() == ["FeO", "Li2O"]


def test_oracle_refuses_more_elements_than_its_model_takes(reference):
    oracle = StabilityOracle(reference, linear_energy, max_elements=3)
    assert len(oracle.predict(["LiFeO2"])) == 1
    with pytest.raises(ValueError, match=r"formulas\[1\] 'LiFePO4' has 4 elements; the energy model takes at most 3"):
        oracle.predict(["FeO", "LiFePO4"])
    with pytest.raises(ValueError, match="max_elements"):
        StabilityOracle(reference, linear_energy, max_elements=0.5)
