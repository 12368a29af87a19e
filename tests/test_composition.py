import numpy as np
import pytest
from pymatgen.core import Composition

from matvae.composition import (
    DEFAULT_MAX_ATOMS,
    check_vectors,
    decode,
    decode_counts,
    encode,
    formulas_from_counts,
    normalize,
    parse_formula,
    reduced_formula,
)
from matvae.elements import ELEMENT_INDEX, ELEMENTS


def as_dict(vector):
    return {ELEMENTS[i]: int(vector[i]) for i in np.flatnonzero(vector)}


@pytest.mark.parametrize("formula", ["Ga(MoS2)4", "GaMo4S8", "Ga2Mo8S16", "Ga1Mo4S8", " GaMo4S8 "])
def test_encode_papers_example(formula):
    vector = encode(formula)
    assert vector.shape == (89,)
    assert np.flatnonzero(vector).tolist() == [25, 43, 65]  # 26, 44, 66 1-based
    assert vector[[25, 43, 65]].tolist() == [1, 4, 8]


@pytest.mark.parametrize(
    "formula", ["NaCl", "Fe2O3", "Li4Fe4P4O16", "H2O", "O2", "Ca(OH)2", "CuSO4(H2O)5", "XeF2", "He", "ArKrNeXeHe", "Mg2Si"]
)
def test_encode_agrees_with_pymatgen_reduced_composition(formula):
    expected = {str(e): int(a) for e, a in Composition(formula).reduced_composition.items()}
    if formula == "O2":  # pymatgen keeps O2 unreduced as a special formula; the GCD rule gives O
        expected = {"O": 1}
    assert as_dict(encode(formula)) == expected


def test_noble_gases_encode():
    assert as_dict(encode("Xe")) == {"Xe": 1}
    assert as_dict(encode("XeF4")) == {"Xe": 1, "F": 4}


def test_fractional_amounts_scale_to_whole_atoms():
    assert as_dict(encode("Li0.5FePO4")) == {"Li": 1, "Fe": 2, "P": 2, "O": 8}
    assert as_dict(encode("Fe0.25O0.375")) == {"Fe": 2, "O": 3}
    assert as_dict(encode("Fe0.3333333333O")) == {"Fe": 1, "O": 3}  # 1/3 to within 1e-6


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("Xx2", "unknown element symbol 'Xx'"),
        ("Zz", "unknown element symbol"),
        ("Po", "Po, which is not one of the 89"),
        ("Rn2", "Rn, which is not one of the 89"),
        ("AmO2", "Am, which is not one of the 89"),
        ("Fe0O", "zero amount"),
        ("Fe2O0", "zero amount"),
        ("Fe-1O", "cannot parse"),
        ("hello", "cannot parse"),
        ("Fe2O3+", "cannot parse"),
        ("Fe1000000000O", "at most"),
        ("Fe0.0001O", "cannot be scaled to whole atoms"),
        (42, "must be a str"),
        (None, "must be a str"),
        (b"NaCl", "must be a str"),
    ],
)
def test_bad_formulas_name_the_problem(bad, match):
    with pytest.raises(ValueError, match=match):
        encode(bad)


def test_parse_formula_returns_amounts():
    assert parse_formula("Li0.5FePO4") == {"Li": 0.5, "Fe": 1.0, "P": 1.0, "O": 4.0}


@pytest.mark.parametrize("formula", ["NaCl", "Fe2O3", "Al2O3", "Mg", "CaTiO3", "Li4O", "BaTiO3"])
def test_paper_rule_round_trips_fractions_on_the_threshold_grid(formula):
    assert decode(normalize(encode(formula))) == Composition(formula).reduced_formula


def test_paper_rule_quantises_the_example():
    x = normalize(encode("Ga(MoS2)4"))
    assert np.isclose(x.sum(), 1.0)
    assert decode(x) == "Ga2Mo8S15"  # 1/13, 4/13, 8/13 -> 1.92, 7.69, 15.38 -> 2, 8, 15
    assert decode(x, rule="nearest") == "Ga(MoS2)4"


