import numpy as np
import pandas as pd
import pytest

from matvae.composition import encode
from matvae.elements import ELEMENT_INDEX
from matvae.model import ModelConfig
from matvae.training import TrainConfig
from matvae.tuning import (
    best_threshold,
    choose_kl_weight,
    choose_width,
    convergence_table,
    sweep,
    sweep_checkpoint,
    sweep_thresholds,
)

TINY = TrainConfig(epochs=1, batch_size=128, device="cpu")


def test_sweep_trains_once_and_reads_back(small_split, tmp_path):
    kwargs = dict(checkpoint_dir=tmp_path, reference_counts=small_split.dataset.counts, n_samples=200)
    first = sweep(small_split.train, small_split.test, "hidden_dim", "8,16", ModelConfig(latent_dim=2), TINY, **kwargs)
    assert first["hidden_dim"].tolist() == [8, 16]
    assert first["status"].tolist() == ["trained", "trained"]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["hidden_dim-16.pt", "hidden_dim-8.pt"]
    assert (first["n_parameters"].diff().dropna() > 0).all()
    for column in ("test_nelbo", "prevalence_kl", "prevalence_js", "uniqueness", "reconstructed_elements"):
        assert first[column].notna().all(), column
    again = sweep(small_split.train, small_split.test, "hidden_dim", [8, 16], ModelConfig(latent_dim=2), TINY, **kwargs)
    assert again["status"].tolist() == ["loaded", "loaded"]
    assert again["test_nelbo"].tolist() == first["test_nelbo"].tolist()
    betas = sweep(small_split.train, small_split.test, "kl_weight", "1,0.1", ModelConfig(hidden_dim=8, latent_dim=2), TINY, **kwargs)
    assert betas["kl_weight"].tolist() == [1.0, 0.1]


def test_sweep_rejects_unknown_settings(small_split, tmp_path):
    with pytest.raises(ValueError, match="setting must be one of"):
        sweep(small_split.train, small_split.test, "latent_dim", [2], ModelConfig(), TINY, checkpoint_dir=tmp_path,
              reference_counts=small_split.dataset.counts)
    with pytest.raises(ValueError, match=r"values\[1\] must be >= 1"):
        sweep(small_split.train, small_split.test, "hidden_dim", "8,0", ModelConfig(), TINY, checkpoint_dir=tmp_path,
              reference_counts=small_split.dataset.counts)


def test_choose_width_balances_the_two_metrics():
    table = pd.DataFrame({"hidden_dim": [50, 100, 150], "test_nelbo": [3.0, 2.0, 1.0], "prevalence_kl": [0.1, 0.2, 1.0]})
    # normalised sums: 50 -> 1 + 0 = 1, 100 -> .5 + .111 = .61, 150 -> 0 + 1 = 1
    assert choose_width(table) == 100
    tie = pd.DataFrame({"hidden_dim": [50, 100], "test_nelbo": [1.0, 1.0], "prevalence_kl": [0.5, 0.5]})
    assert choose_width(tie) == 50
    assert choose_kl_weight(pd.DataFrame({"kl_weight": [1.0, 0.1], "prevalence_kl": [3.0, 0.2]})) == 0.1


def test_threshold_sweep_finds_the_threshold_that_matches_the_element_counts():
    # every "sample" has two strong elements and one at 0.05: at T <= 0.05 it has three elements, above two
    probabilities = np.zeros((50, 89))
    probabilities[:, ELEMENT_INDEX["Na"]] = 0.5
    probabilities[:, ELEMENT_INDEX["Cl"]] = 0.45
    probabilities[:, ELEMENT_INDEX["K"]] = 0.05
    two_element_data = np.array([encode("NaCl"), encode("KBr")] * 10)
    table = sweep_thresholds(probabilities, two_element_data, "0.03,0.05,0.06")
    assert table["mean_elements"].tolist() == [3.0, 3.0, 2.0]
    assert table["wasserstein"].tolist() == pytest.approx([1.0, 1.0, 0.0])
    assert best_threshold(table) == 0.06
    nothing = sweep_thresholds(probabilities, two_element_data, [0.9])
    assert nothing["decoded"].tolist() == [0.0] and nothing["wasserstein"].isna().all()
    with pytest.raises(ValueError, match="no threshold decoded"):
        best_threshold(nothing)
    with pytest.raises(ValueError, match="thresholds"):
        sweep_thresholds(probabilities, two_element_data, "0.5,1.5")


