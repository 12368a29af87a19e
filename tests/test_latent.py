"""matvae.latent: the decomposition similarity, its nulls, the PCA encoder, the summary and the decoding check."""

import numpy as np
import pytest

from matvae import latent
from matvae.elements import N_ELEMENTS
from matvae.model import VAE, ModelConfig
from matvae.sampling import encode_means


def synthetic(n_stable=30, n_decomposed=40, n_elements=6, width=4, seed=0):
    """Stable compositions, and decomposed ones built as exact weighted means of 2..width of them (rows after
    the stable ones). Returns x (n, n_elements), component_row and component_amount (n, width), y (n,)."""
    rng = np.random.default_rng(seed)
    n = n_stable + n_decomposed
    x = np.zeros((n, n_elements))
    x[:n_stable] = rng.dirichlet(np.ones(n_elements), size=n_stable)
    component_row = np.full((n, width), -1, dtype=np.int64)
    component_amount = np.zeros((n, width))
    y = np.zeros(n, dtype=np.int64)
    for i in range(n_stable, n):
        c = rng.integers(2, width + 1)
        component_row[i, :c] = rng.choice(n_stable, size=c, replace=False)
        component_amount[i, :c] = rng.dirichlet(np.ones(c))
        x[i] = component_amount[i, :c] @ x[component_row[i, :c]]
        y[i] = c
    return x, component_row, component_amount, y


def test_an_affine_encoder_gives_similarity_one_for_every_material():
    x, rows_, amounts, y = synthetic()
    rng = np.random.default_rng(1)
    codes = x @ rng.normal(size=(x.shape[1], 3)) + rng.normal(size=3) * 5
    similarity, rows = latent.decomposition_similarity(codes, rows_, amounts)
    np.testing.assert_array_equal(rows, np.flatnonzero(y >= 2))
    np.testing.assert_allclose(similarity, 1.0, atol=1e-6)
    centred, _ = latent.decomposition_similarity(codes, rows_, amounts, center=codes.mean(axis=0))
    np.testing.assert_allclose(centred, 1.0, atol=1e-6)


def test_similarity_of_hand_built_codes():
    codes = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 0], [1.0, 0, 0]])
    component_row = np.array([[-1, -1], [-1, -1], [-1, -1], [0, 1], [0, 1]])
    amounts = np.array([[0, 0], [0, 0], [0, 0], [0.5, 0.5], [0.25, 0.75]])
    component_row = np.vstack([component_row, [[1, 2]]])
    amounts = np.vstack([amounts, [[0.5, 0.5]]])
    codes = np.vstack([codes, [[1.0, 0, 0]]])  # row 5: e1 against (e2 + e3) / 2, orthogonal
    similarity, rows = latent.decomposition_similarity(codes, component_row, amounts)
    np.testing.assert_array_equal(rows, [3, 4, 5])
    np.testing.assert_allclose(similarity, [1.0, 0.25 / np.sqrt(0.25**2 + 0.75**2), 0.0], atol=1e-12)


def test_weighted_combination_of_compositions_gives_the_material():
    x, component_row, amounts, _ = synthetic()
    rows = latent.decomposed_rows(component_row)
    np.testing.assert_allclose(latent.weighted_combination(x, component_row, amounts, rows), x[rows], atol=1e-12)


def test_decomposed_rows_leave_out_incomplete_and_single_component_materials():
    component_row = np.array([[-1, -1], [0, -1], [0, 1], [0, 1], [1, -1]])
    complete = np.array([True, True, True, False, False])
    np.testing.assert_array_equal(latent.decomposed_rows(component_row), [2, 3])
    np.testing.assert_array_equal(latent.decomposed_rows(component_row, complete), [2])
    np.testing.assert_array_equal(latent.decomposed_rows(component_row, min_components=1), [1, 2, 3, 4])


def test_random_pairs_are_seeded_and_never_pair_a_material_with_itself():
    codes = np.eye(5)  # cos = 1 with itself, 0 with any other row
    rows = np.arange(5)
    for seed in range(20):
        np.testing.assert_array_equal(latent.random_pair_similarity(codes, rows, seed=seed), 0.0)
    rng = np.random.default_rng(2)
    codes = rng.normal(size=(200, 4))
    rows = np.arange(0, 200, 3)
    first = latent.random_pair_similarity(codes, rows, seed=7)
    assert first.shape == rows.shape
    np.testing.assert_array_equal(first, latent.random_pair_similarity(codes, rows, seed=7))
    assert not np.array_equal(first, latent.random_pair_similarity(codes, rows, seed=8))
    # a pool of the two rows themselves: each must be paired with the other
    np.testing.assert_allclose(
        latent.random_pair_similarity(codes, np.array([3, 9]), seed=0, pool=np.array([3, 9])),
        latent.cosine_similarity(codes[[3, 9]], codes[[9, 3]]),
    )


