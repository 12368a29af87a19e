"""Formula <-> modified 1-hot vector: parsing, normalisation and the decoding rules.

A material is a vector of atom counts over :data:`matvae.elements.ELEMENTS` (the paper's "modified 1-hot"
vector); the model sees it normalised to sum to one. Decoding turns a (model-made) vector back into a
formula. Two rules are provided:

``"paper"``
    The paper's rule: zero every entry below the threshold T, scale by 1/T, round to integers and divide
    by their greatest common divisor. It quantises every fraction to a multiple of T, so at T = 0.04 the
    exact vector of Ga(MoS2)4 (1/13, 4/13, 8/13) decodes to Ga2Mo8S15.
``"nearest"``
    After the same threshold, the smallest integer formula with at most ``max_atoms`` atoms per formula
    unit whose atomic fractions lie closest (largest absolute difference) to the surviving fractions,
    renormalised. The exact vector of a material decodes to itself when its reduced formula unit has at most
    ``max_atoms`` atoms and every atomic fraction reaches the threshold (an element below T is dropped by
    both rules).
"""

from __future__ import annotations

import math
import re
import warnings
from fractions import Fraction
from typing import Literal

import numpy as np
from pymatgen.core.composition import Composition, reduce_formula

from matvae.elements import ELEMENT_INDEX, ELEMENTS, N_ELEMENTS
from matvae.params import check_choice, check_float, check_int

DEFAULT_THRESHOLD: float = 0.04
"""The paper's threshold T."""

DEFAULT_MAX_ATOMS: int = 50
"""Largest formula unit the ``"nearest"`` rule considers (97% of the snapshot's reduced formulas fit)."""

MAX_COUNT: float = 1e6
"""Largest atom count accepted for one element in a formula."""

MAX_DENOMINATOR: int = 1000
"""Fractional amounts (Li0.5FePO4) are scaled by the smallest integer up to this that makes them whole."""

MIN_AMOUNT: float = 1 / MAX_DENOMINATOR
"""Smallest amount in a formula (0.001): anything smaller cannot be scaled to whole atoms and is refused,
never dropped (pymatgen itself silently drops amounts below 1e-8, e.g. the Fe of ``Fe1e-30O``)."""

MIN_THRESHOLD: float = 1e-6
"""Smallest decoding threshold T. The paper rule scales fractions by 1/T, so T = 1e-6 already allows
1,000,000 atoms of one element (:data:`MAX_COUNT`); smaller T only make absurd formulas and, further down,
overflow the int64 counts."""

MAX_FORMULA_ATOMS: int = 1000
"""Largest ``max_atoms`` of the ``"nearest"`` rule (its search costs one pass over the vectors per size)."""

ROW_SUM_TOLERANCE: float = 1e-4
"""Rows of a normalised input x must sum to 1 within this (float32 rounding stays far below it)."""

DecodeRule = Literal["paper", "nearest"]
DECODE_RULES: tuple[str, ...] = ("paper", "nearest")

_ZERO_AMOUNT = re.compile(r"(?<=[A-Za-z)\]])\s*(?:0+(?:\.0*)?|\.0+)(?![\d.])")
# Hydrate or adduct notation: a middle dot, an asterisk, a dot that is no decimal point (Fe2O3.H2O), or a
# dotted multiplier of water or ammonia (CuSO4.5H2O, which pymatgen reads as CuS O4.5 H2 O).
_DOTTED_ADDUCT = re.compile(r"[·•∙⋅*]|\.(?!\d)|\.\d+\s*[(\[{]?\s*(?:H2O|D2O|NH3)(?![a-z])")
# An amount after an element symbol or a closing bracket, as pymatgen reads it.
_AMOUNT = re.compile(r"(?:[A-Z][a-z]*|[)\]}])\s*([-*.e\d]+)")
_SYMBOL = re.compile(r"[A-Z][a-z]*")


