"""The stability oracle: predicted formation energy placed against the snapshot's convex hull.

``predict_properties(["LiFePO4", "Fe2O3"])`` returns one row per formula, in input order: the formation
energy per atom predicted from the composition alone (the shipped attention network,
:mod:`matvae.properties.network`), the energy above the hull that this prediction implies against the
embedded snapshot's hull of the formula's chemical system (:class:`~matvae.properties.hull.HullReference`),
the competing phases it would decompose to, and whether the reduced formula is novel (absent from the
snapshot). Stability here is **predicted**: the chapter "Properties and stability" measures how often the
oracle is right (:func:`stability_scores`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

from matvae.composition import encode, reduced_formula
from matvae.elements import N_ELEMENTS
from matvae.params import check_int
from matvae.properties.hull import HullReference

STABILITY_THRESHOLD: float = 0.1
"""eV/atom: a predicted energy above the hull at or below this counts as (meta)stable, as MatterGen and
Matbench Discovery count it; :data:`STRICT_THRESHOLD` is the strict version."""

STRICT_THRESHOLD: float = 0.0
"""eV/atom: on or below the hull."""

PROPERTY_COLUMNS: tuple[str, ...] = (
    "formula",
    "formation_energy_per_atom",
    "e_above_hull",
    "hull_energy_per_atom",
    "decomposes_to",
    "novel",
    "n_elements",
)
"""Columns of :func:`predict_properties`, in order: reduced formula; predicted formation energy (eV/atom);
predicted energy above the hull (eV/atom, negative below it); the hull's energy at the composition; the
competing hull phases with atomic-fraction amounts; reduced formula absent from the snapshot; element count."""

EnergyModel = Callable[[np.ndarray], np.ndarray]
"""Maps atomic fractions (n, 89) to formation energies per atom (n,) in eV/atom."""


def shipped_energy_model() -> tuple[EnergyModel, int]:
    """The shipped formation-energy network as an :data:`EnergyModel`, and the most elements it takes."""
    from matvae.properties.network import load_shipped_energy_net, predict_energy

    net = load_shipped_energy_net()
    return (lambda x: predict_energy(net, x)), net.config.max_present


def formula_counts(formulas: Sequence[str] | str) -> np.ndarray:
    """(n, 89) reduced integer counts of ``formulas``; a bad formula raises :func:`matvae.encode`'s
    ``ValueError``, prefixed with its position."""
    if isinstance(formulas, str):
        formulas = [formulas]
    if isinstance(formulas, np.ndarray):
        formulas = formulas.tolist()
    formulas = list(formulas)
    counts = np.zeros((len(formulas), N_ELEMENTS))
    for i, formula in enumerate(formulas):
        try:
            counts[i] = encode(formula)
        except ValueError as exc:
            raise ValueError(f"formulas[{i}]: {exc}") from None
    return counts


class StabilityOracle:
    """An energy model and a hull to place its predictions against.

    Args:
        reference: the hull (and the known formulas for novelty), e.g. ``HullReference.from_table(table)``.
        energy_model: fractions (n, 89) -> formation energy per atom (n,), eV/atom.
        max_elements: the most elements per formula the energy model takes (more is refused up front).
    """

    def __init__(self, reference: HullReference, energy_model: EnergyModel, *, max_elements: int | None = None) -> None:
        if not isinstance(reference, HullReference):
            raise TypeError(f"reference must be a HullReference, got {type(reference).__name__}")
        if not callable(energy_model):
            raise TypeError(f"energy_model must be callable (fractions -> eV/atom), got {type(energy_model).__name__}")
        self.reference = reference
        self.energy_model = energy_model
        self.max_elements = None if max_elements is None else check_int("max_elements", max_elements, minimum=1)

    @classmethod
    def from_snapshot(cls, energy_model: EnergyModel | None = None) -> StabilityOracle:
        """The embedded snapshot's hull with the shipped network (or ``energy_model``)."""
        from matvae.data import load_materials

        reference = HullReference.from_table(load_materials())
        if energy_model is not None:
            return cls(reference, energy_model)
        model, max_elements = shipped_energy_model()
        return cls(reference, model, max_elements=max_elements)

    def predict(self, formulas: Sequence[str] | str) -> pd.DataFrame:
        """One row per formula in input order, columns :data:`PROPERTY_COLUMNS`."""
        counts = formula_counts(formulas)
        if self.max_elements is not None and len(counts):
            n_elements = (counts > 0).sum(axis=1)
            if n_elements.max() > self.max_elements:
                i = int(np.argmax(n_elements > self.max_elements))
                formula = formulas if isinstance(formulas, str) else list(formulas)[i]
                raise ValueError(
                    f"formulas[{i}] {formula!r} has {n_elements[i]} elements; the energy model takes at most {self.max_elements}"
                )
        return self.predict_counts(counts)

    def predict_counts(self, counts: np.ndarray, energy: np.ndarray | None = None) -> pd.DataFrame:
        """As :meth:`predict` for (n, 89) integer counts; ``energy`` (n,) replaces the predicted energies
        (to place known energies, e.g. the true ones, against the same hull)."""
        counts = np.asarray(counts, dtype=np.float64).reshape(-1, N_ELEMENTS)
        if len(counts) == 0:
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(PROPERTY_COLUMNS, (str, float, float, float, str, bool, int))})
        fractions = counts / counts.sum(axis=1, keepdims=True)
        if energy is None:
            energy = np.asarray(self.energy_model(fractions), dtype=np.float64).reshape(-1)
        else:
            energy = np.asarray(energy, dtype=np.float64).reshape(-1)
        if energy.shape != (len(counts),):
            raise ValueError(f"the energy model returned shape {energy.shape} for {len(counts)} compositions")
        placement = self.reference.place(counts)
        formulas = [reduced_formula(row) for row in counts]
        return pd.DataFrame(
            {
                "formula": formulas,
                "formation_energy_per_atom": energy,
                "e_above_hull": placement.e_above_hull(energy),
                "hull_energy_per_atom": placement.hull_energy,
                "decomposes_to": placement.decomposes_to(),
                "novel": ~self.reference.is_known(formulas),
                "n_elements": (counts > 0).sum(axis=1),
            },
            columns=list(PROPERTY_COLUMNS),
        )


