"""Materials data: the embedded snapshot, the live Materials Project, hull decompositions, the dataset."""

from matvae.data.dataset import DataConfig, MaterialsDataset, SplitData, build_dataset, prepare_data, split_by_formula
from matvae.data.materials import load_materials
from matvae.data.table import TABLE_COLUMNS

__all__ = [
    "TABLE_COLUMNS",
    "DataConfig",
    "MaterialsDataset",
    "SplitData",
    "build_dataset",
    "load_materials",
    "prepare_data",
    "split_by_formula",
]
