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

from dataclasses import asdict
from pathlib import Path

from matvae.data.dataset import MaterialsDataset
from matvae.models import AnyConfig, AnyModel
from matvae.training import (
    RESUMABLE_CHANGES,
    Checkpoint,
    TrainConfig,
    TrainResult,
    data_fingerprint,
    load_checkpoint,
    resolve_device,
    save_checkpoint,
    train,
)

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


def train_or_load(
    train_data: MaterialsDataset,
    test_data: MaterialsDataset,
    model_config: AnyConfig,
    config: TrainConfig,
    *,
    checkpoint_path: str | Path,
    use_pretrained: bool = True,
    show_progress: bool | None = None,
) -> TrainResult:
    """:func:`train` with one shortcut: when ``checkpoint_path`` does not exist yet and a model shipped with
    matvae (:mod:`matvae.pretrained`) was trained with these configs on these data, its weights are copied to
    ``checkpoint_path`` and returned (status "pretrained")."""
    if use_pretrained and not Path(checkpoint_path).exists():
        fingerprint = data_fingerprint(train_data, test_data)
        ours = {k: v for k, v in asdict(config).items() if k not in RESUMABLE_CHANGES}
        for shipped in shipped_checkpoints():
            same = (
                shipped.model_config == model_config
                and shipped.train_config is not None
                and {k: v for k, v in asdict(shipped.train_config).items() if k not in RESUMABLE_CHANGES} == ours
                and shipped.epoch == config.epochs
                and shipped.data_fingerprint == fingerprint
            )
            if same:  # copy the shipped weights to checkpoint_path, where the later chapters look for the model
                save_checkpoint(shipped, checkpoint_path, weights_only=True)
                model = shipped.build_model(resolve_device(config.device))
                return TrainResult(model, shipped.history, "pretrained", shipped.epoch, shipped.elapsed_seconds, shipped.device)
    return train(train_data, test_data, model_config, config, checkpoint_path=checkpoint_path, show_progress=show_progress)


def describe_training(result: TrainResult, checkpoint_path: str | Path) -> str:
    """One sentence saying how a :class:`TrainResult` came about (trained, resumed, loaded or shipped); plain text,
    for a chapter to glue into its prose."""
    minutes = result.elapsed_seconds / 60
    where = f"{minutes:.1f} min on {result.device}"
    name = Path(checkpoint_path).as_posix()
    return {
        "trained": f"Trained in this run for {result.epochs} epochs ({where}); checkpoint {name}.",
        "resumed": f"Resumed from {name} and trained to {result.epochs} epochs ({where} in all).",
        "loaded": f"Loaded {name}, which holds this configuration trained for {result.epochs} epochs ({where}).",
        "pretrained": f"Loaded the weights shipped with matvae, trained with this configuration on these data for "
        f"{result.epochs} epochs ({where}).",
    }[result.status]
