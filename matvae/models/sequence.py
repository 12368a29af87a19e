"""A sequence VAE whose latent code round-trips: (element, count) tokens -> GRU -> z -> GRU -> tokens.

The input is the paper's: x is (batch, 89) atomic fractions over :data:`matvae.elements.ELEMENTS`. The model
turns each row into its integer reduced formula itself (:func:`formula_tokens`): the smallest multiplier
m <= ``max_total`` with x * m integral (within 0.25 / max_total per element) gives the reduced counts, which
become a sequence of (element, count) tokens in a fixed element order (electronegativity by default, so a
formula reads cation first, anion last). A bidirectional GRU encodes the sequence into q(z|x) = N(mean,
variance); an autoregressive GRU decoder p(tokens|z) emits one element (or the end token) and then its count
per step. The element of each step must come later in the order than the one before, so every token sequence
the decoder can emit is a distinct, canonical formula (no repeated element), and the end token closes it.

Likelihood and bound (nats per material). With t(x) the token sequence of the reduced formula of x,

    log p(x) >= log p(t(x)) >= E_q(z|x)[log p(t(x)|z)] - KL(q(z|x) || p(z))  =  -nelbo,

the first inequality because non-reduced sequences (Fe2O2) decode to the same x and only add probability.
``rec`` = -log p(t(x)|z) at one reparameterised z; ``kl`` is exact for the standard-normal prior and the
one-sample Monte Carlo estimate log q(z|x) - log p(z) for the learned mixture-of-Gaussians prior (unbiased,
so ``nelbo`` is still an unbiased estimate of the negative ELBO).

Limits (all explicit): a formula with more than ``max_length`` elements is refused (``ValueError``); a
row with no integral multiplier up to ``max_total`` is refused by :meth:`SequenceVAE.loss` and encoded from its
closest multiplier by :meth:`SequenceVAE.encode`; a count above ``max_count`` is one "overflow" class (the
likelihood is then that of the coarsened event "count > max_count"), and a decoded overflow gives an all-zero
row (no formula) rather than a wrong count. On the snapshot: at most 9 elements, totals <= 512 atoms, 0.15 %
of the materials have a count above 64.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from matvae.elements import ELEMENTS, N_ELEMENTS
from matvae.params import check_choice, check_float, check_int

FAMILY: str = "sequence"
PRIORS: tuple[str, ...] = ("normal", "mog")
ELEMENT_ORDERS: tuple[str, ...] = ("electronegativity", "alphabetical")
MAX_TOTAL_LIMIT: int = 1024
"""Largest ``max_total``: float32 fractions resolve integers up to about this many atoms per formula unit."""
MULTIPLIER_BLOCKS: tuple[int, ...] = (16, 64, 256)
"""The multiplier search tries 1..16 first, then 17..64 for the rows left, and so on up to ``max_total``."""
TOKENIZE_ELEMENTS: int = 2**23
"""Most float64 entries of one chunk of the multiplier search (64 MiB)."""


@dataclass(frozen=True)
class SequenceConfig:
    """Sizes, vocabulary limits and loss weights of :class:`SequenceVAE`; stored in every checkpoint."""

    family: str = FAMILY  # model family name for the checkpoint registry; always "sequence"
    n_elements: int = N_ELEMENTS  # input length: the element vocabulary (89, fixed by matvae.elements)
    latent_dim: int = 32  # dimension of z (the paper: 10)
    n_classes: int = 10  # classes Y = 0..9 decomposition components (classifier head)
    hidden_dim: int = 256  # GRU width of encoder (per direction) and decoder
    embed_dim: int = 64  # width of the element and count embeddings
    decoder_layers: int = 1  # stacked GRU layers of the decoder
    max_length: int = 10  # most elements per formula (the snapshot: 9)
    max_count: int = 64  # count classes 1..max_count; larger counts fall into one overflow class
    max_total: int = 512  # largest multiplier searched to make x integral (atoms per reduced formula unit)
    element_order: str = "electronegativity"  # token order: Pauling electronegativity (then Z) or alphabetical
    prior: str = "mog"  # p(z): "normal" N(0, I) or "mog", a learned mixture of diagonal Gaussians
    n_components: int = 64  # mixture components of the "mog" prior
    kl_weight: float = 0.05  # beta: weight of the KL term in the training loss; 1 is the ELBO
    class_weight: float = 1.0  # weight of the classifier's cross-entropy added to the loss

    def __post_init__(self) -> None:
        check_choice("family", self.family, (FAMILY,))
        check_int("n_elements", self.n_elements, minimum=N_ELEMENTS, maximum=N_ELEMENTS)
        check_int("latent_dim", self.latent_dim, minimum=1)
        check_int("n_classes", self.n_classes, minimum=2)
        check_int("hidden_dim", self.hidden_dim, minimum=1)
        check_int("embed_dim", self.embed_dim, minimum=1)
        check_int("decoder_layers", self.decoder_layers, minimum=1)
        check_int("max_length", self.max_length, minimum=1, maximum=N_ELEMENTS)
        check_int("max_count", self.max_count, minimum=1)
        check_int("max_total", self.max_total, minimum=1, maximum=MAX_TOTAL_LIMIT)
        check_choice("element_order", self.element_order, ELEMENT_ORDERS)
        check_choice("prior", self.prior, PRIORS)
        check_int("n_components", self.n_components, minimum=1)
        check_float("kl_weight", self.kl_weight, low=0.0)
        check_float("class_weight", self.class_weight, low=0.0)


def element_order(kind: str) -> torch.Tensor:
    """(89,) int64 vector positions in token order: ``order[r]`` is the element of rank r."""
    check_choice("element_order", kind, ELEMENT_ORDERS)
    if kind == "alphabetical":
        return torch.arange(N_ELEMENTS)
    from pymatgen.core import Element

    with warnings.catch_warnings():  # noble gases have no Pauling electronegativity: they go last
        warnings.simplefilter("ignore")
        keys = [(Element(s).X if math.isfinite(Element(s).X) else 10.0, Element(s).Z) for s in ELEMENTS]
    return torch.tensor(sorted(range(N_ELEMENTS), key=keys.__getitem__), dtype=torch.int64)


class FormulaTokens(NamedTuple):
    """A batch of reduced formulas as token sequences, elements in ascending rank, padded to max_length."""

    ranks: torch.Tensor  # (batch, max_length) int64 rank of each element in the token order; padding = 89
    counts: torch.Tensor  # (batch, max_length) int64 atoms of each element in the reduced formula; padding 0
    length: torch.Tensor  # (batch,) int64 number of elements
    exact: torch.Tensor  # (batch,) bool: some multiplier <= max_total makes x integral

    @property
    def mask(self) -> torch.Tensor:
        """(batch, max_length) bool: real tokens."""
        return self.ranks < N_ELEMENTS


def formula_tokens(x: torch.Tensor, rank_of: torch.Tensor, *, max_length: int, max_total: int) -> FormulaTokens:
    """Atomic fractions -> reduced formula tokens, vectorised.

    x: (batch, 89) non-negative fractions; rank_of: (89,) rank of each vector position in the token order.
    For each row the smallest m in 1..max_total such that every non-zero x_j * m is within 0.25 / max_total of
    an integer >= 1 gives the reduced counts round(x * m) (their GCD is 1, or a smaller m would fit). A row
    with no such m gets the m with the smallest worst-case rounding error and ``exact = False``.
    Raises ``ValueError`` for an empty row or one with more than ``max_length`` elements.
    """
    if x.dim() != 2 or x.shape[1] != N_ELEMENTS:
        raise ValueError(f"x must have shape (batch, {N_ELEMENTS}), got {tuple(x.shape)}")
    xd = x.detach().to(torch.float64)
    if not torch.isfinite(xd).all() or (xd < 0).any():
        raise ValueError("x must hold finite non-negative fractions")
    present = xd > 0
    n_present = present.sum(dim=1)
    if (n_present == 0).any():
        raise ValueError(f"x row {int((n_present == 0).nonzero()[0])} is all zeros; a formula needs an element")
    if (n_present > max_length).any():
        row = int((n_present > max_length).nonzero()[0])
        raise ValueError(f"x row {row} has {int(n_present[row])} elements; this model takes at most {max_length=}")
    key = torch.where(present, rank_of.unsqueeze(0), torch.full_like(rank_of, N_ELEMENTS).unsqueeze(0))
    sorted_key, position = key.sort(dim=1)
    ranks, position = sorted_key[:, :max_length], position[:, :max_length]
    valid = ranks < N_ELEMENTS
    fractions = torch.where(valid, xd.gather(1, position), torch.zeros((), dtype=xd.dtype, device=xd.device))
    width = max(int(n_present.max()), 1)  # columns beyond the longest formula of the batch are padding
    fractions, valid_used = fractions[:, :width], valid[:, :width]
    tolerance = 0.25 / max_total
    counts = torch.zeros(len(x), width, dtype=torch.int64, device=x.device)
    exact = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    best_error = torch.full((len(x),), float("inf"), dtype=torch.float64, device=x.device)
    start = 1
    for stop in MULTIPLIER_BLOCKS + (max_total,):  # small multipliers first: most rows resolve in the first block
        stop = min(stop, max_total)
        if stop < start:
            continue
        rows = (~exact).nonzero().squeeze(1)
        if len(rows) == 0:
            break
        multipliers = torch.arange(start, stop + 1, dtype=torch.float64, device=x.device).view(1, -1, 1)
        for chunk in rows.split(max(1, TOKENIZE_ELEMENTS // (multipliers.numel() * width))):
            chunk_valid = valid_used[chunk].unsqueeze(1)
            scaled = fractions[chunk].unsqueeze(1) * multipliers  # (chunk, block, width)
            rounded = scaled.round()
            error = torch.where(chunk_valid, (scaled - rounded).abs(), torch.zeros_like(scaled))
            error = error + torch.where(chunk_valid & (rounded < 1), 1.0, 0.0)  # every element >= 1 atom
            worst = error.amax(dim=-1)  # (chunk, block)
            fits = worst <= tolerance
            found = fits.any(dim=1)
            closest = worst.min(dim=1)
            best = torch.where(found, fits.to(torch.int8).argmax(dim=1), closest.indices)
            improve = found | (closest.values < best_error[chunk])
            chosen = rounded[torch.arange(len(chunk), device=x.device), best].clamp(min=1)
            chosen = torch.where(valid_used[chunk], chosen, torch.zeros_like(chosen)).to(torch.int64)
            counts[chunk] = torch.where(improve.unsqueeze(1), chosen, counts[chunk])
            best_error[chunk] = torch.where(improve, closest.values, best_error[chunk])
            exact[chunk] = found
        start = stop + 1
    counts = torch.cat([counts, torch.zeros(len(x), max_length - width, dtype=torch.int64, device=x.device)], dim=1)
    return FormulaTokens(ranks, counts, valid.sum(dim=1), exact)


def tokens_to_counts(ranks: torch.Tensor, counts: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """(batch, L) ranks (89 = none) and counts -> (batch, 89) int64 count vectors divided by their GCD."""
    valid = ranks < N_ELEMENTS
    divisor = torch.zeros(len(ranks), dtype=torch.int64, device=ranks.device)
    for column in torch.where(valid, counts, torch.zeros_like(counts)).unbind(dim=1):
        divisor = torch.gcd(divisor, column)
    divisor = divisor.clamp(min=1)
    position = torch.where(valid, order[ranks.clamp(max=N_ELEMENTS - 1)], torch.full_like(ranks, N_ELEMENTS))
    out = torch.zeros(len(ranks), N_ELEMENTS + 1, dtype=torch.int64, device=ranks.device)
    out.scatter_add_(1, position, torch.where(valid, counts, torch.zeros_like(counts)) // divisor.unsqueeze(1))
    return out[:, :N_ELEMENTS]


def log_normal(z: torch.Tensor, mean: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, diag(variance)) summed over the last dimension."""
    return -0.5 * (math.log(2 * math.pi) + variance.log() + (z - mean).pow(2) / variance).sum(dim=-1)


