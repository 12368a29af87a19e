"""New materials from the model, and reconstructions of known ones.

Generation follows the paper: z from the prior N(0, I), y from the class prior p(y), the decoder's mean
(the Bernoulli probabilities sigmoid(logits)) as the continuous composition, then a decoding rule of
:mod:`matvae.composition` (the paper's threshold/scale/GCD rule by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from matvae.composition import (
    DECODE_RULES,
    DEFAULT_MAX_ATOMS,
    DEFAULT_THRESHOLD,
    check_fractions,
    check_max_atoms,
    check_threshold,
    decode_counts,
    formulas_from_counts,
)
from matvae.elements import N_ELEMENTS
from matvae.model import VAE
from matvae.params import check_choice, check_int, check_seed, show, store_checked

BATCH = 65_536

MAX_N_SAMPLES: int = 10_000_000
"""Most materials one call may generate (1,000 times the paper's 10,000): checked before anything is
allocated; the decoded counts alone then take 7 GB."""


@dataclass(frozen=True)
class SampleConfig:
    """How to sample and decode (the sampling notebook's parameters)."""

    n_samples: int = 10_000  # materials to generate (the paper: 10,000)
    threshold: float = DEFAULT_THRESHOLD  # T: decoder means below it are zeroed (the paper: 0.04)
    rule: str = "paper"  # decoding rule: "paper" (scale by 1/T, round, GCD) or "nearest"
    max_atoms: int = DEFAULT_MAX_ATOMS  # largest formula unit of the "nearest" rule
    seed: int = 0  # seed of z and y

    def __post_init__(self) -> None:
        store_checked(
            self,
            n_samples=check_int("n_samples", self.n_samples, minimum=1, maximum=MAX_N_SAMPLES),
            threshold=check_threshold(self.threshold),
            rule=check_choice("rule", self.rule, DECODE_RULES),
            max_atoms=check_max_atoms(self.max_atoms),
            seed=check_seed("seed", self.seed),
        )


@dataclass(frozen=True)
class Samples:
    """Decoded materials; row i of every array belongs to material i."""

    formulas: list[str | None]  # reduced formulas; None where no element reached the threshold
    counts: np.ndarray  # (n, 89) int64 reduced atom counts (all zero where formula is None)
    probabilities: np.ndarray  # (n, 89) float32 decoder means sigmoid(logits)
    classes: np.ndarray  # (n,) int64 class y given to the decoder
    z: np.ndarray  # (n, latent_dim) float32 latent codes

    def __len__(self) -> int:
        return len(self.formulas)

    @property
    def valid(self) -> np.ndarray:
        """(n,) bool: a formula came out."""
        return self.counts.any(axis=1)


def _check_model(model: VAE) -> None:
    if not isinstance(model, VAE):
        raise ValueError(f"model must be a matvae VAE, got {type(model).__name__}")
    if model.config.n_elements != N_ELEMENTS:
        raise ValueError(
            f"model has a vocabulary of {model.config.n_elements} elements; decoding needs the {N_ELEMENTS} of matvae.ELEMENTS"
        )


@torch.no_grad()
def decoder_means(model: VAE, z: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> np.ndarray:
    """sigmoid(decoder logits) for codes z (n, latent_dim) and classes y (n,). (n, 89) float32"""
    device = next(model.parameters()).device
    z = torch.as_tensor(np.asarray(z, dtype=np.float32), device=device)
    y = torch.as_tensor(np.asarray(y, dtype=np.int64), device=device)
    parts = [torch.sigmoid(model.decode(z[i : i + BATCH], y[i : i + BATCH])).cpu() for i in range(0, len(z), BATCH)]
    return torch.cat(parts).numpy() if parts else np.zeros((0, N_ELEMENTS), dtype=np.float32)


def _check_classes(model: VAE, y: np.ndarray, n: int) -> np.ndarray:
    """Class labels y: (n,) integers in [0, n_classes). (n,) int64"""
    array = np.asarray(y)
    if array.shape != (n,):
        raise ValueError(f"y must hold one class per row of x, shape ({n},), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"y must hold integer class labels, got dtype {array.dtype} (first entry {show(array[0])})")
    bad = (array < 0) | (array >= model.config.n_classes)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"y must lie in [0, {model.config.n_classes}) (the model's classes), got {array[row]} at row {row}"
        )
    return array.astype(np.int64)


@torch.no_grad()
def encode_means(model: VAE, x: np.ndarray) -> np.ndarray:
    """Latent means mu(x) for normalised vectors x: (n, 89), n >= 1, rows sum to 1. (n, latent_dim) float32

    Raises ``ValueError`` for another shape, an empty x, NaN, inf, negative entries or unnormalised rows.
    """
    _check_model(model)
    x = check_fractions(x)
    device = next(model.parameters()).device
    x = torch.as_tensor(x.astype(np.float32), device=device)
    parts = [model.encode(x[i : i + BATCH])[0].cpu() for i in range(0, len(x), BATCH)]
    return torch.cat(parts).numpy()


@torch.no_grad()
def predict_classes(model: VAE, x: np.ndarray) -> np.ndarray:
    """argmax of the classifier q(y|x). (n,) int64"""
    device = next(model.parameters()).device
    x = torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)
    return torch.cat([model.classify(x[i : i + BATCH]).argmax(-1).cpu() for i in range(0, len(x), BATCH)]).numpy()


def _decoded(model: VAE, z: np.ndarray, y: np.ndarray, *, threshold: float, rule: str, max_atoms: int) -> Samples:
    probabilities = decoder_means(model, z, y)
    counts = decode_counts(probabilities, threshold=threshold, rule=rule, max_atoms=max_atoms) if len(z) else np.zeros((0, N_ELEMENTS), dtype=np.int64)
    return Samples(formulas_from_counts(counts), counts, probabilities, np.asarray(y, dtype=np.int64), np.asarray(z, dtype=np.float32))


def sample(
    model: VAE,
    n: int,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    seed: int = 0,
    rule: str = "paper",
    max_atoms: int = DEFAULT_MAX_ATOMS,
) -> Samples:
    """Generate ``n`` materials: z ~ N(0, I), y ~ p(y) (the model's class prior), decoder mean, decoding rule."""
    _check_model(model)
    config = SampleConfig(n_samples=n, threshold=threshold, rule=rule, max_atoms=max_atoms, seed=seed)
    generator = torch.Generator().manual_seed(config.seed)
    z = torch.randn((config.n_samples, model.config.latent_dim), generator=generator)
    y = torch.multinomial(model.class_prior.cpu().double(), config.n_samples, replacement=True, generator=generator)
    return _decoded(model, z.numpy(), y.numpy(), threshold=config.threshold, rule=config.rule, max_atoms=config.max_atoms)


def reconstruct(
    model: VAE,
    x: np.ndarray,
    *,
    y: np.ndarray | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    rule: str = "paper",
    max_atoms: int = DEFAULT_MAX_ATOMS,
) -> Samples:
    """Decode the mean encoding z = mu(x) of each row of x, with class y (default: the classifier's guess).

    x: (n, 89), n >= 1, rows sum to 1 (as :func:`encode_means`); y: (n,) integers in [0, n_classes).
    """
    _check_model(model)
    SampleConfig(threshold=threshold, rule=rule, max_atoms=max_atoms)  # checks the settings
    x = check_fractions(x)
    classes = predict_classes(model, x) if y is None else _check_classes(model, y, len(x))
    z = encode_means(model, x)
    return _decoded(model, z, classes, threshold=threshold, rule=rule, max_atoms=max_atoms)
