"""The split's energies come back row for row, and a table that no longer matches is refused."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from matvae.data import DataConfig
from matvae.properties.targets import formation_energies, split_table


def test_energies_align_with_the_split(small_split, small_table):
    energy = formation_energies(small_split)
    assert energy.shape == (len(small_split.dataset),)
    np.testing.assert_array_equal(energy, small_table["formation_energy_per_atom"].to_numpy())
    assert (split_table(small_split)["formula"].to_numpy() == small_split.dataset.formula).all()


def test_a_table_that_does_not_match_is_refused(small_split):
    other = replace(small_split, config=DataConfig(elements="Ga,Mo,S", seed=0))
    with pytest.raises(ValueError, match="do not match.*rerun 01_data"):
        formation_energies(other)
