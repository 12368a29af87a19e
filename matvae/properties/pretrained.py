"""Train the formation-energy network for a split, or reuse the one shipped with matvae when it fits.

The shipped network (:data:`matvae.properties.network.SHIPPED_ENERGY_NET`) was trained by
``python -m matvae.properties.network`` on the embedded snapshot split by formula with the default
:class:`~matvae.data.DataConfig` (test fraction 0.2, seed 0). :func:`train_or_load_energy_net` reuses it for
exactly those data and that configuration, and otherwise trains (resuming from ``checkpoint_path``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from matvae.data.dataset import DataConfig, SplitData
from matvae.properties.network import (
    SHIPPED_ENERGY_NET,
    EnergyNet,
    EnergyNetConfig,
    load_energy_net,
    predict_energy,
    read_energy_net_file,
    save_energy_net,
    train_energy_net,
)


@dataclass(frozen=True)
class EnergyNetResult:
    """A formation-energy network and how it came about."""

    model: EnergyNet
    history: dict[str, list[float]]  # per epoch: train_loss, test_mae, test_rmse (eV/atom), seconds
    status: str  # "trained" (now, possibly resumed), "loaded" (a finished file at the path), "pretrained" (shipped)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(n, 89) fractions -> (n,) formation energy per atom, eV/atom (an oracle's energy model)."""
        return predict_energy(self.model, x)

    def describe(self) -> str:
        """One sentence for the chapter."""
        epochs = len(self.history.get("test_mae", []))
        minutes = sum(self.history.get("seconds", [])) / 60
        mae = self.history["test_mae"][-1] if self.history.get("test_mae") else float("nan")
        how = {
            "trained": f"Trained in this run ({epochs} epochs, {minutes:.0f} min of training in all)",
            "loaded": f"Loaded from its checkpoint ({epochs} epochs, {minutes:.0f} min of training)",
            "pretrained": f"The network shipped with matvae, trained with this configuration on these data ({epochs} epochs, "
            f"{minutes:.0f} min on a 2-core CPU)",
        }[self.status]
        return f"{how}; {sum(p.numel() for p in self.model.parameters()):,} parameters; test MAE after the last epoch {mae:.3f} eV/atom."


def shipped_applies(split: SplitData, config: EnergyNetConfig) -> bool:
    """The shipped network was trained with ``config`` on the data of ``split``."""
    if not SHIPPED_ENERGY_NET.is_file() or split.config != DataConfig():
        return False
    return read_energy_net_file(SHIPPED_ENERGY_NET).get("config") == asdict(config)


def train_or_load_energy_net(
    split: SplitData,
    energy: np.ndarray,
    config: EnergyNetConfig,
    *,
    checkpoint_path: str | Path,
    use_pretrained: bool = True,
    show_progress: bool | None = None,
) -> EnergyNetResult:
    """The network for ``split`` (``energy``: (n,) eV/atom for every row of ``split.dataset``).

    A finished weights-only file at ``checkpoint_path`` holding ``config`` is loaded; a training checkpoint is
    resumed (and refused if written with another config); with nothing there and ``use_pretrained``, the
    shipped network is copied there when :func:`shipped_applies`; otherwise the network is trained.
    """
    energy = np.asarray(energy, dtype=np.float64)
    if energy.shape != (len(split.dataset),):
        raise ValueError(f"energy must have one value per row of the dataset ({len(split.dataset)}), got {energy.shape}")
    path = Path(checkpoint_path)
    status = "trained"
    if path.exists():
        saved = read_energy_net_file(path)
        if saved.get("config") == asdict(config) and int(saved.get("epoch", 0)) >= config.epochs:
            status = "loaded"
        if "optimizer" not in saved:
            if saved.get("config") != asdict(config):
                raise ValueError(f"{path.name!r} holds a network with another config ({saved.get('config')}); use another path")
            return EnergyNetResult(load_energy_net(path), dict(saved.get("history") or {}), "loaded")
    elif use_pretrained and shipped_applies(split, config):
        model = load_energy_net(SHIPPED_ENERGY_NET)
        history = dict(read_energy_net_file(SHIPPED_ENERGY_NET).get("history") or {})
        save_energy_net(model, path, history=history)
        return EnergyNetResult(model, history, "pretrained")
    x = split.dataset.x
    model, history = train_energy_net(
        x[split.train_rows], energy[split.train_rows], x[split.test_rows], energy[split.test_rows], config,
        checkpoint_path=path, show_progress=show_progress,
    )
    return EnergyNetResult(model, history, status)