def kl_standard_normal(mean: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, variance) || N(0, I)) summed over the last dimension. (batch,)"""
    return 0.5 * (variance + mean.pow(2) - 1 - variance.log()).sum(dim=-1)


class MixturePrior(nn.Module):
    """p(z) = sum_k w_k N(z; m_k, diag(v_k)), every parameter learned with the rest of the model."""

    def __init__(self, n_components: int, latent_dim: int) -> None:
        super().__init__()
        self.means = nn.Parameter(torch.randn(n_components, latent_dim))  # (K, latent_dim)
        self.log_variances = nn.Parameter(torch.zeros(n_components, latent_dim))  # (K, latent_dim)
        self.logits = nn.Parameter(torch.zeros(n_components))  # (K,) mixture weights before softmax

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) for z (batch, latent_dim) -> (batch,)"""
        per_component = log_normal(z.unsqueeze(1), self.means, self.log_variances.exp())  # (batch, K)
        return torch.logsumexp(F.log_softmax(self.logits, dim=0) + per_component, dim=1)

    def sample(self, n: int, generator: torch.Generator | None = None, *, scale: float = 1.0) -> torch.Tensor:
        """(n, latent_dim) draws: a component by its weight, then its Gaussian (standard deviation * scale)."""
        weights = F.softmax(self.logits.detach(), dim=0)
        component = torch.multinomial(weights, n, replacement=True, generator=generator)
        eps = torch.randn((n, self.means.shape[1]), generator=generator, device=weights.device, dtype=weights.dtype)
        return self.means.detach()[component] + scale * (0.5 * self.log_variances.detach()[component]).exp() * eps


