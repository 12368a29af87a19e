"""Generation metrics, SMACT validity and the baselines, on inputs small enough to check by hand."""

import numpy as np
import pytest

from matvae import metrics
from matvae.baselines import MarginalSampler, sample_test_split
from matvae.composition import encode
from matvae.elements import ELEMENT_INDEX
from matvae.validity import CHECKS, validity, validity_rates


def counts_of(*formulas):
    return np.array([encode(f) for f in formulas], dtype=np.int64)


def test_prevalence_sums_atoms_over_materials():
    p = metrics.prevalence(counts_of("NaCl", "NaCl", "Fe2O3"))
    assert p.sum() == pytest.approx(1.0)
    assert p[ELEMENT_INDEX["Na"]] == pytest.approx(2 / 9) and p[ELEMENT_INDEX["O"]] == pytest.approx(3 / 9)
    with pytest.raises(ValueError, match="empty"):
        metrics.prevalence(np.zeros((0, 89)))


def test_prevalence_kl_direction_smoothing_and_js():
    p = metrics.prevalence(counts_of("NaCl"))
    q = metrics.prevalence(counts_of("NaCl", "KCl"))
    assert metrics.prevalence_kl(p, p) == pytest.approx(0.0, abs=1e-9)
    # by hand: p = (Na .5, Cl .5), q = (Na .25, Cl .5, K .25): KL(p||q) = .5 ln 2
    assert metrics.prevalence_kl(p, q) == pytest.approx(0.5 * np.log(2), rel=1e-3)
    assert metrics.prevalence_kl(q, p) > 1.0  # K missing from p: large but finite thanks to the smoothing
    assert np.isfinite(metrics.prevalence_kl(q, p))
    js = metrics.jensen_shannon(p, q)
    assert 0 < js < np.log(2) and js == pytest.approx(metrics.jensen_shannon(q, p))
    with pytest.raises(ValueError, match="distribution over the 89"):
        metrics.prevalence_kl(np.ones(5) / 5, p)


def test_represented_elements():
    data = metrics.prevalence(counts_of("NaCl", "MgO"))
    samples = metrics.prevalence(counts_of("NaCl", "NaCl", "O2"))
    over, under = metrics.represented_elements(data, samples, top=2)
    assert over[0] in ("Na", "Cl") and "Mg" in under


def test_uniqueness_novelty_and_empty_sets():
    formulas = ["NaCl", "NaCl", "KCl", None]
    assert metrics.uniqueness(formulas) == 0.5
    assert metrics.novelty(formulas, {"NaCl"}) == (1, 0.5)
    with pytest.raises(ValueError, match="undefined"):
        metrics.uniqueness([])
    with pytest.raises(ValueError, match="undefined"):
        metrics.novelty([None, None], {"NaCl"})


def test_wasserstein_of_elements_per_material():
    a = counts_of("NaCl", "Fe2O3")  # 2, 2 elements
    b = counts_of("LiFePO4", "NaCl")  # 4, 2 elements
    assert metrics.n_elements_wasserstein(a, b) == pytest.approx(1.0)
    assert metrics.n_elements_wasserstein(np.vstack([a, np.zeros((1, 89), int)]), b) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no decoded"):
        metrics.n_elements_wasserstein(np.zeros((3, 89), int), b)


def test_smact_answers_known_cases():
    table = validity(["NaCl", "NaCl2", "Fe2O3", None, "CuZn"], n_processes=1)
    assert list(table.columns) == list(CHECKS)
    assert table.loc[0].all()  # NaCl: valid everywhere
    assert not table.loc[1].any()  # NaCl2: not charge-neutral
    assert table.loc[2].all()
    assert not table.loc[3].any()  # nothing decoded: invalid
    # an alloy passes only where alloys are accepted
    assert table.loc[4, "smact (ICSD24)"] and not table.loc[4, "charge-neutral"]
    assert validity_rates(["NaCl", "NaCl2"], n_processes=1)["charge-neutral"] == 0.5
    with pytest.raises(ValueError, match="no samples"):
        validity_rates([])


def test_compositions_beyond_the_smact_limit_are_not_searched():
    from matvae.validity import MAX_ELEMENTS, too_many_elements

    huge = "".join(f"{e}2" for e in ["Li", "Fe", "Mn", "Co", "Ni", "P", "O", "S", "Ga", "Mo", "Na", "K"][: MAX_ELEMENTS + 1])
    table = validity([huge, "NaCl"], n_processes=1)  # would take minutes if searched
    assert not table.loc[0].any() and table.loc[1].all()
    assert too_many_elements([huge, "NaCl", None, "KCl"]) == 0.25


def test_parallel_validity_matches_serial():
    formulas = ["NaCl", "NaCl2", "Fe2O3", "LiFePO4", "CsI", "XeF2", "GaMo4S8", "Mg2Si"] * 3
    assert validity(formulas, n_processes=2).equals(validity(formulas, n_processes=1))


def test_generation_table_reports_sets_that_decoded_nothing():
    data = counts_of("NaCl", "KCl", "MgO", "Fe2O3")
    sets = {"real": (counts_of("NaCl", "MgO"), ["NaCl", "MgO"]), "empty": (np.zeros((2, 89), int), [None, None])}
    table = metrics.generation_table(sets, data_counts=data, train_formulas={"NaCl"}, test_counts=data, n_processes=1)
    assert table.loc["real", "decoded"] == 1.0 and table.loc["real", "novelty"] == 0.5
    assert table.loc["real", "charge-neutral"] == 1.0
    assert table.loc["empty", "decoded"] == 0.0 and np.isnan(table.loc["empty", "prevalence_kl"])
    assert "empty: no sample decoded" in table.attrs["notes"][0]
    with pytest.raises(ValueError, match="no sample decoded"):
        metrics.generation_metrics(np.zeros((2, 89), int), [None, None], data_counts=data, train_formulas=set(), test_counts=data)


def test_marginal_sampler_matches_the_marginals():
    data = counts_of(*(["NaCl"] * 50 + ["Fe2O3"] * 30 + ["LiFePO4"] * 20))
    sampler = MarginalSampler.fit(data)
    assert sampler.n_elements_probability.tolist() == pytest.approx([0, 0, 0.8, 0, 0.2])
    counts, formulas = sampler.sample(4000, seed=0)
    k = metrics.elements_per_material(counts)
    assert set(np.unique(k)) == {2, 4}
    assert (k == 2).mean() == pytest.approx(0.8, abs=0.03)
    present = counts > 0
    assert not present[:, [i for i in range(89) if i not in {ELEMENT_INDEX[s] for s in ("Na", "Cl", "Fe", "O", "Li", "P")}]].any()
    assert (np.gcd.reduce(counts[counts.any(axis=1)], axis=1) == 1).all()
    assert counts[present].max() <= 4  # counts come from the data's values (1..4) before the GCD
    assert formulas[0] is not None
    assert np.array_equal(sampler.sample(50, seed=3)[0], sampler.sample(50, seed=3)[0])


def test_test_split_sampler():
    data = counts_of("NaCl", "KCl", "MgO")
    counts, formulas = sample_test_split(data, 2, seed=0)
    assert len(set(formulas)) == 2 and set(formulas) <= {"NaCl", "KCl", "MgO"}
    counts, formulas = sample_test_split(data, 10, seed=0)  # more than the split: with replacement
    assert len(formulas) == 10
    with pytest.raises(ValueError, match="n must be >= 1"):
        sample_test_split(data, 0)
