"""The fixed element vocabulary of the modified 1-hot representation.

The paper indexes materials over the 89 elements of the Materials Project, sorted alphabetically by
symbol (Ac = 1, Ag = 2, Al = 3, ...; Ga is 26th, Mo 44th, S 66th, 1-based). The order is part of the
representation: a trained model is only meaningful with the vocabulary it was trained on.
"""

from __future__ import annotations

from collections.abc import Iterable

ELEMENTS: tuple[str, ...] = (
    "Ac", "Ag", "Al", "Ar", "As", "Au", "B", "Ba", "Be", "Bi", "Br", "C", "Ca", "Cd", "Ce", "Cl",
    "Co", "Cr", "Cs", "Cu", "Dy", "Er", "Eu", "F", "Fe", "Ga", "Gd", "Ge", "H", "He", "Hf", "Hg",
    "Ho", "I", "In", "Ir", "K", "Kr", "La", "Li", "Lu", "Mg", "Mn", "Mo", "N", "Na", "Nb", "Nd",
    "Ne", "Ni", "Np", "O", "Os", "P", "Pa", "Pb", "Pd", "Pm", "Pr", "Pt", "Pu", "Rb", "Re", "Rh",
    "Ru", "S", "Sb", "Sc", "Se", "Si", "Sm", "Sn", "Sr", "Ta", "Tb", "Tc", "Te", "Th", "Ti", "Tl",
    "Tm", "U", "V", "W", "Xe", "Y", "Yb", "Zn", "Zr",
)  # fmt: skip
"""The 89 Materials Project element symbols in alphabetical order (position j is vector entry j)."""

N_ELEMENTS: int = len(ELEMENTS)
"""Length of a modified 1-hot vector (89)."""

ELEMENT_INDEX: dict[str, int] = {symbol: i for i, symbol in enumerate(ELEMENTS)}
"""Symbol -> 0-based position in :data:`ELEMENTS`."""

NOBLE_GASES: tuple[str, ...] = ("Ar", "He", "Kr", "Ne", "Xe")
"""The five elements of the vocabulary that Matbench removed from its snapshot."""


def check_elements(elements: Iterable[str] | str | None) -> tuple[str, ...] | None:
    """Validate an element filter ('Ga,Mo,S' or ['Ga', 'Mo', 'S']); returns sorted symbols or None."""
    if elements is None:
        return None
    if isinstance(elements, str):
        elements = [s for s in elements.replace(" ", ",").split(",") if s]
    symbols = list(elements)
    unknown = [s for s in symbols if s not in ELEMENT_INDEX]
    if unknown:
        raise ValueError(f"elements {unknown} are not among the 89 Materials Project elements: {', '.join(ELEMENTS)}")
    if not symbols:
        raise ValueError("elements is empty; pass None for all elements or at least one symbol")
    return tuple(sorted(set(symbols)))
