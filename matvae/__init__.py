"""matvae: a VAE over modified 1-hot composition vectors that preserves thermodynamic decomposition.

The public API re-exported here is what notebooks and other projects import.
"""

from matvae.composition import decode, decode_counts, encode, normalize, reduced_formula
from matvae.data import MaterialsDataset, build_dataset, load_materials, split_by_formula
from matvae.elements import ELEMENTS, N_ELEMENTS
from matvae.model import VAE, ModelConfig
from matvae.pretrained import load_pretrained
from matvae.properties.oracle import predict_properties
from matvae.sampling import SampleConfig, Samples, encode_means, reconstruct, sample
from matvae.training import TrainConfig, load_checkpoint, load_model, train

__version__ = "0.1.0"

__all__ = [
    "ELEMENTS",
    "N_ELEMENTS",
    "VAE",
    "MaterialsDataset",
    "ModelConfig",
    "SampleConfig",
    "Samples",
    "TrainConfig",
    "build_dataset",
    "decode",
    "decode_counts",
    "encode",
    "encode_means",
    "load_checkpoint",
    "load_materials",
    "load_model",
    "load_pretrained",
    "normalize",
    "predict_properties",
    "reconstruct",
    "reduced_formula",
    "sample",
    "split_by_formula",
    "train",
]
