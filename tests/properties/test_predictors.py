"""matvae.properties.predictors: every predictor beats the mean on a closed chemical space; inputs are checked."""

import numpy as np
import pandas as pd
import pytest
import torch

from matvae.data import build_dataset, load_materials, split_by_formula
from matvae.elements import N_ELEMENTS
from matvae.model import ModelConfig
from matvae.models import build_model
from matvae.pretrained import load_pretrained
from matvae.properties.predictors import (
    JointLatentHead,
    LatentHead,
    MagpieGBM,
    MeanPredictor,
    compare_predictions,
    regression_metrics,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def space():
    """The Ga-Mo-S-Li-O materials of the snapshot (288 rows) with their formation energies, split by formula."""
    table = load_materials(elements="Ga,Mo,S,Li,O", cache=False)
    data = build_dataset(table)
    energy = table["formation_energy_per_atom"].to_numpy(float)
    train, test = split_by_formula(data.formula, test_fraction=0.25, seed=0)
    return data.x[train], energy[train], data.x[test], energy[test], data.n_elements[test]


SMALL_HEAD = {"hidden_dim": 64, "n_layers": 2, "batch_size": 32}
PREDICTORS = {
    "gbm": lambda: MagpieGBM(max_iter=60, min_samples_leaf=5),
    "latent-paper": lambda: LatentHead(load_pretrained("paper"), **SMALL_HEAD, epochs=100),
    "latent-paper-gbm": lambda: LatentHead(load_pretrained("paper"), head="gbm", gbm_max_iter=100),
    "latent-sequence": lambda: LatentHead(load_pretrained("sequence"), **SMALL_HEAD, epochs=100),
    "joint-paper": lambda: JointLatentHead(load_pretrained("paper"), **SMALL_HEAD, head_epochs=100, epochs=10),
    "joint-sequence": lambda: JointLatentHead(load_pretrained("sequence"), **SMALL_HEAD, head_epochs=100, epochs=3),
}


@pytest.mark.parametrize("key", PREDICTORS)
def test_each_predictor_beats_the_mean(space, key):
    x_train, y_train, x_test, y_test, _ = space
    floor = regression_metrics(y_test, MeanPredictor().fit(x_train, y_train).predict(x_test))["mae"]
    predictor = PREDICTORS[key]()
    assert predictor.fit(x_train, y_train) is predictor
    prediction = predictor.predict(x_test)
    assert prediction.shape == y_test.shape and prediction.dtype == np.float64
    assert regression_metrics(y_test, prediction)["mae"] < 0.8 * floor, predictor.name


def test_predictors_are_reproducible_and_leave_the_model_alone(space):
    x_train, y_train, x_test, _, _ = space
    model = load_pretrained("paper")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = JointLatentHead(model, head_epochs=2, epochs=2, seed=3).fit(x_train, y_train).predict(x_test)
    second = JointLatentHead(model, head_epochs=2, epochs=2, seed=3).fit(x_train, y_train).predict(x_test)
    np.testing.assert_array_equal(first, second)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])
    gbm = [MagpieGBM(max_iter=10, seed=1).fit(x_train, y_train).predict(x_test) for _ in range(2)]
    np.testing.assert_array_equal(*gbm)


def test_mean_predictor_predicts_the_training_mean():
    x = np.eye(N_ELEMENTS)[:3]
    assert MeanPredictor().fit(x, [1.0, 2.0, 6.0]).predict(x[:2]).tolist() == [3.0, 3.0]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MagpieGBM(max_iter=100.0), "max_iter must be an integer"),
        (lambda: MagpieGBM(max_iter=0), "max_iter must be >= 1"),
        (lambda: MagpieGBM(seed=-1), "seed must be >= 0"),
        (lambda: MagpieGBM(learning_rate=0), r"learning_rate must lie in \(0.0, 1.0\]"),
        (lambda: MagpieGBM(loss="l1"), "loss must be one of"),
        (lambda: LatentHead(load_pretrained("paper"), epochs=2.0), "epochs must be an integer"),
        (lambda: LatentHead(load_pretrained("paper"), head="svm"), "head must be one of"),
        (lambda: LatentHead("paper"), "model must be a matvae model"),
        (lambda: JointLatentHead(load_pretrained("paper"), encoder_learning_rate=-1e-3), "encoder_learning_rate"),
        (lambda: JointLatentHead(load_pretrained("paper"), head_epochs=True), "head_epochs must be an integer"),
        (lambda: LatentHead(build_model(ModelConfig(n_elements=10))), "vocabulary of 10 elements"),
    ],
)
def test_bad_settings_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_data_is_refused():
    x = np.eye(N_ELEMENTS)[:3]
    with pytest.raises(ValueError, match=r"y must have shape \(3,\)"):
        MeanPredictor().fit(x, [1.0, 2.0])
    with pytest.raises(ValueError, match="y must be finite, got nan at row 1"):
        MeanPredictor().fit(x, [1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="row 1 sums to 2"):
        MeanPredictor().fit(x + np.eye(N_ELEMENTS)[[0, 1, 2]] * [[0], [1], [0]], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"shape \(n, 89\)"):
        MagpieGBM().fit(x[:, :10], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="not fitted"):
        LatentHead(load_pretrained("paper")).predict(x)


def test_regression_metrics():
    metrics = regression_metrics([0.0, 0.0, 0.0, 0.0], [1.0, -1.0, 1.0, -3.0])
    assert metrics == {"mae": 1.5, "rmse": np.sqrt(3.0), "n": 4}
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        regression_metrics([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="y_pred must be finite"):
        regression_metrics([1.0, 2.0], [1.0, np.inf])


def test_compare_predictions_tables():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    n_elements = np.array([1, 2, 2, 4])
    summary, by_elements = compare_predictions({"a": y + 1.0, "b": np.array([0.0, 3.0, 2.0, 3.0])}, y, n_elements)
    assert list(summary.index) == ["a", "b"] and list(summary.columns) == ["mae", "rmse", "n"]
    assert summary.loc["a", "mae"] == 1.0 and summary.loc["b", "mae"] == 0.5 and summary.loc["b", "rmse"] == 1.0
    assert list(by_elements.index) == ["a", "b"] and list(by_elements.columns) == list(range(1, 10))
    expected_b = pd.Series([0.0, 1.0, np.nan, 0.0] + [np.nan] * 5, index=range(1, 10), name="b")
    pd.testing.assert_series_equal(by_elements.loc["b"], expected_b, check_names=False)
    with pytest.raises(ValueError, match=r"predictions\['a'\].*\(3,\) != \(4,\)"):
        compare_predictions({"a": y[:3]}, y, n_elements)
    with pytest.raises(ValueError, match=r"\(4,\) and \(3,\)"):
        compare_predictions({"a": y}, y, n_elements[:3])
    with pytest.raises(ValueError, match="n_elements must be integers >= 1"):
        compare_predictions({"a": y}, y, n_elements * 0)
    with pytest.raises(ValueError, match="non-empty dict"):
        compare_predictions({}, y, n_elements)
