"""Train the models of one sweep together: K paper-family VAEs, stacked along a leading model axis.

The models differ only in the KL weight beta, the training seed and/or the width ``hidden_dim``. Their weights are
stacked into tensors with a leading model axis; training steps run the hand-written forward and backward of
:mod:`matvae.fused` on the stacked weights (``kernel="autograd"``: the model's own loss,
:meth:`matvae.model.VAE.loss`, under ``torch.vmap`` through ``torch.func.functional_call`` and autograd; the test
evaluation always runs that way), so one step updates all K models with batched matrix multiplies. One Adam over
the stacked weights is K Adams (Adam is element-wise).

Models of different widths are stacked zero-padded to the widest. A padded hidden unit has zero incoming weights,
bias and outgoing weights, so its activation is exactly ELU(0) = 0 and every one of its weights gets an exactly
zero gradient; Adam leaves a weight with zero gradients (and zero moments) where it is, so the padding stays zero
and each model trains as its own width, to the rounding of a longer matrix product. On a GPU, where a step of the
paper's small model costs kernel launches rather than FLOPs, the ten-width sweep then costs about one model.

Each model sees what :func:`matvae.training.train` would give it: initial weights drawn after
``torch.manual_seed(seed)``, a generator seeded ``seed + 1`` that draws the epoch's permutation and then one
``randn`` of the reparameterisation noise per batch (drawn here outside ``vmap``, from the same generator, in
the same order, and handed to the model), and a test evaluation with noise from a generator seeded
``seed + 2``. Only the floating-point rounding of a batched product differs from an unbatched one, so a
stacked model equals its serial twin to rounding after a step and to seed-to-seed variation after many.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.func import functional_call

from matvae import fused, graphs, training
from matvae.data.dataset import MaterialsDataset, check_dataset
from matvae.files import read_checked, write_checked
from matvae.model import VAE, ModelConfig
from matvae.params import check_float_list, check_int, check_int_list
from matvae.progress import progress_bar
from matvae.runner import Job, Resources, resources_for
from matvae.training import METRICS, TrainConfig, TrainResult
from matvae.tuning import job_options, run_sweep_jobs, sweep_row, when_free

STACK_FORMAT = "matvae-stack"
STACK_VERSION = 1
EVAL_ACTIVATIONS = 1 << 20  # hidden activations (materials x models x width) per chunk of a stack's test evaluation
VARYING_MODEL_FIELDS: frozenset[str] = frozenset({"kl_weight", "hidden_dim"})  # ModelConfig fields the stacked models may differ in
VARYING_TRAIN_FIELDS: frozenset[str] = frozenset({"seed"})  # TrainConfig fields they may differ in
SWEEPABLE: tuple[str, ...] = ("hidden_dim", "kl_weight", "seed")


class _GivenNoiseVAE(VAE):
    """The paper's VAE with the reparameterisation noise eps set from outside (drawn where ``train`` draws it)."""

    eps: torch.Tensor | None = None

    def reparameterize(self, mean: torch.Tensor, variance: torch.Tensor, generator=None) -> torch.Tensor:
        return mean + variance.sqrt() * self.eps  # VAE.reparameterize, eps given


class _Loss(nn.Module):
    """``forward(x, y, eps) -> model.loss(x, y)`` with the noise eps: what ``functional_call`` runs."""

    def __init__(self, model: _GivenNoiseVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor):
        self.model.eps = eps
        try:
            return self.model.loss(x, y)
        finally:
            self.model.eps = None


