"""One explicit training loop, its evaluation, and checkpoints that carry their config.

The data live on the device as two tensors; an epoch is a seeded permutation sliced into batches, so no
per-sample Python work happens. Checkpoints are written atomically every ``checkpoint_every`` epochs and
hold the model and training configs, the weights, the optimiser, the random generator and the history, so
a killed run resumes where its last checkpoint left it and, on the CPU, ends bit-for-bit where an
uninterrupted run with the same seed ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import pickle
import time
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock, Timeout

from matvae import fused, graphs
from matvae.data.dataset import MaterialsDataset, check_dataset
from matvae.files import DamagedFileError, check_file_path, is_checked, read_checked, write_checked
from matvae.model import MAX_N_ELEMENTS, ModelConfig
from matvae.models import AnyConfig, AnyModel, build_model, config_from_dict, config_to_dict, family_of
from matvae.params import check_choice, check_float, check_int, check_seed, check_str, show, store_checked
from matvae.progress import progress_bar

CHECKPOINT_FORMAT = "matvae-checkpoint"
CHECKPOINT_VERSION = 2  # 2: the torch.save payload inside a SHA-256-checked container; 1: a bare torch.save file
READABLE_VERSIONS: tuple[int, ...] = (1, 2)
METRICS: tuple[str, ...] = ("loss", "nelbo", "kl", "rec", "ce", "accuracy")
EVAL_BATCH = 65_536


# Largest settings a TrainConfig accepts, checked before anything runs (the paper: 2,000 epochs).
MAX_EPOCHS: int = 1_000_000
MAX_BATCH_SIZE: int = 1_000_000
MAX_OVERSAMPLE_FACTOR: int = 1000


@dataclass(frozen=True)
class TrainConfig:
    """How to train (the paper is silent on everything here but the epochs)."""

    epochs: int = 2000  # passes over the (oversampled) training split; the paper: 2,000
    batch_size: int = 1024  # materials per Adam step
    learning_rate: float = 1e-3  # Adam step size (of the first epoch; see learning_rate_decay)
    learning_rate_decay: float = 1.0  # the step is multiplied by this after every epoch (1: constant), down to min_learning_rate
    min_learning_rate: float = 0.0  # the floor of the decaying step (learning_rate_at)
    seed: int = 0  # initial weights, shuffling and the reparameterisation noise
    device: str = "auto"  # "auto" (a GPU when present), "cpu", "cuda", "cuda:N" or "mps"
    oversample_factor: int = 20  # training copies of each material with >= oversample_min_elements elements
    oversample_min_elements: int = 8  # the paper oversamples the rare 8- and 9-element materials
    checkpoint_every: int = 25  # epochs between checkpoints (and always after the last epoch)
    eval_every: int = 1  # epochs between evaluations of the test split
    compile: bool = False  # torch.compile the training step (fuses the element-wise work; the first steps pay ~15-40 s of compilation): the fused step and Adam's update as one graph, or the model's loss under autograd
    plateau_window: int = 0  # stop early once the test loss has plateaued over this many epochs (0: never; see plateaued)
    plateau_tolerance: float = 0.005  # plateau: the last window's best test loss improves on the best before it by < this fraction
    kernel: str = "auto"  # "fused": the paper family's hand-written step (matvae.fused); "autograd": model.loss + backward; "auto": fused where it applies
    cuda_graph: bool = True  # on a CUDA device, replay the fused step from a CUDA graph (matvae.graphs; same arithmetic); no effect elsewhere

    def __post_init__(self) -> None:
        store_checked(
            self,
            epochs=check_int("epochs", self.epochs, minimum=1, maximum=MAX_EPOCHS),
            batch_size=check_int("batch_size", self.batch_size, minimum=1, maximum=MAX_BATCH_SIZE),
            learning_rate=check_float("learning_rate", self.learning_rate, low=0.0, low_inclusive=False, high=10.0),
            learning_rate_decay=check_float("learning_rate_decay", self.learning_rate_decay, low=0.0, low_inclusive=False,
                                            high=1.0),
            min_learning_rate=check_float("min_learning_rate", self.min_learning_rate, low=0.0, high=10.0),
            seed=check_seed("seed", self.seed),
            device=check_device_name(self.device),
            oversample_factor=check_int(
                "oversample_factor", self.oversample_factor, minimum=1, maximum=MAX_OVERSAMPLE_FACTOR
            ),
            oversample_min_elements=check_int(
                "oversample_min_elements", self.oversample_min_elements, minimum=1, maximum=MAX_N_ELEMENTS
            ),
            checkpoint_every=check_int("checkpoint_every", self.checkpoint_every, minimum=1, maximum=MAX_EPOCHS),
            eval_every=check_int("eval_every", self.eval_every, minimum=1, maximum=MAX_EPOCHS),
            kernel=check_choice("kernel", self.kernel, KERNELS),
            plateau_window=check_int("plateau_window", self.plateau_window, minimum=0, maximum=MAX_EPOCHS),
            plateau_tolerance=check_float("plateau_tolerance", self.plateau_tolerance, low=0.0, high=1.0),
        )
        for name in ("compile", "cuda_graph"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.min_learning_rate > self.learning_rate:
            raise ValueError(f"min_learning_rate ({self.min_learning_rate:g}) must not exceed learning_rate "
                             f"({self.learning_rate:g}): the step only decays")

    def learning_rate_at(self, epoch: int) -> float:
        """Adam's step during epoch ``epoch`` (0-based): ``learning_rate * learning_rate_decay ** epoch``, not below
        ``min_learning_rate``. A function of the epoch alone, so a resumed run takes the same steps."""
        return max(self.min_learning_rate, self.learning_rate * self.learning_rate_decay**epoch)


# Settings that may change when a run is resumed: more epochs, another device, other bookkeeping.
RESUMABLE_CHANGES: frozenset[str] = frozenset({"epochs", "device", "checkpoint_every", "eval_every", "compile", "kernel", "cuda_graph",
                                               "plateau_window", "plateau_tolerance"})
KERNELS: tuple[str, ...] = ("auto", "fused", "autograd")


def uses_fused_kernel(model_config, config: "TrainConfig") -> bool:
    """Whether :func:`train` runs the hand-written step of :mod:`matvae.fused` (same loss and gradients as the
    model's own loss under autograd, to float32 rounding): ``kernel="fused"``, or ``"auto"`` for the paper family
    (``compile`` then compiles the fused step and the optimiser's update). ``ValueError`` for ``"fused"`` on a
    family it does not cover."""
    if config.kernel == "autograd":
        return False
    if config.kernel == "fused" and not fused.supports(model_config):
        raise ValueError(f"kernel='fused' trains the paper family only, got {type(model_config).__name__}; "
                         "use kernel='auto' or 'autograd'")
    return fused.supports(model_config)


DEVICE_NAMES = "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"


def check_device_name(device: str) -> str:
    """The spelling of a device (availability is checked by :func:`resolve_device` when training starts)."""
    check_str("device", device, allow_empty=False)
    kind, _, index = device.partition(":")
    if kind not in ("auto", "cpu", "cuda", "mps") or (index and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"device must be {DEVICE_NAMES}, got {device!r}")
    return device


def resolve_device(device: str) -> torch.device:
    """"auto" -> cuda if available, else mps, else cpu; anything else is checked and returned."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be {DEVICE_NAMES}, got {device!r}") from None
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be {DEVICE_NAMES}, got {device!r}")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    if resolved.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} was asked for but MPS is not available; use 'auto' or 'cpu'")
    return resolved


