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


def bernoulli_entropy(x: np.ndarray) -> float:
    """Mean over rows of sum_j H(x_j), H(p) = -p log p - (1 - p) log(1 - p): the smallest value the
    reconstruction term -log p(x|z) can take when the targets are the fractions x (nats per material)."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(x > 0, x * np.log(x), 0.0) + np.where(x < 1, (1 - x) * np.log(1 - x), 0.0))
    return float(h.sum(axis=1).mean())


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


# --- generation metrics ----------------------------------------------------------------------------------

PREVALENCE_SMOOTHING: float = 1e-6
"""Additive smoothing of both prevalence distributions before a divergence (see :func:`prevalence_kl`)."""


def prevalence(counts: np.ndarray) -> np.ndarray:
    """Elementwise prevalence, as the paper defines it: the modified 1-hot (atom count) vectors summed over
    materials, normalised over the 89 elements. (89,) sums to 1."""
    matrix = _check_matrix(counts)
    total = matrix.sum(axis=0)
    if total.sum() <= 0:
        raise ValueError("counts hold no atoms: every material is empty")
    return total / total.sum()


def _smoothed(p: np.ndarray, eps: float) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.shape != (N_ELEMENTS,) or (p < 0).any() or not np.isclose(p.sum(), 1.0):
        raise ValueError(f"expected a distribution over the {N_ELEMENTS} elements, got shape {p.shape} summing to {p.sum():.4g}")
    return (p + eps) / (1.0 + eps * len(p))


def prevalence_kl(data: np.ndarray, samples: np.ndarray, *, eps: float = PREVALENCE_SMOOTHING) -> float:
    """KL(data || samples) = sum_j p_j log(p_j / q_j) in nats, between two prevalence distributions.

    Direction: the data's distribution p is the reference, as in "the samples' prevalence against the data's".
    Both are smoothed, p' = (p + eps) / (1 + 89 eps), so that an element the samples never produce gives a
    large but finite divergence.
    """
    p, q = _smoothed(data, eps), _smoothed(samples, eps)
    return float(np.sum(p * np.log(p / q)))


def jensen_shannon(data: np.ndarray, samples: np.ndarray, *, eps: float = PREVALENCE_SMOOTHING) -> float:
    """Jensen-Shannon divergence in nats (0 .. ln 2): the mean KL of p and q to m = (p + q) / 2 (smoothed)."""
    p, q = _smoothed(data, eps), _smoothed(samples, eps)
    m = (p + q) / 2
    return float(0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m)))


def represented_elements(data: np.ndarray, samples: np.ndarray, *, top: int = 6) -> tuple[list[str], list[str]]:
    """The ``top`` elements most over-represented (samples - data prevalence largest) and under-represented."""
    difference = np.asarray(samples) - np.asarray(data)
    order = np.argsort(difference)
    over = [ELEMENTS[j] for j in order[::-1][:top] if difference[j] > 0]
    under = [ELEMENTS[j] for j in order[:top] if difference[j] < 0]
    return over, under


def uniqueness(formulas: list[str | None]) -> float:
    """Distinct reduced formulas / number of samples (a sample that decoded to nothing counts, as no formula)."""
    if not formulas:
        raise ValueError("no samples: uniqueness is undefined")
    return len({f for f in formulas if f is not None}) / len(formulas)


def novelty(formulas: list[str | None], known: set[str] | np.ndarray) -> tuple[int, float]:
    """Distinct formulas absent from ``known`` (the training split): (count, share of the distinct formulas)."""
    distinct = {f for f in formulas if f is not None}
    if not distinct:
        raise ValueError("no formulas: novelty is undefined")
    known = set(known)
    novel = len(distinct - known)
    return novel, novel / len(distinct)


def n_elements_wasserstein(samples_counts: np.ndarray, reference_counts: np.ndarray) -> float:
    """Wasserstein-1 distance between the numbers of elements per material of two sets (CDVAE's "# elem").

    Materials that decoded to nothing (all-zero rows) are left out of the samples.
    """
    from scipy.stats import wasserstein_distance

    a = np.asarray(samples_counts)
    a = a[a.any(axis=1)]
    if len(a) == 0:
        raise ValueError("no decoded materials among the samples: the distance is undefined")
    return float(wasserstein_distance(elements_per_material(a), elements_per_material(reference_counts)))


def generation_metrics(
    counts: np.ndarray,
    formulas: list[str | None],
    *,
    data_counts: np.ndarray,
    train_formulas: set[str] | np.ndarray,
    test_counts: np.ndarray,
    n_processes: int | None = None,
) -> dict[str, float]:
    """Every generation metric of the sampling chapter for one set of samples, as a flat dict.

    ``counts``/``formulas``: the samples (all-zero rows / None where nothing decoded); ``data_counts``: the
    dataset whose prevalence is the reference; ``train_formulas``: what counts as seen; ``test_counts``: the
    held-out split for the number-of-elements distance. Validity shares are of all samples.
    """
    from matvae.validity import too_many_elements, validity_rates

    counts = np.asarray(counts)
    if len(counts) == 0 or len(counts) != len(formulas):
        raise ValueError(f"need as many count rows as formulas and at least one, got {len(counts)} and {len(formulas)}")
    decoded = counts[counts.any(axis=1)]
    if len(decoded) == 0:
        raise ValueError("no sample decoded to a formula: the generation metrics are undefined")
    reference = prevalence(data_counts)
    produced = prevalence(decoded)
    n_novel, novel_share = novelty(formulas, train_formulas)
    result = {
        "decoded": len(decoded) / len(counts),
        "prevalence_kl": prevalence_kl(reference, produced),
        "prevalence_js": jensen_shannon(reference, produced),
        "uniqueness": uniqueness(formulas),
        "novel_formulas": float(n_novel),
        "novelty": novel_share,
        "n_elements_wasserstein": n_elements_wasserstein(decoded, test_counts),
        "mean_elements": float(elements_per_material(decoded).mean()),
        "too_many_for_smact": too_many_elements(formulas),
    }
    result.update(validity_rates(formulas, n_processes=n_processes))
    return result


def generation_table(
    sets: dict[str, tuple[np.ndarray, list[str | None]]],
    *,
    data_counts: np.ndarray,
    train_formulas: set[str] | np.ndarray,
    test_counts: np.ndarray,
    n_processes: int | None = None,
) -> pd.DataFrame:
    """:func:`generation_metrics` for several named sample sets, one row each.

    A set in which nothing decoded gets ``decoded = 0`` and empty cells, and a line in ``attrs["notes"]``
    saying so (rather than a silent NaN or an exception that hides the other rows).
    """
    rows, notes = {}, []
    for name, (counts, formulas) in sets.items():
        if not np.asarray(counts).any():
            rows[name] = {"decoded": 0.0}
            notes.append(f"{name}: no sample decoded to a formula, so its other metrics are undefined.")
            continue
        rows[name] = generation_metrics(
            counts, formulas, data_counts=data_counts, train_formulas=train_formulas, test_counts=test_counts,
            n_processes=n_processes,
        )
    table = pd.DataFrame(rows).T
    table.attrs["notes"] = notes
    return table
