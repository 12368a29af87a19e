"""Formation energy from composition: a compact attention network over (element, fraction) pairs.

In the spirit of Roost (Goodall & Lee 2020) and CrabNet (Wang et al. 2021). Each present element i of a
row x (atomic fractions f_i) becomes a token h_i = E[element_i] + W [sin(w f_i), cos(w f_i),
sin(w' log f_i), cos(w' log f_i)] (a learned embedding plus a Fourier encoding of the fraction and of its
logarithm); pre-norm transformer encoder layers mix the tokens (a padding mask hides absent ones);
pooling sum_i f_i h_i feeds an MLP that predicts the normalised target (y - mean) / std. Training: L1 loss
on the normalised target, AdamW, one-cycle (warm-up + cosine) learning rate, gradient clipping, and an
exponential moving average (EMA) of the weights that is evaluated and returned.

Units: energies in eV/atom throughout; ``x`` is (batch, 89) atomic fractions over
:data:`matvae.elements.ELEMENTS` (rows are renormalised to sum to 1).
"""

from __future__ import annotations

import argparse
import io
import math
import pickle
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from matvae.elements import N_ELEMENTS
from matvae.files import read_checked, write_checked
from matvae.params import check_float, check_int, check_seed
from matvae.progress import progress_bar

KIND = "energy-net"  # the checked-file kind of checkpoints and weights-only files
SHIPPED_ENERGY_NET = Path(__file__).parent.parent / "pretrained" / "formation_energy.pt"
MAX_PRESENT_LIMIT = 12  # most elements per row any config may accept


@dataclass(frozen=True)
class EnergyNetConfig:
    """Sizes and training settings of :class:`EnergyNet`; stored in every checkpoint and weights file."""

    max_present: int = 12  # most elements with a nonzero fraction per row; more is refused (ValueError)
    embed_dim: int = 128  # d: width of element embeddings, tokens and attention layers
    n_layers: int = 3  # transformer encoder layers
    n_heads: int = 4  # attention heads per layer (must divide embed_dim)
    ff_dim: int = 256  # hidden width of each layer's feed-forward block
    n_frequencies: int = 16  # Fourier frequencies for the fraction and for its logarithm
    head_dim: int = 256  # hidden width of the two-layer MLP head after pooling
    dropout: float = 0.0  # dropout inside the encoder layers
    epochs: int = 20  # passes over the training rows
    batch_size: int = 256  # rows per optimiser step
    learning_rate: float = 1e-3  # peak AdamW learning rate of the one-cycle schedule
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    warmup_fraction: float = 0.05  # share of all steps spent warming the learning rate up (then cosine down)
    clip_norm: float = 1.0  # gradient norm clip; 0 turns clipping off
    ema_decay: float = 0.999  # per-step decay of the weight average that is evaluated; 0 uses the raw weights
    seed: int = 0  # seeds initial weights, shuffling and dropout

    def __post_init__(self) -> None:
        check_int("max_present", self.max_present, minimum=1, maximum=MAX_PRESENT_LIMIT)
        check_int("embed_dim", self.embed_dim, minimum=1, maximum=4096)
        check_int("n_layers", self.n_layers, minimum=0, maximum=32)
        check_int("n_heads", self.n_heads, minimum=1, maximum=self.embed_dim)
        if self.embed_dim % self.n_heads:
            raise ValueError(f"n_heads must divide embed_dim, got n_heads={self.n_heads} and embed_dim={self.embed_dim}")
        check_int("ff_dim", self.ff_dim, minimum=1, maximum=16384)
        check_int("n_frequencies", self.n_frequencies, minimum=1, maximum=256)
        check_int("head_dim", self.head_dim, minimum=1, maximum=16384)
        check_float("dropout", self.dropout, low=0.0, high=1.0, high_inclusive=False)
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_float("learning_rate", self.learning_rate, low=0.0, low_inclusive=False, high=1.0)
        check_float("weight_decay", self.weight_decay, low=0.0, high=1.0)
        check_float("warmup_fraction", self.warmup_fraction, low=0.0, high=1.0, high_inclusive=False)
        check_float("clip_norm", self.clip_norm, low=0.0)
        check_float("ema_decay", self.ema_decay, low=0.0, high=1.0, high_inclusive=False)
        check_seed("seed", self.seed)


