"""Magpie element-property statistics of compositions, computed for all rows at once.

The features of matminer's ``ElementProperty.from_preset("magpie")`` (Ward et al., npj Comput. Mater. 2, 16028,
2016): for each of 22 element properties p (:data:`MAGPIE_PROPERTIES`, matminer's ``MagpieData``, NaN entries
imputed by the mean over all elements as the preset does) and each composition with atomic fractions f_e
over its elements e (f_e > 0, sum_e f_e = 1), six statistics (:data:`MAGPIE_STATS`):

    minimum  = min_e p_e                   maximum = max_e p_e                  range = maximum - minimum
    mean     = sum_e f_e p_e               avg_dev = sum_e f_e |p_e - mean|
    mode     = p of the element with the largest fraction (ties, as np.isclose sees them: the smallest p)

132 features in matminer's order (property-major, :data:`MAGPIE_FEATURE_NAMES`). matminer featurises one
pymatgen ``Composition`` at a time (minutes for the snapshot); here the elements of every row are gathered
into a padded (rows, max elements per row, 22) block, so the snapshot's 132,752 rows take about a second.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from matvae.composition import as_matrix, check_vectors
from matvae.elements import ELEMENTS

MAGPIE_PROPERTIES: tuple[str, ...] = (
    "Number",
    "MendeleevNumber",
    "AtomicWeight",
    "MeltingT",
    "Column",
    "Row",
    "CovalentRadius",
    "Electronegativity",
    "NsValence",
    "NpValence",
    "NdValence",
    "NfValence",
    "NValence",
    "NsUnfilled",
    "NpUnfilled",
    "NdUnfilled",
    "NfUnfilled",
    "NUnfilled",
    "GSvolume_pa",
    "GSbandgap",
    "GSmagmom",
    "SpaceGroupNumber",
)
"""The element properties of matminer's magpie preset, in its order."""

MAGPIE_STATS: tuple[str, ...] = ("minimum", "maximum", "range", "mean", "avg_dev", "mode")
"""The statistics of matminer's magpie preset, in its order."""

MAGPIE_FEATURE_NAMES: tuple[str, ...] = tuple(
    f"MagpieData {stat} {prop}" for prop in MAGPIE_PROPERTIES for stat in MAGPIE_STATS
)
"""The 132 feature names, as matminer's ``ElementProperty.from_preset("magpie").feature_labels()``."""

N_MAGPIE_FEATURES: int = len(MAGPIE_FEATURE_NAMES)

MODE_RTOL: float = 1e-5
MODE_ATOL: float = 1e-8
"""Tie tolerance of the mode: matminer's ``np.isclose(weights, weights.max())`` defaults."""

CHUNK_ENTRIES: int = 1 << 22
"""Most float64 entries of one chunk's (rows, elements, properties) block (32 MiB)."""


@lru_cache(maxsize=1)
def element_properties() -> np.ndarray:
    """The magpie properties of :data:`matvae.elements.ELEMENTS`. (89, 22) float64, read-only, no NaN.

    Read once from matminer's ``MagpieData(impute_nan=True)``: a property that matminer's tables lack for an
    element (e.g. the electronegativity of He, Ne, Ar) is the mean of that property over all elements.
    """
    from matminer.utils.data import MagpieData  # matminer takes a second to import: only when needed
    from pymatgen.core import Element

    data = MagpieData(impute_nan=True)
    table = np.array(
        [[data.get_elemental_property(Element(symbol), prop) for prop in MAGPIE_PROPERTIES] for symbol in ELEMENTS],
        dtype=np.float64,
    )
    table.setflags(write=False)
    return table


def check_compositions(x: np.ndarray, *, name: str = "x") -> np.ndarray:
    """Compositions x: (n, 89) amounts or fractions, finite, >= 0, every row with a positive sum.

    Returns the rows normalised to atomic fractions, (n, 89) float64. ``ValueError`` names the bad row.
    """
    array = as_matrix(x, name=name)
    matrix = check_vectors(array, name=name)  # finite, >= 0, no all-zero row (each error names its row)
    return matrix / matrix.sum(axis=1, keepdims=True)


def _statistics(fractions: np.ndarray, properties: np.ndarray) -> np.ndarray:
    """The six statistics of one chunk: fractions (m, 89) rows summing to 1 -> (m, 22, 6)."""
    n_present = int((fractions > 0).sum(axis=1).max())
    # each row's elements, largest fraction first; padding (fraction 0) after them
    order = np.argsort(-fractions, axis=1, kind="stable")[:, :n_present]  # (m, k)
    weights = np.take_along_axis(fractions, order, axis=1)  # (m, k)
    present = weights > 0  # (m, k)
    values = properties[order]  # (m, k, 22)
    mask = present[:, :, None]
    minimum = np.where(mask, values, np.inf).min(axis=1)  # (m, 22)
    maximum = np.where(mask, values, -np.inf).max(axis=1)
    mean = np.einsum("mk,mkp->mp", weights, values)
    avg_dev = np.einsum("mk,mkp->mp", weights, np.abs(values - mean[:, None, :]))
    largest = weights[:, :1]  # (m, 1): sorted, so the first is the largest
    tied = present & (np.abs(weights - largest) <= MODE_ATOL + MODE_RTOL * largest)  # (m, k)
    mode = np.where(tied[:, :, None], values, np.inf).min(axis=1)
    return np.stack([minimum, maximum, maximum - minimum, mean, avg_dev, mode], axis=-1)


def magpie_features(x: np.ndarray) -> np.ndarray:
    """Magpie statistics of compositions x: (n, 89) amounts or atomic fractions (rows are normalised here).

    Returns (n, 132) float64, columns :data:`MAGPIE_FEATURE_NAMES`, equal to matminer's
    ``ElementProperty.from_preset("magpie").featurize(Composition(...))`` of each row. An element counts as
    present when its entry is > 0 (pymatgen drops amounts below 1e-8; such tiny entries are not expected).
    Raises ``ValueError`` (naming the row) for a wrong shape, NaN, inf, negative entries or an all-zero row.
    """
    fractions = check_compositions(x)
    properties = element_properties()
    n = len(fractions)
    out = np.empty((n, len(MAGPIE_PROPERTIES), len(MAGPIE_STATS)), dtype=np.float64)
    if n == 0:
        return out.reshape(0, N_MAGPIE_FEATURES)
    widest = int((fractions > 0).sum(axis=1).max())
    rows_per_chunk = max(1, CHUNK_ENTRIES // (widest * len(MAGPIE_PROPERTIES)))
    for start in range(0, n, rows_per_chunk):
        stop = min(start + rows_per_chunk, n)
        out[start:stop] = _statistics(fractions[start:stop], properties)
    return out.reshape(n, N_MAGPIE_FEATURES)  # property-major, as matminer's labels
