"""Tests of matvae.properties.network: shapes, learning, checkpoints, validation and the shipped file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import matvae
from matvae.elements import N_ELEMENTS
from matvae.properties import network
from matvae.properties.network import (
    SHIPPED_ENERGY_NET,
    EnergyNet,
    EnergyNetConfig,
    load_energy_net,
    load_shipped_energy_net,
    predict_energy,
    save_energy_net,
    train_energy_net,
)

TINY = {"embed_dim": 16, "n_layers": 1, "n_heads": 2, "ff_dim": 32, "n_frequencies": 4, "head_dim": 32, "batch_size": 32}


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of 1-4 elements among the first 12, energy = fraction-weighted fixed per-element value (eV/atom)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, N_ELEMENTS), dtype=np.float32)
    for row in x:
        present = rng.choice(12, size=rng.integers(1, 5), replace=False)
        row[present] = rng.integers(1, 5, size=len(present))
    x /= x.sum(axis=1, keepdims=True)
    values = np.linspace(-2.0, 1.0, N_ELEMENTS)
    return x, x.astype(float) @ values


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data():
    x_train, y_train = synthetic(256, 0)
    x_test, y_test = synthetic(64, 1)
    return x_train, y_train, x_test, y_test


@pytest.fixture(scope="module")
def trained(data):
    config = EnergyNetConfig(**{**TINY, "epochs": 15, "learning_rate": 3e-3, "ema_decay": 0.9}, seed=0)
    return train_energy_net(*data, config, show_progress=False)


def test_forward_shape_and_units(data):
    model = EnergyNet(EnergyNetConfig(**TINY), target_mean=-1.0, target_std=0.5)
    out = model(torch.as_tensor(data[0][:7]))
    assert out.shape == (7,)
    assert torch.allclose(out, model.normalised(torch.as_tensor(data[0][:7])) * 0.5 - 1.0)


def test_beats_mean_baseline(data, trained):
    model, history = trained
    baseline = np.abs(data[3] - data[1].mean()).mean()
    assert set(history) >= {"train_loss", "test_mae", "test_rmse"} and len(history["test_mae"]) == 15
    assert history["test_mae"][-1] < 0.5 * baseline
    assert np.isclose(np.abs(predict_energy(model, data[2]) - data[3]).mean(), history["test_mae"][-1])


def test_resume_equals_uninterrupted(data, tmp_path, monkeypatch):
    config = EnergyNetConfig(**{**TINY, "epochs": 4, "dropout": 0.1}, seed=3)
    whole, whole_history = train_energy_net(*data, config, checkpoint_path=tmp_path / "a.pt", show_progress=False)
    calls, evaluate = [], network._evaluate

    def crash_in_epoch_three(*args, **kwargs):  # a run killed after writing the checkpoint of epoch 2
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(network, "_evaluate", crash_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        train_energy_net(*data, config, checkpoint_path=tmp_path / "b.pt", show_progress=False)
    monkeypatch.setattr(network, "_evaluate", evaluate)
    resumed, resumed_history = train_energy_net(*data, config, checkpoint_path=tmp_path / "b.pt", show_progress=False)
    assert resumed_history["test_mae"] == whole_history["test_mae"]
    assert resumed_history["train_loss"] == whole_history["train_loss"]
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="another config"):
        train_energy_net(*data, EnergyNetConfig(**{**TINY, "epochs": 5}), checkpoint_path=tmp_path / "b.pt")


def test_damaged_file_is_refused(trained, tmp_path):
    path = tmp_path / "net.pt"
    save_energy_net(trained[0], path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="net.pt"):
        load_energy_net(path)


def test_save_load_round_trip(data, trained, tmp_path):
    model, history = trained
    save_energy_net(model, tmp_path / "net.pt", history=history)
    loaded = load_energy_net(tmp_path / "net.pt")
    assert loaded.config == model.config
    np.testing.assert_array_equal(predict_energy(loaded, data[2]), predict_energy(model, data[2]))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("epochs", 10.0, r"epochs must be an integer >= 1, got 10\.0"),
        ("epochs", 0, "epochs must be >= 1"),
        ("max_present", 13, "max_present must be <= 12"),
        ("n_heads", 3, "n_heads must divide embed_dim"),
        ("dropout", 1.0, r"dropout must lie in \[0.0, 1.0\)"),
        ("learning_rate", 0.0, "learning_rate must lie in"),
        ("ema_decay", float("nan"), "ema_decay must be finite"),
        ("batch_size", True, "batch_size must be an integer"),
        ("seed", -1, "seed must be >= 0"),
    ],
)
def test_config_refuses_bad_values(field, value, message):
    with pytest.raises(ValueError, match=message):
        EnergyNetConfig(**{field: value})


def bad_rows() -> list[tuple[np.ndarray, str]]:
    good = np.full((3, N_ELEMENTS), 0.0)
    good[:, :2] = 0.5
    cases = [(good[:, :88], r"\(n, 89\)"), (good[0], r"\(n, 89\)")]
    for row, value, message in ((1, np.nan, "row 1 has a non-finite"), (2, -0.1, "row 2 has a negative")):
        x = good.copy()
        x[row, 5] = value
        cases.append((x, message))
    zero = good.copy()
    zero[1] = 0.0
    crowded = good.copy()
    crowded[2, :13] = 1.0
    return [*cases, (zero, "row 1 sums to 0"), (crowded, "row 2 has 13 elements")]


@pytest.mark.parametrize(("x", "message"), bad_rows())
def test_predict_refuses_bad_x(trained, x, message):
    with pytest.raises(ValueError, match=message):
        predict_energy(trained[0], x)


def test_predict_renormalises_rows(trained, data):
    model = trained[0]
    np.testing.assert_allclose(predict_energy(model, 3.0 * data[2][:5]), predict_energy(model, data[2][:5]), atol=1e-5)


def test_shipped_file_predicts_fe2o3():
    assert SHIPPED_ENERGY_NET.stat().st_size < 5_000_000
    model = load_shipped_energy_net()
    vector = matvae.encode("Fe2O3")
    energy = predict_energy(model, vector[None] / vector.sum())
    assert energy.shape == (1,) and np.isfinite(energy[0])
    assert -3.5 < energy[0] < -1.0  # Materials Project: about -1.7 eV/atom