def parse_formula(formula: str) -> dict[str, float]:
    """Parse a chemical formula with pymatgen into ``{symbol: amount}``, checking every amount.

    Raises ``ValueError`` naming the formula for: a non-string, an empty or unparsable formula, an
    unknown symbol, an element outside the 89, a zero, negative, non-finite or absurdly large amount.
    """
    if not isinstance(formula, str):
        raise ValueError(f"formula must be a str such as 'Fe2O3', got {type(formula).__name__} {formula!r}")
    text = formula.strip()
    if not text:
        raise ValueError("formula is empty; expected a chemical formula such as 'Fe2O3'")
    if _ZERO_AMOUNT.search(text):
        raise ValueError(f"formula {formula!r} has a zero amount; every element needs a positive count")
    adduct = _DOTTED_ADDUCT.search(text)
    if adduct:
        raise ValueError(
            f"formula {formula!r} uses dotted hydrate notation ({adduct.group()!r}), which is not supported: a dot "
            "is read as a decimal point (CuSO4.5H2O would become CuSO4.5 H2O); write the water as a group, "
            "e.g. 'CuSO4(H2O)5'"
        )
    for match in _AMOUNT.finditer(text):
        try:
            amount = float(match[1])
        except ValueError:
            continue  # pymatgen names the unparsable part below
        if 0 < amount < MIN_AMOUNT:
            raise ValueError(_too_small(formula, match.group().strip(), match[1]))
    try:
        composition = Composition(text)
    except Exception as exc:  # pymatgen raises ValueError, KeyError or its own errors
        raise ValueError(f"cannot parse formula {formula!r}: {exc}") from None
    amounts: dict[str, float] = {}
    for species, amount in composition.items():
        symbol = getattr(species, "symbol", str(species))
        if type(species).__name__ == "DummySpecies":
            raise ValueError(f"formula {formula!r} has the unknown element symbol {symbol!r}")
        if symbol not in ELEMENT_INDEX:
            raise ValueError(
                f"formula {formula!r} contains {symbol}, which is not one of the 89 Materials Project elements "
                f"(allowed: {', '.join(ELEMENTS)})"
            )
        if not math.isfinite(amount) or amount <= 0:
            raise ValueError(f"formula {formula!r} has the amount {amount} for {symbol}; amounts must be positive")
        if amount > MAX_COUNT:
            raise ValueError(f"formula {formula!r} has {amount:g} atoms of {symbol}; at most {MAX_COUNT:g} are allowed")
        amounts[symbol] = amounts.get(symbol, 0.0) + float(amount)
    dropped = sorted(set(_SYMBOL.findall(text)) - set(amounts))
    if dropped:  # pymatgen drops an element whose (multiplied) amount is below 1e-8
        raise ValueError(_too_small(formula, dropped[0], "below 1e-8"))
    if not amounts:
        raise ValueError(f"formula {formula!r} contains no elements")
    return amounts


def _too_small(formula: str, where: str, amount: object) -> str:
    return (
        f"formula {formula!r} has the amount {amount} at {where!r}, too small to represent: amounts below "
        f"{MIN_AMOUNT:g} (1/{MAX_DENOMINATOR}) cannot be scaled to whole atoms"
    )


def _integer_amounts(amounts: dict[str, float], formula: str) -> dict[str, int]:
    """Scale amounts by the smallest integer (<= MAX_DENOMINATOR) that makes them whole numbers."""
    fractions = {s: Fraction(a).limit_denominator(MAX_DENOMINATOR) for s, a in amounts.items()}
    for symbol, amount in amounts.items():
        if fractions[symbol] <= 0:
            raise ValueError(_too_small(formula, symbol, amount))
        if abs(float(fractions[symbol]) - amount) > 1e-6 * max(1.0, amount):
            raise ValueError(
                f"formula {formula!r}: the amount {amount} of {symbol} is not a fraction with denominator "
                f"<= {MAX_DENOMINATOR}, so it cannot be scaled to whole atoms"
            )
    scale = math.lcm(*(f.denominator for f in fractions.values()))
    return {s: int(f * scale) for s, f in fractions.items()}


def encode(formula: str) -> np.ndarray:
    """Modified 1-hot vector of atom counts, reduced by the counts' greatest common divisor.

    ``encode("Ga(MoS2)4")``, ``encode("GaMo4S8")`` and ``encode("Ga2Mo8S16")`` all give 1, 4, 8 at the
    positions of Ga, Mo and S. Fractional amounts are scaled to the smallest whole numbers first, so
    ``"Li0.5FePO4"`` encodes as Li1 Fe2 P2 O8.

    Returns: (89,) float64 of non-negative integers.
    """
    counts = _integer_amounts(parse_formula(formula), formula)
    divisor = math.gcd(*counts.values())
    vector = np.zeros(N_ELEMENTS)
    for symbol, count in counts.items():
        vector[ELEMENT_INDEX[symbol]] = count // divisor
    return vector