def check_fractions(x, *, max_present: int = MAX_PRESENT_LIMIT) -> np.ndarray:
    """``x`` as a (n, 89) float array after checks; ``ValueError`` naming the first bad row otherwise.

    Refused: not 2-D, not 89 columns, non-finite or negative entries, rows that sum to 0, rows with more
    than ``max_present`` nonzero entries."""
    x = np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x, dtype=float)
    if x.ndim != 2 or x.shape[1] != N_ELEMENTS:
        raise ValueError(f"x must be (n, {N_ELEMENTS}) element fractions, got shape {x.shape}")
    for bad, what in ((~np.isfinite(x), "a non-finite entry"), (x < 0, "a negative entry")):
        if bad.any():
            raise ValueError(f"x row {int(np.argmax(bad.any(axis=1)))} has {what}")
    if (x.sum(axis=1) <= 0).any():
        raise ValueError(f"x row {int(np.argmax(x.sum(axis=1) <= 0))} sums to 0: no element present")
    n_present = (x > 0).sum(axis=1)
    if (n_present > max_present).any():
        row = int(np.argmax(n_present > max_present))
        raise ValueError(f"x row {row} has {n_present[row]} elements, more than max_present={max_present}")
    return x


class EnergyNet(nn.Module):
    """Attention over the present elements of a composition; predicts formation energy in eV/atom."""

    def __init__(self, config: EnergyNetConfig, *, target_mean: float = 0.0, target_std: float = 1.0) -> None:
        super().__init__()
        self.config = config
        d = config.embed_dim
        self.embedding = nn.Embedding(N_ELEMENTS, d)  # (89, d) learned element vectors
        # angular frequencies, geometric: pi..1000 pi for f in [0, 1], 0.05 pi..10 pi for log f in [-7, 0]
        steps = torch.linspace(0.0, 1.0, config.n_frequencies)
        self.register_buffer("frequencies", math.pi * 1000.0**steps)
        self.register_buffer("log_frequencies", math.pi * 0.05 * 200.0**steps)
        self.fraction_encoder = nn.Linear(4 * config.n_frequencies, d)
        layer = nn.TransformerEncoderLayer(
            d, config.n_heads, config.ff_dim, config.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False) if config.n_layers else None
        self.norm = nn.LayerNorm(d)
        self.head = nn.Sequential(nn.Linear(d, config.head_dim), nn.GELU(), nn.Linear(config.head_dim, 1))
        self.register_buffer("target_mean", torch.tensor(float(target_mean)))  # eV/atom
        self.register_buffer("target_std", torch.tensor(float(target_std)))  # eV/atom

    def tokens(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(batch, 89) fractions -> element indices (batch, k) int64, fractions (batch, k) summing to 1 per
        row and a padding mask (batch, k) bool (True = absent), k = most elements present in the batch."""
        x = x / x.sum(dim=1, keepdim=True)
        k = max(int((x > 0).sum(dim=1).max()), 1)
        fractions, index = torch.topk(x, k, dim=1)  # (batch, k) largest fractions first
        return index, fractions, fractions <= 0

    def normalised(self, x: Tensor) -> Tensor:
        """(batch, 89) fractions -> (batch,) prediction of (energy - target_mean) / target_std."""
        index, fractions, padding = self.tokens(x)
        f = fractions.clamp_min(1e-6).unsqueeze(-1)  # (batch, k, 1)
        angles = torch.cat([f * self.frequencies, torch.log(f) * self.log_frequencies], dim=-1)  # (batch, k, 2n)
        h = self.embedding(index) + self.fraction_encoder(torch.cat([angles.sin(), angles.cos()], dim=-1))
        if self.encoder is not None:
            h = self.encoder(h, src_key_padding_mask=padding)  # (batch, k, d)
        pooled = (self.norm(h) * fractions.unsqueeze(-1)).sum(dim=1)  # (batch, d) fraction-weighted
        return self.head(pooled).squeeze(-1)

    def forward(self, x: Tensor) -> Tensor:
        """x: (batch, 89) float atomic fractions -> (batch,) formation energy in eV/atom."""
        return self.normalised(x) * self.target_std + self.target_mean


def _history_keys() -> dict[str, list[float]]:
    """An empty history: per epoch its number, train L1 loss (normalised), test MAE/RMSE (eV/atom), seconds."""
    return {"epoch": [], "train_loss": [], "test_mae": [], "test_rmse": [], "seconds": []}


def _batches(n_present: Tensor, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    """Shuffled row batches of similar length (less padding): a random order is cut into chunks of 32
    batches, each chunk sorted by the number of elements present and cut into batches, which are shuffled."""
    order = torch.randperm(len(n_present), generator=generator)
    batches = []
    for chunk in order.split(32 * batch_size):
        batches += list(chunk[torch.argsort(n_present[chunk], stable=True)].split(batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator)]


def _predict(model: EnergyNet, x: Tensor, batch_size: int) -> np.ndarray:
    """(n,) float64 eV/atom in eval mode; rows run in batches sorted by element count (less padding)."""
    model.eval()
    order = torch.argsort((x > 0).sum(dim=1), stable=True)
    predicted = torch.zeros(len(x), dtype=torch.float64)
    with torch.no_grad():
        for rows in order.split(batch_size):
            predicted[rows] = model(x[rows]).double()
    return predicted.numpy()


def _evaluate(model: EnergyNet, x: Tensor, y: Tensor, batch_size: int = 4096) -> tuple[float, float]:
    """(MAE, RMSE) in eV/atom of ``model`` on rows ``x`` (n, 89) with targets ``y`` (n,)."""
    error = _predict(model, x, batch_size) - y.double().numpy()
    return float(np.abs(error).mean()), float(np.sqrt((error**2).mean()))


def _payload(config, model, ema, optimizer, scheduler, generator, epoch, history, weights_only) -> dict:
    """What a file holds: config, evaluated (EMA) weights, target mean/std in eV/atom, epoch and history;
    a checkpoint adds the raw weights, optimiser, scheduler and RNG states."""
    payload = {
        "kind": KIND,
        "config": asdict(config),
        "weights": {k: v.detach().clone() for k, v in (ema or model).state_dict().items()},
        "target_mean": float(model.target_mean),
        "target_std": float(model.target_std),
        "epoch": epoch,
        "history": history,
        "torch_version": str(torch.__version__),
    }
    if not weights_only:
        payload.update(
            raw_weights=model.state_dict(),
            optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict(),
            generator=generator.get_state(),
            torch_rng=torch.get_rng_state(),
        )
    return payload


def _write(path: str | Path, payload: dict) -> None:
    """``torch.save`` the payload into a checked file, atomically (:func:`matvae.files.write_checked`)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_checked(path, buffer.getvalue(), kind=KIND)


def _read(path: str | Path) -> dict:
    """The payload of an energy-net file; ``ValueError`` naming the file when damaged or foreign."""
    name = Path(path).name
    try:
        payload = torch.load(io.BytesIO(read_checked(path, kind=KIND)), map_location="cpu", weights_only=True)
    except ValueError as exc:
        raise ValueError(f"energy-net file {name!r} cannot be used: {exc}") from None
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise ValueError(f"energy-net file {name!r} is not readable ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("kind") != KIND:
        raise ValueError(f"energy-net file {name!r} does not hold an energy network")
    return payload


def read_energy_net_file(path: str | Path) -> dict:
    """The payload of an energy-net file (checkpoint or weights-only): ``config`` (dict), ``epoch``, ``history``,
    weights, and ``optimizer`` state for checkpoints only. ``ValueError`` naming the file when damaged or foreign."""
    return _read(path)


def train_energy_net(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    config: EnergyNetConfig,
    *,
    checkpoint_path: str | Path | None = None,
    show_progress: bool | None = None,
) -> tuple[EnergyNet, dict[str, list[float]]]:
    """Train an :class:`EnergyNet`; x_*: (n, 89) fractions, y_*: (n,) formation energy in eV/atom.

    Returns the EMA model (eval mode) and the history: per epoch ``train_loss`` (L1 on the normalised
    target), ``test_mae`` and ``test_rmse`` (eV/atom, EMA weights) and ``seconds``. With
    ``checkpoint_path`` a checkpoint is written after every epoch and a rerun with the same config resumes
    from it (bit-identical to an uninterrupted run on the same machine); a different config is refused."""
    x_tr = torch.as_tensor(check_fractions(x_train, max_present=config.max_present), dtype=torch.float32)
    x_te = torch.as_tensor(check_fractions(x_test, max_present=config.max_present), dtype=torch.float32)
    y_tr, y_te = (torch.as_tensor(np.asarray(y, dtype=float)) for y in (y_train, y_test))
    for name, xs, ys in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        if ys.shape != (len(xs),) or not torch.isfinite(ys).all():
            raise ValueError(f"y_{name} must be {len(xs)} finite energies, got shape {tuple(ys.shape)}")
    if len(x_tr) < 2 or len(x_te) < 1:
        raise ValueError(f"need >= 2 training rows and >= 1 test row, got {len(x_tr)=} and {len(x_te)=}")
    mean, std = float(y_tr.mean()), float(y_tr.std()) or 1.0
    n_present = (x_tr > 0).sum(dim=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = EnergyNet(config, target_mean=mean, target_std=std)
        ema = EnergyNet(config, target_mean=mean, target_std=std) if config.ema_decay > 0 else None
        if ema is not None:
            ema.load_state_dict(model.state_dict())
            ema.requires_grad_(False)
        steps_per_epoch = math.ceil(len(x_tr) / config.batch_size)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, config.learning_rate, total_steps=config.epochs * steps_per_epoch,
            pct_start=max(config.warmup_fraction, 1e-9), anneal_strategy="cos", cycle_momentum=False,
        )
        generator = torch.Generator().manual_seed(config.seed + 1)
        history, start = _history_keys(), 0
        if checkpoint_path is not None and Path(checkpoint_path).exists():
            saved = _read(checkpoint_path)
            if saved.get("config") != asdict(config) or "optimizer" not in saved:
                raise ValueError(
                    f"checkpoint {Path(checkpoint_path).name!r} was written with another config "
                    f"({saved.get('config')}) or is weights-only; use another path or the same config"
                )
            model.load_state_dict(saved["raw_weights"])
            if ema is not None:
                ema.load_state_dict(saved["weights"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            generator.set_state(saved["generator"])
            torch.set_rng_state(saved["torch_rng"])
            history, start = {k: list(v) for k, v in saved["history"].items()}, int(saved["epoch"])
        bar = progress_bar(range(start, config.epochs), desc="energy net", enabled=show_progress, initial=start, total=config.epochs)
        for epoch in bar:
            began, total, model = time.perf_counter(), 0.0, model.train()
            for rows in _batches(n_present, config.batch_size, generator):
                target = ((y_tr[rows] - mean) / std).float()
                loss = F.l1_loss(model.normalised(x_tr[rows]), target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.clip_norm > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
                optimizer.step()
                scheduler.step()
                if ema is not None:
                    with torch.no_grad():
                        for e, p in zip(ema.parameters(), model.parameters()):
                            e.lerp_(p, 1.0 - config.ema_decay)
                total += loss.item() * len(rows)
            mae, rmse = _evaluate(ema or model, x_te, y_te)
            for key, value in zip(_history_keys(), (epoch + 1, total / len(x_tr), mae, rmse, time.perf_counter() - began)):
                history[key].append(float(value))
            bar.set_postfix(loss=f"{total / len(x_tr):.4f}", test_mae=f"{mae:.4f}")
            if checkpoint_path is not None:
                _write(checkpoint_path, _payload(config, model, ema, optimizer, scheduler, generator, epoch + 1, history, False))
    final = ema or model
    return final.eval(), history


def save_energy_net(model: EnergyNet, path: str | Path, *, history: dict[str, list[float]] | None = None) -> None:
    """Write a weights-only checked file: config, weights, target mean/std (eV/atom) and history."""
    _write(path, _payload(model.config, model, None, None, None, None, len((history or {}).get("epoch", [])), history or {}, True))


def load_energy_net(path: str | Path) -> EnergyNet:
    """The (EMA) network in a weights-only file or a training checkpoint, in eval mode."""
    payload = _read(path)
    try:
        model = EnergyNet(EnergyNetConfig(**payload["config"]), target_mean=payload["target_mean"], target_std=payload["target_std"])
        model.load_state_dict(payload["weights"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"energy-net file {Path(path).name!r} does not match this matvae ({exc})") from None
    return model.eval()


def load_shipped_energy_net() -> EnergyNet:
    """The network shipped with matvae (:data:`SHIPPED_ENERGY_NET`), trained on the formula-grouped split."""
    return load_energy_net(SHIPPED_ENERGY_NET)


def predict_energy(model: EnergyNet, x, *, batch_size: int = 4096) -> np.ndarray:
    """x: (n, 89) fractions (rows are renormalised) -> (n,) float64 formation energy in eV/atom."""
    check_int("batch_size", batch_size, minimum=1)
    x = torch.as_tensor(check_fractions(x, max_present=model.config.max_present), dtype=torch.float32)
    was_training = model.training
    predicted = _predict(model, x, batch_size)
    model.train(was_training)
    return predicted


def main(argv: list[str] | None = None) -> int:
    """CLI: train on the formula-grouped split, print test row MAE/RMSE and write a weights-only file."""
    parser = argparse.ArgumentParser(prog="python -m matvae.properties.network", description=main.__doc__)
    parser.add_argument("--epochs", type=int, default=EnergyNetConfig.epochs)
    parser.add_argument("--out", type=Path, required=True, help="weights-only file to write")
    parser.add_argument("--checkpoint", type=Path, default=None, help="resumable checkpoint written every epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training rows")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    from matvae.data import build_dataset, load_materials, split_by_formula

    torch.set_num_threads(args.threads)
    table = load_materials()
    data = build_dataset(table)
    energy = table["formation_energy_per_atom"].to_numpy(float)
    train_rows, test_rows = split_by_formula(data.formula, test_fraction=0.2, seed=0)
    train_rows = train_rows[: args.limit] if args.limit else train_rows
    config = EnergyNetConfig(epochs=args.epochs, seed=args.seed)
    model, history = train_energy_net(
        data.x[train_rows], energy[train_rows], data.x[test_rows], energy[test_rows], config, checkpoint_path=args.checkpoint
    )
    save_energy_net(model, args.out, history=history)
    error = predict_energy(model, data.x[test_rows]) - energy[test_rows]
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params} parameters, {np.mean(history['seconds']):.1f} s/epoch, {len(history['epoch'])} epochs")
    print(f"test row MAE {np.abs(error).mean():.4f} eV/atom, RMSE {np.sqrt((error**2).mean()):.4f} eV/atom")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