def test_random_components_keep_the_weights_and_never_draw_the_material_itself():
    codes = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    component_row = np.array([[-1, -1], [-1, -1], [0, 1]])
    amounts = np.array([[0, 0], [0, 0], [0.2, 0.8]])
    # the pool holds row 2 itself and row 1: every component must become row 1
    similarity, rows = latent.random_component_similarity(codes, component_row, amounts, np.array([2, 1]), seed=0)
    np.testing.assert_array_equal(rows, [2])
    np.testing.assert_allclose(similarity, [0.8])  # cos((3, 4), (0, 1))
    # from rows 0 and 1: the combination is one of four weighted sums of e1 and e2
    possible = latent.cosine_similarity(np.tile([[3.0, 4.0]], (4, 1)), np.array([[1, 0], [0, 1], [0.2, 0.8], [0.8, 0.2]]))
    for seed in range(10):
        value, _ = latent.random_component_similarity(codes, component_row, amounts, np.array([0, 1]), seed=seed)
        assert np.isclose(value[0], possible).any()


def test_random_components_are_seeded_and_shaped_like_the_true_similarity():
    x, component_row, amounts, y = synthetic(seed=3)
    codes = np.random.default_rng(4).normal(size=(len(x), 3))
    stable = np.flatnonzero(y == 0)
    first, rows = latent.random_component_similarity(codes, component_row, amounts, stable, seed=1)
    again, _ = latent.random_component_similarity(codes, component_row, amounts, stable, seed=1)
    other, _ = latent.random_component_similarity(codes, component_row, amounts, stable, seed=2)
    true, true_rows = latent.decomposition_similarity(codes, component_row, amounts)
    np.testing.assert_array_equal(rows, true_rows)
    assert first.shape == true.shape
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_centring_removes_an_offset_shared_by_all_codes():
    rng = np.random.default_rng(5)
    raw = rng.normal(size=(300, 4))
    offset = np.array([50.0, -40.0, 30.0, 20.0])
    rows = np.arange(300)
    inflated = latent.random_pair_similarity(raw + offset, rows, seed=0)
    assert inflated.min() > 0.99
    centred = latent.random_pair_similarity(raw + offset, rows, seed=0, center=offset)
    np.testing.assert_allclose(centred, latent.random_pair_similarity(raw, rows, seed=0), atol=1e-9)
    assert np.median(centred) < 0.5


def test_similarity_summary_by_hand():
    values = np.array([0.5, 0.95, 1.0, 0.2, 0.92, np.nan])
    n_components = np.array([2, 2, 2, 3, 3, 3])
    summary = latent.similarity_summary({"a": values, "b": -values}, n_components, above=0.9)
    assert list(summary.columns) == ["materials", "median", "5th percentile", "share > 0.9"]
    two, three, everything = summary.loc[("a", "2")], summary.loc[("a", "3")], summary.loc[("a", "all")]
    assert two["materials"] == 3 and three["materials"] == 2 and everything["materials"] == 5  # NaN left out
    assert two["median"] == pytest.approx(0.95) and two["5th percentile"] == pytest.approx(0.5 + 0.1 * 0.45)
    assert two["share > 0.9"] == pytest.approx(2 / 3)
    assert three["median"] == pytest.approx(0.56) and three["5th percentile"] == pytest.approx(0.2 + 0.05 * 0.72)
    assert everything["median"] == pytest.approx(0.92) and everything["5th percentile"] == pytest.approx(0.2 + 0.2 * 0.3)
    assert everything["share > 0.9"] == pytest.approx(3 / 5)
    assert summary.loc[("b", "all"), "share > 0.9"] == 0


def test_pca_reconstructs_rank_k_data_and_matches_numpy():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(50, 3)) @ rng.normal(size=(3, 8)) + rng.normal(size=8)
    pca = latent.PCAEncoder.fit(x, 3)
    np.testing.assert_allclose(pca.decode(pca.encode(x)), x, atol=1e-10)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(3), atol=1e-12)
    eigenvalues = np.linalg.eigvalsh(np.cov(x.T))[::-1][:3]
    np.testing.assert_allclose(pca.explained_variance, eigenvalues, rtol=1e-9)
    eigenvectors = np.linalg.eigh(np.cov(x.T))[1][:, ::-1][:, :3]  # same subspace, axis by axis up to sign
    np.testing.assert_allclose(np.abs(np.sum(eigenvectors.T * pca.components, axis=1)), 1.0, atol=1e-8)
    assert (pca.components[np.arange(3), np.abs(pca.components).argmax(axis=1)] > 0).all()


def test_pca_similarity_is_one_on_real_decompositions(small_split):
    data = small_split.dataset
    rows = latent.decomposed_rows(data.component_row, data.complete_decomposition)
    assert len(rows) > 10
    np.testing.assert_allclose(
        latent.weighted_combination(data.x, data.component_row, data.component_amount, rows), data.x[rows], atol=1e-6
    )
    pca = latent.PCAEncoder.fit(data.x[small_split.train_rows], 4)
    similarity, _ = latent.decomposition_similarity(
        pca.encode(data.x), data.component_row, data.component_amount, rows=rows
    )
    np.testing.assert_allclose(similarity, 1.0, atol=1e-6)


