"""matvae: a VAE over modified 1-hot composition vectors that preserves thermodynamic decomposition.

The public API re-exported here is what notebooks and other projects import.
"""

from matvae.composition import decode, decode_counts, encode, normalize, reduced_formula
from matvae.data import MaterialsDataset, build_dataset, load_materials, split_by_formula
from matvae.elements import ELEMENTS, N_ELEMENTS

__version__ = "0.1.0"

__all__ = [
    "ELEMENTS",
    "N_ELEMENTS",
    "MaterialsDataset",
    "build_dataset",
    "decode",
    "decode_counts",
    "encode",
    "load_materials",
    "normalize",
    "reduced_formula",
    "split_by_formula",
]
