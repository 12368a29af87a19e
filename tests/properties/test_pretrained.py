"""train_or_load_energy_net: trains, loads a finished file, refuses a foreign one, and knows when the shipped
network applies."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from matvae.data import DataConfig
from matvae.properties.network import SHIPPED_ENERGY_NET, EnergyNetConfig, predict_energy, save_energy_net
from matvae.properties.pretrained import shipped_applies, train_or_load_energy_net
from matvae.properties.targets import formation_energies

TINY = EnergyNetConfig(embed_dim=16, n_layers=1, n_heads=2, ff_dim=32, n_frequencies=4, head_dim=32, batch_size=64, epochs=2)


@pytest.fixture(scope="module")
def energy(small_split):
    return formation_energies(small_split)


def test_trains_then_loads_then_resumes_longer(small_split, energy, tmp_path):
    path = tmp_path / "net.pt"
    first = train_or_load_energy_net(small_split, energy, TINY, checkpoint_path=path, use_pretrained=True)
    assert first.status == "trained" and len(first.history["test_mae"]) == 2
    again = train_or_load_energy_net(small_split, energy, TINY, checkpoint_path=path)
    assert again.status == "loaded"
    x = small_split.test.x
    np.testing.assert_array_equal(predict_energy(first.model, x), predict_energy(again.model, x))
    assert "2 epochs" in again.describe() and "test MAE" in again.describe()
    with pytest.raises(ValueError, match="another config"):
        train_or_load_energy_net(small_split, energy, replace(TINY, epochs=3), checkpoint_path=path)


def test_weights_only_file_is_loaded_or_refused(small_split, energy, tmp_path):
    trained = train_or_load_energy_net(small_split, energy, replace(TINY, epochs=1), checkpoint_path=tmp_path / "a.pt")
    path = tmp_path / "weights.pt"
    save_energy_net(trained.model, path, history=trained.history)
    assert train_or_load_energy_net(small_split, energy, replace(TINY, epochs=1), checkpoint_path=path).status == "loaded"
    with pytest.raises(ValueError, match="another config"):
        train_or_load_energy_net(small_split, energy, TINY, checkpoint_path=path)


def test_energy_length_is_checked(small_split, energy, tmp_path):
    with pytest.raises(ValueError, match="one value per row"):
        train_or_load_energy_net(small_split, energy[:-1], TINY, checkpoint_path=tmp_path / "x.pt")


def test_shipped_network_applies_only_to_its_own_data_and_config(small_split):
    assert SHIPPED_ENERGY_NET.is_file()
    assert not shipped_applies(small_split, EnergyNetConfig())  # a closed chemical space, not the whole snapshot
    whole = replace(small_split, config=DataConfig())
    from matvae.properties.network import read_energy_net_file

    shipped_config = EnergyNetConfig(**read_energy_net_file(SHIPPED_ENERGY_NET)["config"])
    assert shipped_applies(whole, shipped_config)
    assert not shipped_applies(whole, replace(shipped_config, seed=shipped_config.seed + 1))