def plateaued(history: dict[str, list[float]], config: "TrainConfig") -> bool:
    """The plateau rule: with ``plateau_window = w > 0``, training has converged once at least ``2 w`` epochs ran and
    the best test loss (the training objective on the test split) of the last ``w`` epochs is not below
    ``(1 - plateau_tolerance)`` times the best of all epochs before them. A pure function of the history, so a
    run stopped by it is recognised as finished when its checkpoint is read again."""
    window = config.plateau_window
    losses = np.asarray(history.get("test_loss", []), dtype=float)
    if window == 0 or len(losses) < 2 * window or np.isnan(losses[-window:]).all() or np.isnan(losses[:-window]).all():
        return False
    return bool(np.nanmin(losses[-window:]) >= (1 - config.plateau_tolerance) * np.nanmin(losses[:-window]))


def plateau_epochs(history: dict[str, list[float]], window: int, tolerance: float = 0.005) -> list[int]:
    """The epochs (1-based) after which :func:`plateaued` holds for a run's ``history`` with this ``window`` and
    ``tolerance``: where the plateau rule would have stopped the run, read off a run that trained all its epochs."""
    config = TrainConfig(epochs=1, plateau_window=check_int("window", window, minimum=1), plateau_tolerance=tolerance)
    n = len(history.get("test_loss", []))
    return [epoch for epoch in range(1, n + 1) if plateaued({"test_loss": history["test_loss"][:epoch]}, config)]


