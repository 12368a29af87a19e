"""Each chapter's settings check every parameter in one construction, and the chapters' value-dependent sentences."""

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from matvae import prose
from matvae.chapters import (
    BeyondSettings,
    DataSettings,
    DecompositionSettings,
    ModelSettings,
    ReportSettings,
    SamplingSettings,
    TuningSettings,
)

GOOD = {
    DataSettings: dict(source="snapshot", elements="", test_fraction=0.2, seed=0, example="Ga(MoS2)4",
                       correlation_threshold=0.2, data_file="artifacts/data.npz", results_dir="artifacts/results"),
    ModelSettings: dict(data_file="d.npz", checkpoint="m.pt", elbo_checkpoint="e.pt", use_pretrained=True, latent_dim=10,
                        hidden_dim=100, variance="softplus", class_weight=1.0, kl_weight=0.03, epochs=2000, batch_size=1024,
                        learning_rate=0.001, seed=0, device="cpu", oversample_factor=20, compile=False, threshold=0.04,
                        n_examples=12, results_dir="r"),
    TuningSettings: dict(data_file="d.npz", checkpoint="m.pt", sweep_dir="s", kl_weights="1,0.3", widths="50,100", epochs=40,
                         kl_weight=0.03, latent_dim=10, batch_size=1024, learning_rate=0.001, seed=0, device="cpu",
                         oversample_factor=20, compile=False, n_samples=10000, threshold=0.04, thresholds="0.02,0.04",
                         results_dir="r"),
    SamplingSettings: dict(data_file="d.npz", checkpoint="m.pt", n_samples=10000, threshold=0.04, max_atoms=50, seed=0,
                           n_processes=0, n_show=20, results_dir="r", figures_dir="f"),
    DecompositionSettings: dict(data_file="d.npz", checkpoint="m.pt", threshold=0.04, seed=0, high_similarity=0.9,
                                n_examples=8, results_dir="r", figures_dir="f"),
    ReportSettings: dict(results_dir="r"),
    BeyondSettings: dict(data_file="d.npz", paper_checkpoint="m.pt", checkpoint="s.pt", use_pretrained=True, latent_dim=32,
                         hidden_dim=192, prior="mog", n_components=64, kl_weight=0.2, epochs=14, batch_size=256,
                         learning_rate=0.002, device="cpu", n_samples=10000, threshold=0.04, seed=0, n_processes=0,
                         n_examples=12, results_dir="r", figures_dir="f", n_spread_seeds=5),
}

BAD = [
    (DataSettings, "source", "web", "source must be one of"),
    (DataSettings, "elements", "Ga,Qq", "not among the 89"),
    (DataSettings, "test_fraction", 1.5, r"test_fraction must lie in \(0.0, 1.0\), got 1.5"),
    (DataSettings, "example", "Qq2", "example must be a chemical formula"),
    (DataSettings, "correlation_threshold", 0, r"correlation_threshold must lie in \(0.0, 1.0\]"),
    (DataSettings, "data_file", "", "data_file must not be empty"),
    (ModelSettings, "epochs", -5, "epochs must be >= 1, got -5"),
    (ModelSettings, "epochs", 5.0, r"epochs must be an integer >= 1 and <= \d+, got 5.0 \(float\)"),
    (ModelSettings, "device", "tpu", "device must be 'auto', 'cpu'"),
    (ModelSettings, "variance", "square", "variance must be one of"),
    (ModelSettings, "use_pretrained", "yes", "use_pretrained must be True or False"),
    (ModelSettings, "threshold", 1.0, r"threshold must lie in \(0.0, 1.0\), got 1.0"),
    (ModelSettings, "n_examples", -1, "n_examples must be >= 0"),
    (ModelSettings, "elbo_checkpoint", None, "elbo_checkpoint must be a string"),
    (ModelSettings, "compile", 1, "compile must be True or False"),
    (TuningSettings, "widths", "50,abc", "widths must be a comma-separated list of integers"),
    (TuningSettings, "kl_weights", "1,0", r"kl_weights\[1\] must lie in \(0.0, inf\]"),
    (TuningSettings, "thresholds", "0.04,1.5", r"thresholds\[1\] must lie in \(0.0, 1.0\)"),
    (TuningSettings, "n_samples", 0, "n_samples must be >= 1, got 0"),
    (TuningSettings, "sweep_dir", "", "sweep_dir must not be empty"),
    (TuningSettings, "backend", "slurm", "backend must be one of"),
    (TuningSettings, "beta_epochs", 0, "beta_epochs must be >= 1, got 0"),
    (TuningSettings, "plateau_dir", "s/", "plateau_dir='s/' is sweep_dir"),
    (TuningSettings, "plateau_window", 0, "plateau_window must be >= 1, got 0"),
    (TuningSettings, "plateau_epochs", 2.5, "plateau_epochs must be an integer"),
    (TuningSettings, "plateau_tolerance", 1.5, "plateau_tolerance must lie in"),
    (SamplingSettings, "threshold", 2, r"threshold must lie in \(0.0, 1.0\), got 2.0"),
    (SamplingSettings, "n_samples", 10**12, r"n_samples must be <= \d+, got 1000000000000"),
    (SamplingSettings, "max_atoms", 0, "max_atoms"),
    (SamplingSettings, "n_processes", -1, "n_processes must be >= 0"),
    (SamplingSettings, "n_show", 1.5, "n_show must be an integer"),
    (SamplingSettings, "figures_dir", 3, "figures_dir must be a string"),
    (DecompositionSettings, "threshold", -0.1, "threshold must lie in"),
    (DecompositionSettings, "seed", -1, "seed must be >= 0"),
    (DecompositionSettings, "high_similarity", 1.0, r"high_similarity must lie in \(-1.0, 1.0\), got 1.0"),
    (DecompositionSettings, "n_examples", "8", "n_examples must be an integer"),
    (BeyondSettings, "n_spread_seeds", 0, "n_spread_seeds must be >= 1, got 0"),
    (BeyondSettings, "n_spread_seeds", 2.0, "n_spread_seeds must be an integer"),
    (BeyondSettings, "convergence_window", 0, "convergence_window must be >= 1, got 0"),
    (ReportSettings, "results_dir", "  ", "results_dir must not be empty"),
    (BeyondSettings, "prior", "uniform", "prior must be one of"),
    (BeyondSettings, "latent_dim", 0, "latent_dim must be >= 1"),
    (BeyondSettings, "n_samples", 0, "n_samples must be >= 1"),
    (BeyondSettings, "use_pretrained", 1, "use_pretrained must be True or False"),
    (BeyondSettings, "paper_checkpoint", "", "paper_checkpoint must not be empty"),
]


