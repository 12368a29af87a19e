"""Every public entry point refuses bad input with a ValueError that names the value and what is allowed.

The policies, in one place:

* integers: Python ints and numpy integers; floats (even whole ones such as ``10.0``), bools and strings are
  refused (:func:`matvae.params.check_int`);
* seeds: 0 .. 2**63 - 1; sizes: bounded before anything is allocated (``MAX_N_SAMPLES`` etc.);
* the decoding threshold: [1e-6, 1); vectors to decode: entries in [0, 1];
* x for the model: (n, 89), n >= 1, finite, >= 0, rows summing to 1 within 1e-4; y: (n,) ints in [0, n_classes);
* formulas: amounts below 0.001 and dotted hydrates are refused, never dropped or misread.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
import torch

import matvae
from matvae.composition import (
    MAX_FORMULA_ATOMS,
    MIN_THRESHOLD,
    decode,
    decode_counts,
    encode,
    normalize,
)
from matvae.data.dataset import DataConfig, split_by_formula
from matvae.model import VAE, ModelConfig
from matvae.sampling import MAX_N_SAMPLES, SampleConfig, encode_means, reconstruct, sample
from matvae.training import TrainConfig, train

SMALL = ModelConfig(hidden_dim=16, latent_dim=4)
FAST = TrainConfig(epochs=1, batch_size=64, device="cpu")


def as_dict(vector):
    return {matvae.ELEMENTS[i]: int(vector[i]) for i in np.flatnonzero(vector)}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return VAE(SMALL).eval()


@pytest.fixture(scope="module")
def x():
    return normalize(np.stack([encode("NaCl"), encode("Fe2O3"), encode("LiFePO4")]))  # (3, 89)


def with_entry(x, value, row=0, col=0):
    bad = x.copy()
    bad[row, col] = value
    return bad


# --- formulas ---------------------------------------------------------------------------------------------------

BAD_FORMULAS = [
    ("Fe1e-30O", r"'Fe1e-30O' has the amount 1e-30 at 'Fe1e-30', too small to represent.*0\.001"),
    ("Li0.0000000001Fe", r"amount 0\.0000000001 at 'Li0\.0000000001', too small"),
    ("Li0.0000001Fe", r"amount 0\.0000001 at 'Li0\.0000001', too small"),
    ("FeOFe1e-30", r"amount 1e-30 at 'Fe1e-30'"),
    ("Fe(O0.01)0.01", r"amount 0\.0001 at 'O', too small"),  # each number is fine, the product is not
    ("((O0.001)0.001)0.001Fe", r"amount below 1e-8 at 'O'"),  # pymatgen drops the O altogether
    ("CuSO4.5H2O", r"'CuSO4\.5H2O' uses dotted hydrate notation \('\.5H2O'\).*'CuSO4\(H2O\)5'"),
    ("CaCl2.2H2O", r"'CaCl2\.2H2O' uses dotted hydrate notation \('\.2H2O'\)"),
    ("Na2CO3.10H2O", r"\('\.10H2O'\)"),
    ("Al2(SO4)3.18H2O", r"\('\.18H2O'\)"),
    ("CuCl2.2NH3", r"\('\.2NH3'\)"),
    ("Fe2O3.H2O", r"'Fe2O3\.H2O' uses dotted hydrate notation \('\.'\)"),
    ("CuSO4·5H2O", r"dotted hydrate notation \('·'\)"),
    ("CuSO4*5H2O", r"dotted hydrate notation \('\*'\)"),
]


@pytest.mark.parametrize(("formula", "match"), BAD_FORMULAS, ids=[f for f, _ in BAD_FORMULAS])
def test_formulas_that_would_be_misread_are_refused(formula, match):
    with pytest.raises(ValueError, match=match):
        encode(formula)


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("Li0.5FePO4", {"Li": 1, "Fe": 2, "P": 2, "O": 8}),
        ("Fe2.5O3", {"Fe": 5, "O": 6}),
        ("Fe.5O", {"Fe": 1, "O": 2}),
        ("Fe0.001O", {"Fe": 1, "O": 1000}),  # the smallest amount that is allowed
        ("CuSO4(H2O)5", {"Cu": 1, "S": 1, "O": 9, "H": 10}),
        ("Fe1e2O", {"Fe": 100, "O": 1}),
    ],
)
def test_ordinary_decimals_and_grouped_water_still_parse(formula, expected):
    assert as_dict(encode(formula)) == expected


# --- settings: integers, seeds, sizes, thresholds ----------------------------------------------------------------

BAD_SETTINGS = {
    # whole-number floats, bools and strings where an integer is needed
    "n_samples float": (
        lambda m: SampleConfig(n_samples=10.0),
        r"n_samples must be an integer >= 1 and <= 10000000, got 10\.0 \(float\)",
    ),
    "sample n float": (lambda m: sample(m, 10.0), r"n_samples must be an integer .*got 10\.0 \(float\)"),
    "sample n 1e4": (lambda m: sample(m, 1e4), r"got 10000\.0 \(float\)"),
    "sample n str": (lambda m: sample(m, "10"), r"got '10' \(str\)"),
    "sample seed float": (lambda m: sample(m, 10, seed=1.0), r"seed must be an integer >= 0 .*got 1\.0 \(float\)"),
    "hidden_dim float": (
        lambda m: ModelConfig(hidden_dim=100.0),
        r"hidden_dim must be an integer .*got 100\.0 \(float\)",
    ),
    "latent_dim bool": (lambda m: ModelConfig(latent_dim=True), r"latent_dim must be an integer .*got True \(bool\)"),
    "n_classes str": (lambda m: ModelConfig(n_classes="10"), r"n_classes must be an integer .*got '10' \(str\)"),
    "epochs float": (
        lambda m: TrainConfig(epochs=5.0),
        r"epochs must be an integer >= 1 and <= 1000000, got 5\.0 \(float\)",
    ),
    "batch_size float": (
        lambda m: TrainConfig(batch_size=64.0),
        r"batch_size must be an integer .*got 64\.0 \(float\)",
    ),
    "train seed float": (lambda m: TrainConfig(seed=0.0), r"seed must be an integer .*got 0\.0 \(float\)"),
    "data seed float": (lambda m: DataConfig(seed=1.0), r"seed must be an integer .*got 1\.0 \(float\)"),
    "data n_classes float": (
        lambda m: DataConfig(n_classes=10.0),
        r"n_classes must be an integer .*got 10\.0 \(float\)",
    ),
    "decode max_atoms float": (
        lambda m: decode(normalize(encode("NaCl")), rule="nearest", max_atoms=50.0),
        r"max_atoms must be an integer .*got 50\.0 \(float\)",
    ),
    "decode_counts max_atoms numpy float": (
        lambda m: decode_counts(normalize(encode("NaCl")), max_atoms=np.float64(50)),
        r"max_atoms must be an integer .*got np\.float64\(50\.0\)",
    ),
    "reconstruct max_atoms float": (
        lambda m: reconstruct(m, normalize(encode("NaCl"))[None], max_atoms=50.0),
        r"max_atoms must be an integer .*got 50\.0",
    ),
    # seeds out of range
    "sample seed negative": (lambda m: sample(m, 10, seed=-1), "seed must be >= 0, got -1"),
    "sample seed 2**63": (
        lambda m: sample(m, 10, seed=2**63),
        "seed must be <= 9223372036854775807, got 9223372036854775808",
    ),
    "train seed 2**64": (
        lambda m: TrainConfig(seed=2**64),
        "seed must be <= 9223372036854775807, got 18446744073709551616",
    ),
    "data seed negative": (lambda m: DataConfig(seed=-3), "seed must be >= 0, got -3"),
    "split seed negative": (
        lambda m: split_by_formula(np.array(["A", "B", "C"]), seed=-3),
        "seed must be >= 0, got -3",
    ),
    # absurd sizes, refused before anything is allocated
    "sample 10**12": (lambda m: sample(m, 10**12), "n_samples must be <= 10000000, got 1000000000000"),
    "hidden_dim 10**6": (lambda m: ModelConfig(hidden_dim=10**6), "hidden_dim must be <= 10000, got 1000000"),
    "latent_dim 10**5": (lambda m: ModelConfig(latent_dim=10**5), "latent_dim must be <= 1000, got 100000"),
    "n_elements 10**4": (lambda m: ModelConfig(n_elements=10**4), "n_elements must be <= 1000, got 10000"),
    "n_classes 10**4": (lambda m: ModelConfig(n_classes=10**4), "n_classes must be <= 1000, got 10000"),
    "kl_weight 1e9": (
        lambda m: ModelConfig(kl_weight=1e9),
        r"kl_weight must lie in \[0\.0, 1000000\.0\], got 1000000000\.0",
    ),
    "epochs 10**7": (lambda m: TrainConfig(epochs=10**7), "epochs must be <= 1000000, got 10000000"),
    "batch_size 10**9": (lambda m: TrainConfig(batch_size=10**9), "batch_size must be <= 1000000, got 1000000000"),
    "oversample_factor 10**6": (
        lambda m: TrainConfig(oversample_factor=10**6),
        "oversample_factor must be <= 1000, got 1000000",
    ),
    "max_atoms 10**6": (
        lambda m: SampleConfig(max_atoms=10**6),
        f"max_atoms must be <= {MAX_FORMULA_ATOMS}, got 1000000",
    ),
    "decode max_atoms 10**4": (
        lambda m: decode(normalize(encode("NaCl")), max_atoms=10**4),
        "max_atoms must be <= 1000, got 10000",
    ),
    "data n_classes 10**6": (lambda m: DataConfig(n_classes=10**6), "n_classes must be <= 1000, got 1000000"),
    # thresholds whose 1/T arithmetic would make absurd formulas or overflow int64
    "decode threshold 1e-7": (
        lambda m: decode(normalize(encode("NaCl")), threshold=1e-7),
        r"threshold must be >= 1e-06, got 1e-07",
    ),
    "decode_counts threshold 1e-300": (
        lambda m: decode_counts(normalize(encode("NaCl")), threshold=1e-300),
        r"threshold must be >= 1e-06, got 1e-300",
    ),
    "sample threshold 1e-9": (lambda m: sample(m, 10, threshold=1e-9), r"threshold must be >= 1e-06, got 1e-09"),
    "sample config threshold": (lambda m: SampleConfig(threshold=5e-7), r"threshold must be >= 1e-06, got 5e-07"),
    "reconstruct threshold": (lambda m: reconstruct(m, normalize(encode("NaCl"))[None], threshold=1e-8), r"got 1e-08"),
    "threshold nan": (
        lambda m: decode(normalize(encode("NaCl")), threshold=float("nan")),
        "threshold must be finite, got nan",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_bad_settings_are_refused_naming_the_value(model, case):
    call, match = BAD_SETTINGS[case]
    with pytest.raises(ValueError, match=match):
        call(model)


def test_an_absurd_sample_size_fails_at_once(model):
    started = time.perf_counter()
    with pytest.raises(ValueError, match=f"n_samples must be <= {MAX_N_SAMPLES}"):
        sample(model, 10**12)
    assert time.perf_counter() - started < 1.0


def test_numpy_integers_are_accepted_and_stored_as_ints(model):
    config = SampleConfig(n_samples=np.int64(5), max_atoms=np.int32(20), seed=np.uint8(3))
    assert (config.n_samples, config.max_atoms, config.seed) == (5, 20, 3)
    assert all(type(v) is int for v in (config.n_samples, config.max_atoms, config.seed))
    assert type(ModelConfig(hidden_dim=np.int64(16)).hidden_dim) is int
    assert type(TrainConfig(epochs=np.int16(3)).epochs) is int
    assert len(sample(model, np.int64(4), seed=np.int64(2**63 - 1))) == 4


def test_the_smallest_threshold_decodes_without_overflow():
    fractions = np.random.default_rng(0).dirichlet(np.full(89, 0.1), size=50)
    counts = decode_counts(fractions, threshold=MIN_THRESHOLD)
    assert counts.min() >= 0 and counts.max() <= 1 / MIN_THRESHOLD + 1
    assert decode(normalize(encode("NaCl")), threshold=MIN_THRESHOLD) == "NaCl"


# --- arrays: x, y and vectors to decode --------------------------------------------------------------------------

BAD_X = {
    "1-D vector": (lambda x: x[0], r"x must have shape \(n, 89\).*got shape \(89,\)"),
    "88 columns": (lambda x: x[:, :88], r"x must have shape \(n, 89\).*got shape \(3, 88\)"),
    "3-D": (lambda x: x[None], r"x must have shape \(n, 89\).*got shape \(1, 3, 89\)"),
    "empty": (lambda x: x[:0], r"x is empty \(shape \(0, 89\)\)"),
    "nan": (lambda x: with_entry(x, np.nan), r"x has a non-finite entry nan for Ac \(row 0\)"),
    "inf": (lambda x: with_entry(x, np.inf, row=2, col=5), r"x has a non-finite entry inf for .* \(row 2\)"),
    "negative": (lambda x: with_entry(x, -0.25, row=1), r"x has the negative entry -0\.25 for Ac \(row 1\)"),
    "unnormalised": (lambda x: x * 2, r"x row 0 sums to 2; rows must be normalised to sum to 1 \(within 0\.0001\)"),
    "counts": (lambda x: np.stack([encode("NaCl")]), r"x row 0 sums to 2;.*matvae\.normalize"),
    "slightly off": (lambda x: with_entry(x, x[1, 25] + 1e-3, row=1, col=25), r"x row 1 sums to 1\.001"),
    "all zeros": (lambda x: np.zeros((2, 89)), r"x row 0 is all zeros"),
    "text": (lambda x: np.array([["a"] * 89]), r"x must be a numeric \(n, 89\) array"),
}


@pytest.mark.parametrize("case", list(BAD_X))
@pytest.mark.parametrize("entry", ["encode_means", "reconstruct"])
def test_bad_x_is_refused(model, x, entry, case):
    make, match = BAD_X[case]
    call = {"encode_means": encode_means, "reconstruct": reconstruct}[entry]
    with pytest.raises(ValueError, match=match):
        call(model, make(x))


def test_rows_within_the_tolerance_pass(model, x):
    nearly = x * (1 + 5e-5)
    assert encode_means(model, nearly).shape == (3, 4)
    assert encode_means(model, x.astype(np.float32)).shape == (3, 4)


BAD_Y = {
    "too short": ([0, 1], r"y must hold one class per row of x, shape \(3,\), got shape \(2,\)"),
    "2-D": ([[0, 1, 2]], r"shape \(3,\), got shape \(1, 3\)"),
    "too large": ([0, 1, 10], r"y must lie in \[0, 10\) \(the model's classes\), got 10 at row 2"),
    "negative": ([0, -1, 1], r"y must lie in \[0, 10\).*got -1 at row 1"),
    "floats": (
        [0.0, 1.0, 1.0],
        r"y must hold integer class labels, got dtype float64 \(first entry np\.float64\(0\.0\)\)",
    ),
    "bools": ([True, False, True], r"y must hold integer class labels, got dtype bool"),
}


@pytest.mark.parametrize("case", list(BAD_Y))
def test_bad_y_is_refused(model, x, case):
    y, match = BAD_Y[case]
    with pytest.raises(ValueError, match=match):
        reconstruct(model, x, y=np.array(y))


BAD_VECTORS = {
    "empty": (np.zeros((0, 89)), r"vectors is empty \(shape \(0, 89\)\)"),
    "88 wide": (np.full((2, 88), 0.01), r"vectors must have shape \(89,\) or \(n, 89\).*got \(2, 88\)"),
    "3-D": (np.full((1, 2, 89), 0.01), r"got \(1, 2, 89\)"),
    "above 1": (np.full(89, 2.0), r"vectors has the entry 2 for Ac \(row 0\); .*entries in \[0, 1\]"),
    "huge": (np.r_[1e300, np.zeros(88)], r"vectors has the entry 1e\+300 for Ac"),
    "nan": (np.r_[np.nan, np.ones(88) / 88], r"vectors has a non-finite entry nan for Ac"),
    "text": (np.array(["x"] * 89), r"vectors must be a numeric \(n, 89\) array, got ndarray"),
}


@pytest.mark.parametrize("case", list(BAD_VECTORS))
def test_bad_vectors_to_decode_are_refused(case):
    vectors, match = BAD_VECTORS[case]
    with pytest.raises(ValueError, match=match):
        decode_counts(vectors)


def test_decode_refuses_text_and_matrices():
    with pytest.raises(ValueError, match=r"decode takes one numeric vector of shape \(89,\), got str"):
        decode("NaCl")
    with pytest.raises(ValueError, match=r"decode takes one vector of shape \(89,\), got shape \(2, 89\)"):
        decode(np.full((2, 89), 0.01))


# --- train -------------------------------------------------------------------------------------------------------


def _set_x(data, value):
    x = data.x.copy()
    x[0, 0] = value
    return replace(data, x=x)


BAD_TRAINING = {
    "train_data dict": (
        lambda tr, te: ({}, te, SMALL, FAST),
        r"train_data must be a matvae MaterialsDataset .*got dict",
    ),
    "test_data array": (
        lambda tr, te: (tr, te.x, SMALL, FAST),
        r"test_data must be a matvae MaterialsDataset .*got ndarray",
    ),
    "model_config dict": (
        lambda tr, te: (tr, te, {"hidden_dim": 16}, FAST),
        r"model config of one of the families .*, got dict \{'hidden_dim': 16\}",
    ),
    "config dict": (
        lambda tr, te: (tr, te, SMALL, {"epochs": 1}),
        r"config must be a matvae TrainConfig, got dict \{'epochs': 1\}",
    ),
    "configs swapped": (
        lambda tr, te: (tr, te, FAST, SMALL),
        r"model config of one of the families .*, got TrainConfig",
    ),
    "88 columns": (
        lambda tr, te: (replace(tr, x=tr.x[:, :88]), te, SMALL, FAST),
        r"train_data\.x must have shape \(n, 89\) for this model, got shape \(\d+, 88\)",
    ),
    "empty test": (
        lambda tr, te: (tr, te.subset(np.array([], dtype=np.int64)), SMALL, FAST),
        r"test_data is empty \(0 materials\)",
    ),
    "y too large": (
        lambda tr, te: (tr, replace(te, y=np.where(np.arange(len(te)) == 3, 12, te.y)), SMALL, FAST),
        r"test_data\.y must lie in \[0, 10\) \(n_classes=10\), got 12 at row 3",
    ),
    "y negative": (
        lambda tr, te: (replace(tr, y=tr.y - 5), te, SMALL, FAST),
        r"train_data\.y must lie in \[0, 10\).*got -\d at row",
    ),
    "y wrong length": (
        lambda tr, te: (replace(tr, y=tr.y[:-1]), te, SMALL, FAST),
        r"train_data\.y must hold one class per row of x",
    ),
    "y floats": (
        lambda tr, te: (replace(tr, y=tr.y.astype(float)), te, SMALL, FAST),
        r"train_data\.y must hold integer classes, got dtype float64",
    ),
    "x nan": (
        lambda tr, te: (_set_x(tr, np.nan), te, SMALL, FAST),
        r"train_data\.x must hold finite fractions >= 0, got nan at row 0, column 0",
    ),
    "x negative": (
        lambda tr, te: (tr, _set_x(te, -1.0), SMALL, FAST),
        r"test_data\.x must hold finite fractions >= 0, got -1\.0 at row 0",
    ),
    "x unnormalised": (
        lambda tr, te: (replace(tr, x=tr.x * 3), te, SMALL, FAST),
        r"train_data\.x row 0 sums to 3; rows must sum to 1 within 0\.0001",
    ),
}


@pytest.mark.parametrize("case", list(BAD_TRAINING))
def test_train_checks_its_inputs_before_anything_runs(small_split, tmp_path, case):
    make, match = BAD_TRAINING[case]
    train_data, test_data, model_config, config = make(small_split.train, small_split.test)
    with pytest.raises(ValueError, match=match):
        train(train_data, test_data, model_config, config, checkpoint_path=tmp_path / "never.pt")
    assert not list(tmp_path.iterdir())  # refused before a checkpoint or lock file was made