def training_rows(data: MaterialsDataset, config: TrainConfig) -> np.ndarray:
    """Row indices of one training epoch: every material once, plus ``oversample_factor - 1`` extra copies
    of each material with at least ``oversample_min_elements`` elements."""
    rare = np.flatnonzero(data.n_elements >= config.oversample_min_elements)
    return np.concatenate([np.arange(len(data)), np.repeat(rare, config.oversample_factor - 1)])


def class_frequencies(y: np.ndarray, n_classes: int) -> np.ndarray:
    """The class prior p(y): training-split frequencies of each class. (n_classes,)"""
    return np.bincount(y, minlength=n_classes)[:n_classes] / len(y)


def data_fingerprint(train: MaterialsDataset, test: MaterialsDataset) -> str:
    """SHA-256 over the training and test arrays, so a checkpoint is never resumed on other data."""
    digest = hashlib.sha256()
    for array in (train.x, train.y, test.x, test.y):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@dataclass
class Checkpoint:
    """What a checkpoint file holds (see :func:`save_checkpoint`)."""

    model_config: AnyConfig  # the family's config (matvae.models.FAMILIES)
    train_config: TrainConfig | None
    model_state: dict
    epoch: int  # completed epochs
    history: dict[str, list[float]] = field(default_factory=dict)
    optimizer_state: dict | None = None
    generator_state: torch.Tensor | None = None
    data_fingerprint: str = ""
    elapsed_seconds: float = 0.0
    device: str = "cpu"

    def build_model(self, device: str | torch.device = "cpu") -> AnyModel:
        model = build_model(self.model_config)
        model.load_state_dict(self.model_state)
        return model.to(device).eval()


