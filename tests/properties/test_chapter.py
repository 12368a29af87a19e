"""The chapter's settings, orchestration and README tables."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest

from matvae.properties.chapter import (
    PropertiesSettings,
    fit_and_predict,
    oracle_check,
    properties_markdown,
    training_hull,
)
from matvae.properties.predictors import MeanPredictor
from matvae.properties.targets import split_table

GOOD = dict(
    data_file="a.npz", paper_checkpoint="p.pt", checkpoint="s.pt", energy_checkpoint="e.pt", use_pretrained=True,
    energy_epochs=2, gbm_iterations=10, head_epochs=2, joint_epochs=0, joint_learning_rate=1e-3, n_samples=100, threshold=0.04, seed=0,
    n_processes=0, results_dir="r", figures_dir="f",
)


def test_settings_accept_good_values():
    settings = PropertiesSettings(**GOOD)
    assert settings.processes is None and asdict(settings)["n_samples"] == 100


@pytest.mark.parametrize(
    "name, value, match",
    [("energy_epochs", 2.0, "energy_epochs"), ("n_samples", 0, "n_samples"), ("threshold", 2.0, "threshold"),
     ("data_file", "", "data_file"), ("seed", -1, "seed"), ("joint_epochs", -1, "joint_epochs"),
     ("joint_learning_rate", 0.0, "joint_learning_rate")],
)
def test_settings_refuse_bad_values(name, value, match):
    with pytest.raises(ValueError, match=match):
        PropertiesSettings(**{**GOOD, name: value})
    with pytest.raises(TypeError, match="use_pretrained"):
        PropertiesSettings(**{**GOOD, "use_pretrained": "yes"})


def test_fit_and_predict_times_every_predictor():
    x = np.eye(89)[:10]
    predictions, seconds = fit_and_predict({"mean": MeanPredictor()}, x, np.arange(10.0), x[:3])
    np.testing.assert_allclose(predictions["mean"], [4.5, 4.5, 4.5])
    assert seconds["mean"] >= 0


def test_oracle_check_on_a_small_split(small_split):
    table = split_table(small_split)
    energy = table["formation_energy_per_atom"].to_numpy()[small_split.test_rows]
    reference = training_hull(table, small_split)
    check = oracle_check(table, small_split, energy, reference)
    # With the true energies as the prediction, the predicted and true placements agree exactly.
    np.testing.assert_array_equal(check.frame["true e_above_hull"], check.frame["predicted e_above_hull"])
    assert len(check.on_snapshot_hull) == len(small_split.test_rows)
    # A test material on the whole snapshot's hull is on or below the training split's hull.
    assert (check.frame["true e_above_hull"][check.on_snapshot_hull] <= 1e-9).all()
    with pytest.raises(ValueError, match="one value per test row"):
        oracle_check(table, small_split, energy[:-1], reference)


def test_properties_markdown_has_the_three_tables():
    values = {
        "errors": [{"predictor": "mean", "mae": 1.0, "rmse": 1.2, "fit + predict (s)": 0.1}],
        "stability_scores": [{"threshold (eV/atom)": 0.1, "precision": 0.5, "recall": 0.25, "false-positive rate": 0.1}],
        "on_hull_found": 0.8,
        "sun": [{"generator": "g", "valid": 0.5, "unique": 1.0, "novel": 0.9, "stable (<= 0.1)": 0.2, "stable (<= 0)": 0.1,
                 "S.U.N.": 0.15, "S.U.N. (strict)": 0.05, "valid S.U.N.": None}],
    }
    text = properties_markdown(values)
    assert "| mean | 1.000 | 1.200 | 0 |" in text
    assert "| 0.1 | 50.0% | 25.0% | 10.0% |" in text
    assert "80.0%" in text and "| g | 50.0% | 100.0% | 90.0% | 20.0% | 10.0% | 15.0% | 5.0% | - |" in text
