"""Model families and their registry: a checkpoint names its family, and the family rebuilds the model.

=============  =======================================  ==========================================
family         config                                   model
=============  =======================================  ==========================================
``paper``      :class:`matvae.model.ModelConfig`         :class:`matvae.model.VAE` (the reproduction)
``sequence``   :class:`matvae.models.sequence.SequenceConfig`  :class:`matvae.models.sequence.SequenceVAE`
=============  =======================================  ==========================================

Every family's model takes ``(config, class_prior)``, owns its loss (``loss(x, y, generator) -> (loss,
summaries)`` with the keys of :data:`matvae.training.METRICS`), encodes ``x`` (batch, 89) to the mean and
variance of q(z|x) and has a ``config`` attribute; :mod:`matvae.sampling` gives both families one API.
To add a family: a module here with its config dataclass and model, and one line in :data:`FAMILIES`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from matvae.model import VAE, ModelConfig
from matvae.models.sequence import SequenceConfig, SequenceVAE
from matvae.params import show

FAMILIES: dict[str, tuple[type, type[nn.Module]]] = {
    "paper": (ModelConfig, VAE),
    "sequence": (SequenceConfig, SequenceVAE),
}
"""family name -> (config class, model class)."""

AnyConfig = ModelConfig | SequenceConfig
AnyModel = VAE | SequenceVAE


def family_of(config_or_model: Any) -> str:
    """The family name of a config or a model; ``ValueError`` for anything else."""
    config = getattr(config_or_model, "config", config_or_model)
    for name, (config_class, _) in FAMILIES.items():
        if type(config) is config_class:
            return name
    raise ValueError(
        f"expected a model or model config of one of the families {tuple(FAMILIES)}, "
        f"got {type(config_or_model).__name__} {show(config_or_model)}"
    )


def check_family(family: str) -> str:
    if family not in FAMILIES:
        raise ValueError(f"model family must be one of {tuple(FAMILIES)}, got {family!r}")
    return family


def config_from_dict(family: str, values: dict) -> AnyConfig:
    """Rebuild a config stored in a checkpoint (``dataclasses.asdict`` of it)."""
    config_class, _ = FAMILIES[check_family(family)]
    return config_class(**values)


def config_to_dict(config: AnyConfig) -> dict:
    family_of(config)
    return asdict(config)


def build_model(config: AnyConfig, class_prior: torch.Tensor | None = None) -> AnyModel:
    """A new, untrained model of ``config``'s family."""
    _, model_class = FAMILIES[family_of(config)]
    return model_class(config, class_prior)


def is_model(value: Any) -> bool:
    """Whether ``value`` is a model of a registered family."""
    return isinstance(value, tuple(model_class for _, model_class in FAMILIES.values()))