@pytest.mark.parametrize("settings", list(GOOD), ids=lambda s: s.__name__)
def test_the_defaults_construct(settings):
    settings(**GOOD[settings])


@pytest.mark.parametrize(("settings", "name", "value", "message"), BAD,
                         ids=[f"{s.__name__}-{n}-{v!r}" for s, n, v, _ in BAD])
def test_a_bad_value_names_the_parameter_and_what_is_allowed(settings, name, value, message):
    with pytest.raises(ValueError, match=message):
        settings(**{**GOOD[settings], name: value})


def test_the_settings_keep_the_checked_configs():
    model = ModelSettings(**{**GOOD[ModelSettings], "seed": np.int64(3)})
    assert model.train_config.seed == 3 and type(model.train_config.seed) is int
    assert model.model_config.kl_weight == 0.03 and model.elbo_config.kl_weight == 1.0
    tuning = TuningSettings(**GOOD[TuningSettings])
    assert tuning.width_list == (50, 100) and tuning.beta_list == (1.0, 0.3) and tuning.threshold_list == (0.02, 0.04)
    assert tuning.sample_config.n_samples == 10000 and tuning.backend == "local" and tuning.plateau_dir == ""
    plateau = TuningSettings(**{**GOOD[TuningSettings], "plateau_dir": "p", "plateau_window": 5}).plateau_config
    assert (plateau.epochs, plateau.plateau_window, plateau.plateau_tolerance) == (2000, 5, 0.005)
    assert replace(plateau, epochs=40, plateau_window=0) == tuning.train_config
    assert tuning.beta_config == replace(tuning.train_config, epochs=2000)  # the beta sweep: the paper's 2,000 by default
    assert TuningSettings(**{**GOOD[TuningSettings], "beta_epochs": np.int64(7)}).beta_config.epochs == 7
    assert set(SamplingSettings(**GOOD[SamplingSettings]).configs) == {"paper", "nearest"}
    assert SamplingSettings(**GOOD[SamplingSettings]).processes is None
    beyond = BeyondSettings(**{**GOOD[BeyondSettings], "n_processes": 2})
    assert beyond.processes == 2 and beyond.train_config.checkpoint_every == 1 and beyond.model_config.latent_dim == 32
    data = DataSettings(**GOOD[DataSettings])
    assert data.config.test_fraction == 0.2 and data.example_counts.sum() == 13


def test_the_settings_are_frozen():
    settings = ReportSettings(results_dir="r")
    with pytest.raises(AttributeError):
        settings.results_dir = "s"


