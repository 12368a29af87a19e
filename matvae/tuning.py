"""The paper's tuning: the hidden-width sweep of Figure 5 and the threshold T, plus the KL weight.

Each model of a sweep is an ordinary :func:`matvae.training.train` run with its own checkpoint, so a sweep
interrupted at any point resumes where it stopped and a finished one is only read back.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from matvae import metrics
from matvae.composition import decode_counts
from matvae.data.dataset import MaterialsDataset
from matvae.model import ModelConfig
from matvae.params import check_float_list, check_int_list, check_seed
from matvae.runner import Job, Resources, resources_for, run_jobs
from matvae.sampling import reconstruct, sample
from matvae.training import CheckpointBusyError, TrainConfig, train

SWEEPABLE: tuple[str, ...] = ("hidden_dim", "kl_weight", "seed")
"""What a sweep may vary: a :class:`ModelConfig` field (``hidden_dim``, ``kl_weight``) or the training ``seed``."""
BUSY_POLL_SECONDS = 1.0  # how often a job waits for a checkpoint another sweep is training


def check_sweep_values(setting: str, values) -> tuple:
    """``values`` of ``setting`` checked (a list or a comma-separated string): widths and seeds are integers."""
    if setting not in SWEEPABLE:
        raise ValueError(f"setting must be one of {SWEEPABLE}, got {setting!r}")
    if setting == "hidden_dim":
        checked = check_int_list("values", values, minimum=1)
    elif setting == "seed":
        checked = tuple(check_seed(f"values[{i}]", v) for i, v in enumerate(check_int_list("values", values, minimum=0)))
    else:
        checked = check_float_list("values", values, low=0.0)
    repeated = sorted({v for v in checked if checked.count(v) > 1})
    if repeated:
        raise ValueError(f"values must differ (one model each), got {', '.join(f'{v:g}' for v in repeated)} more than once")
    return checked


def configs_for(setting: str, value, model_config: ModelConfig, train_config: TrainConfig) -> tuple[ModelConfig, TrainConfig]:
    """The model and training settings of the sweep's model for ``setting = value``."""
    if setting == "seed":
        return model_config, replace(train_config, seed=value)
    return replace(model_config, **{setting: value}), train_config


def when_free(function, /, *args, **kwargs):
    """``function(*args, **kwargs)``, a training run into a checkpoint (:func:`matvae.training.train`,
    :func:`matvae.stacked.train_stacked`), waiting while another run (another sweep on the same storage) trains
    that checkpoint; then its finished checkpoint is loaded instead of trained twice."""
    while True:
        try:
            return function(*args, **kwargs)
        except CheckpointBusyError:
            time.sleep(BUSY_POLL_SECONDS)


def job_options(setting: str, model_config, train_config, *, n_samples: int, threshold: float, seed: int,
                show_progress: bool | None, backend: str) -> dict:
    """The keyword arguments every job of a sweep shares (progress bars only in this process)."""
    return {"setting": setting, "model_config": model_config, "train_config": train_config, "n_samples": n_samples,
            "threshold": threshold, "seed": seed, "show_progress": show_progress if backend == "local" else False}


def run_sweep_jobs(jobs: list[Job], *, train_data: MaterialsDataset, test_data: MaterialsDataset,
                   reference_counts: np.ndarray, backend: str, storage, desc: str, show_progress: bool | None,
                   outcomes: list | None) -> list:
    """Run a sweep's jobs with the data and the reference prevalence shared; their values in order (each
    :class:`~matvae.runner.JobOutcome` appended to ``outcomes`` when it is a list)."""
    shared = {"train_data": train_data, "test_data": test_data, "reference": metrics.prevalence(reference_counts)}
    done = run_jobs(jobs, backend=backend, storage=storage, shared=shared, desc=desc, show_progress=show_progress)
    if outcomes is not None:
        outcomes.extend(done)
    return [outcome.value for outcome in done]


def train_and_measure(
    *,
    train_data: MaterialsDataset,
    test_data: MaterialsDataset,
    reference: np.ndarray,
    setting: str,
    value,
    model_config: ModelConfig,
    train_config: TrainConfig,
    checkpoint_path: str | None,
    n_samples: int,
    threshold: float,
    seed: int,
    show_progress: bool | None,
) -> dict:
    """One job of :func:`sweep`: train the model of ``setting = value`` (resuming its checkpoint) and measure it."""
    started = time.perf_counter()
    config, train_settings = configs_for(setting, value, model_config, train_config)
    result = when_free(train, train_data, test_data, config, train_settings, checkpoint_path=checkpoint_path,
                       show_progress=show_progress)
    return sweep_row(setting, value, result, test_data, reference, n_samples=n_samples, threshold=threshold, seed=seed,
                     train_seconds=result.elapsed_seconds, started=started)


