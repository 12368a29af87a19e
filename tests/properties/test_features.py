"""matvae.properties.features: vectorised Magpie statistics, checked against matminer's own featuriser."""

import warnings

import numpy as np
import pytest
from pymatgen.core import Composition

from matvae.elements import ELEMENTS, N_ELEMENTS
from matvae.properties.features import (
    MAGPIE_FEATURE_NAMES,
    MAGPIE_PROPERTIES,
    element_properties,
    magpie_features,
)

# varied compositions: an element, equal-fraction ties (the mode takes the smallest property), elements whose
# magpie data matminer imputes (He, Ne, Ar electronegativity, He melting point), f elements, many elements,
# large and fractional amounts
FORMULAS = (
    "Fe",
    "NaCl",
    "Fe2O3",
    "LiFePO4",
    "YBa2Cu3O7",
    "He2Na",
    "ArNeXe",
    "PuO2",
    "UCoGe",
    "TiZrHfNbTa",
    "Li63Mn1O64",
    "La0.5Sr0.5Mn1O3",
)


@pytest.fixture(scope="module")
def featurizer():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from matminer.featurizers.composition import ElementProperty

        return ElementProperty.from_preset("magpie")


def vector(formula: str) -> np.ndarray:
    """Amounts of a formula over ELEMENTS. (89,)"""
    amounts = np.zeros(N_ELEMENTS)
    for symbol, amount in Composition(formula).get_el_amt_dict().items():
        amounts[ELEMENTS.index(symbol)] = amount
    return amounts


def test_names_match_matminer(featurizer):
    assert MAGPIE_FEATURE_NAMES == tuple(featurizer.feature_labels())
    assert element_properties().shape == (N_ELEMENTS, len(MAGPIE_PROPERTIES))
    assert np.isfinite(element_properties()).all()  # matminer's preset imputes its missing entries


def test_features_match_matminer(featurizer):
    amounts = np.stack([vector(f) for f in FORMULAS])
    expected = np.array([featurizer.featurize(Composition(f)) for f in FORMULAS], dtype=np.float64)
    assert not np.isnan(expected).any()  # as matminer's preset does it: NaN imputed, none left
    # amounts or fractions, float64 or float32 (the dataset's x): the same features
    np.testing.assert_allclose(magpie_features(amounts), expected, rtol=1e-10, atol=1e-10)
    fractions = (amounts / amounts.sum(axis=1, keepdims=True)).astype(np.float32)
    np.testing.assert_allclose(magpie_features(fractions), expected, rtol=1e-6, atol=1e-6)


def test_mode_breaks_ties_by_the_smallest_property():
    features = magpie_features(vector("NaCl")[None])[0]
    number = features[MAGPIE_FEATURE_NAMES.index("MagpieData mode Number")]
    assert number == 11  # Na (11) and Cl (17) tie at one half each
    assert magpie_features(vector("NaCl2")[None])[0][MAGPIE_FEATURE_NAMES.index("MagpieData mode Number")] == 17


def test_rows_are_independent_of_their_neighbours_and_chunks():
    rng = np.random.default_rng(0)
    x = np.zeros((50, N_ELEMENTS))
    for row in x:
        chosen = rng.choice(N_ELEMENTS, size=rng.integers(1, 8), replace=False)
        row[chosen] = rng.integers(1, 10, size=len(chosen))
    together = magpie_features(x)
    assert together.shape == (50, 132)
    np.testing.assert_allclose(np.vstack([magpie_features(x[i : i + 1]) for i in range(len(x))]), together)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.ones(N_ELEMENTS), r"shape \(n, 89\)"),
        (np.ones((2, 88)), r"shape \(n, 89\)"),
        (np.array([[1.0] + [0.0] * 88, [np.nan] + [0.0] * 88]), "non-finite .*row 1"),
        (np.array([[1.0] + [0.0] * 88, [np.inf] + [0.0] * 88]), "non-finite .*row 1"),
        (np.array([[1.0, -0.5] + [0.0] * 87]), "negative .*row 0"),
        (np.array([[1.0] + [0.0] * 88, [0.0] * 89]), "row 1 is all zeros"),
        ([["a"] * 89], "numeric"),
    ],
)
def test_bad_inputs_are_refused(x, match):
    with pytest.raises(ValueError, match=match):
        magpie_features(x)
