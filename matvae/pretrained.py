"""Weights shipped inside the package: the paper's model trained on the embedded snapshot.

``load_pretrained()`` gives a reader a trained model without training: encode, sample, reconstruct. The file
is a weights-only checkpoint (configs, weights, history; no optimiser state), written by
:func:`export_pretrained` from the paper-scale run of the model notebook.
"""

from __future__ import annotations

from pathlib import Path

from matvae.model import VAE
from matvae.train import Checkpoint, load_checkpoint, save_checkpoint

PRETRAINED_PATH: Path = Path(__file__).with_name("pretrained") / "vae-paper.pt"


def pretrained_checkpoint() -> Checkpoint:
    """The shipped checkpoint (configs, weights, history and the fingerprint of its training data)."""
    if not PRETRAINED_PATH.is_file():
        raise ValueError("this matvae installation has no pretrained weights (matvae/pretrained/vae-paper.pt)")
    return load_checkpoint(PRETRAINED_PATH)


def load_pretrained(*, device: str = "cpu") -> VAE:
    """The paper's model (latent 10, hidden 100, 2,000 epochs) trained on the embedded snapshot, in eval mode."""
    from matvae.train import resolve_device

    return pretrained_checkpoint().build_model(resolve_device(device))


def export_pretrained(checkpoint_path: str | Path, destination: str | Path = PRETRAINED_PATH) -> None:
    """Write a weights-only copy of a finished checkpoint (tens to hundreds of KB) for shipping."""
    save_checkpoint(load_checkpoint(checkpoint_path), destination, weights_only=True)
