"""Thermo documents of the Materials Project -> the materials table, with every field checked.

Kept apart from the client (:mod:`matvae.data.mp`) so that the checks can be used on documents from any
source (a saved API response, a test fixture) without HTTP.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np

from matvae.composition import MAX_COUNT, encode, reduced_formula
from matvae.elements import check_elements
from matvae.data.table import MaterialColumns
from matvae.elements import ELEMENT_INDEX, ELEMENTS, N_ELEMENTS

log = logging.getLogger(__name__)

REQUIRED_FIELDS: tuple[str, ...] = (
    "material_id",
    "composition_reduced",
    "formation_energy_per_atom",
    "energy_above_hull",
    "is_stable",
    "thermo_type",
)


class MPDataError(ValueError):
    """A Materials Project document is incomplete or outside what the table can hold."""


class _Document(NamedTuple):
    material_id: str
    counts: np.ndarray  # (89,) int64, GCD 1
    formation_energy_per_atom: float
    energy_above_hull: float
    is_stable: bool
    components: list[tuple[str, str | None, float]]  # (material_id or "", formula or None, amount)


def columns_from_documents(
    documents: Iterable[dict], *, symbols: Iterable[str] | str | None = None, thermo_type: str = "GGA_GGA+U"
) -> MaterialColumns:
    """Validate thermo documents (dicts as the API sends them) and build the table.

    Documents whose elements are not all in ``symbols`` are dropped; a repeated ``material_id`` keeps its
    first document. Raises :class:`MPDataError` naming the material and the problem.
    """
    symbols = check_elements(symbols)
    allowed = np.ones(N_ELEMENTS, dtype=bool)
    if symbols is not None:
        allowed[:] = False
        allowed[[ELEMENT_INDEX[s] for s in symbols]] = True
    rows: dict[str, int] = {}
    kept: list[_Document] = []
    n_outside = n_repeated = 0
    for raw in documents:
        document = _parse_document(raw, thermo_type)
        if (document.counts[~allowed] > 0).any():
            n_outside += 1
        elif document.material_id in rows:
            n_repeated += 1
        else:
            rows[document.material_id] = len(kept)
            kept.append(document)
    if n_outside or n_repeated:
        log.info("dropped %d documents outside the elements and %d repeated material_ids", n_outside, n_repeated)
    if not kept:
        space = ", ".join(symbols) if symbols is not None else "any elements"
        raise MPDataError(f"the Materials Project sent no {thermo_type} thermo documents of materials made of {space}")

    n = len(kept)
    width = max(1, max(len(d.components) for d in kept))
    component_row = np.full((n, width), -1, dtype=np.int64)
    component_amount = np.zeros((n, width))
    external_slot: dict[tuple[str, str], int] = {}
    for i, document in enumerate(kept):
        for k, (component_id, formula, amount) in enumerate(document.components):
            row = rows.get(component_id) if component_id else None
            if row is None:
                external = (component_id, _component_formula(document.material_id, component_id, formula))
                row = -2 - external_slot.setdefault(external, len(external_slot))
            component_row[i, k] = row
            component_amount[i, k] = amount
    return MaterialColumns(
        material_id=np.array([d.material_id for d in kept], dtype=str),
        counts=np.stack([d.counts for d in kept]),
        formation_energy_per_atom=np.array([d.formation_energy_per_atom for d in kept]),
        energy_above_hull=np.array([d.energy_above_hull for d in kept]),
        is_stable=np.array([d.is_stable for d in kept], dtype=bool),
        component_row=component_row,
        component_amount=component_amount,
        external_id=np.array([e[0] for e in external_slot], dtype=str),
        external_formula=np.array([e[1] for e in external_slot], dtype=str),
    )


def _parse_document(document: Any, thermo_type: str) -> _Document:
    if not isinstance(document, dict):
        raise MPDataError(f"expected a thermo document (a JSON object), got {type(document).__name__}")
    material_id = document.get("material_id")
    if not isinstance(material_id, str) or not material_id:
        raise MPDataError(f"a thermo document has no material_id (got {material_id!r}); its fields: {sorted(document)}")
    missing = [name for name in REQUIRED_FIELDS if document.get(name) is None]
    if missing:
        raise MPDataError(f"{material_id}: the thermo document lacks the required fields {missing}")
    if str(document["thermo_type"]).upper() != thermo_type.upper():
        raise MPDataError(
            f"{material_id}: thermo_type is {document['thermo_type']!r}, but {thermo_type!r} was requested"
        )
    is_stable = document["is_stable"]
    if not isinstance(is_stable, bool):
        raise MPDataError(f"{material_id}: is_stable must be true or false, got {is_stable!r}")
    return _Document(
        material_id=material_id,
        counts=_counts(material_id, document["composition_reduced"]),
        formation_energy_per_atom=_finite(material_id, document, "formation_energy_per_atom"),
        energy_above_hull=_finite(material_id, document, "energy_above_hull"),
        is_stable=is_stable,
        components=[] if is_stable else _components(material_id, document.get("decomposes_to")),
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(material_id: str, document: dict, name: str) -> float:
    value = document[name]
    if not _is_number(value) or not math.isfinite(value):
        raise MPDataError(f"{material_id}: {name} must be a finite number in eV/atom, got {value!r}")
    return float(value)


def _counts(material_id: str, composition: Any) -> np.ndarray:
    """``composition_reduced`` ({'Ga': 1.0, 'Mo': 4.0, 'S': 8.0}) -> (89,) int64 counts with GCD 1."""
    if not isinstance(composition, dict):
        raise MPDataError(
            f"{material_id}: composition_reduced must be an object like {{'Ga': 1, 'S': 1}}, got {composition!r}"
        )
    amounts = {symbol: amount for symbol, amount in composition.items() if not str(symbol).startswith("@")}
    if not amounts:
        raise MPDataError(f"{material_id}: composition_reduced is empty")
    counts = np.zeros(N_ELEMENTS, dtype=np.int64)
    for symbol, amount in amounts.items():
        if symbol not in ELEMENT_INDEX:
            raise MPDataError(
                f"{material_id}: composition_reduced has the element {symbol!r}, which is not among the "
                f"{N_ELEMENTS} elements of the table ({', '.join(ELEMENTS)})"
            )
        if not _is_number(amount) or not math.isfinite(amount) or not 0 < amount <= MAX_COUNT:
            raise MPDataError(
                f"{material_id}: composition_reduced gives {symbol} the amount {amount!r}; expected a positive number"
            )
        if not float(amount).is_integer():  # a fractional amount: scale it to whole atoms as encode() does
            try:
                return encode("".join(f"{s}{a!r}" for s, a in amounts.items())).astype(np.int64)
            except ValueError as exc:
                raise MPDataError(f"{material_id}: composition_reduced {amounts}: {exc}") from None
        counts[ELEMENT_INDEX[symbol]] = int(amount)
    return counts // np.gcd.reduce(counts[counts > 0])


def _components(material_id: str, decomposes_to: Any) -> list[tuple[str, str | None, float]]:
    if decomposes_to is None:
        return []
    if not isinstance(decomposes_to, list):
        raise MPDataError(f"{material_id}: decomposes_to must be a list of components, got {decomposes_to!r}")
    components = []
    for part in decomposes_to:
        if not isinstance(part, dict):
            raise MPDataError(f"{material_id}: a decomposes_to component must be an object, got {part!r}")
        component_id, formula, amount = part.get("material_id"), part.get("formula"), part.get("amount")
        if not (isinstance(component_id, str) and component_id) and not (isinstance(formula, str) and formula):
            raise MPDataError(
                f"{material_id}: a decomposes_to component has neither a material_id nor a formula: {part}"
            )
        if not _is_number(amount) or not math.isfinite(amount) or not 0 < amount <= 1 + 1e-6:
            raise MPDataError(
                f"{material_id}: decomposes_to component {component_id or formula} has the amount {amount!r}; "
                "expected an atomic fraction in (0, 1]"
            )
        components.append((component_id if isinstance(component_id, str) else "", formula, float(amount)))
    return components


def _component_formula(material_id: str, component_id: str, formula: str | None) -> str:
    """Reduced formula of an external component, written as the table writes its own formulas."""
    if not isinstance(formula, str) or not formula:
        raise MPDataError(
            f"{material_id}: decomposes_to component {component_id} is not among the fetched materials "
            "and has no formula"
        )
    try:
        return reduced_formula(encode(formula))
    except ValueError as exc:
        raise MPDataError(f"{material_id}: decomposes_to component {component_id or formula}: {exc}") from None
