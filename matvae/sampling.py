"""New materials from a model, and reconstructions of known ones: one API for every model family.

The paper's family (:class:`matvae.model.VAE`): z from the prior N(0, I), y from the class prior p(y), the
decoder's mean (the Bernoulli probabilities sigmoid(logits)) as the continuous composition, then a decoding
rule of :mod:`matvae.composition` (the paper's threshold/scale/GCD rule by default).

The sequence family (:class:`matvae.models.sequence.SequenceVAE`): z from its (learned) prior, then greedy
decoding of (element, count) tokens, which gives integer formulas directly: its decoding rule is
``"greedy"`` and the threshold settings do not apply.
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
from matvae.models import AnyModel, family_of, is_model
from matvae.models.sequence import SequenceVAE
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

    formulas: list[str | None]  # reduced formulas; None where no formula came out
    counts: np.ndarray  # (n, 89) int64 reduced atom counts (all zero where formula is None)
    probabilities: np.ndarray  # (n, 89) float32: paper family, decoder means sigmoid(logits); sequence family,
    #                            the decoded atomic fractions (zero where formula is None)
    classes: np.ndarray  # (n,) int64: paper family, the class y given to the decoder; sequence family, the
    #                      classifier's class of the decoded material (-1 where formula is None)
    z: np.ndarray  # (n, latent_dim) float32 latent codes

    def __len__(self) -> int:
        return len(self.formulas)

    @property
    def valid(self) -> np.ndarray:
        """(n,) bool: a formula came out."""
        return self.counts.any(axis=1)


FAMILY_RULES: dict[str, tuple[str, ...]] = {"paper": DECODE_RULES, "sequence": ("greedy",)}
"""Decoding rules of each family; the first is its default."""


def _check_model(model: AnyModel) -> None:
    if not is_model(model):
        raise ValueError(f"model must be a matvae model (families 'paper' or 'sequence'), got {type(model).__name__}")
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


def _check_classes(model: AnyModel, y: np.ndarray, n: int) -> np.ndarray:
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
def encode_means(model: AnyModel, x: np.ndarray) -> np.ndarray:
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
def predict_classes(model: AnyModel, x: np.ndarray) -> np.ndarray:
    """argmax of the classifier q(y|x). (n,) int64"""
    device = next(model.parameters()).device
    x = torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)
    return torch.cat([model.classify(x[i : i + BATCH]).argmax(-1).cpu() for i in range(0, len(x), BATCH)]).numpy()


def _decoded(model: VAE, z: np.ndarray, y: np.ndarray, *, threshold: float, rule: str, max_atoms: int) -> Samples:
    probabilities = decoder_means(model, z, y)
    counts = decode_counts(probabilities, threshold=threshold, rule=rule, max_atoms=max_atoms) if len(z) else np.zeros((0, N_ELEMENTS), dtype=np.int64)
    return Samples(formulas_from_counts(counts), counts, probabilities, np.asarray(y, dtype=np.int64), np.asarray(z, dtype=np.float32))


@torch.no_grad()
def decode_sequence_codes(model: SequenceVAE, z: np.ndarray) -> Samples:
    """Greedy integer formulas of codes z (n, latent_dim), with their fractions and classifier classes."""
    device = next(model.parameters()).device
    codes = torch.as_tensor(np.asarray(z, dtype=np.float32), device=device)
    counts = torch.cat([model.decode_counts(codes[i : i + BATCH]).cpu() for i in range(0, len(codes), BATCH)]).numpy()
    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0).astype(np.float32)
    classes = np.full(len(counts), -1, dtype=np.int64)
    found = np.flatnonzero(totals[:, 0] > 0)
    if len(found):
        classes[found] = predict_classes(model, fractions[found])
    return Samples(formulas_from_counts(counts), counts.astype(np.int64), fractions, classes, np.asarray(z, dtype=np.float32))


def _family_rule(model: AnyModel, rule: str | None, threshold: float | None) -> tuple[str, str]:
    """The family and the decoding rule to use (``None``: the family's default); refuses settings that do not
    apply to the family."""
    family = family_of(model)
    rules = FAMILY_RULES[family]
    rule = rules[0] if rule is None else check_choice("rule", rule, rules)
    if family == "sequence" and threshold is not None:
        raise ValueError(
            f"threshold={show(threshold)} does not apply to the sequence family, which decodes integer counts "
            "directly (rule 'greedy'); leave threshold unset"
        )
    return family, rule


def sample(
    model: AnyModel,
    n: int,
    *,
    threshold: float | None = None,
    seed: int = 0,
    rule: str | None = None,
    max_atoms: int = DEFAULT_MAX_ATOMS,
) -> Samples:
    """Generate ``n`` materials with the model's own decoding.

    Paper family: z ~ N(0, I), y ~ p(y) (the model's class prior), decoder mean, then ``rule`` ("paper" by
    default, or "nearest") at ``threshold`` (default T = 0.04). Sequence family: z ~ its prior p(z), greedy
    integer formulas (``rule`` "greedy"; ``threshold`` must be left unset).
    """
    _check_model(model)
    family, rule = _family_rule(model, rule, threshold)
    if family == "sequence":
        config = SampleConfig(n_samples=n, max_atoms=max_atoms, seed=seed)
        device = next(model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(config.seed)
        with torch.no_grad():
            z = torch.cat(
                [model.sample_prior(min(BATCH, config.n_samples - i), generator) for i in range(0, config.n_samples, BATCH)]
            )
        return decode_sequence_codes(model, z.cpu().numpy())
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    config = SampleConfig(n_samples=n, threshold=threshold, rule=rule, max_atoms=max_atoms, seed=seed)
    generator = torch.Generator().manual_seed(config.seed)
    z = torch.randn((config.n_samples, model.config.latent_dim), generator=generator)
    y = torch.multinomial(model.class_prior.cpu().double(), config.n_samples, replacement=True, generator=generator)
    return _decoded(model, z.numpy(), y.numpy(), threshold=config.threshold, rule=config.rule, max_atoms=config.max_atoms)


def reconstruct(
    model: AnyModel,
    x: np.ndarray,
    *,
    y: np.ndarray | None = None,
    threshold: float | None = None,
    rule: str | None = None,
    max_atoms: int = DEFAULT_MAX_ATOMS,
) -> Samples:
    """Decode the mean encoding z = mu(x) of each row of x with the model's own decoding.

    x: (n, 89), n >= 1, rows sum to 1 (as :func:`encode_means`). Paper family: class y (n,) integers in
    [0, n_classes) given to the decoder (default: the classifier's guess), then ``rule`` at ``threshold``
    (defaults "paper", 0.04). Sequence family: greedy integer formulas; y is checked but not used (its decoder
    does not take a class), ``threshold`` must be left unset.
    """
    _check_model(model)
    family, rule = _family_rule(model, rule, threshold)
    x = check_fractions(x)
    if y is not None:
        _check_classes(model, y, len(x))
    if family == "sequence":
        SampleConfig(max_atoms=max_atoms)  # checks the setting
        return decode_sequence_codes(model, encode_means(model, x))
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    SampleConfig(threshold=threshold, rule=rule, max_atoms=max_atoms)  # checks the settings
    classes = predict_classes(model, x) if y is None else _check_classes(model, y, len(x))
    z = encode_means(model, x)
    return _decoded(model, z, classes, threshold=threshold, rule=rule, max_atoms=max_atoms)


def decode_codes(
    model: AnyModel,
    z: np.ndarray | torch.Tensor,
    *,
    y: np.ndarray | None = None,
    threshold: float | None = None,
    rule: str | None = None,
    max_atoms: int = DEFAULT_MAX_ATOMS,
) -> list[str | None]:
    """Reduced formulas of latent codes z (n, latent_dim) with the model's own decoding; ``None`` where no
    formula comes out.

    Sequence family: greedy integer formulas (``y`` and ``threshold`` must be left unset). Paper family: the
    decoder mean given class ``y`` (n,) integers in [0, n_classes), by default the class prior's most probable
    class for every row (a fixed y, so that a code alone names a material), then ``rule`` at ``threshold``
    (defaults "paper", 0.04).
    """
    _check_model(model)
    family, rule = _family_rule(model, rule, threshold)
    codes = np.asarray(z.detach().cpu() if isinstance(z, torch.Tensor) else z, dtype=np.float32)
    if codes.ndim != 2 or codes.shape[1] != model.config.latent_dim:
        raise ValueError(f"z must have shape (n, {model.config.latent_dim}) (the model's latent_dim), got {codes.shape}")
    if not np.isfinite(codes).all():
        raise ValueError("z must be finite, got NaN or inf")
    if family == "sequence":
        if y is not None:
            raise ValueError("y does not apply to the sequence family, whose decoder takes no class; leave y unset")
        return decode_sequence_codes(model, codes).formulas
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    SampleConfig(threshold=threshold, rule=rule, max_atoms=max_atoms)  # checks the settings
    if y is None:
        classes = np.full(len(codes), int(model.class_prior.argmax()), dtype=np.int64)
    else:
        classes = _check_classes(model, y, len(codes))
    return _decoded(model, codes, classes, threshold=threshold, rule=rule, max_atoms=max_atoms).formulas
