"""Weights shipped inside the package, trained on the embedded snapshot by the book's paper-cpu run.

``load_pretrained()`` gives a reader a trained model without training: encode, sample, reconstruct.

``"sequence"`` (the default)
    The "Beyond the paper" chapter's model (:mod:`matvae.models.sequence`): a GRU encoder over the formula's
    (element, count) tokens, an autoregressive GRU decoder that emits integer formulas, a learned
    mixture-of-Gaussians prior; its latent code round-trips.
``"paper"`` (alias ``"vae"``)
    The reproduction's model: the paper's architecture (latent 10, hidden 100), KL weight beta = 0.03.
``"paper-elbo"`` (alias ``"elbo"``)
    The same trained with the paper's exact objective (beta = 1); its latent code has collapsed, so it is
    shipped for comparison, not for use.

Each file is a weights-only checkpoint (configs, weights, history and the fingerprint of the training data;
no optimiser state), written by :func:`export_pretrained` from the model chapter's checkpoints.
"""

from __future__ import annotations

from pathlib import Path

from matvae.models import AnyModel
from matvae.training import Checkpoint, load_checkpoint, resolve_device, save_checkpoint

PRETRAINED_DIR: Path = Path(__file__).with_name("pretrained")
PRETRAINED: dict[str, str] = {"sequence": "sequence.pt", "paper": "vae.pt", "paper-elbo": "elbo.pt"}
"""Shipped model name -> file in :data:`PRETRAINED_DIR`."""
ALIASES: dict[str, str] = {"vae": "paper", "elbo": "paper-elbo"}
"""Names of matvae 0.1 that still work."""
DEFAULT_PRETRAINED: str = "sequence"


def pretrained_path(name: str = DEFAULT_PRETRAINED) -> Path:
    name = ALIASES.get(name, name) if isinstance(name, str) else name
    if not isinstance(name, str) or name not in PRETRAINED:
        raise ValueError(f"name must be one of {tuple(PRETRAINED) + tuple(ALIASES)}, got {name!r}")
    return PRETRAINED_DIR / PRETRAINED[name]


def pretrained_checkpoint(name: str = DEFAULT_PRETRAINED) -> Checkpoint:
    """A shipped checkpoint (configs, weights, history and the fingerprint of its training data)."""
    path = pretrained_path(name)
    if not path.is_file():
        raise ValueError(f"this matvae installation has no pretrained weights {path.name!r}")
    return load_checkpoint(path)


def shipped_checkpoints() -> list[Checkpoint]:
    """Every shipped checkpoint that is present."""
    return [load_checkpoint(pretrained_path(name)) for name in PRETRAINED if pretrained_path(name).is_file()]


def load_pretrained(name: str = DEFAULT_PRETRAINED, *, device: str = "cpu") -> AnyModel:
    """A shipped model in eval mode (see the module docstring for the names)."""
    return pretrained_checkpoint(name).build_model(resolve_device(device))


def export_pretrained(checkpoint_path: str | Path, name: str = DEFAULT_PRETRAINED) -> Path:
    """Write a weights-only copy of a finished checkpoint (a few hundred KB) as the shipped ``name``."""
    destination = pretrained_path(name)
    save_checkpoint(load_checkpoint(checkpoint_path), destination, weights_only=True)
    return destination
