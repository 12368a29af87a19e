"""Formation energy from composition: the mean floor, the Magpie gradient-boosting baseline, latent-code heads.

Every predictor has a ``name``, ``fit(x_train, y_train) -> self`` and ``predict(x) -> (n,) float64``, with
x: (n, 89) atomic fractions over :data:`matvae.elements.ELEMENTS` (rows sum to 1, as ``MaterialsDataset.x``)
and y in eV/atom. Settings are keyword arguments, checked when the predictor is built.

``MeanPredictor``
    The training mean: the floor every model must beat.
``MagpieGBM``
    :func:`matvae.properties.features.magpie_features` (132) and the 89 fractions into sklearn's
    ``HistGradientBoostingRegressor`` (the classic composition-only baseline, Ward et al. 2016).
``LatentHead``
    A head on the mean code mu(x) of a frozen VAE (:func:`matvae.sampling.encode_means`, either family):
    how much of the energy the generative latent space carries as it is.
``JointLatentHead``
    The same head trained together with a copy of the VAE's encoder: how much it can carry when the code
    may adapt to the property (a diagnostic; the copy is no longer the generative model's encoder).

:func:`regression_metrics` and :func:`compare_predictions` give the numbers the comparison reports.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from matvae.composition import check_fractions
from matvae.elements import N_ELEMENTS
from matvae.models import AnyModel, family_of, is_model
from matvae.params import check_choice, check_float, check_int, check_seed
from matvae.properties.features import magpie_features
from matvae.sampling import encode_means

LOSSES: tuple[str, ...] = ("absolute_error", "squared_error")
HEADS: tuple[str, ...] = ("mlp", "gbm")
N_ELEMENT_COLUMNS: int = 9
"""Columns 1..9 of the MAE-by-number-of-elements table (the snapshot's materials have at most 9 elements)."""
PREDICT_BATCH: int = 65_536


def check_targets(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training data: x (n, 89) fractions (:func:`matvae.composition.check_fractions`), y (n,) finite eV/atom."""
    x = check_fractions(x)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"y must have shape ({len(x)},), one energy per row of x, got shape {y.shape}")
    if not np.isfinite(y).all():
        row = int(np.argmax(~np.isfinite(y)))
        raise ValueError(f"y must be finite, got {y[row]} at row {row}")
    return x, y


def _check_fitted(predictor: object, attribute: str) -> None:
    if getattr(predictor, attribute, None) is None:
        raise ValueError(f"{type(predictor).__name__} is not fitted: call fit(x_train, y_train) first")


class MeanPredictor:
    """The mean of the training energies for every material."""

    name = "mean"

    def __init__(self) -> None:
        self.mean_: float | None = None

    def fit(self, x_train: np.ndarray, y_train: np.ndarray) -> MeanPredictor:
        _, y = check_targets(x_train, y_train)
        self.mean_ = float(y.mean())
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        _check_fitted(self, "mean_")
        return np.full(len(check_fractions(x)), self.mean_, dtype=np.float64)


def _gbm(
    seed: int,
    *,
    loss: str,
    max_iter: int,
    learning_rate: float,
    max_leaf_nodes: int,
    min_samples_leaf: int,
    l2_regularization: float,
):
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        loss=loss,
        max_iter=max_iter,
        learning_rate=learning_rate,
        max_leaf_nodes=max_leaf_nodes,
        min_samples_leaf=min_samples_leaf,
        l2_regularization=l2_regularization,
        early_stopping=False,  # a fixed number of trees: no random row hold-out, the same fit every time
        random_state=seed,
    )


class MagpieGBM:
    """Magpie statistics + element fractions (221 features) -> ``HistGradientBoostingRegressor``.

    Defaults: the L1 loss, 300 trees of up to 127 leaves. Measured on the snapshot's formula split (seed 0,
    106,200 training rows, one thread of a shared 2-core CPU): MAE 0.125 / RMSE 0.295 eV/atom in 6.4 minutes;
    ``loss="squared_error"`` gives MAE 0.129 / RMSE 0.248 in 4.0 minutes (the L1 loss fits the conditional
    median: lower MAE, larger errors on the outliers).
    """

    name = "magpie-gbm"

    def __init__(
        self,
        *,
        seed: int = 0,
        loss: str = "absolute_error",  # "absolute_error" (fits the median: lower MAE) or "squared_error"
        max_iter: int = 300,  # boosting iterations (trees); the time grows linearly with it
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 127,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
    ) -> None:
        self.settings = {
            "seed": check_seed("seed", seed),
            "loss": check_choice("loss", loss, LOSSES),
            "max_iter": check_int("max_iter", max_iter, minimum=1, maximum=100_000),
            "learning_rate": check_float("learning_rate", learning_rate, low=0.0, high=1.0, low_inclusive=False),
            "max_leaf_nodes": check_int("max_leaf_nodes", max_leaf_nodes, minimum=2, maximum=100_000),
            "min_samples_leaf": check_int("min_samples_leaf", min_samples_leaf, minimum=1),
            "l2_regularization": check_float("l2_regularization", l2_regularization, low=0.0),
        }
        self.model_ = None

    @staticmethod
    def features(x: np.ndarray) -> np.ndarray:
        """(n, 89) fractions -> (n, 221): the 132 Magpie statistics, then the fractions."""
        x = check_fractions(x)
        return np.hstack([magpie_features(x), x])

    def fit(self, x_train: np.ndarray, y_train: np.ndarray) -> MagpieGBM:
        x, y = check_targets(x_train, y_train)
        settings = dict(self.settings)
        self.model_ = _gbm(settings.pop("seed"), **settings).fit(self.features(x), y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        _check_fitted(self, "model_")
        return self.model_.predict(self.features(x)).astype(np.float64)


class _Head(nn.Module):
    """Fixed standardisation of z, then Linear -> ELU blocks -> Linear; output in eV/atom."""

    def __init__(self, z: np.ndarray, y: np.ndarray, *, hidden_dim: int, n_layers: int) -> None:
        super().__init__()
        self.register_buffer("z_mean", torch.as_tensor(z.mean(axis=0), dtype=torch.float32))
        self.register_buffer("z_scale", torch.as_tensor(z.std(axis=0) + 1e-6, dtype=torch.float32))
        centre = float(np.median(y))
        self.y_centre, self.y_scale = centre, float(np.abs(y - centre).mean()) or 1.0
        sizes = [z.shape[1]] + [hidden_dim] * n_layers
        layers: list[nn.Module] = []
        for n_in, n_out in itertools.pairwise(sizes):
            layers += [nn.Linear(n_in, n_out), nn.ELU()]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: (batch, latent_dim) -> energies (batch,) eV/atom."""
        return self.net((z - self.z_mean) / self.z_scale).squeeze(-1) * self.y_scale + self.y_centre


def _train_l1(
    parameter_groups: list[dict],
    predict: Callable[[torch.Tensor], torch.Tensor],
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
) -> None:
    """Adam on the mean absolute error, cosine-annealed learning rates, seeded shuffles."""
    optimizer = torch.optim.Adam(parameter_groups)
    n_steps = epochs * -(-len(x) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_steps, eta_min=0.0)
    x_all = torch.as_tensor(x, dtype=torch.float32)
    y_all = torch.as_tensor(y, dtype=torch.float32)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for rows in np.array_split(rng.permutation(len(x)), -(-len(x) // batch_size)):
            rows_t = torch.as_tensor(rows)
            loss = (predict(x_all[rows_t]) - y_all[rows_t]).abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()


def _check_vae(model: AnyModel) -> str:
    if not is_model(model):
        raise ValueError(f"model must be a matvae model (families 'paper' or 'sequence'), got {type(model).__name__}")
    if model.config.n_elements != N_ELEMENTS:
        raise ValueError(
            f"model has a vocabulary of {model.config.n_elements} elements; x has the {N_ELEMENTS} of matvae.ELEMENTS"
        )
    return family_of(model)


def _check_head_settings(seed, hidden_dim, n_layers, epochs, batch_size, learning_rate) -> dict:
    return {
        "seed": check_seed("seed", seed),
        "hidden_dim": check_int("hidden_dim", hidden_dim, minimum=1, maximum=10_000),
        "n_layers": check_int("n_layers", n_layers, minimum=0, maximum=16),
        "epochs": check_int("epochs", epochs, minimum=1, maximum=100_000),
        "batch_size": check_int("batch_size", batch_size, minimum=1),
        "learning_rate": check_float("learning_rate", learning_rate, low=0.0, high=1.0, low_inclusive=False),
    }


def _predict_head(head: nn.Module, z: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        z_t = torch.as_tensor(z, dtype=torch.float32)
        parts = [head(z_t[i : i + PREDICT_BATCH]) for i in range(0, len(z_t), PREDICT_BATCH)]
    return torch.cat(parts).numpy().astype(np.float64)


class LatentHead:
    """A regression head on the mean latent code mu(x) of a frozen VAE, trained with the L1 loss.

    ``head="mlp"``: a torch MLP (``n_layers`` hidden layers of ``hidden_dim``, ELU) on the standardised code;
    ``head="gbm"``: sklearn's ``HistGradientBoostingRegressor`` (L1 loss, ``gbm_max_iter`` trees) on the code.
    The model is only read (``encode_means``), never changed.
    """

    def __init__(
        self,
        model: AnyModel,
        *,
        head: str = "mlp",
        seed: int = 0,
        hidden_dim: int = 256,  # width of each hidden layer of the MLP head
        n_layers: int = 3,  # hidden layers of the MLP head (0: linear regression on the code)
        epochs: int = 60,  # passes over the training set (MLP head)
        batch_size: int = 512,
        learning_rate: float = 2e-3,  # Adam's initial rate, annealed to 0 (cosine)
        gbm_max_iter: int = 1000,  # trees of the "gbm" head
    ) -> None:
        self.family = _check_vae(model)
        self.model = model
        self.head = check_choice("head", head, HEADS)
        self.settings = _check_head_settings(seed, hidden_dim, n_layers, epochs, batch_size, learning_rate)
        self.gbm_max_iter = check_int("gbm_max_iter", gbm_max_iter, minimum=1, maximum=100_000)
        self.name = f"latent-{self.head}-{self.family}"
        self.head_ = None

    def fit(self, x_train: np.ndarray, y_train: np.ndarray) -> LatentHead:
        x, y = check_targets(x_train, y_train)
        z = encode_means(self.model, x)  # (n, latent_dim) float32
        s = self.settings
        if self.head == "gbm":
            self.head_ = _gbm(
                s["seed"],
                loss="absolute_error",
                max_iter=self.gbm_max_iter,
                learning_rate=0.1,
                max_leaf_nodes=63,
                min_samples_leaf=20,
                l2_regularization=0.0,
            ).fit(z, y)
            return self
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s["seed"])
            head = _Head(z, y, hidden_dim=s["hidden_dim"], n_layers=s["n_layers"])
        _train_l1(
            [{"params": head.parameters(), "lr": s["learning_rate"]}],
            head,
            z,
            y,
            epochs=s["epochs"],
            batch_size=s["batch_size"],
            seed=s["seed"],
        )
        self.head_ = head.eval()
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        _check_fitted(self, "head_")
        z = encode_means(self.model, x)
        if self.head == "gbm":
            return self.head_.predict(z).astype(np.float64)
        return _predict_head(self.head_, z)


class JointLatentHead:
    """An MLP head on mu(x) trained jointly with a copy of the VAE's encoder (L1 loss, a few epochs).

    Two stages: the head alone on the frozen codes for ``head_epochs`` (cheap: the codes are computed once, as
    :class:`LatentHead` does), then head and encoder together for ``epochs`` (each encodes every row with
    gradients: the slow part). The copy's encoder (``model.encoder``, both families: mu(x) = ``model.encode(x)[0]``) is fine-tuned at
    ``encoder_learning_rate``, the head at ``learning_rate``; the model passed in is left untouched. The
    fine-tuned copy is ``self.model_``.
    """

    def __init__(
        self,
        model: AnyModel,
        *,
        seed: int = 0,
        hidden_dim: int = 256,
        n_layers: int = 3,
        head_epochs: int = 30,  # passes of the head alone over the frozen codes (stage 1)
        epochs: int = 3,  # passes of head and encoder together (stage 2)
        batch_size: int = 256,
        learning_rate: float = 2e-3,  # the head's initial Adam rate, annealed to 0 (cosine)
        encoder_learning_rate: float = 3e-4,  # the encoder's initial Adam rate, annealed to 0
    ) -> None:
        self.family = _check_vae(model)
        self.model = model
        self.settings = _check_head_settings(seed, hidden_dim, n_layers, epochs, batch_size, learning_rate)
        self.head_epochs = check_int("head_epochs", head_epochs, minimum=0, maximum=100_000)
        self.encoder_learning_rate = check_float(
            "encoder_learning_rate", encoder_learning_rate, low=0.0, high=1.0, low_inclusive=False
        )
        self.name = f"joint-latent-{self.family}"
        self.model_ = None
        self.head_ = None

    def fit(self, x_train: np.ndarray, y_train: np.ndarray) -> JointLatentHead:
        x, y = check_targets(x_train, y_train)
        s = self.settings
        model = copy.deepcopy(self.model).cpu()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        encoder_parameters = list(model.encoder.parameters())
        for parameter in encoder_parameters:
            parameter.requires_grad_(True)
        z = encode_means(model, x)  # the starting code fixes the head's standardisation
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s["seed"])
            head = _Head(z, y, hidden_dim=s["hidden_dim"], n_layers=s["n_layers"])
        if self.head_epochs:
            _train_l1(
                [{"params": head.parameters(), "lr": s["learning_rate"]}],
                head,
                z,
                y,
                epochs=self.head_epochs,
                batch_size=s["batch_size"],
                seed=s["seed"],
            )
        model.train()
        _train_l1(
            [
                # a head trained in stage 1 is only refined (a tenth of the rate)
                {"params": head.parameters(), "lr": s["learning_rate"] * (0.1 if self.head_epochs else 1.0)},
                {"params": encoder_parameters, "lr": self.encoder_learning_rate},
            ],
            lambda xb: head(model.encode(xb)[0]),
            x,
            y,
            epochs=s["epochs"],
            batch_size=s["batch_size"],
            seed=s["seed"],
        )
        self.model_, self.head_ = model.eval(), head.eval()
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        _check_fitted(self, "head_")
        return _predict_head(self.head_, encode_means(self.model_, x))


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | int]:
    """``mae`` and ``rmse`` (eV/atom) of predictions against (n,) true values, and ``n``."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim != 1 or y_pred.shape != y_true.shape:
        raise ValueError(f"y_pred and y_true must be (n,) arrays of one length, got {y_pred.shape=} != {y_true.shape=}")
    if len(y_true) == 0:
        raise ValueError("y_true is empty: metrics need at least one row")
    for label, values in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.isfinite(values).all():
            row = int(np.argmax(~np.isfinite(values)))
            raise ValueError(f"{label} must be finite, got {values[row]} at row {row}")
    error = y_pred - y_true
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error**2).mean())), "n": len(y_true)}


def compare_predictions(
    predictions: Mapping[str, np.ndarray], y_true: np.ndarray, n_elements: np.ndarray | Iterable[int]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per predictor: (overall ``mae``, ``rmse``, ``n``), and the MAE by number of elements.

    predictions: name -> (n,) eV/atom; y_true: (n,) eV/atom; n_elements: (n,) distinct elements per material.
    The second table has columns 1..9 (more if a material has more elements); NaN where no material has that
    many elements.
    """
    if not isinstance(predictions, Mapping) or not predictions:
        raise ValueError(f"predictions must be a non-empty dict of name -> (n,) array, got {predictions!r:.80}")
    y_true = np.asarray(y_true, dtype=np.float64)
    n_elements = np.asarray(n_elements)
    if y_true.ndim != 1 or len(y_true) == 0 or n_elements.shape != y_true.shape:
        raise ValueError(
            f"y_true and n_elements must be non-empty (n,) arrays of one length, got shapes {y_true.shape} and "
            f"{n_elements.shape}"
        )
    if not np.issubdtype(n_elements.dtype, np.integer) or (n_elements < 1).any():
        raise ValueError(f"n_elements must be integers >= 1, got dtype {n_elements.dtype}, minimum {n_elements.min()}")
    columns = list(range(1, max(N_ELEMENT_COLUMNS, int(n_elements.max())) + 1))
    summary, by_elements = {}, {}
    for name, y_pred in predictions.items():
        y_pred = np.asarray(y_pred, dtype=np.float64)
        if y_pred.shape != y_true.shape:
            raise ValueError(
                f"predictions[{name!r}] and y_true must have one length, got shapes {y_pred.shape} != {y_true.shape}"
            )
        summary[name] = regression_metrics(y_true, y_pred)
        error = np.abs(y_pred - y_true)
        by_elements[name] = {
            k: float(error[n_elements == k].mean()) if (n_elements == k).any() else np.nan for k in columns
        }
    summary_frame = pd.DataFrame.from_dict(summary, orient="index")[["mae", "rmse", "n"]]
    by_frame = pd.DataFrame.from_dict(by_elements, orient="index")[columns]
    by_frame.columns.name = "n_elements"
    return summary_frame, by_frame
