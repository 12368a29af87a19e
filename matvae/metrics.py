"""Every number the book reports, computed from arrays (no plotting, no I/O).

Data statistics come first; the generation metrics (prevalence divergence, validity, novelty, ...) and the
latent-space measures follow in their own sections.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from matvae.elements import ELEMENTS, N_ELEMENTS


def _check_matrix(counts: np.ndarray, name: str = "counts") -> np.ndarray:
    matrix = np.asarray(counts, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != N_ELEMENTS:
        raise ValueError(f"{name} must have shape (n, {N_ELEMENTS}), got {matrix.shape}")
    if len(matrix) == 0:
        raise ValueError(f"{name} is empty: no materials to measure")
    return matrix


# --- data statistics -------------------------------------------------------------------------------------


def count_distribution(values: np.ndarray, *, support: range | None = None, normalize: bool = False) -> pd.Series:
    """Histogram of integer ``values`` (e.g. elements per material) over ``support`` (default: min..max)."""
    values = np.asarray(values, dtype=np.int64)
    if values.size == 0:
        raise ValueError("values is empty: nothing to count")
    support = support if support is not None else range(int(values.min()), int(values.max()) + 1)
    counts = pd.Series(0, index=pd.Index(list(support), name="value"), dtype=np.int64)
    observed = pd.Series(values).value_counts()
    counts.update(observed[observed.index.isin(counts.index)])
    counts = counts.astype(np.int64)
    return counts / counts.sum() if normalize else counts


def elements_per_material(counts: np.ndarray) -> np.ndarray:
    """(n,) number of distinct elements in each composition row."""
    return (_check_matrix(counts) > 0).sum(axis=1)


CORRELATION_KINDS: tuple[str, ...] = ("presence", "fraction", "count")


def element_correlation(counts: np.ndarray, *, kind: str = "presence") -> np.ndarray:
    """(89, 89) Pearson correlation across materials between two elements' columns.

    ``kind`` picks the column: ``"presence"`` (1 if the element occurs, the paper's wording), ``"fraction"``
    (the normalised vector the model sees) or ``"count"`` (atoms per reduced formula unit). Entries involving
    an element whose column is constant (e.g. absent from every material) are NaN.
    """
    matrix = _check_matrix(counts)
    if kind == "presence":
        values = (matrix > 0).astype(np.float64)
    elif kind == "fraction":
        values = matrix / matrix.sum(axis=1, keepdims=True)
    elif kind == "count":
        values = matrix
    else:
        raise ValueError(f"kind must be one of {CORRELATION_KINDS}, got {kind!r}")
    centred = values - values.mean(axis=0)
    scale = np.sqrt((centred**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (centred.T @ centred) / np.outer(scale, scale)
    corr[:, scale == 0] = np.nan
    corr[scale == 0, :] = np.nan
    return corr


def correlated_pairs(corr: np.ndarray, *, threshold: float = 0.2) -> pd.DataFrame:
    """Off-diagonal element pairs with |correlation| > threshold, strongest first.

    The frame's ``attrs`` hold ``n_pairs`` (all 89*88/2 = 3,916 pairs) and ``n_defined`` (pairs whose
    correlation is defined, i.e. both elements occur).
    """
    upper = np.triu_indices(N_ELEMENTS, k=1)
    values = corr[upper]
    defined = ~np.isnan(values)
    strong = defined & (np.abs(np.nan_to_num(values)) > threshold)
    pairs = pd.DataFrame(
        {
            "element_a": np.asarray(ELEMENTS)[upper[0][strong]],
            "element_b": np.asarray(ELEMENTS)[upper[1][strong]],
            "correlation": values[strong],
        }
    )
    pairs = pairs.reindex(pairs["correlation"].abs().sort_values(ascending=False).index).reset_index(drop=True)
    pairs.attrs.update(n_pairs=len(values), n_defined=int(defined.sum()), threshold=threshold)
    return pairs


# --- reconstruction and generation -----------------------------------------------------------------------


def exact_match_rate(predicted: list[str | None], expected: list[str]) -> float:
    """Share of rows whose reduced formula equals the expected one (None never matches)."""
    if len(predicted) != len(expected):
        raise ValueError(f"{len(predicted)=} != {len(expected)=}")
    if not expected:
        raise ValueError("no formulas to compare")
    return float(np.mean([p is not None and p == e for p, e in zip(predicted, expected)]))


def element_set_match_rate(predicted_counts: np.ndarray, expected_counts: np.ndarray) -> float:
    """Share of rows whose set of elements (non-zero entries) equals the expected set."""
    a, b = _check_matrix(predicted_counts, "predicted_counts"), _check_matrix(expected_counts, "expected_counts")
    if a.shape != b.shape:
        raise ValueError(f"{a.shape=} != {b.shape=}")
    return float(((a > 0) == (b > 0)).all(axis=1).mean())
