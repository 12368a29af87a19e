import numpy as np
import pytest

from matvae import metrics
from matvae.composition import encode
from matvae.elements import ELEMENT_INDEX


def test_count_distribution_over_a_fixed_support():
    dist = metrics.count_distribution(np.array([1, 2, 2, 3]), support=range(0, 5))
    assert dist.tolist() == [0, 1, 2, 1, 0]
    assert metrics.count_distribution(np.array([2, 2, 3]), normalize=True).tolist() == pytest.approx([2 / 3, 1 / 3])
    with pytest.raises(ValueError, match="empty"):
        metrics.count_distribution(np.array([]))


def test_elements_per_material():
    counts = np.stack([encode("NaCl"), encode("Fe2O3"), encode("LiFePO4")])
    assert metrics.elements_per_material(counts).tolist() == [2, 2, 4]


def test_presence_correlation_against_numpy():
    rng = np.random.default_rng(0)
    counts = (rng.random((200, 89)) < 0.1) * rng.integers(1, 5, (200, 89))
    counts[:, ELEMENT_INDEX["Xe"]] = 0  # absent: undefined correlations
    corr = metrics.element_correlation(counts, kind="presence")
    i, j = ELEMENT_INDEX["Fe"], ELEMENT_INDEX["O"]
    expected = np.corrcoef((counts[:, i] > 0), (counts[:, j] > 0))[0, 1]
    assert corr[i, j] == pytest.approx(expected)
    assert np.isnan(corr[ELEMENT_INDEX["Xe"]]).all()
    fractions = counts / counts.sum(axis=1, keepdims=True)
    assert metrics.element_correlation(counts, kind="fraction")[i, j] == pytest.approx(
        np.corrcoef(fractions[:, i], fractions[:, j])[0, 1]
    )
    with pytest.raises(ValueError, match="kind must be one of"):
        metrics.element_correlation(counts, kind="mass")


def test_correlated_pairs_finds_a_planted_pair():
    rng = np.random.default_rng(1)
    counts = (rng.random((500, 89)) < 0.05).astype(float)
    nb, o = ELEMENT_INDEX["Nb"], ELEMENT_INDEX["O"]
    counts[:, o] = np.where(rng.random(500) < 0.8, counts[:, nb], rng.random(500) < 0.05)
    counts[counts.sum(axis=1) == 0, ELEMENT_INDEX["Fe"]] = 1
    pairs = metrics.correlated_pairs(metrics.element_correlation(counts), threshold=0.5)
    assert pairs.attrs["n_pairs"] == 3916
    assert (pairs.iloc[0].element_a, pairs.iloc[0].element_b) == ("Nb", "O")
    assert (pairs["correlation"].abs() > 0.5).all()
