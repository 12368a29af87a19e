"""Honest baselines for the generation metrics, sampled with the same interface as the VAE.

``sample_test_split``
    Materials drawn from the held-out test split: the ceiling for every metric a generator can reach.
``MarginalSampler``
    A random generator that knows only the training data's marginals: the number of elements k from the
    data's distribution; k distinct elements drawn without replacement with probability proportional to how
    many materials contain each element; for each, an atom count from the data's pooled distribution of
    per-element counts in reduced formulas; then division by the GCD.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matvae.composition import formulas_from_counts
from matvae.elements import N_ELEMENTS
from matvae.params import check_int


def sample_test_split(test_counts: np.ndarray, n: int, *, seed: int = 0) -> tuple[np.ndarray, list[str | None]]:
    """``n`` materials of the test split (without replacement when it is large enough): (counts, formulas)."""
    check_int("n", n, minimum=1)
    counts = np.asarray(test_counts)
    rows = np.random.default_rng(seed).choice(len(counts), size=n, replace=n > len(counts))
    chosen = counts[rows].astype(np.int64)
    return chosen, formulas_from_counts(chosen)


@dataclass(frozen=True)
class MarginalSampler:
    """The random baseline (see the module docstring), fitted to reduced count vectors of training data."""

    n_elements_probability: np.ndarray  # (max_k + 1,) P(k elements)
    element_probability: np.ndarray  # (89,) share of materials containing each element, normalised
    count_values: np.ndarray  # (m,) distinct per-element atom counts
    count_probability: np.ndarray  # (m,) their pooled frequencies

    @classmethod
    def fit(cls, counts: np.ndarray) -> MarginalSampler:
        counts = np.asarray(counts, dtype=np.int64)
        if counts.ndim != 2 or counts.shape[1] != N_ELEMENTS or not len(counts):
            raise ValueError(f"counts must be a non-empty (n, {N_ELEMENTS}) array, got {counts.shape}")
        present = counts > 0
        k = present.sum(axis=1)
        presence = present.sum(axis=0).astype(float)
        values, frequency = np.unique(counts[present], return_counts=True)
        return cls(np.bincount(k) / len(k), presence / presence.sum(), values, frequency / frequency.sum())

    def sample(self, n: int, *, seed: int = 0) -> tuple[np.ndarray, list[str | None]]:
        """``n`` random materials: (counts (n, 89) int64 with GCD 1, formulas)."""
        check_int("n", n, minimum=1)
        rng = np.random.default_rng(seed)
        available = int((self.element_probability > 0).sum())
        k = np.minimum(rng.choice(len(self.n_elements_probability), size=n, p=self.n_elements_probability), available)
        counts = np.zeros((n, N_ELEMENTS), dtype=np.int64)
        # k distinct elements by weight: the k smallest of Exp(1)/w (Efraimidis-Spirakis), vectorised
        keys = rng.exponential(size=(n, N_ELEMENTS)) / np.where(self.element_probability > 0, self.element_probability, np.nan)
        keys = np.nan_to_num(keys, nan=np.inf)
        order = np.argsort(keys, axis=1)
        chosen = np.arange(N_ELEMENTS)[None, :] < k[:, None]
        rows = np.repeat(np.arange(n), N_ELEMENTS).reshape(n, N_ELEMENTS)[chosen]
        columns = order[chosen]
        counts[rows, columns] = rng.choice(self.count_values, size=len(rows), p=self.count_probability)
        divisor = np.gcd.reduce(counts, axis=1)
        divisor[divisor == 0] = 1
        counts //= divisor[:, None]
        return counts, formulas_from_counts(counts)