def sweep(
    train_data: MaterialsDataset,
    test_data: MaterialsDataset,
    setting: str,
    values: tuple | list | str,
    model_config: ModelConfig,
    train_config: TrainConfig,
    *,
    checkpoint_dir: str | Path,
    reference_counts: np.ndarray,
    n_samples: int = 10_000,
    threshold: float = 0.04,
    seed: int = 0,
    show_progress: bool | None = None,
    backend: str = "local",
    resources: Resources | None = None,
    outcomes: list | None = None,
) -> pd.DataFrame:
    """Train one model per value of a setting and measure what Figure 5 shows, and more.

    ``setting`` is ``"hidden_dim"`` (the paper's Figure 5), ``"kl_weight"`` or the training ``"seed"``. One row per
    value: ``test_nelbo``, ``test_rec``, ``test_kl`` (last epoch), ``prevalence_kl`` / ``prevalence_js`` of
    ``n_samples`` samples against ``reference_counts``' prevalence, ``uniqueness`` of the samples,
    ``reconstructed_elements`` (share of test materials whose element set comes back through mu(x) and the
    paper's rule), ``n_parameters``, ``status`` and timings. Checkpoints: ``checkpoint_dir/{setting}-{value}.pt``.

    Each model is one job of :func:`matvae.runner.run_jobs` on ``backend`` (``"local"``: one after another in this
    process; ``"ray"``: Ray tasks asking ``resources`` each, by default :func:`~matvae.runner.default_resources`,
    ``checkpoint_dir`` then being the storage every worker writes to). Pass a list as ``outcomes`` to get each
    job's :class:`~matvae.runner.JobOutcome` (attempts, host).
    """
    values = check_sweep_values(setting, values)
    resources = resources_for(backend, resources)
    storage = Path(checkpoint_dir).resolve()
    common = job_options(setting, model_config, train_config, n_samples=n_samples, threshold=threshold, seed=seed,
                         show_progress=show_progress, backend=backend)
    jobs = [
        Job(f"{setting}-{value:g}", train_and_measure,
            dict(common, value=value, checkpoint_path=str(storage / f"{setting}-{value:g}.pt")), resources)
        for value in values
    ]
    rows = run_sweep_jobs(jobs, train_data=train_data, test_data=test_data, reference_counts=reference_counts,
                          backend=backend, storage=storage, desc=setting, show_progress=show_progress, outcomes=outcomes)
    return pd.DataFrame(rows)


def sweep_row(
    setting: str,
    value,
    result,
    test_data: MaterialsDataset,
    reference: np.ndarray,
    *,
    n_samples: int,
    threshold: float,
    seed: int,
    train_seconds: float,
    started: float,
) -> dict:
    """One row of :func:`sweep` for a trained model (a :class:`~matvae.training.TrainResult`): its test metrics,
    ``n_samples`` samples measured against the ``reference`` prevalence, and the round trip of the test split.
    ``wall_seconds`` counts from ``started`` (a ``time.perf_counter()`` value)."""
    samples, distribution = _sampled_prevalence(result.model, len(reference), n_samples, threshold, seed)
    rebuilt = reconstruct(result.model, test_data.x, y=test_data.y, threshold=threshold)
    return {
        setting: value,
        "n_parameters": result.model.n_parameters()["total"],
        "epochs": result.epochs,  # fewer than asked for when the plateau rule stopped the training
        "test_nelbo": result.history["test_nelbo"][-1],
        "test_rec": result.history["test_rec"][-1],
        "test_kl": result.history["test_kl"][-1],
        "prevalence_kl": metrics.prevalence_kl(reference, distribution),
        "prevalence_js": metrics.jensen_shannon(reference, distribution),
        "uniqueness": metrics.uniqueness(samples.formulas),
        "reconstructed_elements": metrics.element_set_match_rate(rebuilt.counts, test_data.counts),
        "status": result.status,
        "train_seconds": train_seconds,
        "wall_seconds": time.perf_counter() - started,
    }


def _sampled_prevalence(model, n_elements: int, n_samples: int, threshold: float, seed: int):
    """``n_samples`` samples of ``model`` and the element prevalence of the valid ones (uniform when none is)."""
    samples = sample(model, n_samples, threshold=threshold, seed=seed)
    produced = samples.counts[samples.valid]
    distribution = metrics.prevalence(produced) if len(produced) else np.full(n_elements, 1 / n_elements)
    return samples, distribution


