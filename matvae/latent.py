"""The latent decomposition similarity of section 4.2 (Figure 8) and the null models that test it.

A material x_i that decomposes into components x_k with atomic-fraction weights a_k (sum_k a_k = 1) is
exactly their weighted mean, x_i = sum_k a_k x_k. The paper's *latent decomposition similarity* is

    s_i = cos(mu(x_i), sum_k a_k mu(x_k)),   cos(u, v) = <u, v> / (|u| |v|),

with mu the encoder's mean. Every function below takes the codes of the whole dataset, ``codes`` (n, d),
and the dataset's ``component_row`` (n, k) int (rows of the same dataset, -1 = padding) and
``component_amount`` (n, k) weights, and works on all materials at once.

Null models, each one similarity per decomposed material i:

random components
    cos(mu(x_i), sum_k a_k mu(x_r_k)): every component replaced by a stable material r_k drawn uniformly (with
    replacement, never i itself) from ``stable_rows``; the weights a_k are kept.
random pairs
    cos(mu(x_i), mu(x_j)) for one material j != i drawn uniformly from the dataset.
centred
    Any of the above with a fixed vector c (the mean code of the dataset) subtracted from every code first:
    cos(mu(x_i) - c, sum_k a_k (mu(x_k) - c)). An offset shared by all codes pushes every cosine towards 1;
    centring removes it. Since sum_k a_k = 1 this equals cos(mu(x_i) - c, sum_k a_k mu(x_k) - c).
linear encoder
    :class:`PCAEncoder`. For any affine encoder e(x) = W x + b, e(x_i) = sum_k a_k e(x_k) when the weights
    sum to 1, so its similarity (centred or not) is exactly 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matvae import metrics
from matvae.composition import DEFAULT_MAX_ATOMS, decode_counts, formulas_from_counts
from matvae.models import AnyModel, family_of
from matvae.params import check_float, check_int
from matvae.sampling import SampleConfig, Samples, decode_sequence_codes, decoder_means


def _check_codes(codes: np.ndarray, name: str = "codes") -> np.ndarray:
    array = np.asarray(codes, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (one row per material), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} has non-finite entries (row {int(np.argwhere(~np.isfinite(array))[0, 0])})")
    return array


def _check_decompositions(n: int, component_row: np.ndarray, component_amount: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, amounts = np.asarray(component_row), np.asarray(component_amount, dtype=np.float64)
    if rows.ndim != 2 or not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"component_row must be a 2-D integer array (n_materials, k), got {rows.dtype} {rows.shape}")
    if rows.shape[0] != n:
        raise ValueError(f"component_row has {rows.shape[0]} rows but codes has {n}: both must cover the same dataset")
    if amounts.shape != rows.shape:
        raise ValueError(f"{component_amount.shape=} != {component_row.shape=}")
    if rows.size and (rows.min() < -1 or rows.max() >= n):
        raise ValueError(f"component_row entries must be -1 (padding) or rows 0..{n - 1}, got {rows.min()}..{rows.max()}")
    if not np.isfinite(amounts).all() or (amounts < 0).any():
        raise ValueError("component_amount must be finite and non-negative")
    return rows, np.where(rows >= 0, amounts, 0.0)


def _check_rows(rows: np.ndarray, n: int, name: str = "rows") -> np.ndarray:
    array = np.asarray(rows)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name} must be a 1-D array of integer row indices, got {array.dtype} {array.shape}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= n):
        raise ValueError(f"{name} must index rows 0..{n - 1}, got {array.min()}..{array.max()}")
    return array


def _center(codes: np.ndarray, center: np.ndarray | None) -> np.ndarray:
    if center is None:
        return codes
    c = np.asarray(center, dtype=np.float64)
    if c.shape != (codes.shape[1],) or not np.isfinite(c).all():
        raise ValueError(f"center must be a finite vector of shape ({codes.shape[1]},), got {c.shape}")
    return codes - c


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cos(a_i, b_i) for a, b (m, d). (m,) float64; NaN where a row has zero length."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"a and b must be 2-D arrays of one shape, got {a.shape} and {b.shape}")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, np.einsum("md,md->m", a, b) / norms, np.nan)


def decomposed_rows(
    component_row: np.ndarray, complete_decomposition: np.ndarray | None = None, *, min_components: int = 2
) -> np.ndarray:
    """Rows of the materials with at least ``min_components`` components listed (and, when given, a complete
    decomposition: every component is a row of the dataset). (m,) int64, ascending."""
    check_int("min_components", min_components, minimum=1)
    listed = (np.asarray(component_row) >= 0).sum(axis=1)
    keep = listed >= min_components
    if complete_decomposition is not None:
        complete = np.asarray(complete_decomposition, dtype=bool)
        if complete.shape != keep.shape:
            raise ValueError(f"{complete.shape=} != ({len(keep)},): one flag per material")
        keep &= complete
    return np.flatnonzero(keep).astype(np.int64)


def weighted_combination(
    vectors: np.ndarray, component_row: np.ndarray, component_amount: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """sum_k a_k v[component_row[i, k]] for each i in ``rows``, skipping padding. (m, d) float64.

    ``vectors`` (n, d) may be codes or the compositions x themselves (then the result is x[rows] up to the
    rounding of the stored vectors, since x_i = sum_k a_k x_k).
    """
    vectors = _check_codes(vectors, "vectors")
    component_row, component_amount = _check_decompositions(len(vectors), component_row, component_amount)
    return _combine(vectors, component_row, component_amount, _check_rows(rows, len(vectors)))


WEIGHT_SUM_DECIMALS: int = 12
"""Decomposition weights sum to 1 to this many decimal places (they come from a float64 linear solve)."""
IDENTITY_DECIMALS: int = 6
"""x = sum_k a_k x_k holds to this many decimal places per entry (the stored vectors are float32)."""
WEIGHT_SUM_TOLERANCE: float = 10.0**-WEIGHT_SUM_DECIMALS
IDENTITY_TOLERANCE: float = 10.0**-IDENTITY_DECIMALS


def decomposition_identity_holds(
    x: np.ndarray, component_row: np.ndarray, component_amount: np.ndarray, rows: np.ndarray
) -> tuple[bool, bool]:
    """(weights sum to 1 within :data:`WEIGHT_SUM_TOLERANCE`, x = sum_k a_k x_k within :data:`IDENTITY_TOLERANCE`)
    over ``rows``: the claims the decomposition chapter states, as tolerances rather than rounding noise, so the
    printed sentence does not depend on the CPU's instruction set or thread count."""
    combined = weighted_combination(x, component_row, component_amount, rows)
    rows = _check_rows(rows, len(x))
    weights = np.where(np.asarray(component_row)[rows] >= 0, np.asarray(component_amount)[rows], 0.0)
    weight_error = np.abs(weights.sum(axis=1) - 1).max(initial=0.0)
    residual = np.abs(combined - np.asarray(x, dtype=np.float64)[rows]).max(initial=0.0)
    return bool(weight_error <= WEIGHT_SUM_TOLERANCE), bool(residual <= IDENTITY_TOLERANCE)


