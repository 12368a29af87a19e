from pymatgen.core import Element

from matvae.elements import ELEMENT_INDEX, ELEMENTS, N_ELEMENTS, NOBLE_GASES


def test_vocabulary_is_the_papers():
    assert N_ELEMENTS == 89
    assert list(ELEMENTS) == sorted(ELEMENTS)
    assert len(set(ELEMENTS)) == 89
    # the paper's positions, 1-based
    assert (ELEMENTS.index("Ga") + 1, ELEMENTS.index("Mo") + 1, ELEMENTS.index("S") + 1) == (26, 44, 66)
    assert ELEMENTS[:3] == ("Ac", "Ag", "Al")


def test_symbols_are_real_elements_and_include_noble_gases():
    for symbol in ELEMENTS:
        assert Element(symbol).symbol == symbol
    assert set(NOBLE_GASES) <= set(ELEMENTS)
    assert all(ELEMENTS[ELEMENT_INDEX[s]] == s for s in ELEMENTS)