def check_stackable(model_configs, train_configs) -> tuple[list[ModelConfig], list[TrainConfig]]:
    """The configs as two lists of equal length K; ``ValueError`` naming the first field that differs where
    only kl_weight and hidden_dim (model) and seed (training) may. A single ``TrainConfig`` is used for every model."""
    model_configs = list(model_configs)
    if not model_configs:
        raise ValueError("model_configs is empty: give at least one ModelConfig")
    train_configs = [train_configs] * len(model_configs) if isinstance(train_configs, TrainConfig) else list(train_configs)
    if len(train_configs) != len(model_configs):
        raise ValueError(f"{len(train_configs)=} != {len(model_configs)=}: give one TrainConfig or one per model")
    for name, configs, kind, varying in (("model_configs", model_configs, ModelConfig, VARYING_MODEL_FIELDS),
                                         ("train_configs", train_configs, TrainConfig, VARYING_TRAIN_FIELDS)):
        for i, config in enumerate(configs):
            if type(config) is not kind:
                raise ValueError(f"{name}[{i}] must be a {kind.__name__} (the paper family), got {type(config).__name__}")
            first, this = asdict(configs[0]), asdict(config)
            for field in first:
                if field not in varying and this[field] != first[field]:
                    raise ValueError(f"{name}[{i}].{field}={this[field]!r} != {name}[0].{field}={first[field]!r}: "
                                     f"stacked models may differ only in {sorted(varying)}")
    return model_configs, train_configs


def stacked_loss(template: _Loss, params: dict, buffers: dict, kl_weights: torch.Tensor, x, y, eps):
    """Each model's loss and summaries on its batch, vmapped over the leading model axis K.

    params/buffers: stacked, (K, ...); kl_weights: (K,); x: (K, batch, 89) or (batch, 89) shared; y likewise;
    eps: (K, batch, latent_dim). -> loss (K,), summaries {name: (K,)}. The loss is rebuilt from the model's
    summaries as ``rec + beta * kl + class_weight * ce``, the formula of :meth:`VAE.loss` (bitwise equal at
    beta = 1 too), because beta is a per-model tensor here and a Python float there.
    """
    class_weight = template.model.config.class_weight

    def one(p, b, beta, xb, yb, e):
        _, summaries = functional_call(template, (p, b), (xb, yb, e))
        loss = summaries["rec"] + beta * summaries["kl"] + class_weight * summaries["ce"]
        return loss, {**summaries, "loss": loss}

    data_dim = 0 if x.dim() == 3 else None
    return torch.vmap(one, in_dims=(0, 0, 0, data_dim, data_dim, 0))(params, buffers, kl_weights, x, y, eps)


def _training_identity(settings: dict) -> dict:
    """The settings of a stacked model that a resume must match: a :class:`TrainConfig`'s, but those that may change
    (:data:`matvae.training.RESUMABLE_CHANGES`), through ``TrainConfig`` so that a checkpoint written before a
    setting existed reads it at its default."""
    kept = {k: v for k, v in settings.items() if k not in training.RESUMABLE_CHANGES}
    return {k: v for k, v in asdict(TrainConfig(**kept)).items() if k not in training.RESUMABLE_CHANGES}


def train_stacked(
    train_data: MaterialsDataset,
    test_data: MaterialsDataset,
    model_configs: list[ModelConfig],
    train_configs: TrainConfig | list[TrainConfig],
    *,
    checkpoint_path: str | Path | None = None,
    show_progress: bool | None = None,
) -> list[TrainResult]:
    """Train K models together; one :class:`TrainResult` per model, in order, with the histories of
    :func:`matvae.training.train` (``elapsed_seconds`` is the stack's). ``train_configs``: one for all, or one per
    model differing only in seed. With ``checkpoint_path`` (one checked file for the stack, written every
    ``checkpoint_every`` epochs): a finished stack is loaded, an unfinished one resumed, another one refused.
    ``compile``: the training step (:class:`matvae.fused.Stepper`, or :func:`stacked_loss` under autograd) and the
    test evaluation are ``torch.compile``-d (fused element-wise work, rounding differs slightly)."""
    model_configs, train_configs = check_stackable(model_configs, train_configs)
    config, shape = train_configs[0], model_configs[0]
    if config.plateau_window:
        raise ValueError(f"plateau_window={config.plateau_window}: a stack trains all its models for epochs={config.epochs}; "
                         "train them one by one (matvae.tuning.sweep) to stop each at its plateau")
    for name, data in (("train_data", train_data), ("test_data", test_data)):
        check_dataset(name, data, n_elements=shape.n_elements, n_classes=shape.n_classes)
    device = training.resolve_device(config.device)
    fingerprint = training.data_fingerprint(train_data, test_data)
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    with training.exclusive_checkpoint(path):
        return _run(train_data, test_data, model_configs, train_configs, device, fingerprint, path, show_progress)