@lru_cache(maxsize=1)
def default_oracle() -> StabilityOracle:
    """The oracle :func:`predict_properties` uses, built once per process."""
    return StabilityOracle.from_snapshot()


def predict_properties(formulas: Sequence[str] | str, *, oracle: StabilityOracle | None = None) -> pd.DataFrame:
    """Predicted formation energy, energy above the snapshot's hull, decomposition and novelty per formula.

    Args:
        formulas: chemical formulas (``"LiFePO4"``, ``"Ga(MoS2)4"``); one string is one formula.
        oracle: default the embedded snapshot's hull and the shipped network (:func:`default_oracle`).

    Returns:
        ``pandas.DataFrame`` with one row per formula in input order and the columns
        :data:`PROPERTY_COLUMNS`. A bad formula raises ``ValueError`` as :func:`matvae.encode` does.
    """
    return (oracle or default_oracle()).predict(formulas)


def stability_scores(true_e_above_hull: np.ndarray, predicted_e_above_hull: np.ndarray,
                     thresholds: Sequence[float] = (STRICT_THRESHOLD, STABILITY_THRESHOLD)) -> pd.DataFrame:
    """How well predicted stability agrees with the truth, at each threshold (eV/atom).

    Returns one row per threshold: counts of truly and predictedly stable materials (energy above the hull
    at or below the threshold), precision, recall, the false-positive rate (unstable ones flagged stable)
    and accuracy.
    """
    true = np.asarray(true_e_above_hull, dtype=np.float64)
    predicted = np.asarray(predicted_e_above_hull, dtype=np.float64)
    if true.shape != predicted.shape or true.ndim != 1:
        raise ValueError(f"expected two 1-D arrays of one length, got {true.shape=} {predicted.shape=}")
    rows = []
    for threshold in thresholds:
        is_stable, flagged = true <= threshold, predicted <= threshold
        hits = int((is_stable & flagged).sum())
        rows.append(
            {
                "threshold (eV/atom)": float(threshold),
                "truly stable": int(is_stable.sum()),
                "predicted stable": int(flagged.sum()),
                "precision": hits / max(int(flagged.sum()), 1),
                "recall": hits / max(int(is_stable.sum()), 1),
                "false-positive rate": int((flagged & ~is_stable).sum()) / max(int((~is_stable).sum()), 1),
                "accuracy": float((is_stable == flagged).mean()) if len(true) else float("nan"),
            }
        )
    return pd.DataFrame(rows).set_index("threshold (eV/atom)")