def save_checkpoint(checkpoint: Checkpoint, path: str | Path, *, weights_only: bool = False) -> None:
    """Write atomically; ``weights_only=True`` drops the optimiser and generator (for shipping)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "family": family_of(checkpoint.model_config),
        "model_config": config_to_dict(checkpoint.model_config),
        "train_config": asdict(checkpoint.train_config) if checkpoint.train_config else None,
        "model": {k: v.detach().cpu() for k, v in checkpoint.model_state.items()},
        "epoch": checkpoint.epoch,
        "history": checkpoint.history,
        "data_fingerprint": checkpoint.data_fingerprint,
        "elapsed_seconds": checkpoint.elapsed_seconds,
        "device": checkpoint.device,
        "torch_version": str(torch.__version__),
    }
    if not weights_only:
        payload["optimizer"] = checkpoint.optimizer_state
        payload["generator"] = checkpoint.generator_state
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_checked(path, buffer.getvalue(), kind="checkpoint")


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint with ``torch.load(weights_only=True)``; ``ValueError`` naming the file otherwise.

    A version-2 file is refused unless its payload passes the SHA-256 check, so a changed byte anywhere is
    caught; a version-1 file (a bare ``torch.save``, as shipped by matvae 0.1) is still read.
    """
    path = check_file_path(path, what="checkpoint")
    try:
        source = io.BytesIO(read_checked(path, kind="checkpoint")) if is_checked(path) else path
    except DamagedFileError as exc:
        raise ValueError(f"checkpoint {path.name} is damaged and was not loaded: {exc}") from None
    except OSError as exc:
        raise ValueError(f"checkpoint {path.name} cannot be read ({exc.strerror or exc})") from None
    try:
        payload = torch.load(source, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"checkpoint {path.name} is not a readable matvae checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {path.name} is not a matvae checkpoint")
    if payload.get("version") not in READABLE_VERSIONS:
        raise ValueError(f"checkpoint {path.name} has version {payload.get('version')!r}, this matvae reads {READABLE_VERSIONS}")
    try:
        model_config = config_from_dict(str(payload.get("family", "paper")), dict(payload["model_config"]))
        train_config = TrainConfig(**payload["train_config"]) if payload.get("train_config") else None
        return Checkpoint(
            model_config=model_config,
            train_config=train_config,
            model_state=payload["model"],
            epoch=int(payload["epoch"]),
            history={k: list(v) for k, v in payload.get("history", {}).items()},
            optimizer_state=payload.get("optimizer"),
            generator_state=payload.get("generator"),
            data_fingerprint=payload.get("data_fingerprint", ""),
            elapsed_seconds=float(payload.get("elapsed_seconds", 0.0)),
            device=str(payload.get("device", "cpu")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"checkpoint {path.name} is damaged or from another version ({exc})") from None


def load_model(path: str | Path, *, device: str = "cpu") -> AnyModel:
    """The model stored in a checkpoint, in eval mode on ``device``."""
    checkpoint = load_checkpoint(path)
    try:
        return checkpoint.build_model(resolve_device(device))
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {Path(path).name}: weights do not fit its config ({exc})") from None


@torch.no_grad()
def evaluate(model: AnyModel, x: torch.Tensor, y: torch.Tensor, *, seed: int = 0, loss=None) -> dict[str, float]:
    """Mean loss terms over a whole split, with one seeded sample of z per material. ``loss``: ``model.loss`` or a
    stand-in for it with the same arguments and results (``torch.compile(model.loss)``); default ``model.loss``."""
    was_training = model.training
    model.eval()
    loss = model.loss if loss is None else loss
    generator = torch.Generator(device=x.device).manual_seed(seed)
    totals = torch.zeros(len(METRICS), device=x.device, dtype=torch.float64)
    for start in range(0, len(x), EVAL_BATCH):
        xb, yb = x[start : start + EVAL_BATCH], y[start : start + EVAL_BATCH]
        _, summaries = loss(xb, yb, generator)
        totals += torch.stack([summaries[k].double() for k in METRICS]) * len(xb)
    model.train(was_training)
    return dict(zip(METRICS, (totals / len(x)).tolist()))


@dataclass
class TrainResult:
    """The trained model, its history (per epoch: ``train_*`` and ``test_*`` of :data:`METRICS`) and how
    it came about: ``status`` is "trained", "resumed" (from a checkpoint of an interrupted run) or
    "loaded" (a finished checkpoint of the same config). ``epochs``: the epochs it holds (fewer than asked for when
    the plateau rule of :func:`plateaued` stopped it)."""

    model: AnyModel
    history: dict[str, list[float]]
    status: str
    epochs: int
    elapsed_seconds: float
    device: str


def _check_resumable(checkpoint: Checkpoint, model_config: AnyConfig, config: TrainConfig, fingerprint: str, name: str) -> None:
    """Refuse a checkpoint of another model, settings or data; a weights-only checkpoint passes only when it
    is finished (it holds ``config.epochs`` epochs: loaded, nothing to resume)."""
    if checkpoint.model_config != model_config:
        raise ValueError(
            f"checkpoint {name} holds a model with {checkpoint.model_config}, not {model_config}; "
            "pass another checkpoint path or delete the file to retrain"
        )
    if checkpoint.train_config is None:
        raise ValueError(f"checkpoint {name} holds no training settings and cannot be resumed")
    if checkpoint.optimizer_state is None and checkpoint.epoch != config.epochs and not plateaued(checkpoint.history, config):
        raise ValueError(
            f"checkpoint {name} holds weights only (no training state) after {checkpoint.epoch} epochs and cannot be "
            f"resumed to {config.epochs}; ask for epochs={checkpoint.epoch} or use another path"
        )
    theirs = {k: v for k, v in asdict(checkpoint.train_config).items() if k not in RESUMABLE_CHANGES}
    ours = {k: v for k, v in asdict(config).items() if k not in RESUMABLE_CHANGES}
    if theirs != ours:
        changed = {k: (theirs[k], ours[k]) for k in ours if theirs[k] != ours[k]}
        raise ValueError(f"checkpoint {name} was trained with other settings {changed} (checkpoint, now); use another path")
    if checkpoint.data_fingerprint != fingerprint:
        raise ValueError(f"checkpoint {name} was trained on other data; use another path or the same data config")


def train(
    train_data: MaterialsDataset,
    test_data: MaterialsDataset,
    model_config: ModelConfig = ModelConfig(),
    config: TrainConfig = TrainConfig(),
    *,
    checkpoint_path: str | Path | None = None,
    show_progress: bool | None = None,
) -> TrainResult:
    """Train (or resume, or load) a model of ``model_config``'s family on ``train_data``, evaluating on ``test_data``.

    With ``checkpoint_path``: a finished checkpoint of the same configs and data is loaded; an unfinished
    one is resumed; one of another config or other data is an error (never silently overwritten).
    """
    family_of(model_config)  # a config of a registered model family, else a ValueError naming its type
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a matvae TrainConfig, got {type(config).__name__} {show(config)}")
    for name, data in (("train_data", train_data), ("test_data", test_data)):
        check_dataset(name, data, n_elements=model_config.n_elements, n_classes=model_config.n_classes)
    device = resolve_device(config.device)
    fingerprint = data_fingerprint(train_data, test_data)
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    with exclusive_checkpoint(path):
        return _run_training(
            train_data, test_data, model_config, config, device=device, fingerprint=fingerprint, path=path,
            show_progress=show_progress,
        )


def restore_generator(generator: torch.Generator, state: torch.Tensor, *, saved_device: str, device: torch.device,
                      seed: int, epoch: int) -> bool:
    """Put a resumed run's random stream back: ``state`` when the checkpoint was written on the same kind of device
    (the run then continues exactly as if never interrupted) and ``True``; else ``False``, with a warning.

    A generator's state does not move between device kinds (a CPU state is 5,056 bytes of Mersenne twister, a CUDA
    state a seed and an offset), so a checkpoint written on ``cuda`` and resumed on ``cpu`` (or back) continues
    with a generator seeded from ``(seed, epoch)``: deterministic, and as good a stream, but not the one the
    uninterrupted run would have drawn."""
    if torch.device(saved_device).type == device.type:
        generator.set_state(state)
        return True
    warnings.warn(
        f"checkpoint written on {saved_device} resumed on {device}: the random stream cannot move between devices, "
        f"so the data order and noise from epoch {epoch + 1} on come from a generator seeded from (seed {seed}, "
        f"epoch {epoch}); the result differs from an uninterrupted run as a seed change does",
        RuntimeWarning, stacklevel=2,
    )
    generator.manual_seed((seed + 1) * 1_000_003 + epoch)
    return False


def _fused_step(model, optimizer: torch.optim.Optimizer, *, graphed: bool = False, compile: bool = False):
    """``step(x, y, generator) -> summaries (6,)``: one Adam step of ``model`` with :class:`matvae.fused.Stepper`.

    The noise is drawn as :meth:`matvae.model.VAE.reparameterize` draws it (one ``randn`` of (batch, latent_dim)
    from ``generator``), so both kernels consume the same random stream; the optimiser is the one over
    ``model.parameters()``, so checkpoints do not depend on the kernel. ``graphed``: the step is replayed from a CUDA
    graph (:class:`matvae.graphs.StepGraph`; the optimiser must be capturable), the noise still drawn outside it;
    ``compile``: the step runs ``torch.compile``-d (:class:`matvae.fused.Stepper`)."""
    named = dict(model.named_parameters())
    stacked = {name: p.detach().unsqueeze(0) for name, p in named.items()}  # (1, ...) views: Adam's updates show
    device = next(model.parameters()).device
    kl_weight = torch.tensor([model.config.kl_weight], device=device)
    stepper = fused.Stepper(optimizer, compile=compile)

    def eager(x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return stepper(stacked, named, model.config, kl_weight, x, y, eps.unsqueeze(0))[0]

    run = graphs.StepGraph(eager, device) if graphed else eager

    def step(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        eps = torch.randn((len(x), model.config.latent_dim), generator=generator, device=x.device, dtype=x.dtype)
        return run(x, y, eps)

    return step


def uses_cuda_graph(model_config, config: "TrainConfig", device: torch.device) -> bool:
    """Whether the training steps replay from a CUDA graph: the fused kernel, ``cuda_graph`` on and a CUDA device."""
    return config.cuda_graph and graphs.available(device) and uses_fused_kernel(model_config, config)


def make_adam(parameters, config: "TrainConfig", device: torch.device, *, graphed: bool) -> torch.optim.Adam:
    """Adam with ``config.learning_rate``, in the implementation :func:`configure_adam` picks for the run."""
    optimizer = torch.optim.Adam(parameters, lr=config.learning_rate)
    configure_adam(optimizer, device, graphed=graphed)
    return optimizer


def set_learning_rate(optimizer: torch.optim.Optimizer, value: float) -> None:
    """Set every group's step to ``value``: in place where the step is a tensor (a step replayed from a CUDA graph
    reads it from there), else as a float."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(value)
        else:
            group["lr"] = float(value)


def configure_adam(optimizer: torch.optim.Optimizer, device: torch.device, *, graphed: bool) -> None:
    """Set Adam's implementation for a run on ``device``: capturable multi-tensor (step counts on the GPU) for a
    step replayed from a CUDA graph; else the fused kernel (one pass over all weights; on this project's CPU 0.3 ms
    a step at the paper's size against 1 ms for the multi-tensor one) on the CPU and CUDA; else multi-tensor. The
    update is the same up to float32 rounding. Also called after loading a checkpoint written by another one:
    the step counts move to where this implementation keeps them, and so does the step size (a tensor on the
    device for the capturable one, else a float)."""
    capturable = graphed and device.type == "cuda"
    use_fused = not capturable and device.type in ("cpu", "cuda")
    for group in optimizer.param_groups:
        group["capturable"], group["fused"], group["foreach"] = capturable, use_fused, not use_fused
        # A graph-replayed step reads the step size from a tensor on the device, so that a decaying step reaches it
        # (a float would be baked into the graph); elsewhere it is a float.
        lr = float(group["lr"])
        group["lr"] = torch.tensor(lr, device=device) if capturable else lr
        for param in group["params"]:
            state = optimizer.state.get(param)
            if state and "step" in state:
                where = param.device if capturable or use_fused else torch.device("cpu")
                state["step"] = state["step"].to(device=where, dtype=torch.float32)


class CheckpointBusyError(RuntimeError):
    """Another process (or another call in this one) is training into the same checkpoint file."""


@contextlib.contextmanager
def exclusive_checkpoint(path: Path | None) -> Iterator[None]:
    """Hold the training lock of checkpoint ``path`` (``.NAME.train.lock``) for the length of a run, so two
    runs pointed at one checkpoint never interleave: the second is refused at once with
    :class:`CheckpointBusyError`. ``None``: nothing to hold."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path.with_name(f".{path.name}.train.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise CheckpointBusyError(
            f"checkpoint {path.name} is being trained by another run right now; wait for it to finish, "
            "or train into another checkpoint path"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _run_training(
    train_data: MaterialsDataset,
    test_data: MaterialsDataset,
    model_config: AnyConfig,
    config: TrainConfig,
    *,
    device: torch.device,
    fingerprint: str,
    path: Path | None,
    show_progress: bool | None,
) -> TrainResult:
    """The body of :func:`train`, once the inputs are checked and the checkpoint is held."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(model_config, torch.as_tensor(class_frequencies(train_data.y, model_config.n_classes))).to(device)
    graphed = uses_cuda_graph(model_config, config, device)
    optimizer = make_adam(model.parameters(), config, device, graphed=graphed)
    generator = torch.Generator(device=device).manual_seed(config.seed + 1)
    history: dict[str, list[float]] = {f"{split}_{m}": [] for split in ("train", "test") for m in METRICS}
    history["epoch"], history["seconds"] = [], []
    start_epoch, elapsed, status = 0, 0.0, "trained"
    checkpoint = None

    if path is not None and path.exists():
        checkpoint = load_checkpoint(path)
        _check_resumable(checkpoint, model_config, config, fingerprint, path.name)
        model.load_state_dict(checkpoint.model_state)
        if checkpoint.optimizer_state is not None:  # None only for a finished weights-only checkpoint
            optimizer.load_state_dict(checkpoint.optimizer_state)  # Adam's state follows the parameters' device
            configure_adam(optimizer, device, graphed=graphed)  # the file may come from another device or implementation
            restore_generator(generator, checkpoint.generator_state, saved_device=checkpoint.device, device=device,
                              seed=config.seed, epoch=checkpoint.epoch)
        history, start_epoch, elapsed = checkpoint.history, checkpoint.epoch, checkpoint.elapsed_seconds
        if start_epoch > config.epochs:
            raise ValueError(
                f"checkpoint {path.name} holds {start_epoch} epochs, more than the {config.epochs} asked for; "
                f"ask for epochs={start_epoch} or use another path"
            )
        finished = start_epoch == config.epochs or plateaued(history, config)
        status = "loaded" if finished else "resumed"

    rows = training_rows(train_data, config)
    x = torch.as_tensor(train_data.x[rows], dtype=torch.float32, device=device)  # (n, 89)
    y = torch.as_tensor(train_data.y[rows], dtype=torch.long, device=device)  # (n,)
    x_test = torch.as_tensor(test_data.x, dtype=torch.float32, device=device)
    y_test = torch.as_tensor(test_data.y, dtype=torch.long, device=device)
    n, batch = len(x), config.batch_size

    def write_checkpoint(epoch: int) -> None:
        if path is not None:
            save_checkpoint(
                Checkpoint(
                    model_config, config, model.state_dict(), epoch, history, optimizer.state_dict(),
                    generator.get_state(), fingerprint, elapsed, str(device),
                ),
                path,
            )

    loss_fn = torch.compile(model.loss) if config.compile else model.loss  # the autograd kernel's steps; every evaluation
    step = _fused_step(model, optimizer, graphed=graphed, compile=config.compile) if uses_fused_kernel(model_config, config) else None
    model.train()
    todo = range(start_epoch, start_epoch if status == "loaded" else config.epochs)
    reached = start_epoch  # epochs the model holds
    epochs = progress_bar(todo, desc="training", unit="epoch", enabled=show_progress, initial=start_epoch, total=config.epochs)
    for epoch in epochs:
        started = time.perf_counter()
        set_learning_rate(optimizer, config.learning_rate_at(epoch))
        totals = torch.zeros(len(METRICS), device=device)
        order = torch.randperm(n, generator=generator, device=device)
        for first in range(0, n, batch):
            index = order[first : first + batch]
            xb, yb = x.index_select(0, index), y.index_select(0, index)
            if step is not None:
                totals += step(xb, yb, generator) * len(index)
                continue
            loss, summaries = loss_fn(xb, yb, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            totals += torch.stack([summaries[k].detach() for k in METRICS]) * len(index)
        train_metrics = (totals / n).tolist()
        if not math.isfinite(train_metrics[0]):
            raise FloatingPointError(f"training diverged at epoch {epoch + 1} (loss {train_metrics[0]}); lower learning_rate")
        test_metrics = evaluate(model, x_test, y_test, seed=config.seed + 2, loss=loss_fn) if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs else None
        elapsed += time.perf_counter() - started
        history["epoch"].append(epoch + 1)
        history["seconds"].append(elapsed)
        for name, value in zip(METRICS, train_metrics):
            history[f"train_{name}"].append(value)
        for name in METRICS:
            history[f"test_{name}"].append(test_metrics[name] if test_metrics else float("nan"))
        epochs.set_postfix(nelbo=f"{train_metrics[1]:.3f}", test=f"{history['test_nelbo'][-1]:.3f}", refresh=False)
        reached = epoch + 1
        converged = plateaued(history, config)
        if (epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == config.epochs or converged:
            write_checkpoint(epoch + 1)
        if converged:
            break
    epochs.close()
    model.eval()
    return TrainResult(model, history, status, reached, elapsed, checkpoint.device if status == "loaded" else str(device))