def evaluation_rows(n_models: int, hidden_dim: int, device: torch.device | str = "cpu") -> int:
    """Test materials per chunk of a stack's evaluation. On the CPU about :data:`EVAL_ACTIVATIONS` hidden activations
    of all ``n_models`` models, at least 256 materials: one chunk of the whole test split leaves each layer's
    activations of a six-model stack (tens of MB) in main memory, chunks of this size keep them in cache. Measured on a
    2-core CPU, compiled, the six-model beta sweep's evaluation of the 26,552 test materials in six alternating
    rounds: 558-670 ms in one chunk, 359-421 ms in chunks of 1,747 (this rule's), the same values to 3e-5 nats. Elsewhere (a GPU, where a chunk costs kernel
    launches) :data:`matvae.training.EVAL_BATCH`, as :func:`matvae.training.evaluate`. The noise is drawn per
    ``EVAL_BATCH`` rows whatever the chunk."""
    if torch.device(device).type != "cpu":
        return training.EVAL_BATCH
    return max(256, EVAL_ACTIVATIONS // (n_models * hidden_dim))


def _chunked_noise(n: int, latent_dim: int, seed: int, device: torch.device) -> torch.Tensor:
    """The noise :func:`matvae.training.evaluate` draws with ``seed``: one randn per EVAL_BATCH rows. (n, latent_dim)"""
    generator = torch.Generator(device=device).manual_seed(seed)
    sizes = [min(training.EVAL_BATCH, n - first) for first in range(0, n, training.EVAL_BATCH)]
    return torch.cat([torch.randn((size, latent_dim), generator=generator, device=device) for size in sizes])


def pad_parameters(model: VAE, hidden_dim: int) -> dict[str, torch.Tensor]:
    """``model``'s parameters zero-padded to width ``hidden_dim`` (>= its own): {name: tensor of the wide shape}."""
    wide = VAE(replace(model.config, hidden_dim=hidden_dim)).to("meta")
    padded = {}
    for name, value in model.named_parameters():
        target = dict(wide.named_parameters())[name].shape
        out = torch.zeros(target, dtype=value.dtype, device=value.device)
        out[tuple(slice(0, d) for d in value.shape)] = value.detach()
        padded[name] = out
    return padded


def unpad(value: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The leading block of ``value`` of ``shape``: a padded parameter cut back to its model's own width."""
    return value[tuple(slice(0, d) for d in shape)]


def _run(train_data, test_data, model_configs, train_configs, device, fingerprint, path, show_progress) -> list[TrainResult]:
    config, n_models = train_configs[0], len(model_configs)
    shape = replace(model_configs[0], hidden_dim=max(c.hidden_dim for c in model_configs))  # the stack's (widest) shape
    prior = torch.as_tensor(training.class_frequencies(train_data.y, shape.n_classes))
    members = []
    for model_config, train_config in zip(model_configs, train_configs):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(train_config.seed)
            members.append(VAE(model_config, prior).to(device))
    names = [name for name, _ in members[0].named_parameters()]
    padded = [pad_parameters(m, shape.hidden_dim) for m in members]
    params = {name: torch.stack([p[name] for p in padded]).requires_grad_() for name in names}  # {name: (K, ...)}
    buffers = {name: torch.stack([dict(m.named_buffers())[name] for m in members]) for name, _ in members[0].named_buffers()}
    template = _Loss(_GivenNoiseVAE(shape, prior).to("meta"))  # weights come from params/buffers
    params_in = {f"model.{k}": v for k, v in params.items()}  # the same tensors: Adam updates them in place
    buffers_in = {f"model.{k}": v for k, v in buffers.items()}
    kl_weights = torch.tensor([c.kl_weight for c in model_configs], device=device)
    graphed = training.uses_cuda_graph(shape, config, device)
    optimizer = training.make_adam(params.values(), config, device, graphed=graphed)
    seeds = sorted({c.seed for c in train_configs})  # models of one seed share data order and noise
    slot = torch.tensor([seeds.index(c.seed) for c in train_configs], device=device)  # (K,) -> seed slot
    generators = [torch.Generator(device=device).manual_seed(s + 1) for s in seeds]
    histories = [{f"{split}_{m}": [] for split in ("train", "test") for m in METRICS} | {"epoch": [], "seconds": []}
                 for _ in range(n_models)]
    identity = {"models": [asdict(c) for c in model_configs], "fingerprint": fingerprint,  # what a resume must match
                "training": [_training_identity(asdict(c)) for c in train_configs]}
    start_epoch, elapsed, status = 0, 0.0, "trained"
    if path is not None and path.exists():
        saved = torch.load(io.BytesIO(read_checked(path, kind="checkpoint")), map_location="cpu", weights_only=True)
        if saved.get("format") != STACK_FORMAT or saved.get("version") != STACK_VERSION:
            raise ValueError(f"checkpoint {path.name} is not a matvae stack checkpoint of version {STACK_VERSION}")
        theirs = dict(saved["identity"])
        try:  # settings added since the checkpoint was written read as their defaults
            theirs["training"] = [_training_identity(d) for d in theirs.get("training", [])]
        except (TypeError, ValueError):  # settings this version does not know
            theirs["training"] = None
        if theirs != identity:
            raise ValueError(f"checkpoint {path.name} holds other models, settings or data; use another path")
        if saved["epoch"] > config.epochs:
            raise ValueError(f"checkpoint {path.name} holds {saved['epoch']} epochs, more than the {config.epochs} asked for")
        with torch.no_grad():
            for name, value in saved["params"].items():
                params[name].copy_(value)
        optimizer.load_state_dict(saved["optimizer"])
        training.configure_adam(optimizer, device, graphed=graphed)
        for seed, generator, state in zip(seeds, generators, saved["generators"]):
            training.restore_generator(generator, state, saved_device=saved.get("device", "cpu"), device=device,
                                       seed=seed, epoch=saved["epoch"])
        histories, start_epoch, elapsed = saved["histories"], saved["epoch"], saved["elapsed_seconds"]
        status = "loaded" if start_epoch == config.epochs else "resumed"

    rows = training.training_rows(train_data, config)
    x = torch.as_tensor(train_data.x[rows], dtype=torch.float32, device=device)  # (n, 89)
    y = torch.as_tensor(train_data.y[rows], dtype=torch.long, device=device)  # (n,)
    x_test = torch.as_tensor(test_data.x, dtype=torch.float32, device=device)
    y_test = torch.as_tensor(test_data.y, dtype=torch.long, device=device)
    test_eps = torch.stack([_chunked_noise(len(x_test), shape.latent_dim, s + 2, device) for s in seeds])  # (seeds, n_test, latent)
    n, batch, shared = len(x), config.batch_size, len(seeds) == 1
    loss_fn = torch.compile(stacked_loss) if config.compile else stacked_loss
    use_fused = training.uses_fused_kernel(shape, config)

    stepper = fused.Stepper(optimizer, compile=config.compile)

    def fused_step(xb: torch.Tensor, yb: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return stepper(params, params, shape, kl_weights, xb, yb, eps)

    step = graphs.StepGraph(fused_step, device) if graphed else fused_step

    eval_rows = evaluation_rows(n_models, shape.hidden_dim, device)

    def evaluate_stack() -> torch.Tensor:
        """Mean metrics over the test split per model, as :func:`matvae.training.evaluate` computes them (the same
        noise), in chunks of ``eval_rows`` materials; a compiled loss runs the chunks of the first chunk's length,
        the shorter last one eagerly (one compilation). (K, 6)"""
        totals = torch.zeros(n_models, len(METRICS), device=device, dtype=torch.float64)
        with torch.no_grad():
            for first in range(0, len(x_test), eval_rows):
                xb, yb = x_test[first : first + eval_rows], y_test[first : first + eval_rows]
                eps = test_eps[slot, first : first + eval_rows]  # (K, b, latent)
                loss = loss_fn if len(xb) == min(eval_rows, len(x_test)) else stacked_loss
                _, summaries = loss(template, params_in, buffers_in, kl_weights, xb, yb, eps)
                totals += torch.stack([summaries[k].double() for k in METRICS], dim=1) * len(xb)
        return totals / len(x_test)

    def write_checkpoint(epoch: int) -> None:
        if path is not None:
            payload = {"format": STACK_FORMAT, "version": STACK_VERSION, "identity": identity, "epoch": epoch,
                       "params": {k: v.detach().cpu() for k, v in params.items()}, "optimizer": optimizer.state_dict(),
                       "generators": [g.get_state() for g in generators], "histories": histories,
                       "elapsed_seconds": elapsed, "device": str(device), "torch_version": str(torch.__version__)}
            buffer = io.BytesIO()
            torch.save(payload, buffer)
            write_checked(path, buffer.getvalue(), kind="checkpoint")

    epochs = progress_bar(range(start_epoch, config.epochs), desc=f"training {n_models} stacked", unit="epoch",
                          enabled=show_progress, initial=start_epoch, total=config.epochs)
    for epoch in epochs:
        started = time.perf_counter()
        training.set_learning_rate(optimizer, config.learning_rate_at(epoch))
        totals = torch.zeros(n_models, len(METRICS), device=device)
        orders = torch.stack([torch.randperm(n, generator=g, device=device) for g in generators])  # (seeds, n)
        for first in range(0, n, batch):
            index = orders[:, first : first + batch]  # (seeds, b)
            eps = torch.stack([torch.randn((index.shape[1], shape.latent_dim), generator=g, device=device) for g in generators])
            xb, yb = (x[index[0]], y[index[0]]) if shared else (x[index[slot]], y[index[slot]])
            if use_fused:  # the hand-written forward and backward of all K models (matvae.fused)
                totals += step(xb, yb, eps[slot]) * index.shape[1]
                continue
            loss, summaries = loss_fn(template, params_in, buffers_in, kl_weights, xb, yb, eps[slot])
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()  # model k's weights only reach loss[k]: each gets its own gradient
            optimizer.step()
            totals += torch.stack([summaries[k].detach() for k in METRICS], dim=1) * index.shape[1]
        train_metrics = (totals / n).tolist()
        for k, values in enumerate(train_metrics):
            if not math.isfinite(values[0]):
                raise FloatingPointError(f"model {k} ({model_configs[k]}) diverged at epoch {epoch + 1}; lower learning_rate")
        due = (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs
        test_metrics = evaluate_stack().tolist() if due else [[float("nan")] * len(METRICS)] * n_models
        elapsed += time.perf_counter() - started
        for history, train_row, test_row in zip(histories, train_metrics, test_metrics):
            history["epoch"].append(epoch + 1)
            history["seconds"].append(elapsed)
            for name, train_value, test_value in zip(METRICS, train_row, test_row):
                history[f"train_{name}"].append(train_value)
                history[f"test_{name}"].append(test_value)
        epochs.set_postfix(best_test_nelbo=f"{min(h['test_nelbo'][-1] for h in histories):.3f}", refresh=False)
        if (epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == config.epochs:
            write_checkpoint(epoch + 1)
    epochs.close()

    results = []
    for k, member in enumerate(members):
        own = dict(member.named_parameters())
        member.load_state_dict({name: unpad(value[k].detach(), own[name].shape).clone() for name, value in params.items()},
                               strict=False)  # + own prior
        results.append(TrainResult(member.eval(), histories[k], status, config.epochs, elapsed, str(device)))
    return results


def train_stack_and_measure(
    *,
    train_data: MaterialsDataset,
    test_data: MaterialsDataset,
    reference: np.ndarray,
    setting: str,
    values: tuple,
    model_config: ModelConfig,
    train_config: TrainConfig,
    checkpoint_path: str | None,
    n_samples: int,
    threshold: float,
    seed: int,
    show_progress: bool | None,
) -> list[dict]:
    """One job of :func:`stacked_sweep`: train the stack of ``values`` together, then measure each model."""
    if setting == "seed":
        model_configs, train_configs = [model_config] * len(values), [replace(train_config, seed=v) for v in values]
    elif setting == "hidden_dim":
        model_configs, train_configs = [replace(model_config, hidden_dim=v) for v in values], train_config
    else:
        model_configs, train_configs = [replace(model_config, kl_weight=v) for v in values], train_config
    started = time.perf_counter()
    results = when_free(train_stacked, train_data, test_data, model_configs, train_configs,
                        checkpoint_path=checkpoint_path, show_progress=show_progress)
    share = (time.perf_counter() - started) / len(values)
    return [
        sweep_row(setting, value, result, test_data, reference, n_samples=n_samples, threshold=threshold, seed=seed,
                  train_seconds=result.elapsed_seconds / len(values), started=time.perf_counter() - share)
        for value, result in zip(values, results)
    ]


def stacked_sweep(
    train_data: MaterialsDataset,
    test_data: MaterialsDataset,
    setting: str,
    values: tuple | list | str,
    model_config: ModelConfig,
    train_config: TrainConfig,
    *,
    reference_counts: np.ndarray,
    checkpoint_dir: str | Path | None = None,
    n_samples: int = 10_000,
    threshold: float = 0.04,
    seed: int = 0,
    show_progress: bool | None = None,
    stack_size: int | None = None,
    backend: str = "local",
    resources: Resources | None = None,
    outcomes: list | None = None,
) -> pd.DataFrame:
    """:func:`matvae.tuning.sweep` over ``hidden_dim``, ``kl_weight`` or the training ``seed``, with the models
    trained stacked (widths zero-padded to the widest of their stack).

    Same columns as ``sweep``; ``train_seconds`` is each model's share (1/K) of the stack's training time and
    ``wall_seconds`` that share plus the model's own sampling and reconstruction. The values are cut into stacks of
    ``stack_size`` models (``None``: one stack of all); each stack is one job of :func:`matvae.runner.run_jobs` on
    ``backend``, asking ``resources``, with one checkpoint ``checkpoint_dir/stack-{setting}-{values}.pt``.
    """
    if setting not in SWEEPABLE:
        raise ValueError(f"setting must be one of {SWEEPABLE}, got {setting!r}")
    if setting == "seed":
        values = check_int_list("values", values, minimum=0)
    elif setting == "hidden_dim":
        values = check_int_list("values", values, minimum=1)
    else:
        values = check_float_list("values", values, low=0.0)
    size = len(values) if stack_size is None else check_int("stack_size", stack_size, minimum=1)
    resources = resources_for(backend, resources)
    stacks = [values[i : i + size] for i in range(0, len(values), size)]
    storage = None if checkpoint_dir is None else Path(checkpoint_dir).resolve()
    common = job_options(setting, model_config, train_config, n_samples=n_samples, threshold=threshold, seed=seed,
                         show_progress=show_progress, backend=backend)
    jobs = []
    for stack in stacks:
        name = f"stack-{setting}-{'_'.join(f'{v:g}' for v in stack)}"
        path = None if storage is None else str(storage / f"{name}.pt")
        jobs.append(Job(name, train_stack_and_measure, dict(common, values=stack, checkpoint_path=path), resources))
    stacks_rows = run_sweep_jobs(jobs, train_data=train_data, test_data=test_data, reference_counts=reference_counts,
                                 backend=backend, storage=storage, desc=f"{setting} stacks", show_progress=show_progress,
                                 outcomes=outcomes)
    return pd.DataFrame([row for rows in stacks_rows for row in rows])