def check_vectors(vectors: np.ndarray, *, name: str = "vector") -> np.ndarray:
    """Validate one (89,) or many (n, 89) composition vectors; return them as a float64 2-D array.

    Raises ``ValueError`` for a wrong length, NaN or infinite entries, negative entries or an all-zero row.
    """
    array = np.asarray(vectors, dtype=np.float64)
    if array.ndim not in (1, 2) or array.shape[-1] != N_ELEMENTS:
        raise ValueError(f"{name} must have shape (89,) or (n, 89), one entry per element, got {array.shape}")
    matrix = array.reshape(-1, N_ELEMENTS)
    bad = ~np.isfinite(matrix)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"{name} has a non-finite entry {matrix[row, col]} for {ELEMENTS[col]} (row {row})")
    if (matrix < 0).any():
        row, col = np.argwhere(matrix < 0)[0]
        raise ValueError(
            f"{name} has the negative entry {matrix[row, col]:g} for {ELEMENTS[col]} (row {row}); "
            "entries must be >= 0"
        )
    empty = ~matrix.any(axis=1)
    if empty.any():
        raise ValueError(f"{name} row {int(np.argmax(empty))} is all zeros; a composition needs at least one element")
    return matrix


def normalize(counts: np.ndarray) -> np.ndarray:
    """Atom counts -> atomic fractions: each (89,) row divided by its sum (the model's input x)."""
    matrix = check_vectors(counts, name="counts")
    fractions = matrix / matrix.sum(axis=1, keepdims=True)
    return fractions.reshape(np.shape(counts))


def reduced_formula(counts: np.ndarray) -> str:
    """Reduced formula of a vector of integer atom counts, written as pymatgen writes it (e.g. 'Ga(MoS2)4')."""
    vector = check_vectors(counts, name="counts")[0]
    amounts = {ELEMENTS[i]: int(round(vector[i])) for i in np.flatnonzero(vector)}
    if any(abs(vector[ELEMENT_INDEX[s]] - a) > 1e-8 for s, a in amounts.items()):
        raise ValueError(f"counts must be whole numbers to form a formula, got {vector[vector > 0]}")
    with warnings.catch_warnings():  # pymatgen warns that noble gases have no Pauling electronegativity
        warnings.simplefilter("ignore", UserWarning)
        formula, _ = reduce_formula(amounts)
    return Composition.special_formulas.get(formula, formula)


def check_threshold(threshold: float) -> float:
    """The decoding threshold T: a number in [:data:`MIN_THRESHOLD`, 1)."""
    threshold = check_float("threshold", threshold, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    if threshold < MIN_THRESHOLD:
        raise ValueError(
            f"threshold must be >= {MIN_THRESHOLD:g}, got {threshold:g}: decoding scales by 1/threshold, and a "
            f"smaller one gives formulas with more than {MAX_COUNT:g} atoms of one element"
        )
    return threshold


def check_max_atoms(max_atoms: int) -> int:
    """``max_atoms`` of the ``"nearest"`` rule: an integer in [1, :data:`MAX_FORMULA_ATOMS`]."""
    return check_int("max_atoms", max_atoms, minimum=1, maximum=MAX_FORMULA_ATOMS)


def as_matrix(x: np.ndarray, *, name: str = "x") -> np.ndarray:
    """``x`` as a float64 (n, 89) array, one row per material; ``ValueError`` naming ``name`` otherwise."""
    try:
        array = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric (n, {N_ELEMENTS}) array, got {type(x).__name__} ({exc})") from None
    if array.ndim != 2 or array.shape[1] != N_ELEMENTS:
        raise ValueError(
            f"{name} must have shape (n, {N_ELEMENTS}), one row per material and one column per element, "
            f"got shape {array.shape}"
        )
    return array


def check_fractions(x: np.ndarray, *, name: str = "x") -> np.ndarray:
    """Validate normalised inputs x: (n, 89) with n >= 1, finite, >= 0, rows summing to 1 within
    :data:`ROW_SUM_TOLERANCE`. Returns them as a float64 (n, 89) array."""
    array = as_matrix(x, name=name)
    if len(array) == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}); give at least one row")
    matrix = check_vectors(array, name=name)
    sums = matrix.sum(axis=1)
    off = np.abs(sums - 1.0) > ROW_SUM_TOLERANCE
    if off.any():
        row = int(np.argmax(off))
        raise ValueError(
            f"{name} row {row} sums to {sums[row]:.6g}; rows must be normalised to sum to 1 (within "
            f"{ROW_SUM_TOLERANCE:g}): use matvae.normalize"
        )
    return matrix


