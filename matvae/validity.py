"""Chemical validity of formulas with SMACT, in the variants other generative-materials papers report.

``smact.screening.smact_validity`` (smact, version in :data:`SMACT_VERSION`) asks whether some assignment of
known oxidation states makes a composition charge-neutral and, optionally, whether the cations are less
electronegative than the anions (Pauling test); by default it also accepts every all-metal composition as an
alloy. The variants (:data:`CHECKS`):

``smact (ICSD24)``
    smact's defaults: ICSD24 oxidation states, Pauling test, alloys valid.
``smact (smact14)``
    ``oxidation_states_set="smact14"``, the set of the CDVAE-era papers (CDVAE's "composition validity").
``charge-neutral``
    ICSD24 states, charge neutrality alone (no Pauling test, no alloy pass): what BLMM and the Materials
    Transformers call charge-neutral.
``charge-neutral + EN-balanced``
    ICSD24 states, charge neutrality and the Pauling test, no alloy pass (MatGAN's "charge-neutral and
    electronegativity-balanced").

A single element counts as valid in every variant (smact's own rule). SMACT's search grows exponentially
with the number of elements (about 1 s at 8 elements, 9 s at 9, a minute at 10 on a 2-core machine), so a
composition with more than :data:`MAX_ELEMENTS` elements is not searched and counts as invalid in every
variant; :func:`too_many_elements` tells how many samples that concerns (no material of the snapshot has more
than 9 elements, and only 21 have more than 7).
"""

from __future__ import annotations

import multiprocessing
import warnings
from importlib.metadata import version

import numpy as np
import pandas as pd

SMACT_VERSION: str = version("smact")

MAX_ELEMENTS: int = 8
"""Compositions with more elements than this are not searched (counted invalid)."""

CHECKS: dict[str, dict] = {
    "smact (ICSD24)": {},
    "smact (smact14)": {"oxidation_states_set": "smact14"},
    "charge-neutral": {"use_pauling_test": False, "include_alloys": False},
    "charge-neutral + EN-balanced": {"use_pauling_test": True, "include_alloys": False},
}


def _n_elements(formula: str) -> int:
    from pymatgen.core import Composition

    return len(Composition(formula).elements)


def too_many_elements(formulas: list[str | None]) -> float:
    """Share of the formulas with more than :data:`MAX_ELEMENTS` elements (not searched by SMACT)."""
    if not formulas:
        raise ValueError("no formulas")
    return sum(f is not None and _n_elements(f) > MAX_ELEMENTS for f in formulas) / len(formulas)


def _check_one(formula: str) -> tuple[bool, ...]:
    from smact.screening import smact_validity

    if _n_elements(formula) > MAX_ELEMENTS:
        return (False,) * len(CHECKS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(bool(smact_validity(formula, **options)) for options in CHECKS.values())


def validity(formulas: list[str | None], *, n_processes: int | None = None) -> pd.DataFrame:
    """One boolean column per variant of :data:`CHECKS`, one row per formula (None -> invalid).

    Each distinct formula is checked once; ``n_processes`` > 1 spreads them over worker processes
    (default: all CPUs when there are more than 2,000 distinct formulas).
    """
    formulas = list(formulas)
    distinct = sorted({f for f in formulas if f is not None})
    if n_processes is None:
        n_processes = (multiprocessing.cpu_count() or 1) if len(distinct) > 2000 else 1
    if n_processes > 1 and len(distinct) > 1:
        with multiprocessing.get_context("fork").Pool(n_processes) as pool:
            results = pool.map(_check_one, distinct, chunksize=64)
    else:
        results = [_check_one(f) for f in distinct]
    table = dict(zip(distinct, results))
    invalid = (False,) * len(CHECKS)
    rows = [table.get(f, invalid) if f is not None else invalid for f in formulas]
    return pd.DataFrame(np.array(rows, dtype=bool).reshape(len(formulas), len(CHECKS)), columns=list(CHECKS))


def validity_rates(formulas: list[str | None], *, n_processes: int | None = None) -> dict[str, float]:
    """Share of all samples that pass each variant (a sample that decoded to nothing fails)."""
    if not formulas:
        raise ValueError("no samples: validity is undefined")
    return validity(formulas, n_processes=n_processes).mean().to_dict()