def _widths(epochs, nelbo, kl):
    return pd.DataFrame({"hidden_dim": [50, 100, 150], "epochs": epochs, "test_nelbo": nelbo, "prevalence_kl": kl,
                         "uniqueness": [0.9, 0.9, 0.9]})


def test_convergence_table_pairs_the_widths_and_marks_each_sweeps_pick():
    short = _widths([40, 40, 40], [16.0, 15.5, 15.4], [0.03, 0.02, 0.05])  # picks 100
    converged = _widths([358, 324, 315], [15.0, 15.4, 15.8], [0.02, 0.03, 0.04])  # picks 50 (best at both)
    table = convergence_table(short, converged.iloc[::-1])
    assert table["hidden_dim"].tolist() == [50, 100, 150]
    assert table["epochs_converged"].tolist() == [358, 324, 315] and table["test_nelbo_short"].tolist() == [16.0, 15.5, 15.4]
    assert table["chosen_short"].tolist() == [False, True, False] and table["chosen_converged"].tolist() == [True, False, False]
    assert convergence_table(short, converged.iloc[:2])["hidden_dim"].tolist() == [50, 100]  # widths of both only
    with pytest.raises(ValueError, match="share no width"):
        convergence_table(short, converged.assign(hidden_dim=[200, 250, 300]))
    with pytest.raises(ValueError, match=r"converged sweep lacks the column\(s\) \['epochs'\]"):
        convergence_table(short, converged.drop(columns="epochs"))


def test_sweep_checkpoint_is_where_sweep_writes(small_split, tmp_path):
    config = ModelConfig(hidden_dim=8, latent_dim=3)
    sweep(small_split.train, small_split.test, "hidden_dim", [8], config, TrainConfig(epochs=1, batch_size=64, device="cpu"),
          checkpoint_dir=tmp_path, reference_counts=small_split.dataset.counts, n_samples=50)
    assert sweep_checkpoint(tmp_path, "hidden_dim", 8).is_file()
    assert sweep_checkpoint(tmp_path, "kl_weight", 0.03).name == "kl_weight-0.03.pt"
    with pytest.raises(ValueError, match="setting must be one of"):
        sweep_checkpoint(tmp_path, "depth", 3)


def test_prevalence_kl_spread_is_the_sweeps_number_under_other_sampling_seeds(small_split, tmp_path):
    from matvae.training import load_model
    from matvae.tuning import prevalence_kl_spread

    config = ModelConfig(hidden_dim=8, latent_dim=3)
    table = sweep(small_split.train, small_split.test, "hidden_dim", [8], config, TrainConfig(epochs=1, batch_size=64, device="cpu"),
                  checkpoint_dir=tmp_path, reference_counts=small_split.dataset.counts, n_samples=200, seed=3)
    model = load_model(sweep_checkpoint(tmp_path, "hidden_dim", 8))
    spread = prevalence_kl_spread(model, small_split.dataset.counts, n_samples=200, threshold=0.04, seeds=[3, 4, 5])
    assert spread[0] == pytest.approx(table["prevalence_kl"].iloc[0])  # seed 3 is the sweep's own sampling
    assert len(spread) == 3 and len(set(spread)) > 1 and all(v >= 0 for v in spread)
    with pytest.raises(ValueError, match="seeds is empty"):
        prevalence_kl_spread(model, small_split.dataset.counts, n_samples=200, threshold=0.04, seeds=[])
    with pytest.raises(ValueError, match="n_samples must be >= 1, got 0"):
        prevalence_kl_spread(model, small_split.dataset.counts, n_samples=0, threshold=0.04, seeds=[1])
