import numpy as np
import pytest

from matvae.data import DataConfig, SplitData, build_dataset, load_materials, prepare_data, split_by_formula


@pytest.fixture(scope="module")
def table():
    return load_materials(elements="Li,Fe,P,O", cache=False)


def test_arrays_follow_the_table(table):
    data = build_dataset(table)
    assert data.x.shape == (len(table), 89) and data.x.dtype == np.float32
    assert np.allclose(data.x.sum(axis=1), 1.0, atol=1e-6)
    assert data.y.tolist() == table["n_components"].tolist()
    assert data.complete_decomposition.all()


def test_decompositions_reproduce_each_composition(table):
    """x_i = sum_k a_k x_k: the identity the paper's latent analysis rests on."""
    data = build_dataset(table)
    x = data.x.astype(np.float64)
    rows = np.flatnonzero(data.y > 0)
    combined = np.einsum("nk,nkd->nd", data.component_amount[rows], x[np.maximum(data.component_row[rows], 0)])
    assert np.abs(combined - x[rows]).max() < 1e-6


def test_too_many_components_for_the_classes(table):
    with pytest.raises(ValueError, match="raise n_classes"):
        build_dataset(table, n_classes=2)


def test_split_is_grouped_seeded_and_about_one_fifth(table):
    formulas = table["formula"].to_numpy()
    train, test = split_by_formula(formulas, seed=3)
    assert len(train) + len(test) == len(formulas)
    assert not set(formulas[train]) & set(formulas[test])
    assert abs(len(test) / len(formulas) - 0.2) < 0.01
    again = split_by_formula(formulas, seed=3)
    assert np.array_equal(again[1], test)
    assert not np.array_equal(split_by_formula(formulas, seed=4)[1], test)


@pytest.mark.parametrize(("fraction", "match"), [(0, "test_fraction"), (1, "test_fraction"), (1.5, "test_fraction")])
def test_split_rejects_bad_fractions(fraction, match):
    with pytest.raises(ValueError, match=match):
        split_by_formula(np.array(["A", "B", "C"]), test_fraction=fraction)
    with pytest.raises(ValueError, match="at least two formulas"):
        split_by_formula(np.array(["A", "A"]))


def test_subset_remaps_components(table):
    data = build_dataset(table)
    keep = np.flatnonzero(data.y == 0)[:20]
    unstable = np.flatnonzero(data.y == 1)
    child = unstable[np.isin(data.component_row[unstable, 0], keep)][:1]
    sub = data.subset(np.r_[keep, child])
    assert sub.complete_decomposition[-1]
    assert sub.component_row[-1, 0] == list(keep).index(data.component_row[child[0], 0])
    orphan = data.subset(child)
    assert not orphan.complete_decomposition[0] and orphan.component_row[0, 0] == -1


def test_split_data_round_trip(tmp_path):
    config = DataConfig(elements="Ga,Mo,S", seed=1)
    _, split = prepare_data(config, cache=False)
    path = tmp_path / "data.npz"
    split.save(path)
    loaded = SplitData.load(path)
    assert loaded.config == config
    assert np.array_equal(loaded.dataset.x, split.dataset.x)
    assert np.array_equal(loaded.test_rows, split.test_rows)
    assert len(loaded.train) == len(split.train_rows)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="damaged"):
        SplitData.load(path)
    with pytest.raises(ValueError, match="run the data notebook"):
        SplitData.load(tmp_path / "nothing.npz")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"source": "web"}, "source must be one of"),
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"elements": "Ga,Qq"}, "not among the 89"),
        ({"n_classes": 1}, "n_classes"),
    ],
)
def test_data_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataConfig(**kwargs)