def decode_counts(
    vectors: np.ndarray,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    rule: DecodeRule = "paper",
    max_atoms: int = DEFAULT_MAX_ATOMS,
) -> np.ndarray:
    """Decode many vectors to reduced integer atom counts (see the module docstring for the rules).

    Args:
        vectors: (n, 89) with n >= 1, or (89,): floats in [0, 1], e.g. decoder means or normalised fractions.
        threshold: T in [MIN_THRESHOLD, 1) = [1e-6, 1); entries below it are zeroed.
        rule: ``"paper"`` or ``"nearest"``.
        max_atoms: largest formula unit for ``"nearest"``, 1 .. MAX_FORMULA_ATOMS (1000); checked for both rules.

    Returns: (n, 89) int64 counts with GCD 1 per row; an all-zero row where nothing survives the threshold.
    """
    threshold = check_threshold(threshold)
    check_choice("rule", rule, DECODE_RULES)
    max_atoms = check_max_atoms(max_atoms)
    matrix = _check_decodable(vectors)
    kept = np.where(matrix >= threshold, matrix, 0.0)
    if rule == "paper":
        counts = np.rint(kept / threshold).astype(np.int64)
    else:
        counts = _nearest_counts(kept, max_atoms)
    divisor = np.gcd.reduce(counts, axis=1)
    divisor[divisor == 0] = 1
    return counts // divisor[:, None]


def _check_decodable(vectors: np.ndarray) -> np.ndarray:
    """One (89,) or many (n >= 1, 89) vectors with entries in [0, 1]; a float64 2-D array."""
    try:
        array = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        kind = type(vectors).__name__
        raise ValueError(f"vectors must be a numeric (n, {N_ELEMENTS}) array, got {kind} ({exc})") from None
    if array.ndim == 2 and len(array) == 0:
        raise ValueError(f"vectors is empty (shape {array.shape}); give at least one vector")
    matrix = check_vectors(array, name="vectors")
    if (matrix > 1.0 + ROW_SUM_TOLERANCE).any():
        row, col = np.argwhere(matrix > 1.0 + ROW_SUM_TOLERANCE)[0]
        raise ValueError(
            f"vectors has the entry {matrix[row, col]:g} for {ELEMENTS[col]} (row {row}); decoding takes "
            "atomic fractions or decoder means, entries in [0, 1] (use matvae.normalize on atom counts)"
        )
    return matrix


def _nearest_counts(kept: np.ndarray, max_atoms: int) -> np.ndarray:
    """For each row, the integer counts with total <= max_atoms closest (L-infinity) to its fractions.

    Candidates for a total N are round(f * N) with every surviving element kept at >= 1 atom; among the
    candidates with the smallest distance (within 1e-9) the smallest N wins.
    """
    totals = kept.sum(axis=1, keepdims=True)
    fractions = np.divide(kept, totals, out=np.zeros_like(kept), where=totals > 0)
    alive = fractions > 0
    n_alive = alive.sum(axis=1)
    best = np.zeros(kept.shape, dtype=np.int64)
    best_distance = np.full(len(kept), np.inf)
    for total in range(1, max_atoms + 1):
        candidate = np.where(alive, np.maximum(np.rint(fractions * total), 1), 0).astype(np.int64)
        sums = candidate.sum(axis=1)
        ok = (n_alive <= total) & (sums > 0)
        distance = np.abs(candidate / np.maximum(sums, 1)[:, None] - fractions).max(axis=1)
        better = ok & (distance < best_distance - 1e-9)
        best[better] = candidate[better]
        best_distance[better] = distance[better]
    return best


def decode(
    vector: np.ndarray,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    rule: DecodeRule = "paper",
    max_atoms: int = DEFAULT_MAX_ATOMS,
) -> str | None:
    """Decode one (89,) vector to a reduced formula; ``None`` when no entry reaches the threshold.

    >>> decode(normalize(encode("NaCl")))
    'NaCl'
    """
    try:
        array = np.asarray(vector, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        kind = type(vector).__name__
        raise ValueError(f"decode takes one numeric vector of shape (89,), got {kind} ({exc})") from None
    if array.ndim != 1:
        raise ValueError(f"decode takes one vector of shape (89,), got shape {array.shape}; use decode_counts")
    counts = decode_counts(array, threshold=threshold, rule=rule, max_atoms=max_atoms)[0]
    return reduced_formula(counts) if counts.any() else None


def formulas_from_counts(counts: np.ndarray) -> list[str | None]:
    """Reduced formulas of many (n, 89) integer count rows; ``None`` for an all-zero row."""
    matrix = np.asarray(counts)
    return [reduced_formula(row) if row.any() else None for row in matrix]
