"""The paper's VAE with a classifier for the number of decomposition components (section 3).

In the vocabulary of the CS236 semi-supervised VAE: an encoder q(z|x), a decoder p(x|z, y) with one Bernoulli
logit per element (the normalised vector x is the target, as with grey-scale MNIST), a classifier q(y|x),
priors z ~ N(0, I) and y ~ the training set's class frequencies. Every network is
Linear -> ELU -> Linear -> ELU -> Linear with one hidden width shared by all layers of all three networks.
The model owns its loss: ``negative_elbo_bound(x, y) -> (nelbo, kl, rec)`` and
``loss(x, y) -> (loss, summaries)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from matvae.data.dataset import MAX_N_CLASSES
from matvae.elements import N_ELEMENTS
from matvae.params import check_choice, check_float, check_int, store_checked

VARIANCES: tuple[str, ...] = ("softplus", "exp")

# Largest sizes a config accepts, checked before any weight is allocated: a hidden width of 10,000 already
# makes ~600 million parameters (2.4 GB of float32); the paper's widths are 50 .. 500.
MAX_N_ELEMENTS: int = 1000
MAX_LATENT_DIM: int = 1000
MAX_HIDDEN_DIM: int = 10_000
MAX_LOSS_WEIGHT: float = 1e6


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and loss weights of :class:`VAE`; stored in every checkpoint."""

    n_elements: int = N_ELEMENTS  # input length: the element vocabulary (89)
    latent_dim: int = 10  # dimension of z (the paper: 10)
    hidden_dim: int = 100  # width of every hidden layer of every network (the paper's tuned value: 100)
    n_classes: int = 10  # classes Y = 0..9 decomposition components
    variance: str = "softplus"  # encoder variance v = softplus(h) + 1e-8 (CS236), or "exp": v = exp(h)
    class_weight: float = 1.0  # weight of the classifier's cross-entropy added to the negative ELBO
    kl_weight: float = 1.0  # beta: weight of the KL term in the training loss; 1 is the ELBO (the paper)

    def __post_init__(self) -> None:
        store_checked(
            self,
            n_elements=check_int("n_elements", self.n_elements, minimum=1, maximum=MAX_N_ELEMENTS),
            latent_dim=check_int("latent_dim", self.latent_dim, minimum=1, maximum=MAX_LATENT_DIM),
            hidden_dim=check_int("hidden_dim", self.hidden_dim, minimum=1, maximum=MAX_HIDDEN_DIM),
            n_classes=check_int("n_classes", self.n_classes, minimum=2, maximum=MAX_N_CLASSES),
            variance=check_choice("variance", self.variance, VARIANCES),
            class_weight=check_float("class_weight", self.class_weight, low=0.0, high=MAX_LOSS_WEIGHT),
            kl_weight=check_float("kl_weight", self.kl_weight, low=0.0, high=MAX_LOSS_WEIGHT),
        )


def mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    """Linear -> ELU -> Linear -> ELU -> Linear, the paper's block."""
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, n_out))


def kl_normal(qm: torch.Tensor, qv: torch.Tensor, pm: torch.Tensor, pv: torch.Tensor) -> torch.Tensor:
    """KL(N(qm, qv) || N(pm, pv)) for diagonal Gaussians, summed over the last dimension. (batch,)"""
    element = 0.5 * (torch.log(pv) - torch.log(qv) + qv / pv + (qm - pm).pow(2) / pv - 1)
    return element.sum(dim=-1)


def log_bernoulli_with_logits(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """sum_j [x_j log sigmoid(l_j) + (1 - x_j) log(1 - sigmoid(l_j))], x in [0, 1]. (batch,)"""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)


class VAE(nn.Module):
    """Encoder q(z|x), decoder p(x|z, y), classifier q(y|x) and the class prior p(y)."""

    def __init__(self, config: ModelConfig, class_prior: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoder = mlp(c.n_elements, c.hidden_dim, 2 * c.latent_dim)
        self.decoder = mlp(c.latent_dim + c.n_classes, c.hidden_dim, c.n_elements)
        self.classifier = mlp(c.n_elements, c.hidden_dim, c.n_classes)
        prior = torch.full((c.n_classes,), 1.0 / c.n_classes) if class_prior is None else torch.as_tensor(class_prior)
        if prior.shape != (c.n_classes,) or not torch.isfinite(prior).all() or (prior < 0).any() or prior.sum() <= 0:
            raise ValueError(f"class_prior must be {c.n_classes} non-negative frequencies, got {prior.tolist()}")
        self.register_buffer("class_prior", (prior / prior.sum()).float())  # (n_classes,) p(y)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (batch, 89) rows summing to 1 -> mean and variance of q(z|x), each (batch, latent_dim)."""
        h = self.encoder(x)
        mean, raw = h.split(self.config.latent_dim, dim=-1)
        variance = F.softplus(raw) + 1e-8 if self.config.variance == "softplus" else torch.exp(raw)
        return mean, variance

    @staticmethod
    def reparameterize(mean: torch.Tensor, variance: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mean + sqrt(variance) * eps, eps ~ N(0, I). (batch, latent_dim)"""
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + variance.sqrt() * eps

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """z: (batch, latent_dim), y: (batch,) int classes -> Bernoulli logits (batch, 89)."""
        y_onehot = F.one_hot(y, self.config.n_classes).to(z.dtype)
        return self.decoder(torch.cat([z, y_onehot], dim=-1))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """q(y|x) logits (batch, n_classes)."""
        return self.classifier(x)

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None):
        """-> (decoder logits (batch, 89), mean, variance)."""
        mean, variance = self.encode(x)
        z = self.reparameterize(mean, variance, generator)
        return self.decode(z, y), mean, variance

    def negative_elbo_bound(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None):
        """Batch means, in nats per material, of the negative ELBO and its terms (one sample of z).

        nelbo = rec + kl, rec = -E_q[log p(x|z, y)], kl = KL(q(z|x) || N(0, I))   (the ELBO of section 3)
        """
        logits, mean, variance = self(x, y, generator)
        rec = -log_bernoulli_with_logits(x, logits).mean()
        kl = kl_normal(mean, variance, torch.zeros_like(mean), torch.ones_like(variance)).mean()
        return rec + kl, kl, rec

    def loss(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None):
        """loss = rec + kl_weight * kl + class_weight * cross-entropy(q(y|x), y).

        With ``kl_weight = 1`` the first two terms are the negative ELBO (the paper's objective); a smaller
        weight is a beta-VAE. ``summaries`` is a flat dict of scalars; its ``nelbo`` is always rec + kl.
        """
        nelbo, kl, rec = self.negative_elbo_bound(x, y, generator)
        class_logits = self.classify(x)
        ce = F.cross_entropy(class_logits, y)
        if self.config.kl_weight == 1.0:
            loss = nelbo + self.config.class_weight * ce
        else:
            loss = rec + self.config.kl_weight * kl + self.config.class_weight * ce
        accuracy = (class_logits.argmax(dim=-1) == y).float().mean()
        summaries = {"loss": loss, "nelbo": nelbo, "kl": kl, "rec": rec, "ce": ce, "accuracy": accuracy}
        return loss, summaries

    def n_parameters(self) -> dict[str, int]:
        """Trainable parameters per network and in total."""
        counts = {name: sum(p.numel() for p in getattr(self, name).parameters()) for name in ("encoder", "decoder", "classifier")}
        counts["total"] = sum(counts.values())
        return counts

