"""The S.U.N. rate of a generator: samples that are stable (predicted), unique and novel, and SMACT-valid.

MatterGen reports the share of generated structures that are stable, unique and novel; here stability is
the oracle's prediction (:mod:`matvae.properties.oracle`), so every rate in :func:`sun_table` is a rate of
*predicted* stability, to be read beside the oracle's measured precision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from matvae.properties.oracle import STABILITY_THRESHOLD, STRICT_THRESHOLD, StabilityOracle, formula_counts
from matvae.validity import validity

VALIDITY_CHECK: str = "smact (ICSD24)"
"""The SMACT variant that counts as valid (alloys valid, Pauling test; see :mod:`matvae.validity`)."""

SUN_COLUMNS: tuple[str, ...] = (
    "n",
    "valid",
    "unique",
    "novel",
    f"stable (<= {STABILITY_THRESHOLD:g})",
    f"stable (<= {STRICT_THRESHOLD:g})",
    "S.U.N.",
    "S.U.N. (strict)",
    "valid S.U.N.",
)
"""Columns of :func:`sun_table`: sample count, then shares of all samples. ``S.U.N.``: predicted energy above
the hull <= 0.1 eV/atom, first occurrence among the samples, novel; ``(strict)``: <= 0; ``valid S.U.N.``:
S.U.N. and SMACT-valid."""


def sample_properties(formulas: Sequence[str | None], oracle: StabilityOracle, *, max_elements: int | None = None) -> pd.DataFrame:
    """The oracle's rows for samples, ``None`` (undecodable) and over-long formulas left as NaN/False.

    Args:
        formulas: n sampled reduced formulas (``None`` where a sample decoded to nothing).
        oracle: the hull and energy model.
        max_elements: formulas with more elements are not scored (the energy model's limit); default no limit.
    """
    formulas = list(formulas)
    frame = pd.DataFrame(
        {"formula": formulas, "formation_energy_per_atom": np.nan, "e_above_hull": np.nan, "novel": False, "scored": False}
    )
    scorable = [i for i, f in enumerate(formulas) if f is not None]
    if scorable:
        counts = formula_counts([formulas[i] for i in scorable])
        if max_elements is not None:
            keep = (counts > 0).sum(axis=1) <= max_elements
            scorable, counts = [i for i, k in zip(scorable, keep) if k], counts[keep]
    if scorable:
        rows = oracle.predict_counts(counts)
        frame.loc[scorable, ["formation_energy_per_atom", "e_above_hull"]] = rows[
            ["formation_energy_per_atom", "e_above_hull"]
        ].to_numpy()
        frame.loc[scorable, "novel"] = rows["novel"].to_numpy()
        frame.loc[scorable, "scored"] = True
    return frame


def sun_rates(formulas: Sequence[str | None], properties: pd.DataFrame, valid: np.ndarray) -> dict[str, float]:
    """One row of :func:`sun_table` from per-sample properties (:func:`sample_properties`) and validity."""
    formulas = list(formulas)
    n = len(formulas)
    if n == 0:
        raise ValueError("no samples to rate")
    if len(properties) != n or len(valid) != n:
        raise ValueError(f"lengths differ: {n} formulas, {len(properties)} property rows, {len(valid)} validity flags")
    seen: set[str] = set()
    unique = np.zeros(n, dtype=bool)
    for i, formula in enumerate(formulas):
        if formula is not None and formula not in seen:
            seen.add(formula)
            unique[i] = True
    e_hull = properties["e_above_hull"].to_numpy(dtype=np.float64)
    novel = properties["novel"].to_numpy(dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    with np.errstate(invalid="ignore"):
        stable, strict = e_hull <= STABILITY_THRESHOLD, e_hull <= STRICT_THRESHOLD
    sun, sun_strict = stable & unique & novel, strict & unique & novel
    values = [n, valid.mean(), unique.mean(), novel.mean(), stable.mean(), strict.mean(), sun.mean(), sun_strict.mean(),
              (sun & valid).mean()]
    return {column: (int(v) if column == "n" else float(v)) for column, v in zip(SUN_COLUMNS, values)}


def sun_table(
    generators: Mapping[str, tuple[Sequence[str | None], StabilityOracle]],
    *,
    max_elements: int | None = None,
    n_processes: int | None = None,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """S.U.N. rates of several generators, one row each (columns :data:`SUN_COLUMNS`).

    Args:
        generators: name -> (sampled formulas, the oracle to judge them with: its hull and its known formulas).
        max_elements: formulas with more elements are not scored (count as unstable).
        n_processes: processes for the SMACT checks.

    Returns:
        The table, and each generator's predicted energies above the hull (NaN where not scored).
    """
    if not generators:
        raise ValueError("no generators given")
    rows, e_hull = {}, {}
    for name, (formulas, oracle) in generators.items():
        formulas = list(formulas)
        properties = sample_properties(formulas, oracle, max_elements=max_elements)
        valid = validity(formulas, n_processes=n_processes)[VALIDITY_CHECK].to_numpy(dtype=bool)
        rows[name] = sun_rates(formulas, properties, valid)
        e_hull[name] = properties["e_above_hull"].to_numpy(dtype=np.float64)
    return pd.DataFrame.from_dict(rows, orient="index")[list(SUN_COLUMNS)], e_hull