def test_threshold_zeroes_small_entries_and_none_when_nothing_survives():
    vector = np.zeros(89)
    vector[ELEMENT_INDEX["Na"]] = 0.5
    vector[ELEMENT_INDEX["Cl"]] = 0.5
    vector[ELEMENT_INDEX["K"]] = 0.039
    assert decode(vector) == "NaCl"
    assert decode(vector, threshold=0.6) is None
    assert decode(vector, rule="nearest", threshold=0.6) is None
    assert decode_counts(vector, threshold=0.6).sum() == 0


def test_paper_rule_matches_a_hand_computation():
    vector = np.zeros(89)
    vector[ELEMENT_INDEX["Fe"]] = 0.23  # /0.04 = 5.75 -> 6
    vector[ELEMENT_INDEX["O"]] = 0.35  # 8.75 -> 9
    vector[ELEMENT_INDEX["H"]] = 0.03  # below T
    assert decode(vector) == "Fe2O3"  # (6, 9) / 3


def test_decode_counts_matches_decode_row_by_row(rng):
    vectors = rng.dirichlet(np.full(89, 0.05), size=200)
    for rule in ("paper", "nearest"):
        counts = decode_counts(vectors, rule=rule)
        assert counts.shape == (200, 89)
        formulas = formulas_from_counts(counts)
        assert formulas == [decode(v, rule=rule) for v in vectors]
        nonzero = counts[counts.any(axis=1)]
        assert (np.gcd.reduce(nonzero, axis=1) == 1).all()


def test_nearest_rule_round_trips_real_materials(snapshot_raw, rng):
    formulas, _, counts = snapshot_raw
    rows = rng.choice(len(formulas), size=400, replace=False)
    checked = 0
    for row in rows:
        reduced = counts[row] // np.gcd.reduce(counts[row].astype(np.int64))
        if reduced.sum() > DEFAULT_MAX_ATOMS or reduced[reduced > 0].min() / reduced.sum() < 0.04:
            continue  # too big a formula unit, or an element below the threshold: cannot come back
        expected = Composition(formulas[row]).reduced_formula
        assert decode(normalize(counts[row]), rule="nearest") == expected
        checked += 1
    assert checked > 250


def test_reduced_formula_matches_pymatgen(snapshot_raw, rng):
    formulas, _, counts = snapshot_raw
    for row in rng.choice(len(formulas), size=300, replace=False):
        assert reduced_formula(counts[row]) == Composition(formulas[row]).reduced_formula
    assert reduced_formula(encode("GaMo4S8")) == "Ga(MoS2)4"
    assert reduced_formula(encode("O")) == "O2"


@pytest.mark.parametrize(
    ("vector", "match"),
    [
        (np.ones(88), r"shape \(89,\)"),
        (np.ones((2, 3)), "shape"),
        (np.r_[np.nan, np.ones(88)], "non-finite entry nan for Ac"),
        (np.r_[np.ones(88), np.inf], "non-finite entry inf for Zr"),
        (np.r_[-0.1, np.ones(88)], "negative entry -0.1 for Ac"),
        (np.zeros(89), "all zeros"),
    ],
)
def test_bad_vectors_name_the_problem(vector, match):
    with pytest.raises(ValueError, match=match):
        decode(vector)
    with pytest.raises(ValueError, match=match):
        check_vectors(vector)


@pytest.mark.parametrize("threshold", [0, 1, -0.1, 1.5, float("nan"), "0.04", True])
def test_threshold_outside_unit_interval(threshold):
    with pytest.raises(ValueError, match="threshold"):
        decode(normalize(encode("NaCl")), threshold=threshold)


def test_bad_rule_and_max_atoms():
    x = normalize(encode("NaCl"))
    with pytest.raises(ValueError, match="rule must be one of"):
        decode(x, rule="closest")
    with pytest.raises(ValueError, match="max_atoms must be >= 1, got 0"):
        decode(x, rule="nearest", max_atoms=0)
    with pytest.raises(ValueError, match="one vector of shape"):
        decode(np.stack([x, x]))


def test_normalize_rows_sum_to_one():
    counts = np.stack([encode("Fe2O3"), encode("NaCl")])
    fractions = normalize(counts)
    assert fractions.shape == (2, 89)
    assert np.allclose(fractions.sum(axis=1), 1.0)
    assert np.isclose(fractions[0, ELEMENT_INDEX["O"]], 0.6)
