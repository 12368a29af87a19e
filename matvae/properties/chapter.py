"""What the chapter "Properties and stability" runs, so that the notebook only calls and shows.

:class:`PropertiesSettings` checks every parameter of the chapter in one construction;
:func:`fit_predictors` fits the formation-energy predictors on the training split and predicts the test split;
:func:`oracle_check` measures how often the oracle's predicted stability is right on unseen formulas;
:func:`generator_samples` draws the samples whose S.U.N. rates the chapter reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matvae.data.dataset import SplitData
from matvae.params import check_float, check_int, check_seed, check_str
from matvae.properties.hull import HullReference


@dataclass(frozen=True)
class PropertiesSettings:
    """The chapter's parameters (see its parameters cell); construction checks every value."""

    data_file: str
    paper_checkpoint: str
    checkpoint: str
    energy_checkpoint: str
    use_pretrained: bool
    energy_epochs: int
    gbm_iterations: int
    head_epochs: int
    joint_epochs: int
    joint_learning_rate: float
    n_samples: int
    threshold: float
    seed: int
    n_processes: int
    results_dir: str
    figures_dir: str

    def __post_init__(self) -> None:
        for name in ("data_file", "paper_checkpoint", "checkpoint", "energy_checkpoint", "results_dir", "figures_dir"):
            check_str(name, getattr(self, name), allow_empty=False)
        if not isinstance(self.use_pretrained, bool):
            raise TypeError(f"use_pretrained must be True or False, got {self.use_pretrained!r}")
        check_int("energy_epochs", self.energy_epochs, minimum=1, maximum=10_000)
        check_int("gbm_iterations", self.gbm_iterations, minimum=1, maximum=100_000)
        check_int("head_epochs", self.head_epochs, minimum=1, maximum=10_000)
        check_int("joint_epochs", self.joint_epochs, minimum=0, maximum=10_000)
        check_float("joint_learning_rate", self.joint_learning_rate, low=0.0, high=1.0, low_inclusive=False)
        check_int("n_samples", self.n_samples, minimum=1, maximum=1_000_000)
        check_float("threshold", self.threshold, low=1e-6, high=1.0)
        check_seed("seed", self.seed)
        check_int("n_processes", self.n_processes, minimum=0)

    @property
    def processes(self) -> int | None:
        """Processes for the SMACT checks (``None``: all CPUs)."""
        return self.n_processes or None


def timed(function, *args, **kwargs):
    """``(function(*args, **kwargs), seconds it took)``."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def fit_and_predict(predictors: dict, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> tuple[dict, dict]:
    """Fit each predictor (``fit(x, y)``/``predict(x)``) on the training rows and predict the test rows.

    Returns ``({name: (n_test,) predictions}, {name: seconds to fit and predict})``."""
    predictions, seconds = {}, {}
    for name, predictor in predictors.items():
        start = time.perf_counter()
        predictions[name] = predictor.fit(x_train, y_train).predict(x_test)
        seconds[name] = time.perf_counter() - start
    return predictions, seconds


@dataclass(frozen=True)
class OracleCheck:
    """The oracle on the test split, against the hull of the training split alone (formulas never seen)."""

    frame: pd.DataFrame  # one row per test material: formula, true/predicted energy and energy above the hull
    on_snapshot_hull: np.ndarray  # (n,) bool: the material is a vertex of the whole snapshot's hull


def oracle_check(table: pd.DataFrame, split: SplitData, predicted_energy: np.ndarray, reference: HullReference) -> OracleCheck:
    """True and predicted energies above the training split's hull for every test material.

    Args:
        table: the split's materials table (:func:`matvae.properties.targets.split_table`).
        split: the saved split.
        predicted_energy: (n_test,) predicted formation energy per atom of ``split.test_rows``, eV/atom.
        reference: the training split's hull (:func:`training_hull`).
    """
    predicted_energy = np.asarray(predicted_energy, dtype=np.float64)
    if predicted_energy.shape != (len(split.test_rows),):
        raise ValueError(f"predicted_energy must have one value per test row ({len(split.test_rows)}), got {predicted_energy.shape}")
    counts = split.dataset.counts[split.test_rows]
    placement = reference.place(counts)
    true_energy = table["formation_energy_per_atom"].to_numpy(dtype=np.float64)[split.test_rows]
    frame = pd.DataFrame(
        {
            "formula": split.dataset.formula[split.test_rows],
            "n_elements": (counts > 0).sum(axis=1),
            "true energy": true_energy,
            "predicted energy": predicted_energy,
            "true e_above_hull": placement.e_above_hull(true_energy),
            "predicted e_above_hull": placement.e_above_hull(predicted_energy),
        }
    )
    return OracleCheck(frame, table["is_stable"].to_numpy(dtype=bool)[split.test_rows])


def training_hull(table: pd.DataFrame, split: SplitData, *, show_progress: bool | None = None) -> HullReference:
    """The hull had only the training split been known; its known formulas are the training formulas."""
    return HullReference.from_table(table, split.train_rows, show_progress=show_progress)


def properties_markdown(values: dict) -> str:
    """The README's "Properties and stability" tables from the chapter's recorded values (``08_properties``)."""

    def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
        header = "| " + " | ".join(title for _, title, _ in columns) + " |\n| " + " | ".join("---" for _ in columns) + " |\n"
        body = ""
        for row in rows:
            cells = []
            for key, _, spec in columns:
                value = row.get(key)
                cells.append("-" if value is None else format(value, spec) if spec else str(value))
            body += "| " + " | ".join(cells) + " |\n"
        return header + body

    errors = table(values["errors"], [("predictor", "predictor (test split)", ""), ("mae", "MAE (eV/atom)", ".3f"),
                                      ("rmse", "RMSE (eV/atom)", ".3f"), ("fit + predict (s)", "fit + predict (s)", ".0f")])
    scores = table(values["stability_scores"], [("threshold (eV/atom)", "stable if e_above_hull <=", "g"),
                                                ("precision", "precision", ".1%"), ("recall", "recall", ".1%"),
                                                ("false-positive rate", "false-positive rate", ".1%")])
    sun_columns = [("generator", "generator", "")] + [
        (c, c, ".1%") for c in ("valid", "unique", "novel", "stable (<= 0.1)", "stable (<= 0)", "S.U.N.", "S.U.N. (strict)", "valid S.U.N.")
    ]
    sun = table(values["sun"], sun_columns)
    found = values.get("on_hull_found")
    found_text = "-" if found is None else f"{found:.1%}"
    return (
        errors + "\n"
        + f"Stability oracle on unseen formulas (placed against the training split's hull); test materials on the "
        f"snapshot's hull given e_above_hull <= 0.1 eV/atom: {found_text}.\n\n" + scores + "\n" + sun
    )