def _combine(vectors: np.ndarray, component_row: np.ndarray, component_amount: np.ndarray, rows: np.ndarray) -> np.ndarray:
    combined = np.zeros((len(rows), vectors.shape[1]))
    for slot in range(component_row.shape[1]):  # a loop over the k component slots, each over all materials
        combined += component_amount[rows, slot, None] * vectors[np.maximum(component_row[rows, slot], 0)]
    return combined  # padding has weight 0


def _prepare(codes, component_row, component_amount, rows):
    """Checked (codes, component_row, component_amount with padding weights 0, rows with >= 2 components)."""
    codes = _check_codes(codes)
    component_row, component_amount = _check_decompositions(len(codes), component_row, component_amount)
    rows = decomposed_rows(component_row) if rows is None else _check_rows(rows, len(codes))
    if rows.size == 0:
        raise ValueError("no material with 2 or more components: the decomposition similarity needs some")
    few = (component_row[rows] >= 0).sum(axis=1) < 2
    if few.any():
        raise ValueError(f"row {rows[np.argmax(few)]} has fewer than 2 components; pass rows from decomposed_rows")
    return codes, component_row, component_amount, rows


def decomposition_similarity(
    codes: np.ndarray, component_row: np.ndarray, component_amount: np.ndarray, *,
    rows: np.ndarray | None = None, center: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The paper's similarity s_i = cos(mu_i - c, sum_k a_k (mu_k - c)) (c = 0 unless ``center`` is given).

    Args:
        codes: (n, d) latent means of every material of the dataset.
        component_row, component_amount: (n, k) the dataset's decompositions.
        rows: materials to measure (default: every one with >= 2 listed components; pass
            ``decomposed_rows(component_row, complete_decomposition)`` to leave out incomplete ones).
        center: (d,) vector subtracted from every code, or None.

    Returns: (similarity (m,) float64, rows (m,) int64).
    """
    codes, component_row, component_amount, rows = _prepare(codes, component_row, component_amount, rows)
    shifted = _center(codes, center)
    return cosine_similarity(shifted[rows], _combine(shifted, component_row, component_amount, rows)), rows


def _draw_excluding(seed: int, pool: np.ndarray, exclude: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Uniform draws from the rows ``pool`` of the given shape, redrawn wherever they equal ``exclude``."""
    check_int("seed", seed, minimum=0)
    if len(np.unique(pool)) < 2:
        raise ValueError(f"{name} must hold at least 2 distinct rows to draw from, got {len(np.unique(pool))}")
    rng = np.random.default_rng(seed)
    draws = pool[rng.integers(len(pool), size=shape)]
    clash = draws == exclude
    while clash.any():
        draws[clash] = pool[rng.integers(len(pool), size=int(clash.sum()))]
        clash = draws == exclude
    return draws


def random_component_similarity(
    codes: np.ndarray, component_row: np.ndarray, component_amount: np.ndarray, stable_rows: np.ndarray, *,
    seed: int, rows: np.ndarray | None = None, center: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Null: cos(mu_i - c, sum_k a_k (mu_{r_k} - c)) with each listed component replaced by a stable row r_k
    drawn uniformly with replacement from ``stable_rows`` (never i itself), weights kept.

    ``seed`` seeds ``numpy.random.default_rng``; other arguments as :func:`decomposition_similarity`.
    Returns: (similarity (m,), rows (m,)).
    """
    codes, component_row, component_amount, rows = _prepare(codes, component_row, component_amount, rows)
    stable_rows = _check_rows(stable_rows, len(codes), "stable_rows")
    drawn = _draw_excluding(seed, stable_rows, rows[:, None], component_row[rows].shape, "stable_rows")
    replaced = component_row.copy()
    replaced[rows] = np.where(component_row[rows] >= 0, drawn, -1)
    shifted = _center(codes, center)
    return cosine_similarity(shifted[rows], _combine(shifted, replaced, component_amount, rows)), rows


def random_pair_similarity(
    codes: np.ndarray, rows: np.ndarray, *, seed: int, center: np.ndarray | None = None, pool: np.ndarray | None = None
) -> np.ndarray:
    """Null: cos(mu_i - c, mu_j - c) for each i in ``rows`` and one j != i drawn uniformly from ``pool``
    (default: every row of ``codes``) with ``numpy.random.default_rng(seed)``. (m,) float64."""
    codes = _check_codes(codes)
    rows = _check_rows(rows, len(codes))
    if rows.size == 0:
        raise ValueError("rows is empty: no materials to pair")
    pool = np.arange(len(codes)) if pool is None else _check_rows(pool, len(codes), "pool")
    partners = _draw_excluding(seed, pool, rows, rows.shape, "pool")
    shifted = _center(codes, center)
    return cosine_similarity(shifted[rows], shifted[partners])


@dataclass(frozen=True)
class PCAEncoder:
    """A linear encoder: e(x) = (x - mean) @ components.T, the top principal axes of the data it was fitted on."""

    mean: np.ndarray  # (89,) float64 mean of the fitted rows
    components: np.ndarray  # (latent_dim, 89) float64 orthonormal principal axes, largest variance first
    explained_variance: np.ndarray  # (latent_dim,) float64 variance along each axis (divisor n - 1)

    @classmethod
    def fit(cls, x: np.ndarray, latent_dim: int) -> PCAEncoder:
        """Principal axes of x (n, p) from numpy's SVD of the centred rows; each axis' sign is fixed so that
        its largest-magnitude loading is positive."""
        x = _check_codes(x, "x")
        check_int("latent_dim", latent_dim, minimum=1, maximum=min(x.shape))
        if len(x) < 2:
            raise ValueError(f"PCA needs at least 2 rows, got {len(x)}")
        mean = x.mean(axis=0)
        _, singular, vt = np.linalg.svd(x - mean, full_matrices=False)
        axes = vt[:latent_dim]
        axes = axes * np.sign(axes[np.arange(latent_dim), np.abs(axes).argmax(axis=1)])[:, None]
        return cls(mean, axes, singular[:latent_dim] ** 2 / (len(x) - 1))

    def encode(self, x: np.ndarray) -> np.ndarray:
        """(n, 89) -> (n, latent_dim) float64."""
        x = _check_codes(x, "x")
        if x.shape[1] != len(self.mean):
            raise ValueError(f"x has {x.shape[1]} columns, the encoder was fitted on {len(self.mean)}")
        return (x - self.mean) @ self.components.T

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(n, latent_dim) -> (n, 89): the projection of x back into the input space."""
        return _check_codes(codes) @ self.components + self.mean


def similarity_summary(
    similarities: Mapping[str, np.ndarray], n_components: np.ndarray, *, above: float = 0.9
) -> pd.DataFrame:
    """Per measure and number of components (and "all"): materials, median, 5th percentile (numpy's linear
    interpolation) and the share of similarities > ``above``; NaN similarities are left out.

    Args:
        similarities: {measure name: (m,) similarities}, every array aligned with ``n_components``.
        n_components: (m,) int number of components of each material.

    Returns: a frame indexed by (measure, components) with components "2", ..., "all" as strings.
    """
    check_float("above", above, low=-1.0, high=1.0)
    n_components = np.asarray(n_components)
    if not similarities:
        raise ValueError("similarities is empty: give at least one {name: array}")
    records = []
    for name, values in similarities.items():
        values = np.asarray(values, dtype=np.float64)
        if values.shape != n_components.shape:
            raise ValueError(f"similarities[{name!r}] has shape {values.shape}, n_components {n_components.shape}")
        groups = [(str(c), n_components == c) for c in np.unique(n_components)] + [("all", np.ones(len(values), bool))]
        for label, mask in groups:
            chosen = values[mask & np.isfinite(values)]
            empty = len(chosen) == 0
            records.append({
                "measure": name, "components": label, "materials": len(chosen),
                "median": np.nan if empty else np.median(chosen),
                "5th percentile": np.nan if empty else np.percentile(chosen, 5),
                f"share > {above:g}": np.nan if empty else (chosen > above).mean(),
            })
    return pd.DataFrame.from_records(records).set_index(["measure", "components"])


@dataclass(frozen=True)
class CombinationDecoding:
    """Decodings of the combined code sum_k a_k mu(x_k) and of mu(x), one row per material in ``rows``."""

    rows: np.ndarray  # (m,) int64 dataset rows
    combination: Samples  # decoded sum_k a_k mu(x_k) with class y_i
    reconstruction: Samples  # decoded mu(x_i) with class y_i


def decode_combination(
    model: AnyModel, codes: np.ndarray, component_row: np.ndarray, component_amount: np.ndarray, rows: np.ndarray,
    y: np.ndarray, *, threshold: float, rule: str = "paper", max_atoms: int = DEFAULT_MAX_ATOMS,
) -> CombinationDecoding:
    """Decode z = sum_k a_k mu(x_k) and z = mu(x_i) for every i in ``rows``, with the decoder given the
    material's class y_i, and turn the decoder means into formulas with ``rule`` at ``threshold`` (a sequence-family
    model decodes greedily to integer formulas instead; ``y``, ``threshold`` and ``rule`` are only checked).

    ``codes`` (n, latent_dim) are the model's latent means of the dataset and ``y`` (n,) its classes.
    """
    SampleConfig(threshold=threshold, rule=rule, max_atoms=max_atoms)  # checks the settings
    codes, component_row, component_amount, rows = _prepare(codes, component_row, component_amount, rows)
    if codes.shape[1] != model.config.latent_dim:
        raise ValueError(f"codes have {codes.shape[1]} dimensions, the model's latent space {model.config.latent_dim}")
    y = np.asarray(y)
    if y.shape != (len(codes),) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold one integer class per material, shape ({len(codes)},), got {y.dtype} {y.shape}")
    if y.min() < 0 or y.max() >= model.config.n_classes:
        raise ValueError(f"y must lie in 0..{model.config.n_classes - 1} (the model's classes), got {y.min()}..{y.max()}")

    def decoded(z: np.ndarray) -> Samples:
        if family_of(model) == "sequence":  # greedy integer formulas; the class and threshold do not apply
            return decode_sequence_codes(model, z)
        probabilities = decoder_means(model, z, y[rows])
        counts = decode_counts(probabilities, threshold=threshold, rule=rule, max_atoms=max_atoms)
        return Samples(formulas_from_counts(counts), counts, probabilities, y[rows].astype(np.int64), z.astype(np.float32))

    combined = _combine(codes, component_row, component_amount, rows)
    return CombinationDecoding(rows, decoded(combined), decoded(codes[rows]))


def decoding_rates(decoding: CombinationDecoding, formula: np.ndarray, counts: np.ndarray) -> pd.DataFrame:
    """Exact reduced-formula and element-set match rates of both decodings against the dataset's
    ``formula`` (n,) and ``counts`` (n, 89) at ``decoding.rows``; one row per decoded code."""
    expected_formulas, expected_counts = list(np.asarray(formula)[decoding.rows]), np.asarray(counts)[decoding.rows]
    return pd.DataFrame(
        {
            label: {
                "exact formula": metrics.exact_match_rate(samples.formulas, expected_formulas),
                "same elements": metrics.element_set_match_rate(samples.counts, expected_counts),
            }
            for label, samples in (
                ("mu(x) (reconstruction)", decoding.reconstruction),
                ("sum_k a_k mu(x_k) (combination)", decoding.combination),
            )
        }
    ).T.rename_axis("decoded code")
