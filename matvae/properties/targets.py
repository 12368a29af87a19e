"""The formation energies of a saved split, row for row (the data file carries compositions, not energies)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from matvae.data.dataset import SplitData


def split_table(split: SplitData, *, show_progress: bool | None = None) -> pd.DataFrame:
    """The :func:`matvae.load_materials` table the split was built from (same rows, same order).

    Raises ``ValueError`` when the table no longer matches the split (another snapshot or source)."""
    from matvae.data.materials import load_materials

    config = split.config
    table = load_materials(config.source, elements=config.elements or None, show_progress=show_progress)
    formulas = split.dataset.formula
    if len(table) != len(formulas) or not np.array_equal(table["formula"].to_numpy(dtype=str), formulas.astype(str)):
        raise ValueError(
            f"the materials table for source={config.source!r} elements={config.elements!r} has {len(table)} rows that do "
            f"not match the split's {len(formulas)}; rerun 01_data"
        )
    return table


def formation_energies(split: SplitData, *, show_progress: bool | None = None) -> np.ndarray:
    """(n,) formation energy per atom (eV/atom) of every row of ``split.dataset``."""
    return split_table(split, show_progress=show_progress)["formation_energy_per_atom"].to_numpy(dtype=np.float64)