class SequenceEncoder(nn.Module):
    """Bidirectional GRU over (element, count, fraction) tokens, masked mean pool -> (mean, raw variance)."""

    def __init__(self, c: SequenceConfig) -> None:
        super().__init__()
        self.element = nn.Embedding(N_ELEMENTS + 1, c.embed_dim)  # ranks; 89 = padding
        self.count = nn.Embedding(c.max_count + 2, c.embed_dim)  # count classes, overflow, padding
        self.features = nn.Linear(2, c.embed_dim)  # atomic fraction and log(1 + count): exact beyond max_count
        self.gru = nn.GRU(c.embed_dim, c.hidden_dim, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(
            nn.Linear(2 * c.hidden_dim, c.hidden_dim), nn.ELU(), nn.Linear(c.hidden_dim, 2 * c.latent_dim)
        )

    def forward(self, tokens: FormulaTokens, count_class: torch.Tensor) -> torch.Tensor:
        mask = tokens.mask.unsqueeze(-1).to(self.features.weight.dtype)  # (batch, L, 1)
        counts = tokens.counts.to(mask.dtype)
        fraction = counts / counts.sum(dim=1, keepdim=True)
        features = torch.stack([fraction, torch.log1p(counts)], dim=-1)  # (batch, L, 2)
        embedded = self.element(tokens.ranks) + self.count(count_class) + self.features(features) * mask
        out, _ = self.gru(embedded)  # (batch, L, 2 hidden)
        pooled = (out * mask).sum(dim=1) / mask.sum(dim=1)
        return self.head(pooled)  # (batch, 2 latent_dim)


class SequenceDecoder(nn.Module):
    """Autoregressive GRU: per step an element rank (or end) given z and the tokens so far, then its count."""

    def __init__(self, c: SequenceConfig) -> None:
        super().__init__()
        self.config = c
        self.element = nn.Embedding(N_ELEMENTS + 1, c.embed_dim)  # ranks; 89 = begin (input) / end
        self.count = nn.Embedding(c.max_count + 2, c.embed_dim)  # count classes, overflow, begin
        self.initial = nn.Linear(c.latent_dim, c.decoder_layers * c.hidden_dim)
        self.gru = nn.GRU(c.embed_dim + c.latent_dim, c.hidden_dim, num_layers=c.decoder_layers, batch_first=True)
        self.element_head = nn.Linear(c.hidden_dim, N_ELEMENTS + 1)  # 89 ranks + end
        self.count_head = nn.Sequential(  # count class given the state and the element just chosen
            nn.Linear(c.hidden_dim + c.embed_dim, c.hidden_dim), nn.ELU(), nn.Linear(c.hidden_dim, c.max_count + 1)
        )

    def initial_state(self, z: torch.Tensor) -> torch.Tensor:
        c = self.config
        return torch.tanh(self.initial(z)).view(len(z), c.decoder_layers, c.hidden_dim).transpose(0, 1).contiguous()

    def element_mask(self, previous_rank: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """Allowed next tokens (..., 90): ranks above the previous one, end after the first step, only end at
        step max_length. previous_rank: (...) with -1 before the first element; step: broadcastable (...)."""
        ranks = torch.arange(N_ELEMENTS, device=previous_rank.device)
        elements = (ranks > previous_rank.unsqueeze(-1)) & (step < self.config.max_length).unsqueeze(-1)
        return torch.cat([elements, (step >= 1).unsqueeze(-1).expand(*elements.shape[:-1], 1)], dim=-1)

    def logits(
        self, z: torch.Tensor, tokens: FormulaTokens, count_class: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced logits: elements (batch, L + 1, 90) masked with -inf, counts (batch, L + 1, max_count + 1)."""
        c = self.config
        batch = len(z)
        begin = torch.full((batch, 1), N_ELEMENTS, dtype=torch.int64, device=z.device)
        target = torch.cat([tokens.ranks, begin], dim=1)  # (batch, L + 1): 89 = end from position `length` on
        previous = torch.cat([begin, tokens.ranks], dim=1)
        previous_count = torch.cat([torch.full_like(begin, c.max_count + 1), count_class], dim=1)
        inputs = self.element(previous) + self.count(previous_count)
        inputs = torch.cat([inputs, z.unsqueeze(1).expand(-1, c.max_length + 1, -1)], dim=-1)
        out, _ = self.gru(inputs, self.initial_state(z))  # (batch, L + 1, hidden)
        step = torch.arange(c.max_length + 1, device=z.device).expand(batch, -1)
        previous_rank = torch.where(previous == N_ELEMENTS, -1, previous)
        element_logits = self.element_head(out).masked_fill(~self.element_mask(previous_rank, step), float("-inf"))
        chosen = self.element(target)
        count_logits = self.count_head(torch.cat([out, chosen], dim=-1))
        return element_logits, count_logits

    def log_likelihood(self, z: torch.Tensor, tokens: FormulaTokens, count_class: torch.Tensor) -> torch.Tensor:
        """log p(tokens | z) in nats: (batch,)"""
        element_logits, count_logits = self.logits(z, tokens, count_class)
        pad = torch.full_like(tokens.length, N_ELEMENTS).unsqueeze(1)
        target = torch.cat([tokens.ranks, pad], dim=1)  # end token at position length
        steps = torch.arange(self.config.max_length + 1, device=z.device).unsqueeze(0)
        element_lp = F.log_softmax(element_logits, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
        element_lp = torch.where(steps <= tokens.length.unsqueeze(1), element_lp, torch.zeros_like(element_lp))
        count_target = torch.cat([count_class, torch.zeros_like(pad)], dim=1).clamp(max=self.config.max_count)
        count_lp = F.log_softmax(count_logits, dim=-1).gather(-1, count_target.unsqueeze(-1)).squeeze(-1)
        count_lp = torch.where(steps < tokens.length.unsqueeze(1), count_lp, torch.zeros_like(count_lp))
        return element_lp.sum(dim=1) + count_lp.sum(dim=1)

    @torch.no_grad()
    def greedy(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy decoding (element argmax, then count argmax): ranks (n, L) with 89 = none, count classes (n, L)."""
        c = self.config
        n = len(z)
        ranks = torch.full((n, c.max_length), N_ELEMENTS, dtype=torch.int64, device=z.device)
        classes = torch.zeros((n, c.max_length), dtype=torch.int64, device=z.device)
        previous = torch.full((n,), N_ELEMENTS, dtype=torch.int64, device=z.device)
        previous_count = torch.full((n,), c.max_count + 1, dtype=torch.int64, device=z.device)
        previous_rank = torch.full((n,), -1, dtype=torch.int64, device=z.device)
        done = torch.zeros(n, dtype=torch.bool, device=z.device)
        hidden = self.initial_state(z)
        for step in range(c.max_length + 1):
            inputs = torch.cat([self.element(previous) + self.count(previous_count), z], dim=-1).unsqueeze(1)
            out, hidden = self.gru(inputs, hidden)
            out = out[:, 0]
            mask = self.element_mask(previous_rank, torch.full((n,), step, device=z.device))
            choice = self.element_head(out).masked_fill(~mask, float("-inf")).argmax(dim=-1)
            done = done | (choice == N_ELEMENTS)
            if step == c.max_length or bool(done.all()):
                break
            count_class = self.count_head(torch.cat([out, self.element(choice)], dim=-1)).argmax(dim=-1)
            ranks[:, step] = torch.where(done, N_ELEMENTS, choice)
            classes[:, step] = torch.where(done, 0, count_class)
            previous, previous_count, previous_rank = choice, count_class, choice
        return ranks, classes


def mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    """Linear -> ELU -> Linear -> ELU -> Linear (the paper's block)."""
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, n_out)
    )


class SequenceVAE(nn.Module):
    """Encoder q(z|x), autoregressive decoder p(tokens|z), prior p(z), classifier q(y|x) and class prior p(y)."""

    def __init__(self, config: SequenceConfig, class_prior: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = c = config
        order = element_order(c.element_order)
        rank_of = torch.empty_like(order)
        rank_of[order] = torch.arange(N_ELEMENTS)
        self.register_buffer("order", order)  # (89,) vector position of each rank
        self.register_buffer("rank_of", rank_of)  # (89,) rank of each vector position
        self.encoder = SequenceEncoder(c)
        self.decoder = SequenceDecoder(c)
        self.classifier = mlp(c.n_elements, c.hidden_dim, c.n_classes)
        self.prior = MixturePrior(c.n_components, c.latent_dim) if c.prior == "mog" else None
        prior = torch.full((c.n_classes,), 1.0 / c.n_classes) if class_prior is None else torch.as_tensor(class_prior)
        if prior.shape != (c.n_classes,) or not torch.isfinite(prior).all() or (prior < 0).any() or prior.sum() <= 0:
            raise ValueError(f"class_prior must be {c.n_classes} non-negative frequencies, got {prior.tolist()}")
        self.register_buffer("class_prior", (prior / prior.sum()).float())  # (n_classes,) p(y)

    # --- tokens -------------------------------------------------------------------------------------------
    def tokenize(self, x: torch.Tensor) -> FormulaTokens:
        """x: (batch, 89) fractions -> reduced formula tokens (see :func:`formula_tokens`)."""
        c = self.config
        return formula_tokens(x, self.rank_of, max_length=c.max_length, max_total=c.max_total)

    def count_classes(self, tokens: FormulaTokens) -> torch.Tensor:
        """Counts -> classes: count k in 1..max_count is class k - 1, larger is max_count (overflow); padding
        is max_count + 1. (batch, L) int64"""
        c = self.config
        classes = tokens.counts.clamp(max=c.max_count + 1) - 1
        return torch.where(tokens.mask, classes, torch.full_like(classes, c.max_count + 1))

    # --- the VAE ------------------------------------------------------------------------------------------
    def _encode_tokens(self, tokens: FormulaTokens) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw = self.encoder(tokens, self.count_classes(tokens)).split(self.config.latent_dim, dim=-1)
        return mean, F.softplus(raw) + 1e-8

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (batch, 89) rows summing to 1 -> mean and variance of q(z|x), each (batch, latent_dim)."""
        return self._encode_tokens(self.tokenize(x))

    @staticmethod
    def reparameterize(
        mean: torch.Tensor, variance: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z = mean + sqrt(variance) * eps, eps ~ N(0, I). (batch, latent_dim)"""
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + variance.sqrt() * eps

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z): (batch,)"""
        if self.prior is None:
            return log_normal(z, torch.zeros_like(z), torch.ones_like(z))
        return self.prior.log_prob(z)

    def kl(self, mean: torch.Tensor, variance: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) || p(z)) per material: exact for N(0, I), else log q(z|x) - log p(z) at the sample z."""
        if self.prior is None:
            return kl_standard_normal(mean, variance)
        return log_normal(z, mean, variance) - self.prior.log_prob(z)

    def negative_elbo_bound(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """Batch means in nats per material: (nelbo, kl, rec) with nelbo = rec + kl >= -log p(x)."""
        tokens = self.tokenize(x)
        if not bool(tokens.exact.all()):
            row = int((~tokens.exact).nonzero()[0])
            raise ValueError(
                f"x row {row} has no integral formula with at most max_total={self.config.max_total} atoms per "
                "formula unit; the likelihood of a non-formula is undefined"
            )
        mean, variance = self._encode_tokens(tokens)
        z = self.reparameterize(mean, variance, generator)
        rec = -self.decoder.log_likelihood(z, tokens, self.count_classes(tokens)).mean()
        kl = self.kl(mean, variance, z).mean()
        return rec + kl, kl, rec

    def loss(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None):
        """loss = rec + kl_weight * kl + class_weight * cross-entropy(q(y|x), y); summaries' nelbo = rec + kl."""
        nelbo, kl, rec = self.negative_elbo_bound(x, generator)
        class_logits = self.classify(x)
        ce = F.cross_entropy(class_logits, y)
        loss = rec + self.config.kl_weight * kl + self.config.class_weight * ce
        accuracy = (class_logits.argmax(dim=-1) == y).float().mean()
        summaries = {"loss": loss, "nelbo": nelbo, "kl": kl, "rec": rec, "ce": ce, "accuracy": accuracy}
        return loss, summaries

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """q(y|x) logits (batch, n_classes)."""
        return self.classifier(x)

    # --- decoding and sampling ----------------------------------------------------------------------------
    @torch.no_grad()
    def decode_tokens(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy tokens of z (n, latent_dim): ranks (n, L) (89 = none) and count classes (n, L)."""
        return self.decoder.greedy(z)

    @torch.no_grad()
    def decode_counts(self, z: torch.Tensor, *, return_overflow: bool = False):
        """Greedy decoding of z (n, latent_dim) to reduced integer counts (n, 89) int64 (GCD 1 per row).

        A row whose decoding used the overflow class (a count above ``max_count``, which the vocabulary cannot
        name) is returned all zeros (no formula); ``return_overflow=True`` also returns that (n,) bool mask.
        """
        ranks, classes = self.decode_tokens(z)
        overflow = ((classes == self.config.max_count) & (ranks < N_ELEMENTS)).any(dim=1)
        counts = tokens_to_counts(ranks, classes + 1, self.order)
        counts[overflow] = 0
        return (counts, overflow) if return_overflow else counts

    @torch.no_grad()
    def sample_prior(self, n: int, generator: torch.Generator | None = None, *, scale: float = 1.0) -> torch.Tensor:
        """n draws z (n, latent_dim) from p(z) (``scale`` < 1 shrinks each draw towards its component mean).

        The generator must live on the model's device."""
        check_int("n", n, minimum=1)
        check_float("scale", scale, low=0.0)
        device, dtype = self.class_prior.device, self.class_prior.dtype
        if self.prior is None:
            return scale * torch.randn((n, self.config.latent_dim), generator=generator, device=device, dtype=dtype)
        return self.prior.sample(n, generator, scale=scale)

    def n_parameters(self) -> dict[str, int]:
        """Trainable parameters per network and in total."""
        parts = {"encoder": self.encoder, "decoder": self.decoder, "classifier": self.classifier}
        if self.prior is not None:
            parts["prior"] = self.prior
        counts = {name: sum(p.numel() for p in module.parameters()) for name, module in parts.items()}
        counts["total"] = sum(counts.values())
        return counts
