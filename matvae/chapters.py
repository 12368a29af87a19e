"""The parameters of the book's chapters 01-07, each checked in one construction.

Every chapter builds one frozen settings object from its papermill parameters cell, for example
``DataSettings(source=source, elements=elements, ...)`` in ``01_data``. Its ``__post_init__`` checks every value
(through :mod:`matvae.params` and the configs the chapter runs with: :class:`~matvae.data.DataConfig`,
:class:`~matvae.model.ModelConfig`, :class:`~matvae.training.TrainConfig`, :class:`~matvae.sampling.SampleConfig`,
:class:`~matvae.models.sequence.SequenceConfig`) and raises ``ValueError`` naming the parameter and what is allowed,
so that a bad ``papermill -p`` stops the chapter in its first cell. The checked configs are kept on the object.
Chapters 08 and 09 keep theirs beside their code (:mod:`matvae.properties.chapter`, :mod:`matvae.design.chapter`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from matvae.composition import DECODE_RULES, encode
from matvae.data.dataset import DataConfig
from matvae.model import ModelConfig
from matvae.models.sequence import SequenceConfig
from matvae.params import check_float, check_float_list, check_int, check_int_list, check_str, store_checked
from matvae.sampling import SampleConfig
from matvae.training import TrainConfig, resolve_device

def derived() -> Any:
    """A field the settings compute from the parameters in ``__post_init__`` (not a parameter)."""
    return field(init=False, repr=False, compare=False)


def check_bool(name: str, value: Any) -> bool:
    """``True`` or ``False`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def check_paths(settings: Any, *names: str, may_be_empty: tuple[str, ...] = ()) -> None:
    """Each named attribute is a string, non-empty unless listed in ``may_be_empty``."""
    for name in names:
        check_str(name, getattr(settings, name), allow_empty=name in may_be_empty)


@dataclass(frozen=True)
class DataSettings:
    """Chapter ``01_data``: which materials, how they are split, and the checks of the paper's data claims."""

    source: str
    elements: str
    test_fraction: float
    seed: int
    example: str
    correlation_threshold: float
    data_file: str
    results_dir: str
    config: DataConfig = derived()
    example_counts: np.ndarray = derived()  # (89,) atom counts of the worked example

    def __post_init__(self) -> None:
        config = DataConfig(source=self.source, elements=self.elements, test_fraction=self.test_fraction, seed=self.seed)
        check_str("example", self.example, allow_empty=False)
        check_paths(self, "data_file", "results_dir")
        try:
            example_counts = encode(self.example)
        except ValueError as error:
            raise ValueError(f"example must be a chemical formula such as 'Ga(MoS2)4': {error}") from None
        store_checked(self, config=config, example_counts=example_counts, correlation_threshold=check_float(
            "correlation_threshold", self.correlation_threshold, low=0.0, high=1.0, low_inclusive=False))


@dataclass(frozen=True)
class ModelSettings:
    """Chapter ``02_model``: the paper's VAE at the chosen KL weight, and the same model at the ELBO (beta 1)."""

    data_file: str
    checkpoint: str
    elbo_checkpoint: str  # "" skips the beta-1 model
    use_pretrained: bool
    latent_dim: int
    hidden_dim: int
    variance: str
    class_weight: float
    kl_weight: float
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    device: str
    oversample_factor: int
    compile: bool
    threshold: float
    n_examples: int
    results_dir: str
    model_config: ModelConfig = derived()
    elbo_config: ModelConfig = derived()  # the same model with the KL term at full weight
    train_config: TrainConfig = derived()

    def __post_init__(self) -> None:
        model_config = ModelConfig(latent_dim=self.latent_dim, hidden_dim=self.hidden_dim, variance=self.variance,
                                   class_weight=self.class_weight, kl_weight=self.kl_weight)
        train_config = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                                   seed=self.seed, device=self.device, oversample_factor=self.oversample_factor,
                                   compile=self.compile)
        resolve_device(train_config.device)  # a GPU asked for but absent stops here
        check_paths(self, "data_file", "checkpoint", "elbo_checkpoint", "results_dir", may_be_empty=("elbo_checkpoint",))
        store_checked(
            self, model_config=model_config, elbo_config=replace(model_config, kl_weight=1.0), train_config=train_config,
            use_pretrained=check_bool("use_pretrained", self.use_pretrained),
            threshold=check_float("threshold", self.threshold, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False),
            n_examples=check_int("n_examples", self.n_examples, minimum=0),
        )


@dataclass(frozen=True)
class TuningSettings:
    """Chapter ``03_tuning``: the KL-weight sweep, the width sweep of Figure 5 and the threshold sweep."""

    data_file: str
    checkpoint: str
    sweep_dir: str
    kl_weights: str | list  # comma-separated values of beta
    widths: str | list  # comma-separated hidden widths
    epochs: int
    kl_weight: float
    latent_dim: int
    batch_size: int
    learning_rate: float
    seed: int
    device: str
    oversample_factor: int
    compile: bool
    n_samples: int
    threshold: float
    thresholds: str | list  # comma-separated values of T
    results_dir: str
    backend: str = "local"  # where the sweep models train: "local" or "ray" (matvae.runner)
    plateau_dir: str = ""  # checkpoints of the width sweep trained to its plateau ("": that section is skipped)
    plateau_epochs: int = 2000  # the most epochs a width may train before the plateau rule stops it
    plateau_window: int = 50  # the plateau rule's window (epochs), matvae.training.plateaued
    plateau_tolerance: float = 0.005  # ... and its tolerance (a fraction of the test loss)
    beta_epochs: int = 2000  # epochs per model of the beta sweep, trained stacked (matvae.stacked); the paper: 2,000
    beta_list: tuple[float, ...] = derived()
    width_list: tuple[int, ...] = derived()
    threshold_list: tuple[float, ...] = derived()
    model_config: ModelConfig = derived()
    train_config: TrainConfig = derived()
    sample_config: SampleConfig = derived()
    plateau_config: TrainConfig = derived()  # train_config with the plateau rule and plateau_epochs
    beta_config: TrainConfig = derived()  # train_config with beta_epochs

    def __post_init__(self) -> None:
        width_list = check_int_list("widths", self.widths, minimum=1)
        beta_list = check_float_list("kl_weights", self.kl_weights, low=0.0, low_inclusive=False)
        threshold_list = check_float_list("thresholds", self.thresholds, low=0.0, high=1.0, low_inclusive=False,
                                          high_inclusive=False)
        model_config = ModelConfig(latent_dim=self.latent_dim, kl_weight=self.kl_weight)
        train_config = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                                   seed=self.seed, device=self.device, oversample_factor=self.oversample_factor,
                                   compile=self.compile)
        resolve_device(train_config.device)  # a GPU asked for but absent stops here
        sample_config = SampleConfig(n_samples=self.n_samples, threshold=self.threshold, seed=self.seed)
        check_paths(self, "data_file", "checkpoint", "sweep_dir", "results_dir", "plateau_dir", may_be_empty=("plateau_dir",))
        if self.plateau_dir and self.plateau_dir.rstrip("/") == self.sweep_dir.rstrip("/"):
            raise ValueError(f"plateau_dir={self.plateau_dir!r} is sweep_dir: the plateau sweep needs its own folder "
                             "(its checkpoints have other training settings)")
        plateau_config = replace(train_config, epochs=check_int("plateau_epochs", self.plateau_epochs, minimum=1),
                                 plateau_window=check_int("plateau_window", self.plateau_window, minimum=1),
                                 plateau_tolerance=check_float("plateau_tolerance", self.plateau_tolerance, low=0.0, high=1.0))
        from matvae.runner import check_backend

        check_backend(self.backend)
        beta_config = replace(train_config, epochs=check_int("beta_epochs", self.beta_epochs, minimum=1))
        store_checked(self, width_list=width_list, beta_list=beta_list, threshold_list=threshold_list,
                      model_config=model_config, train_config=train_config, sample_config=sample_config,
                      plateau_config=plateau_config, beta_config=beta_config, beta_epochs=beta_config.epochs)


@dataclass(frozen=True)
class SamplingSettings:
    """Chapter ``04_sampling``: the samples of Figures 6 and 7 and their generation metrics."""

    data_file: str
    checkpoint: str
    n_samples: int
    threshold: float
    max_atoms: int
    seed: int
    n_processes: int  # 0: all CPUs
    n_show: int
    results_dir: str
    figures_dir: str
    configs: dict[str, SampleConfig] = derived()  # one per decoding rule

    def __post_init__(self) -> None:
        configs = {rule: SampleConfig(n_samples=self.n_samples, threshold=self.threshold, rule=rule,
                                      max_atoms=self.max_atoms, seed=self.seed) for rule in DECODE_RULES}
        check_paths(self, "data_file", "checkpoint", "results_dir", "figures_dir")
        store_checked(self, configs=configs, n_processes=check_int("n_processes", self.n_processes, minimum=0),
                      n_show=check_int("n_show", self.n_show, minimum=0))

    @property
    def processes(self) -> int | None:
        """Processes for the SMACT checks (``None``: all CPUs)."""
        return self.n_processes or None


@dataclass(frozen=True)
class DecompositionSettings:
    """Chapter ``05_decomposition``: Figure 8 and its null models."""

    data_file: str
    checkpoint: str
    threshold: float
    seed: int
    high_similarity: float  # the share of similarities above this value is reported
    n_examples: int
    results_dir: str
    figures_dir: str

    def __post_init__(self) -> None:
        SampleConfig(threshold=self.threshold, seed=self.seed)  # checks threshold and seed
        check_paths(self, "data_file", "checkpoint", "results_dir", "figures_dir")
        store_checked(
            self,
            high_similarity=check_float("high_similarity", self.high_similarity, low=-1.0, high=1.0, low_inclusive=False,
                                        high_inclusive=False),
            n_examples=check_int("n_examples", self.n_examples, minimum=0),
        )


@dataclass(frozen=True)
class ReportSettings:
    """Chapter ``06_report``: where the chapters wrote their numbers."""

    results_dir: str

    def __post_init__(self) -> None:
        check_paths(self, "results_dir")


@dataclass(frozen=True)
class BeyondSettings:
    """Chapter ``07_beyond``: the sequence model beside the paper's, on the same data."""

    data_file: str
    paper_checkpoint: str
    checkpoint: str
    use_pretrained: bool
    latent_dim: int
    hidden_dim: int
    prior: str
    n_components: int
    kl_weight: float
    epochs: int
    batch_size: int
    learning_rate: float
    device: str
    n_samples: int
    threshold: float
    seed: int
    n_processes: int  # 0: all CPUs
    n_examples: int
    results_dir: str
    figures_dir: str
    n_spread_seeds: int = 5  # sampling seeds over which the elements-per-material W1 is measured
    convergence_window: int = 10  # window (epochs) of the plateau rule the chapter reports; training runs all epochs
    model_config: SequenceConfig = derived()
    train_config: TrainConfig = derived()

    def __post_init__(self) -> None:
        model_config = SequenceConfig(latent_dim=self.latent_dim, hidden_dim=self.hidden_dim, prior=self.prior,
                                      n_components=self.n_components, kl_weight=self.kl_weight)
        train_config = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                                   seed=self.seed, device=self.device, checkpoint_every=1)
        SampleConfig(n_samples=self.n_samples, threshold=self.threshold, seed=self.seed)
        check_paths(self, "data_file", "paper_checkpoint", "checkpoint", "results_dir", "figures_dir")
        store_checked(self, model_config=model_config, train_config=train_config,
                      use_pretrained=check_bool("use_pretrained", self.use_pretrained),
                      n_processes=check_int("n_processes", self.n_processes, minimum=0),
                      n_examples=check_int("n_examples", self.n_examples, minimum=0),
                      n_spread_seeds=check_int("n_spread_seeds", self.n_spread_seeds, minimum=1),
                      convergence_window=check_int("convergence_window", self.convergence_window, minimum=1))

    @property
    def processes(self) -> int | None:
        """Processes for the SMACT checks (``None``: all CPUs)."""
        return self.n_processes or None