def test_decode_combination_on_an_untrained_vae():
    x, component_row, amounts, y = synthetic(n_stable=8, n_decomposed=6, n_elements=N_ELEMENTS, width=3)
    model = VAE(ModelConfig(latent_dim=3, hidden_dim=8)).eval()
    codes = encode_means(model, x.astype(np.float32))
    rows = latent.decomposed_rows(component_row)
    counts = np.ones((len(x), N_ELEMENTS), dtype=np.int64)
    formulas = np.array(["X"] * len(x))
    decoding = latent.decode_combination(model, codes, component_row, amounts, rows, y, threshold=0.04)
    np.testing.assert_array_equal(decoding.rows, rows)
    for samples in (decoding.combination, decoding.reconstruction):
        assert samples.counts.shape == (len(rows), N_ELEMENTS) and len(samples.formulas) == len(rows)
        np.testing.assert_array_equal(samples.classes, y[rows])
    np.testing.assert_allclose(decoding.reconstruction.z, codes[rows])
    np.testing.assert_allclose(
        decoding.combination.z, latent.weighted_combination(codes, component_row, amounts, rows), atol=1e-6
    )
    rates = latent.decoding_rates(decoding, formulas, counts)
    assert rates.shape == (2, 2) and ((rates >= 0) & (rates <= 1)).all().all()
    with pytest.raises(ValueError, match="latent space 3"):
        latent.decode_combination(model, codes[:, :2], component_row, amounts, rows, y, threshold=0.04)
    with pytest.raises(ValueError, match="one integer class per material"):
        latent.decode_combination(model, codes, component_row, amounts, rows, y[:-1], threshold=0.04)
    with pytest.raises(ValueError, match="model's classes"):
        latent.decode_combination(model, codes, component_row, amounts, rows, y + 10, threshold=0.04)
    with pytest.raises(ValueError, match="threshold"):
        latent.decode_combination(model, codes, component_row, amounts, rows, y, threshold=1.5)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda c, r, a: (c[:-1], r, a), "same dataset"),
        (lambda c, r, a: (c, r, a[:, :-1]), "component_amount.shape"),
        (lambda c, r, a: (c, np.where(r >= 0, len(c), r), a), "rows 0"),
        (lambda c, r, a: (c, r, -a), "non-negative"),
        (lambda c, r, a: (np.where(c > 0, np.nan, c), r, a), "non-finite"),
        (lambda c, r, a: (c, np.where(r >= 0, r, -1)[:, :1], a[:, :1]), "no material with 2 or more"),
        (lambda c, r, a: (c[:, 0], r, a), "2-D"),
    ],
)
def test_bad_inputs_raise(change, match):
    x, component_row, amounts, _ = synthetic()
    codes, component_row, amounts = change(x @ np.ones((x.shape[1], 2)), component_row, amounts)
    with pytest.raises(ValueError, match=match):
        latent.decomposition_similarity(codes, component_row, amounts)


def test_bad_rows_centres_pools_and_tables_raise():
    x, component_row, amounts, _ = synthetic()
    codes = x[:, :3]
    with pytest.raises(ValueError, match="fewer than 2 components"):
        latent.decomposition_similarity(codes, component_row, amounts, rows=np.array([0]))
    with pytest.raises(ValueError, match="center must be"):
        latent.decomposition_similarity(codes, component_row, amounts, center=np.zeros(4))
    with pytest.raises(ValueError, match="at least 2 distinct"):
        latent.random_component_similarity(codes, component_row, amounts, np.array([0, 0]), seed=0)
    with pytest.raises(ValueError, match="seed"):
        latent.random_pair_similarity(codes, np.arange(3), seed=-1)
    with pytest.raises(ValueError, match="rows is empty"):
        latent.random_pair_similarity(codes, np.array([], dtype=np.int64), seed=0)
    with pytest.raises(ValueError, match="shape"):
        latent.similarity_summary({"VAE": np.ones(3)}, np.array([2, 3]))
    with pytest.raises(ValueError, match="similarities is empty"):
        latent.similarity_summary({}, np.array([2, 3]))
    with pytest.raises(ValueError, match="latent_dim"):
        latent.PCAEncoder.fit(x, x.shape[1] + 1)


def test_the_decomposition_identity_holds_on_real_data_and_fails_when_broken(small_split):
    data = small_split.dataset
    rows = latent.decomposed_rows(data.component_row, data.complete_decomposition)
    assert len(rows) > 20
    assert latent.decomposition_identity_holds(data.x, data.component_row, data.component_amount, rows) == (True, True)
    amount = data.component_amount.copy()
    amount[rows[0], 0] += 1e-9  # weights no longer sum to 1, and x moves by about 1e-9 only
    assert latent.decomposition_identity_holds(data.x, data.component_row, amount, rows) == (False, True)
    amount[rows[0], 0] += 1e-3
    assert latent.decomposition_identity_holds(data.x, data.component_row, amount, rows) == (False, False)