def test_sentences_follow_the_values():
    widths = pd.DataFrame({"hidden_dim": [50, 100], "epochs_converged": [358, 324], "chosen_short": [False, True],
                           "chosen_converged": [False, True]})
    same = dict(short_epochs=40, paper_width=100, threshold_short=0.04, threshold_width=100, paper_threshold=0.04)
    assert prose.convergence_verdict(widths, threshold_converged=0.04, **same) == (
        "Trained to their plateaus (324 to 358 epochs), the sweep picks width 100: the paper's choice survives; the best T "
        "for the width-100 model trained to its plateau is 0.04, the same as 0.04 for the model chapter's model (the paper: 0.04).")
    flipped = widths.assign(chosen_converged=[True, False])
    assert "the paper's 100, chosen at 40 epochs, does not survive" in prose.convergence_verdict(flipped, threshold_converged=0.05, **same)
    assert "is 0.05, against 0.04" in prose.convergence_verdict(flipped, threshold_converged=0.05, **same)
    kl = flipped.assign(prevalence_kl_converged=[0.030, 0.032])
    close = prose.convergence_verdict(kl, threshold_converged=0.05, kl_spread=[0.031, 0.034, 0.0325], **same)
    assert close.endswith(" Sampling alone moves the width-100 model's prevalence KL by up to 0.0030 (3 sampling seeds: "
                          "0.0310 to 0.0340); the widths trained to their plateaus span 0.0300 to 0.0320, and width 50 leads "
                          "width 100 by 0.0020: within what sampling alone moves, so the pick among these widths is not "
                          "resolved by the prevalence KL at this number of samples.")
    far = prose.convergence_verdict(kl, threshold_converged=0.05, kl_spread=[0.0320, 0.0321], **same)
    assert "leads width 100 by 0.0020: more than sampling alone moves." in far
    assert prose.convergence_verdict(kl.assign(chosen_converged=[False, True]), threshold_converged=0.05,
                                     kl_spread=[0.0320, 0.0321], **same).endswith("span 0.0300 to 0.0320.")
    assert prose.collapse_verdict(0.01).endswith("(posterior collapse)")
    assert prose.collapse_verdict(5.0) == "the codes still carry information about the material"
    assert prose.collapse_verdict(float("nan")) == "not measured"
    assert prose.null_verdict(0.99, 0.9, 0.2, 0.1) == "separated"
    assert prose.null_verdict(0.99, 0.9, 0.95, 0.1) == "offset"
    assert prose.null_verdict(0.99, 0.2, 0.95, 0.15) == "not specific"
    assert set(prose.NULL_VERDICTS) == {"separated", "offset", "not specific"}
    assert "further from linear" in prose.linearity_verdict(10)
    assert "about as close" in prose.linearity_verdict(1)
    assert "closer to linear" in prose.linearity_verdict(0.1)
    assert prose.decoding_verdict(0.0, 0.0, 0.01, 0.01).startswith("The decoder hardly")
    assert "about as well" in prose.decoding_verdict(0.5, 0.5, 0.9, 0.9)
    assert "worse" in prose.decoding_verdict(0.1, 0.5, 0.2, 0.9)
    assert prose.figure8_verdict(0.95, 0.9) == "Figure 8 is reproduced."
    assert prose.width_verdict(100, 100) == "This agrees with the paper."
    assert prose.threshold_verdict(0.04, 0.04) == "the paper's value"
    assert "better" in prose.validity_verdict(0.8, 0.5) and "no better" in prose.validity_verdict(0.5, 0.5)
    assert "reproduced" in prose.prevalence_verdict(0.05, 0.08) and "not reproduced" in prose.prevalence_verdict(0.5, 0.08)
    assert prose.listing({"Ga": 26, "Mo": 44}) == "Ga 26, Mo 44" and prose.names([]) == "none"


def test_beta_one_reads_the_sweep_row_or_says_it_is_absent():
    sweep = pd.DataFrame({"kl_weight": [1.0, 0.03], "test_kl": [0.01, 9.0], "uniqueness": [0.1, 0.9],
                          "reconstructed_elements": [0.0, 0.5], "prevalence_kl": [1.0, 0.1]})
    at_one = prose.beta_one(sweep)
    assert at_one.values == {"test_kl": 0.01, "uniqueness": 0.1, "reconstructed": 0.0, "prevalence_kl": 1.0}
    assert "collapsed" in at_one.verdict
    absent = prose.beta_one(sweep.iloc[1:])
    assert math.isnan(absent.values["test_kl"]) and "not among" in absent.verdict


def test_the_examples_entry_is_compared_with_figure_3():
    table = pd.DataFrame({
        "formula": ["Ga(MoS2)4", "Ga(MoS2)4"], "material_id": ["a", "b"], "energy_above_hull": [0.1, 0.04],
        "formation_energy_per_atom": [-1.0, -1.17], "n_components": [3, 3],
        "decomposes_to": [[], [{"formula": "Ga31Mo6", "amount": 6 / 91}, {"formula": "MoS2", "amount": 49 / 55},
                                {"formula": "GaS", "amount": 3 / 70}]],
    })
    from matvae.composition import encode

    entry = prose.example_entry(table, encode("Ga(MoS2)4"))
    assert entry.sentence == "Ga(MoS2)4 has 2 entries here; the lowest in energy is b."
    assert "decomposes as in the paper's Figure 3" in entry.verdict
    assert entry.values["amount_MoS2"] == pytest.approx(49 / 55) and entry.values["n_components"] == 3
    missing = prose.example_entry(table, encode("GaS"))
    assert missing.record is None and missing.sentence == "GaS is not in this dataset."