def prevalence_kl_spread(model, reference_counts: np.ndarray, *, n_samples: int, threshold: float,
                         seeds) -> list[float]:
    """The prevalence KL of :func:`sweep`'s row of ``model`` once per sampling seed: how far sampling alone moves
    the number a sweep compares widths by. ``ValueError`` for no seeds or fewer than 1 sample."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty: give at least one sampling seed")
    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples!r}")
    reference = metrics.prevalence(np.asarray(reference_counts))
    return [metrics.prevalence_kl(reference, _sampled_prevalence(model, len(reference), int(n_samples), threshold, seed)[1])
            for seed in seeds]


def choose_width(sweep: pd.DataFrame) -> int:
    """The width with the smallest sum of min-max-normalised test NELBO and prevalence KL (both lower-better),
    the "good combination of the two metrics" of the paper made explicit; ties go to the smaller width."""
    if sweep.empty:
        raise ValueError("the sweep is empty")
    score = sum(
        (sweep[c] - sweep[c].min()) / (sweep[c].max() - sweep[c].min()) if sweep[c].max() > sweep[c].min() else 0 * sweep[c]
        for c in ("test_nelbo", "prevalence_kl")
    )
    best = score[score == score.min()].index
    return int(sweep.loc[best, "hidden_dim"].min())


def sweep_checkpoint(checkpoint_dir: str | Path, setting: str, value) -> Path:
    """Where :func:`sweep` keeps the checkpoint of the model of ``setting`` = ``value`` in ``checkpoint_dir``."""
    (value,) = check_sweep_values(setting, [value])
    return Path(checkpoint_dir) / f"{setting}-{value:g}.pt"


def convergence_table(short: pd.DataFrame, converged: pd.DataFrame) -> pd.DataFrame:
    """The width sweep trained for a fixed number of epochs against the same sweep trained to its plateau, one row
    per width in both: epochs, test NELBO and prevalence KL of each, and whether :func:`choose_width` picks the
    width in each. ``ValueError`` when the two share no width or a column is missing."""
    needed = ("hidden_dim", "epochs", "test_nelbo", "prevalence_kl")
    for name, table in (("short", short), ("converged", converged)):
        missing = [c for c in needed if c not in table.columns]
        if missing:
            raise ValueError(f"{name} sweep lacks the column(s) {missing}: give two width sweeps of matvae.tuning.sweep")
    both = short[list(needed)].merge(converged[list(needed)], on="hidden_dim", suffixes=("_short", "_converged"))
    if both.empty:
        raise ValueError("the two sweeps share no width")
    picks = {"short": choose_width(both.rename(columns=lambda c: c.removesuffix("_short"))),
             "converged": choose_width(both.rename(columns=lambda c: c.removesuffix("_converged")))}
    for kind, width in picks.items():
        both[f"chosen_{kind}"] = both["hidden_dim"] == width
    return both


def choose_kl_weight(sweep: pd.DataFrame) -> float:
    """The KL weight whose samples' element prevalence is closest to the data's (smallest prevalence KL)."""
    if sweep.empty:
        raise ValueError("the sweep is empty")
    return float(sweep.loc[sweep["prevalence_kl"].idxmin(), "kl_weight"])


def sweep_thresholds(
    probabilities: np.ndarray,
    reference_counts: np.ndarray,
    thresholds: tuple[float, ...] | list[float] | str,
    *,
    rule: str = "paper",
) -> pd.DataFrame:
    """Decode the same decoder means at each threshold T and compare the number of elements per material with
    the reference's: Wasserstein-1 distance, total-variation distance, share decoded, mean elements."""
    thresholds = check_float_list("thresholds", thresholds, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    reference = metrics.elements_per_material(reference_counts)
    support = range(0, max(int(reference.max()), 12) + 1)
    reference_share = metrics.count_distribution(reference, support=support, normalize=True)
    rows = []
    for threshold in thresholds:
        counts = decode_counts(probabilities, threshold=threshold, rule=rule)
        decoded = counts[counts.any(axis=1)]
        if len(decoded):
            k = metrics.elements_per_material(decoded)
            share = metrics.count_distribution(np.minimum(k, support[-1]), support=support, normalize=True)
            wasserstein = metrics.n_elements_wasserstein(decoded, reference_counts)
            total_variation = 0.5 * float(np.abs(share - reference_share).sum())
            mean_k = float(k.mean())
        else:
            wasserstein, total_variation, mean_k = float("nan"), 1.0, float("nan")
        rows.append(
            {
                "threshold": threshold,
                "wasserstein": wasserstein,
                "total_variation": total_variation,
                "decoded": len(decoded) / len(counts),
                "mean_elements": mean_k,
            }
        )
    return pd.DataFrame(rows)


def best_threshold(sweep: pd.DataFrame) -> float:
    """The threshold whose number-of-elements distribution is closest (Wasserstein) to the data's."""
    valid = sweep.dropna(subset=["wasserstein"])
    if valid.empty:
        raise ValueError("no threshold decoded any material")
    return float(valid.loc[valid["wasserstein"].idxmin(), "threshold"])
