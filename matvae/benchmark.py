"""Speed benchmarks, printed in one run on the current machine (not timed tests).

    python -m matvae.benchmark                  # training speed and time-to-target on this machine
    python -m matvae.benchmark --hull           # also the hull decompositions of the whole snapshot
    python -m matvae.benchmark --oracle-only    # only the stability oracle: 10,000 sampled formulas scored
    python -m matvae.benchmark --stacked        # also the six-model beta sweep, serial vs stacked (--stacked-only: just it)
    python -m matvae.benchmark --ray-only       # only the Ray backend against the local one, and the sweep plan
    python -m matvae.benchmark --json out.json  # also write the numbers as JSON

Training: the epoch time on the full snapshot at the paper's model size, with either training kernel (the
model's loss under autograd, and the hand-written step of :mod:`matvae.fused`), and the achieved FLOP rate as a
share of this machine's dense matrix-multiply rate, measured in the same run; the wall time to reach a target
that needs real learning (the beta = 0.03 model's test loss within 1 % of the value its shipped training run
converged to, ``--target-within``) with :func:`matvae.training.train` and with a plain reference loop written the
usual way (a ``DataLoader`` over a ``TensorDataset``, autograd), each at the usual recipe (batch 128, Adam step 1e-3)
and at a step that decays per epoch (:data:`TARGET_RECIPES`), same data, model and seed; on a GPU, the wall
time of the paper's 2,000 epochs of one model and of the beta and width sweeps, each stacked (:func:`paper_scale`). FLOPs are counted analytically: 2 per
multiply-add of every Linear layer, forward on the test split and forward plus backward (3x forward) on the
training epoch.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from matvae.data import DataConfig, prepare_data
from matvae.data.dataset import MaterialsDataset
from matvae.model import VAE, ModelConfig
from matvae.training import TrainConfig, evaluate, resolve_device, train, training_rows

PAPER_WIDTHS = (50, 100, 150, 200, 250, 300, 350, 400, 450, 500)
TUNING_KL_WEIGHTS = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003)  # the beta sweep of notebooks/03_tuning.py


def matmul_rate(device: torch.device, *, size: int = 2048, repeats: int = 10) -> float:
    """Best dense float32 matrix-multiply rate in FLOP/s over ``repeats`` products of size x size."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    return 2 * size**3 / _best_seconds(lambda: a @ b, device, repeats=repeats)


def _best_seconds(work, device: torch.device, *, repeats: int) -> float:
    """Best wall time of ``work()`` over ``repeats`` calls, after two warm-up calls (device synchronised around each)."""
    best = float("inf")
    for i in range(repeats + 2):
        _sync(device)
        started = time.perf_counter()
        work()
        _sync(device)
        if i >= 2:
            best = min(best, time.perf_counter() - started)
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward_flops(config: ModelConfig) -> int:
    """FLOPs of one sample's forward pass through encoder, decoder and classifier (2 per multiply-add)."""
    return sum(2 * m.in_features * m.out_features for m in VAE(config).modules() if isinstance(m, torch.nn.Linear))


def epoch_flops(config: ModelConfig, n_train: int, n_test: int) -> int:
    """One training epoch (forward + backward ~ 3 forwards) plus the test evaluation (1 forward)."""
    return forward_flops(config) * (3 * n_train + n_test)


def step_products(config: ModelConfig, batch: int, *, backward: bool = True) -> list[tuple[int, int, int, bool, bool]]:
    """(rows, inner, columns, first transposed, second transposed) of every matrix product of one step of
    :mod:`matvae.fused` at ``batch`` materials, in its layouts: each Linear layer's forward (batch x in x out, by the
    transposed weight); with ``backward``, its weight gradient (out x batch x in, by the transposed output gradient)
    and, except for the first layers of the encoder and the classifier (their input is the data), its input gradient
    (batch x out x in)."""
    products, model = [], VAE(config)
    for net in ("encoder", "decoder", "classifier"):
        layers = [m for m in getattr(model, net).modules() if isinstance(m, torch.nn.Linear)]
        for i, layer in enumerate(layers):
            width_in, width_out = layer.in_features, layer.out_features
            products.append((batch, width_in, width_out, False, True))
            if backward:
                products.append((width_out, batch, width_in, True, False))
                if i > 0 or net == "decoder":
                    products.append((batch, width_out, width_in, False, False))
    return products


def products_seconds(products: list[tuple[int, int, int, bool, bool]], device: torch.device, *, repeats: int = 20) -> float:
    """Best wall time over ``repeats`` of running ``products`` (:func:`step_products`) one after another as the fused
    step runs them (``bmm`` of (1, rows, inner) by (1, inner, columns) operands in the given layouts), on random
    float32 data."""
    def operand(rows: int, columns: int, transposed: bool) -> torch.Tensor:
        if transposed:
            return torch.randn(1, columns, rows, device=device).transpose(1, 2)
        return torch.randn(1, rows, columns, device=device)

    operands = [(operand(m, k, a_t), operand(k, n, b_t)) for m, k, n, a_t, b_t in products]

    def run() -> None:
        for a, b in operands:
            torch.bmm(a, b)

    return _best_seconds(run, device, repeats=repeats)


def gemm_ceiling(config: ModelConfig, batch: int, n_train: int, n_test: int, device: torch.device, *, rate: float) -> dict:
    """What an epoch at ``batch`` could reach if everything but its matrix products were free: the products of one
    training step and of the test evaluation timed alone (:func:`products_seconds`), as GFLOP/s and shares of the
    matmul ``rate``; ``epoch_share`` counts the epoch's FLOPs as :func:`epoch_flops` does."""
    step = step_products(config, batch)
    seconds = products_seconds(step, device)
    step_flops = sum(2 * m * k * n for m, k, n, _, _ in step)
    evaluation = products_seconds(step_products(config, n_test, backward=False), device, repeats=5)
    epoch_seconds = math.ceil(n_train / batch) * seconds + evaluation
    return {"batch_size": batch, "step_gflop": step_flops / 1e9, "step_seconds": seconds,
            "gflops": step_flops / seconds / 1e9, "share_of_matmul": step_flops / seconds / rate,
            "epoch_seconds": epoch_seconds, "epoch_share": epoch_flops(config, n_train, n_test) / epoch_seconds / rate,
            "matmul_gflops": rate / 1e9}


def width_stacks(widths, n_stacks: int, base: ModelConfig | None = None) -> list[list[int]]:
    """Cut ``widths`` (sorted) into ``n_stacks`` runs of neighbours so that the FLOPs of the stacks, each model padded
    to its stack's widest (:mod:`matvae.stacked`), are the fewest (exact, by dynamic programming over the cuts)."""
    widths = sorted(int(w) for w in widths)
    if not widths:
        raise ValueError("widths is empty")
    if not isinstance(n_stacks, int) or isinstance(n_stacks, bool) or not 1 <= n_stacks <= len(widths):
        raise ValueError(f"n_stacks must be an integer from 1 to the number of widths ({len(widths)}), got {n_stacks!r}")
    base = base or ModelConfig()
    flops = {w: forward_flops(replace(base, hidden_dim=w)) for w in widths}
    n = len(widths)
    # best[k][j]: fewest padded FLOPs of widths[:j] in k stacks; cut[k][j]: where the last of them starts
    best = [[math.inf] * (n + 1) for _ in range(n_stacks + 1)]
    cut = [[0] * (n + 1) for _ in range(n_stacks + 1)]
    best[0][0] = 0.0
    for k in range(1, n_stacks + 1):
        for j in range(k, n + 1):
            for i in range(k - 1, j):
                cost = best[k - 1][i] + (j - i) * flops[widths[j - 1]]
                if cost < best[k][j]:
                    best[k][j], cut[k][j] = cost, i
    stacks, j = [], n
    for k in range(n_stacks, 0, -1):
        i = cut[k][j]
        stacks.append(widths[i:j])
        j = i
    return stacks[::-1]


def padded_flops(stacks: list[list[int]], base: ModelConfig | None = None) -> float:
    """Forward FLOPs of ``stacks`` padded to each stack's widest, over the widths' own (1.0: no padding)."""
    base = base or ModelConfig()
    own = sum(forward_flops(replace(base, hidden_dim=w)) for stack in stacks for w in stack)
    return sum(len(stack) * forward_flops(replace(base, hidden_dim=max(stack))) for stack in stacks) / own


def measure_epochs(train_data, test_data, model_config, train_config, *, epochs: int) -> float:
    """Median seconds per epoch of :func:`train` (evaluation included), after one warm-up epoch."""
    result = train(train_data, test_data, model_config, replace(train_config, epochs=epochs + 1))
    seconds = np.diff(np.r_[0.0, result.history["seconds"]])[1:]
    return float(np.median(seconds))


def stacked_speed(train_data, test_data, model_config, train_config, *, rate: float, epochs: int,
                  kl_weights: tuple[float, ...] = TUNING_KL_WEIGHTS, compiled: bool = False) -> dict:
    """Seconds per epoch of the beta sweep trained serially (:func:`train` per model, summed) and stacked
    (:func:`matvae.stacked.train_stacked`, with the hand-written kernel and with the vmapped loss under autograd,
    and compiled if asked), median of ``epochs`` after a warm-up epoch each. Each way is measured beside its own
    matmul rate (the mean of one taken just before it and one just after), against which its share and its
    distance from the FLOP floor are given, so that a shared machine's drift between the ways does not count as a
    difference between them; ``flop_floor_2000_epochs_seconds`` is the floor at the run's first ``rate``."""
    from matvae.stacked import train_stacked

    device = resolve_device(train_config.device)
    configs = [replace(model_config, kl_weight=b) for b in kl_weights]
    flops = len(configs) * epoch_flops(model_config, len(training_rows(train_data, train_config)), len(test_data))
    report = {"kl_weights": list(kl_weights), "epochs_timed": epochs, "batch_size": train_config.batch_size,
              "gflop_per_epoch": flops / 1e9, "flop_floor_2000_epochs_seconds": 2000 * flops / rate, "ways": {}}

    def beside(measure) -> tuple[float, float]:
        before = matmul_rate(device)
        seconds = measure()
        return seconds, (before + matmul_rate(device)) / 2

    def serial_seconds() -> float:
        report["serial_seconds_per_model"] = [measure_epochs(train_data, test_data, config, train_config, epochs=epochs)
                                              for config in configs]
        return sum(report["serial_seconds_per_model"])

    def stacked_seconds(changes: dict) -> float:
        results = train_stacked(train_data, test_data, configs, replace(train_config, epochs=epochs + 1, **changes))
        return float(np.median(np.diff(np.r_[0.0, results[0].history["seconds"]])[1:]))

    timings = {"serial": beside(serial_seconds)}
    ways = [("stacked", {}), ("stacked_autograd", {"kernel": "autograd"})]
    if compiled:
        ways += [("stacked_compiled", {"compile": True}), ("stacked_autograd_compiled", {"kernel": "autograd", "compile": True})]
    for name, changes in ways:
        timings[name] = beside(lambda: stacked_seconds(changes))
    for name, (seconds, rate_here) in timings.items():
        report["ways"][name] = {"seconds_per_epoch": seconds, "matmul_gflops": rate_here / 1e9,
                                "share_of_matmul": flops / seconds / rate_here,
                                "projected_2000_epochs_seconds": 2000 * seconds,
                                "over_flop_floor": seconds * rate_here / flops}
    report["load_average"] = list(os.getloadavg())
    return report


def print_stacked(report: dict) -> None:
    floor = report["flop_floor_2000_epochs_seconds"]
    print(f"the {len(report['kl_weights'])}-model beta sweep at batch {report['batch_size']}: {report['gflop_per_epoch']:.0f} GFLOP "
          f"per epoch of all models, 2,000 epochs' FLOP floor {floor / 60:.0f} min (load average {report['load_average'][0]:.2f}):")
    for name, row in report["ways"].items():
        beside = f" ({row['matmul_gflops']:.0f} GFLOP/s beside it)" if "matmul_gflops" in row else ""
        print(f"  {name:16s} {row['seconds_per_epoch']:6.2f} s/epoch = {row['share_of_matmul']:4.0%} of matmul{beside}; 2,000 epochs ~ "
              f"{row['projected_2000_epochs_seconds'] / 60:4.0f} min = {row['over_flop_floor']:.1f}x the floor", flush=True)


def reference_loop_time_to_target(train_data: MaterialsDataset, test_data: MaterialsDataset, model_config: ModelConfig,
                                  *, target: float, seed: int, device: torch.device, max_epochs: int,
                                  metric: str = "loss", batch_size: int = 128, learning_rate: float = 1e-3,
                                  learning_rate_decay: float = 1.0, min_learning_rate: float = 0.0) -> tuple[float, int]:
    """The usual way: a shuffled DataLoader over CPU tensors, batches moved to the device, Adam, autograd. Returns
    (seconds, epochs) until the test ``metric`` (of :func:`evaluate`) first reaches ``target`` (inf if it never does).
    The step decays per epoch as :meth:`TrainConfig.learning_rate_at` says (by default it is constant)."""
    from matvae.training import class_frequencies, set_learning_rate

    torch.manual_seed(seed)
    model = VAE(model_config, torch.as_tensor(class_frequencies(train_data.y, model_config.n_classes))).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    rows = training_rows(train_data, TrainConfig())
    dataset = TensorDataset(torch.as_tensor(train_data.x[rows]), torch.as_tensor(train_data.y[rows]))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    x_test = torch.as_tensor(test_data.x, device=device)
    y_test = torch.as_tensor(test_data.y, device=device)
    schedule = TrainConfig(learning_rate=learning_rate, learning_rate_decay=learning_rate_decay,
                           min_learning_rate=min_learning_rate)
    started = time.perf_counter()
    for epoch in range(1, max_epochs + 1):
        model.train()
        set_learning_rate(optimizer, schedule.learning_rate_at(epoch - 1))
        for xb, yb in loader:
            loss, _ = model.loss(xb.to(device), yb.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if evaluate(model, x_test, y_test, seed=seed + 2)[metric] <= target:
            return time.perf_counter() - started, epoch
    return float("inf"), max_epochs


def time_to_target(train_data, test_data, model_config, train_config, *, target: float, max_epochs: int,
                   metric: str = "loss", chunk: int = 10) -> tuple[float, int]:
    """(seconds, epochs) until :func:`train`'s test ``metric`` first reaches ``target`` (inf if it never does).
    Trains ``chunk`` epochs at a time through a temporary checkpoint and stops at the first chunk that reaches it;
    the seconds are the training run's own clock (epochs and evaluations) up to the epoch that did."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.pt"
        for epochs in range(chunk, max_epochs + chunk, chunk):
            result = train(train_data, test_data, model_config, replace(train_config, epochs=min(epochs, max_epochs)),
                           checkpoint_path=path, show_progress=False)
            hit = np.flatnonzero(np.asarray(result.history[f"test_{metric}"]) <= target)
            if len(hit):
                return float(result.history["seconds"][hit[0]]), int(hit[0] + 1)
    return float("inf"), max_epochs


def default_target(within: float) -> tuple[float, float, ModelConfig]:
    """(target, converged, model config) of the shipped beta = 0.03 model (``load_pretrained("paper")``): its last
    test loss (the objective it minimises) and ``(1 + within)`` times it. Its curve is monotone where the test
    NELBO is not (the KL grows as the code opens)."""
    from matvae.pretrained import pretrained_checkpoint

    shipped = pretrained_checkpoint("paper")
    converged = float(shipped.history["test_loss"][-1])
    return converged * (1 + within), converged, shipped.model_config


class Recipe(NamedTuple):
    """How a time-to-target run trains: batch size and Adam step, which decays by ``decay`` per epoch down to
    ``floor`` (:meth:`TrainConfig.learning_rate_at`; ``decay`` 1: constant)."""

    batch_size: int
    learning_rate: float
    decay: float = 1.0
    floor: float = 0.0

    def label(self) -> str:
        """The step as the README's table shows it: ``0.02`` or ``0.02, x0.95 per epoch to 0.001``."""
        return f"{self.learning_rate:g}" + (f", x{self.decay:g} per epoch to {self.floor:g}" if self.decay != 1 else "")


# The time-to-target runs (to the 1 % target). matvae.train at the usual loop's recipe (batch 128, step 1e-3), at the
# default batch with the constant step that reached the target first (1e-2; 2e-2 and 1e-3 did not within 150 epochs,
# 2026-11-26), and with a step that decays from 2e-2 by 0.97 per epoch to 2e-3 (about 50 epochs where the constant
# 1e-2 took 104-122 in one make benchmark run, compiled and eager; in a scan of 2026-11-27 of decays 0.95..0.98,
# floors 1e-3..3e-3, first steps 1e-2..3e-2 at batch 1,024 and 4e-2 at 2,048); the DataLoader loop at the usual
# recipe and at the decaying one, so that a loop's speed and a recipe's are told apart.
TARGET_RECIPES = "128:1e-3,1024:1e-2,1024:2e-2:0.97:2e-3"
REFERENCE_RECIPES = "128:1e-3,1024:2e-2:0.97:2e-3"


def parse_recipes(text: str, name: str = "recipes") -> list[Recipe]:
    """``"batch:step[:decay:floor],..."`` as :class:`Recipe` s; a clear error names a bad entry."""
    recipes = []
    for entry in (part.strip() for part in str(text).split(",")):
        parts = entry.split(":")
        try:
            if len(parts) not in (2, 4):
                raise ValueError
            recipe = Recipe(int(parts[0]), *(float(part) for part in parts[1:]))
        except ValueError:
            raise ValueError(f"{name}: {entry!r} is not batch:step or batch:step:decay:floor "
                             "(for example 1024:2e-2 or 1024:2e-2:0.95:1e-3)") from None
        if recipe.batch_size < 1:
            raise ValueError(f"{name}: {entry!r} needs a batch size >= 1")
        try:  # the step, decay and floor have TrainConfig's bounds
            TrainConfig(learning_rate=recipe.learning_rate, learning_rate_decay=recipe.decay, min_learning_rate=recipe.floor)
        except ValueError as error:
            raise ValueError(f"{name}: {entry!r}: {error}") from None
        recipes.append(recipe)
    return recipes


def _recipe_of(run: dict) -> Recipe:
    """The recipe of a saved run (one saved before steps decayed has a constant step)."""
    return Recipe(run["batch_size"], run["learning_rate"], run.get("learning_rate_decay", 1.0), run.get("min_learning_rate", 0.0))


def target_runs(train_data, test_data, device: torch.device, *, within: float, max_epochs: int,
                recipes: list[Recipe], reference_recipes: list[Recipe],
                compiled: bool = False, target: tuple[float, float, ModelConfig] | None = None) -> dict:
    """Time to the beta 0.03 model's target (:func:`default_target`) for every recipe: :func:`train` (and, with
    ``compiled``, ``compile=True``) and :func:`reference_loop_time_to_target`, each from the same seed."""
    goal, converged, chosen = target or default_target(within)
    runs = []
    print(f"time to the beta 0.03 model's test loss <= {goal:.3f} ({within:.0%} above the shipped run's {converged:.3f}):",
          flush=True)
    def row(loop: str, compile_: bool, recipe: Recipe, seconds: float, epochs: int) -> dict:
        print(f"  {loop}{' compiled' if compile_ else '':9s} batch {recipe.batch_size:5d} step {recipe.label()}: "
              f"{seconds:6.1f} s ({epochs} epochs)", flush=True)
        return {"loop": loop, "compile": compile_, "batch_size": recipe.batch_size, "learning_rate": recipe.learning_rate,
                "learning_rate_decay": recipe.decay, "min_learning_rate": recipe.floor, "seconds": seconds, "epochs": epochs}

    for recipe in map(Recipe._make, recipes):
        for compile_ in (False, True) if compiled else (False,):
            config = TrainConfig(batch_size=recipe.batch_size, learning_rate=recipe.learning_rate, learning_rate_decay=recipe.decay,
                                 min_learning_rate=recipe.floor, device=str(device), compile=compile_)
            seconds, epochs = time_to_target(train_data, test_data, chosen, config, target=goal, max_epochs=max_epochs)
            runs.append(row("matvae.train", compile_, recipe, seconds, epochs))
    for recipe in map(Recipe._make, reference_recipes):
        seconds, epochs = reference_loop_time_to_target(
            train_data, test_data, chosen, target=goal, seed=0, device=device, max_epochs=max_epochs,
            batch_size=recipe.batch_size, learning_rate=recipe.learning_rate, learning_rate_decay=recipe.decay,
            min_learning_rate=recipe.floor)
        runs.append(row("DataLoader", False, recipe, seconds, epochs))
    return {"metric": "test loss of the beta 0.03 model", "target": goal, "converged": converged, "within": within,
            "max_epochs": max_epochs, "runs": runs}


def target_markdown(target: dict) -> list[str]:
    """The time-to-target table: every run, its speed-up over the usual loop (the first DataLoader run) and over the
    DataLoader loop at the same batch and step."""
    runs = target["runs"]
    references = [r for r in runs if r["loop"] == "DataLoader"]
    usual = references[0] if references else None

    def seconds(run):
        return f"{run['seconds']:.0f} s" if math.isfinite(run["seconds"]) else f"not in {run['epochs']} epochs"

    def ratio(reference, run):
        if reference is None or not (math.isfinite(reference["seconds"]) and math.isfinite(run["seconds"])):
            return "-"
        return f"{reference['seconds'] / run['seconds']:.1f}x"

    lines = ["", f"Time to the beta 0.03 model's test loss <= {target['target']:.3f} ({target['within']:.0%} above the "
             f"{target['converged']:.3f} of its shipped run), each run from the same seed"
             + (f" (measured in a run of its own, `--time-to-target-only`, beside a matmul rate of "
                f"{target['matmul_gflops']:.0f} GFLOP/s)" if target.get("separate_run") else "")
             + (f"; the usual loop is the `DataLoader` one at batch {usual['batch_size']:,} and step {_recipe_of(usual).label()}"
                if usual else "") + ":", "",
             "| loop | batch | Adam step | epochs | time | vs the usual loop | vs `DataLoader` at the same batch and step |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for run in runs:
        same = next((r for r in references if _recipe_of(r) == _recipe_of(run)), None)
        loop = f"`{run['loop']}`" + (" + compile" if run["compile"] else "")
        mine = run["loop"] != "DataLoader"
        lines.append(f"| {loop} | {run['batch_size']:,} | {_recipe_of(run).label()} | {run['epochs']} | {seconds(run)} | "
                     f"{ratio(usual, run) if mine else '-'} | {ratio(same, run) if mine else '-'} |")
    mine = [r for r in runs if r["loop"] != "DataLoader" and math.isfinite(r["seconds"])]
    if usual and mine and math.isfinite(usual["seconds"]):
        best = min(mine, key=lambda r: r["seconds"])
        lines += ["", f"Fastest: `{best['loop']}`{' with `compile=True`' if best['compile'] else ''} at batch "
                  f"{best['batch_size']:,} and step {_recipe_of(best).label()}, {best['seconds']:.0f} s: "
                  f"{usual['seconds'] / best['seconds']:.1f}x faster than the usual loop (compilation included where compiled)."
                  + (" A step other than the usual loop's is a change of recipe, not of loop: the last column compares the "
                     "loops at the same recipe. How far below the target a run would go with more epochs is not measured "
                     "here." if _recipe_of(best) != _recipe_of(usual) else "")]
    return lines


def markdown(report: dict) -> str:
    """The README's measured training speed, from a report of a full run (epoch table, stacked sweep, time to target)."""
    lines = [
        f"Measured by `make benchmark` on this project's {report['threads']}-thread {report['machine']} CPU (torch "
        f"{report['torch']}, device {report['device']}); one epoch at width 100 is {report['epoch_gflop']:.1f} GFLOP. The "
        "rows are timed in round-robin rounds (one epoch of every row per round, each beside a fresh dense float32 matmul "
        "rate) and show medians, with the fastest and slowest round, so a shared machine's drift falls on all rows alike:",
        "",
        "| batch | kernel | s/epoch (rounds) | GFLOP/s | share of matmul | 2,000 epochs |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["epochs"]:
        kernel = row["kernel"] + (" + compile" if row["compile"] else "")
        rounds = [r["seconds"] for r in row.get("rounds", [])]
        spread = f" ({min(rounds):.2f}-{max(rounds):.2f})" if len(rounds) > 1 else ""
        lines.append(f"| {row['batch_size']:,} | {kernel} | {row['seconds_per_epoch']:.2f}{spread} | {row['gflops']:.1f} | "
                     f"{row['share_of_matmul']:.0%} ({row['matmul_gflops']:.0f} GFLOP/s) | {2000 * row['seconds_per_epoch'] / 60:.0f} min |")
    if report.get("gemm_ceiling"):
        lines += ["", "The ceiling of that table: the matrix products of one fused step timed alone, in its layouts, beside a "
                  "fresh matmul rate (`benchmark.gemm_ceiling`), and the share an epoch would reach if everything else "
                  "(element-wise work, the optimiser, Python) were free:", "",
                  "| batch | products alone | share of matmul | epoch with nothing else |", "| --- | --- | --- | --- |"]
        for row in report["gemm_ceiling"]:
            lines.append(f"| {row['batch_size']:,} | {row['gflops']:.1f} GFLOP/s | {row['share_of_matmul']:.0%} "
                         f"({row['matmul_gflops']:.0f} GFLOP/s) | {row['epoch_share']:.0%} |")
    if "stacked_sweep" in report:
        stacked = report["stacked_sweep"]
        lines += ["", f"The {len(stacked['kl_weights'])}-model KL-weight sweep ({stacked['gflop_per_epoch']:.0f} GFLOP per epoch of "
                  f"all models; FLOP floor of 2,000 epochs {stacked['flop_floor_2000_epochs_seconds'] / 60:.0f} min at the run's "
                  f"first matmul rate, {report['matmul_gflops']:.0f} GFLOP/s"
                  + ("; each way's share and distance from the floor against the matmul rate measured beside it, in brackets"
                     if any("matmul_gflops" in row for row in stacked["ways"].values()) else "") + "):", "",
                  "| way | s/epoch | share of matmul | 2,000 epochs | over the FLOP floor |", "| --- | --- | --- | --- | --- |"]
        names = {"serial": "one model after another", "stacked": "stacked, hand-written step (default)",
                 "stacked_autograd": "stacked, vmapped loss under autograd",
                 "stacked_compiled": "stacked, hand-written step, torch.compile",
                 "stacked_autograd_compiled": "stacked, vmapped loss, torch.compile"}
        for name, row in stacked["ways"].items():
            beside = f" ({row['matmul_gflops']:.0f} GFLOP/s)" if "matmul_gflops" in row else ""
            lines.append(f"| {names.get(name, name)} | {row['seconds_per_epoch']:.2f} | {row['share_of_matmul']:.0%}{beside} | "
                         f"{row['projected_2000_epochs_seconds'] / 60:.0f} min | {row['over_flop_floor']:.1f}x |")
    if report.get("time_to_target"):
        lines += target_markdown(report["time_to_target"])
    if report.get("paper_scale"):
        lines += ["", gpu_markdown(report).rstrip("\n")]
    return "\n".join(lines) + "\n"


def gpu_markdown(report: dict) -> str:
    """The paper-scale runs of ``report["paper_scale"]`` as a README paragraph and table (the ``gpu`` section)."""
    scale = report["paper_scale"]
    epochs = scale["epochs"]
    lines = [f"Measured by `python -m matvae.benchmark --paper-scale-only --device cuda` on one {report.get('gpu', 'GPU')} "
             f"(torch {report.get('torch', '?')}; dense float32 matmul {report.get('matmul_gflops', float('nan')) / 1000:.1f} "
             f"TFLOP/s), each run from scratch at batch 1,024 with the training step "
             + ("compiled (`compile=True`) and " if scale.get("compile") else "") + "replayed from a CUDA graph, the "
             "sweeps stacked (`matvae.stacked`, "
             + ("widths zero-padded to 500" if len(scale.get("width_stacks", [[]])) <= 1 else
                f"the widths in {len(scale['width_stacks'])} stacks of neighbours, "
                + ", ".join(f"{st[0]}..{st[-1]}" for st in scale["width_stacks"]) + ", each padded to its widest")
             + (f"; padded, {padded_flops(scale['width_stacks']):.1f}x the widths' own FLOPs" if "width_stacks" in scale else "") + ")"
             + (f", within a budget of {scale['budget_seconds']:.0f} s: a run that did not fit its share trained the "
                f"epochs that did, and its {epochs:,}-epoch time is projected from its seconds per epoch" if scale.get("budget_seconds") else "")
             + ":", "",
             f"| run | models | epochs trained | training time | ms/epoch | {epochs:,} epochs |", "| --- | --- | --- | --- | --- | --- |"]
    labels = {"paper_model": "the paper's model (width 100, beta 0.03)", "width_sweep": "width sweep 50..500",
              "kl_weight_sweep": "beta sweep (6 values)"}
    total = 0.0
    for name, row in scale["runs"].items():
        full = row["train_seconds"] if row["complete"] else row["projected_seconds"]
        total += full if name != "paper_model" else 0.0
        label = labels.get(name, name.replace("width_sweep", "width stack") if name.startswith("width_sweep ") else name)
        lines.append(f"| {label} | {row['models']} | {row['epochs_trained']:,} | {row['train_seconds']:.0f} s | "
                     f"{row['seconds_per_epoch'] * 1000:.0f} | {full:.0f} s{'' if row['complete'] else ' (projected)'} |")
    if total:
        lines += ["", f"Both sweeps at {epochs:,} epochs: {total / 60:.1f} min."]
    return "\n".join(lines) + "\n"


def paper_scale(train_data, test_data, device: torch.device, *, epochs: int = 2000, budget_seconds: float | None = None,
                probe_epochs: int = 10, storage: str | Path | None = None, n_width_stacks: int = 1,
                compile: bool = False) -> dict:
    """Wall times of the paper-scale training runs: the paper's model (width 100, beta 0.03; :func:`train`) for
    ``epochs``, the six-model beta sweep and the ten-width sweep (zero-padded to 500), each stacked
    (:func:`matvae.stacked.train_stacked`) and from scratch.

    Each run first trains ``probe_epochs`` (checkpointed), then resumes to ``epochs``; with ``budget_seconds``, each
    run gets an equal share of what is left of the budget (a run that ends early leaves the rest to the runs after
    it), and one whose projection (its probe's seconds per epoch) does not fit its share resumes only to the epochs
    that fit. Each row gives the epochs trained, their training seconds
    (the checkpoints' own clock), the wall time, seconds per epoch, the projection to ``epochs`` and the final test
    NELBO of every model. ``n_width_stacks`` > 1 trains the widths as that many stacks of neighbouring widths
    (:func:`width_stacks`: the fewest padded FLOPs), one run each; ``compile`` trains with ``TrainConfig(compile=True)``
    (on a GPU together with the CUDA graph). ``ValueError`` for epochs or probe_epochs below
    1, a budget that is not positive, or a number of width stacks outside 1..10."""
    import tempfile

    from matvae.stacked import train_stacked

    for name, value in (("epochs", epochs), ("probe_epochs", probe_epochs)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if budget_seconds is not None and not budget_seconds > 0:
        raise ValueError(f"budget_seconds must be > 0 (or None: no limit), got {budget_seconds!r}")
    started_all = time.perf_counter()
    base = ModelConfig(kl_weight=0.03)  # the paper's model and the width sweep's beta (chapter 03)
    stacks = width_stacks(PAPER_WIDTHS, n_width_stacks, base)
    runs = [("paper_model", [base]),
            ("kl_weight_sweep", [replace(base, kl_weight=b) for b in TUNING_KL_WEIGHTS]),
            *((f"width_sweep {stack[0]}..{stack[-1]}" if n_width_stacks > 1 else "width_sweep",
               [replace(base, hidden_dim=w) for w in stack]) for stack in stacks)]
    report: dict = {"epochs": epochs, "budget_seconds": budget_seconds, "probe_epochs": probe_epochs, "runs": {},
                    "compile": bool(compile), "width_stacks": stacks}

    def fit(configs, config, path):  # one model: matvae.train, as a user trains it; a sweep: one stack
        if len(configs) == 1:
            return [train(train_data, test_data, configs[0], config, checkpoint_path=path)]
        return train_stacked(train_data, test_data, configs, config, checkpoint_path=path)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(storage) if storage is not None else Path(scratch)
        for i, (name, configs) in enumerate(runs):
            path = folder / f"{name}.pt"
            path.unlink(missing_ok=True)
            config = TrainConfig(epochs=min(probe_epochs, epochs), device=str(device), checkpoint_every=max(epochs, 1),
                                 compile=bool(compile))
            started = time.perf_counter()
            results = fit(configs, config, path)
            probe = np.diff(np.r_[0.0, results[0].history["seconds"]])
            per_epoch = float(np.median(probe[1:] if len(probe) > 1 else probe))
            target = epochs
            if budget_seconds is not None:
                left = (budget_seconds - (time.perf_counter() - started) - (started - started_all)) / (len(runs) - i)
                fits = int(left / per_epoch) + results[0].epochs if per_epoch > 0 else epochs
                target = max(results[0].epochs, min(epochs, fits))
            if target > results[0].epochs:
                results = fit(configs, replace(config, epochs=target), path)
            wall = time.perf_counter() - started
            seconds = np.diff(np.r_[0.0, results[0].history["seconds"]])
            steady = float(np.median(seconds[1:])) if len(seconds) > 1 else float(seconds[0])
            row = {"models": len(configs), "epochs_trained": results[0].epochs, "complete": results[0].epochs == epochs,
                   "train_seconds": results[0].elapsed_seconds, "wall_seconds": wall, "seconds_per_epoch": steady,
                   "projected_seconds": results[0].history["seconds"][0] + steady * (epochs - 1),
                   "test_nelbo": {str(getattr(c, "hidden_dim" if name.startswith("width_sweep") else "kl_weight")): r.history["test_nelbo"][-1]
                                  for c, r in zip(configs, results)}}
            report["runs"][name] = row
            state = "" if row["complete"] else f" (stopped by the budget; {epochs:,} epochs projected {row['projected_seconds']:.0f} s)"
            print(f"{name} ({len(configs)} model{'s' if len(configs) > 1 else ''}): {row['epochs_trained']:,} epochs in "
                  f"{row['train_seconds']:.1f} s of training, {wall:.1f} s wall, {steady * 1000:.1f} ms/epoch{state}", flush=True)
            path.unlink(missing_ok=True)
    report["wall_seconds"] = time.perf_counter() - started_all
    return report


def long_beta_stack(epochs: int, device: torch.device, compile: bool) -> tuple[list[ModelConfig], TrainConfig, str]:
    """The model configs, training config and checkpoint file name of the tuning chapter's beta stack (its defaults:
    width 100, latent 10, batch 1,024, step 1e-3, seed 0, oversampling 20), as :func:`long_beta_sweep` trains it."""
    model_config = ModelConfig(latent_dim=10, kl_weight=0.03, hidden_dim=100)
    configs = [replace(model_config, kl_weight=b) for b in TUNING_KL_WEIGHTS]
    train_config = TrainConfig(epochs=epochs, batch_size=1024, learning_rate=1e-3, seed=0, device=str(device),
                               oversample_factor=20, compile=compile)  # TrainConfig checks compile
    return configs, train_config, f"stack-kl_weight-{'_'.join(f'{b:g}' for b in TUNING_KL_WEIGHTS)}.pt"


def long_beta_sweep(train_data, test_data, device: torch.device, *, folder: str | Path, epochs: int = 2000,
                    compile: bool = True, segment_epochs: int | None = None, show_progress: bool | None = None) -> dict:
    """The six-model beta stack of ``03_tuning`` (:func:`long_beta_stack`) trained for ``epochs`` into ``folder``, in
    segments: every call resumes the checkpoint and trains to ``epochs``, or ``segment_epochs`` more. Each segment's
    matmul rate is measured at its start and end and kept in ``folder/segments.json``, so that the run's FLOP floor
    is each epoch's FLOPs over the rate of the segment that trained it (the machine's speed may change between
    segments). One run at a time per folder (a second is refused with ``CheckpointBusyError``). Returns
    :func:`beta_sweep_report`."""
    from matvae.files import atomic_write
    from matvae.params import check_int
    from matvae.stacked import train_stacked
    from matvae.training import exclusive_checkpoint

    epochs = check_int("epochs", epochs, minimum=1)
    if segment_epochs is not None:
        segment_epochs = check_int("segment_epochs", segment_epochs, minimum=1)
    configs, train_config, name = long_beta_stack(epochs, device, compile)
    folder = Path(folder)
    path, log = folder / name, folder / "segments.json"
    with exclusive_checkpoint(log):  # two runs would interleave their segments
        try:
            segments = json.loads(log.read_text()) if log.exists() else []
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{log.name} is damaged (not JSON: {error}); the checkpoint beside it is intact, but the "
                             "rates of its segments are lost") from None
        if not isinstance(segments, list) or not all(
                isinstance(s, dict) and {"first_epoch", "matmul_gflops_start"} <= s.keys() for s in segments):
            raise ValueError(f"{log.name} is not a list of segments (each with first_epoch and matmul_gflops_start)")

        def save() -> None:
            with atomic_write(log, mode="w") as handle:
                json.dump(segments, handle, indent=1)

        done = _stack_epochs(path)
        if done > epochs:
            raise ValueError(f"{path.name} holds {done} epochs, more than the {epochs} asked for")
        if done == 0:
            segments = []  # a new run: the rates of a removed one do not apply
        if done < epochs:
            target = epochs if segment_epochs is None else min(epochs, done + segment_epochs)
            segments.append({"first_epoch": done + 1, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                             "matmul_gflops_start": matmul_rate(device) / 1e9})
            save()
            results = train_stacked(train_data, test_data, configs, replace(train_config, epochs=target),
                                    checkpoint_path=path, show_progress=show_progress)
            segments[-1] |= {"last_epoch": results[0].epochs, "matmul_gflops_end": matmul_rate(device) / 1e9}
            save()
        else:  # finished: load it
            results = train_stacked(train_data, test_data, configs, replace(train_config, epochs=done),
                                    checkpoint_path=path, show_progress=False)
    flops = len(configs) * epoch_flops(configs[0], len(training_rows(train_data, train_config)), len(test_data))
    return beta_sweep_report(results, segments, flops=flops, epochs=epochs)


def _stack_epochs(path: Path) -> int:
    """Epochs held by a stack checkpoint (0 where there is none)."""
    import io

    from matvae.files import read_checked

    if not path.exists():
        return 0
    return int(torch.load(io.BytesIO(read_checked(path, kind="checkpoint")), map_location="cpu", weights_only=True)["epoch"])


def beta_sweep_report(results, segments: list[dict], *, flops: float, epochs: int) -> dict:
    """The report of :func:`long_beta_sweep` from the stack's results and its segments: an epoch's floor is
    ``flops`` over the mean rate (start and end) of the last segment that started at or before it (a segment cut
    short has no end rate: its start rate); epochs before the first segment have no rate and make the floor None."""
    history = results[0].history
    seconds = np.diff(np.r_[0.0, history["seconds"]])  # of each epoch
    starts = sorted(segments, key=lambda s: s["first_epoch"])
    rows, floor = [], 0.0
    for i, segment in enumerate(starts):
        first = segment["first_epoch"]
        last = min(starts[i + 1]["first_epoch"] - 1 if i + 1 < len(starts) else len(seconds), len(seconds))
        rate = np.mean([segment[k] for k in ("matmul_gflops_start", "matmul_gflops_end") if k in segment]) * 1e9
        taken = float(seconds[first - 1 : last].sum())
        floor += (last - first + 1) * flops / rate
        rows.append({"first_epoch": first, "last_epoch": last, "started": segment.get("started"),
                     "matmul_gflops": rate / 1e9, "train_seconds": taken,
                     "seconds_per_epoch_median": float(np.median(seconds[first - 1 : last])) if last >= first else None,
                     "over_flop_floor": taken * rate / ((last - first + 1) * flops) if last >= first else None})
    covered = bool(starts) and starts[0]["first_epoch"] == 1
    train_seconds = float(history["seconds"][-1]) if len(seconds) else 0.0
    return {"epochs": epochs, "epochs_done": len(seconds), "complete": len(seconds) == epochs,
            "kl_weights": list(TUNING_KL_WEIGHTS), "gflop_per_epoch": flops / 1e9, "train_seconds": train_seconds,
            "flop_floor_seconds": floor if covered else None,
            "over_flop_floor": train_seconds / floor if covered and floor else None, "segments": rows,
            "test_nelbo": {f"{b:g}": float(r.history["test_nelbo"][-1]) for b, r in zip(TUNING_KL_WEIGHTS, results)}}


def long_beta_markdown(report: dict) -> str:
    """The README's ``beta2000`` section from a :func:`long_beta_sweep` report."""
    machine = f"{report.get('threads', '?')}-thread {report.get('machine', '?')} {report.get('device', '?')} (torch {report.get('torch', '?')})"
    state = (f"all {report['epochs']:,} epochs" if report["complete"]
             else f"{report['epochs_done']:,} of {report['epochs']:,} epochs so far")
    lines = [f"The six-model KL-weight sweep of the tuning chapter at the paper's {report['epochs']:,} epochs, trained stacked and compiled "
             f"by `python -m matvae.benchmark --beta-sweep-dir` on this project's {machine}, in {len(report['segments'])} "
             f"resumed segment{'s' if len(report['segments']) != 1 else ''} ({state}; {report['gflop_per_epoch']:.0f} GFLOP per epoch of all models). "
             "Each segment's FLOP floor is its epochs' FLOPs over the matmul rate measured at its start and end:", "",
             "| epochs | matmul | training time | s/epoch (median) | over the FLOP floor |", "| --- | --- | --- | --- | --- |"]
    for row in report["segments"]:
        if row["last_epoch"] < row["first_epoch"]:
            continue
        lines.append(f"| {row['first_epoch']:,}-{row['last_epoch']:,} | {row['matmul_gflops']:.0f} GFLOP/s | "
                     f"{row['train_seconds'] / 60:.0f} min | {row['seconds_per_epoch_median']:.2f} | {row['over_flop_floor']:.1f}x |")
    if report["over_flop_floor"] is not None:
        lines.append(f"| all | | {report['train_seconds'] / 60:.0f} min | | **{report['over_flop_floor']:.1f}x** "
                     f"(floor {report['flop_floor_seconds'] / 60:.0f} min) |")
    nelbo = ", ".join(f"{v:.3f} (beta {k})" for k, v in report["test_nelbo"].items())
    lines += ["", f"Test NELBO at epoch {report['epochs_done']:,}: {nelbo}."]
    return "\n".join(lines) + "\n"


def oracle_speed(n: int = 10_000, seed: int = 1) -> dict:
    """Wall time of :func:`matvae.predict_properties` on ``n`` formulas sampled from the shipped sequence model:
    building the oracle (snapshot hull, network), the first call (every chemical system solved) and a repeat
    (hulls cached per composition)."""
    from matvae.pretrained import load_pretrained
    from matvae.properties.oracle import StabilityOracle
    from matvae.sampling import sample

    formulas = [f for f in sample(load_pretrained(), n, seed=seed).formulas if f is not None]
    report: dict = {"n_formulas": len(formulas)}
    started = time.perf_counter()
    oracle = StabilityOracle.from_snapshot()
    report["oracle_build_seconds"] = time.perf_counter() - started
    for key in ("first_call_seconds", "repeat_call_seconds"):
        started = time.perf_counter()
        oracle.predict(formulas)
        report[key] = time.perf_counter() - started
    print(f"predict_properties on {len(formulas):,} sampled formulas: oracle built in {report['oracle_build_seconds']:.1f} s, "
          f"first call {report['first_call_seconds']:.1f} s, repeat {report['repeat_call_seconds']:.1f} s", flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs timed per configuration (after a warm-up); the epoch table times them in round-robin rounds")
    parser.add_argument("--batch-sizes", default="256,1024,4096", help="batch sizes of the epoch-time table")
    parser.add_argument("--target-within", type=float, default=0.01,
                        help="time-to-target: reach the beta 0.03 model's converged test loss within this fraction (default 0.01)")
    parser.add_argument("--max-epochs", type=int, default=150, help="give up on the target after this many epochs")
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile of either kernel (TrainConfig.compile), in the epoch table and the stacked sweep")
    parser.add_argument("--skip-reference", action="store_true", help="skip the slow DataLoader reference loops")
    parser.add_argument("--recipes", default=TARGET_RECIPES,
                        help=f"time-to-target: batch:step of the matvae.train runs, or batch:step:decay:floor for a step that "
                             f"decays per epoch (default {TARGET_RECIPES})")
    parser.add_argument("--reference-recipes", default=REFERENCE_RECIPES,
                        help=f"time-to-target: batch:step of the DataLoader reference loops; the first is 'the usual loop' "
                             f"(default {REFERENCE_RECIPES})")
    parser.add_argument("--time-to-target-only", action="store_true",
                        help="only the time-to-target runs; with --json naming an existing report, its time_to_target "
                             "part is replaced and the rest kept (so --readme can rewrite the speed section)")
    parser.add_argument("--hull", action="store_true", help="also time the hull decompositions of the snapshot")
    parser.add_argument("--oracle-only", action="store_true", help="only time predict_properties on 10,000 samples")
    parser.add_argument("--stacked", action="store_true", help="also time the six-model beta sweep, serial vs stacked")
    parser.add_argument("--stacked-only", action="store_true", help="only the matmul rate and the stacked beta sweep")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray backend measurements")
    parser.add_argument("--ray-only", action="store_true", help="only the Ray backend and the paper-scale sweep plan")
    parser.add_argument("--paper-scale-only", action="store_true",
                        help="only the matmul rate and the paper-scale runs: one model, the beta sweep and the width sweep "
                             "(both stacked) at --paper-epochs (on a GPU; run by the full benchmark there)")
    parser.add_argument("--paper-epochs", type=int, default=2000, help="epochs of the paper-scale runs (the paper: 2000)")
    parser.add_argument("--paper-compile", action="store_true",
                        help="paper scale: train with TrainConfig(compile=True) (with the CUDA graph on a GPU)")
    parser.add_argument("--width-stacks", type=int, default=1,
                        help="paper scale: train the ten widths as this many stacks of neighbouring widths, cut for the "
                             "fewest padded FLOPs (default 1: one stack padded to 500)")
    parser.add_argument("--gpu-budget", type=float, default=None,
                        help="seconds the paper-scale runs may take in all: a run that would not fit trains the epochs that "
                             "fit and reports them with its projected full time (default: no limit)")
    parser.add_argument("--beta-sweep-dir",
                        help="only train the tuning chapter's beta sweep stacked and compiled to --paper-epochs into this "
                             "folder (resumable, --segment-epochs at a time) and report it against its FLOP floor")
    parser.add_argument("--segment-epochs", type=int, default=None, help="with --beta-sweep-dir: train at most this many epochs")
    parser.add_argument("--json", help="write the measurements to this file")
    parser.add_argument("--from-json", help="write the README's gpu section (--readme) from this saved run's JSON, measuring nothing")
    parser.add_argument("--readme", help="write the measured figures into this README's speed section (a full run) and "
                        "cluster section (a full run or --ray-only)")
    args = parser.parse_args(argv)
    if args.segment_epochs is not None and not args.beta_sweep_dir:
        parser.error("--segment-epochs goes with --beta-sweep-dir")
    if args.from_json:
        if not args.readme:
            parser.error("--from-json writes a README: give --readme")
        from matvae.report import update_readme_section

        saved = json.loads(Path(args.from_json).read_text())
        if "paper_scale" not in saved:
            parser.error(f"--from-json {args.from_json}: no paper_scale measurements in it (a --paper-scale-only run writes them)")
        update_readme_section(args.readme, "gpu", gpu_markdown(saved))
        return 0
    if args.oracle_only:
        report = oracle_speed()
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(report, handle, indent=1)
        return 0

    try:
        recipes = parse_recipes(args.recipes, "--recipes")
        references = parse_recipes(args.reference_recipes, "--reference-recipes")
        saved = _existing(args.json) if args.time_to_target_only else {}  # a damaged report fails before any work
    except ValueError as error:
        parser.error(str(error))
    device = resolve_device(args.device)
    report: dict = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "machine": platform.processor() or platform.machine()}
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    print(f"device {device} ({report.get('gpu', report['machine'])}), torch {torch.__version__}, {report['threads']} threads", flush=True)

    if args.hull:
        from matvae.data.materials import snapshot_columns

        started = time.perf_counter()
        columns = snapshot_columns()
        report["hull_seconds"] = time.perf_counter() - started
        print(f"hull decompositions of {len(columns):,} entries: {report['hull_seconds']:.1f} s", flush=True)

    _, split = prepare_data(DataConfig())
    train_data, test_data = split.train, split.test
    n_train = len(training_rows(train_data, TrainConfig()))
    model_config = ModelConfig()
    rate = matmul_rate(device)
    report["matmul_gflops"] = rate / 1e9
    print(f"dense float32 matmul (2048^3): {rate / 1e9:.1f} GFLOP/s", flush=True)
    if args.time_to_target_only:
        report = (saved or report) | {"time_to_target": target_runs(
            train_data, test_data, device, within=args.target_within, max_epochs=args.max_epochs, recipes=recipes,
            reference_recipes=[] if args.skip_reference else references, compiled=args.compile)
            | {"separate_run": True, "matmul_gflops": rate / 1e9}}
        _write_json(args.json, report)
        if args.readme and "epochs" in report:
            from matvae.report import update_readme_section

            update_readme_section(args.readme, "speed", markdown(report))
        return 0
    if args.beta_sweep_dir:
        try:
            report |= long_beta_sweep(train_data, test_data, device, folder=args.beta_sweep_dir, epochs=args.paper_epochs,
                                      segment_epochs=args.segment_epochs)
        except (ValueError, RuntimeError) as error:  # bad settings, a damaged file, another run in the folder
            parser.error(str(error))
        print(long_beta_markdown(report), flush=True)
        _write_json(args.json, report)
        if args.readme:
            from matvae.report import update_readme_section

            update_readme_section(args.readme, "beta2000", long_beta_markdown(report))
        return 0
    if args.paper_scale_only:
        report["paper_scale"] = paper_scale(train_data, test_data, device, budget_seconds=args.gpu_budget,
                                            epochs=args.paper_epochs, n_width_stacks=args.width_stacks,
                                            compile=args.paper_compile)
        _write_json(args.json, report)
        if args.readme:
            from matvae.report import update_readme_section

            update_readme_section(args.readme, "gpu", gpu_markdown(report))
        return 0
    if args.stacked or args.stacked_only:
        report["stacked_sweep"] = stacked_speed(train_data, test_data, model_config, TrainConfig(device=str(device)),
                                                rate=rate, epochs=args.epochs, compiled=args.compile)
        print_stacked(report["stacked_sweep"])
    if args.stacked_only:
        _write_json(args.json, report)
        return 0
    if args.ray_only:
        seconds = measure_epochs(train_data, test_data, model_config, TrainConfig(device=str(device)), epochs=args.epochs)
        _cluster(report, split, seconds, epoch_flops(model_config, n_train, len(test_data)))
        _write_json(args.json, report)
        if args.readme and "ray" in report:
            from matvae import cluster_benchmark
            from matvae.report import update_readme_section

            update_readme_section(args.readme, "cluster", cluster_benchmark.markdown(report))
        return 0
    flops = epoch_flops(model_config, n_train, len(test_data))
    report["epoch_gflop"] = flops / 1e9
    report["epochs"] = []
    print(f"one epoch at hidden {model_config.hidden_dim}: {n_train:,} training + {len(test_data):,} test materials, {flops / 1e9:.1f} GFLOP")
    ways = [("autograd", False), ("fused", False)] + ([("autograd", True), ("fused", True)] if args.compile else [])
    configs = [TrainConfig(batch_size=int(b), device=str(device), kernel=kernel, compile=compiled)
               for b in args.batch_sizes.split(",") for kernel, compiled in ways]
    # Round-robin: each round times one epoch of every configuration (after its own warm-up epoch), each beside a
    # fresh matmul rate, so a shared machine's drift falls on all rows alike; rows report medians over the rounds.
    timed: dict[int, list[tuple[float, float]]] = {i: [] for i in range(len(configs))}
    for _ in range(args.epochs):
        for i, config in enumerate(configs):
            rate_here = matmul_rate(device)
            timed[i].append((measure_epochs(train_data, test_data, model_config, config, epochs=1), rate_here))
    for i, config in enumerate(configs):
        seconds = float(np.median([t for t, _ in timed[i]]))
        rate_here = float(np.median([r for _, r in timed[i]]))
        achieved = flops / seconds
        row = {"batch_size": config.batch_size, "kernel": config.kernel, "compile": config.compile, "seconds_per_epoch": seconds,
               "gflops": achieved / 1e9, "matmul_gflops": rate_here / 1e9, "share_of_matmul": achieved / rate_here,
               "rounds": [{"seconds": t, "matmul_gflops": r / 1e9} for t, r in timed[i]]}
        report["epochs"].append(row)
        label = config.kernel + (" compiled" if config.compile else "")
        print(f"  batch {config.batch_size:5d} {label:17s}: {seconds:6.2f} s/epoch, {achieved / 1e9:6.1f} GFLOP/s = "
              f"{achieved / rate_here:.0%} of matmul ({rate_here / 1e9:.0f} GFLOP/s beside it), 2,000 epochs ~ "
              f"{2000 * seconds / 60:.0f} min (median of {args.epochs} rounds)", flush=True)

    # The ceiling of that table: each batch's matrix products alone, as if every other part of the step were free.
    report["gemm_ceiling"] = []
    for batch in sorted({config.batch_size for config in configs}):
        ceiling = gemm_ceiling(model_config, batch, n_train, len(test_data), device, rate=matmul_rate(device))
        report["gemm_ceiling"].append(ceiling)
        print(f"  batch {batch:5d} matrix products alone: {ceiling['gflops']:6.1f} GFLOP/s = {ceiling['share_of_matmul']:.0%} "
              f"of matmul; an epoch with nothing else would reach {ceiling['epoch_share']:.0%}", flush=True)

    report["time_to_target"] = target_runs(train_data, test_data, device, within=args.target_within,
                                           max_epochs=args.max_epochs, recipes=recipes,
                                           reference_recipes=[] if args.skip_reference else references, compiled=args.compile)
    if device.type == "cuda":
        report["paper_scale"] = paper_scale(train_data, test_data, device, budget_seconds=args.gpu_budget,
                                            n_width_stacks=args.width_stacks, compile=args.paper_compile)
    else:
        print("no GPU here: the 2,000-epoch and sweep wall times are for a GPU machine", flush=True)
    if not args.no_ray:
        measured = plan_epoch(report["epochs"])
        seconds, step = measured or (measure_epochs(train_data, test_data, model_config, TrainConfig(device=str(device)),
                                                    epochs=args.epochs), PLAN_STEPS[False])
        _cluster(report, split, seconds, flops, step)

    _write_json(args.json, report)
    if args.readme:
        from matvae import cluster_benchmark
        from matvae.report import update_readme_section

        update_readme_section(args.readme, "speed", markdown(report))
        if "ray" in report:
            update_readme_section(args.readme, "cluster", cluster_benchmark.markdown(report))
    return 0


PLAN_STEPS = {False: "hand-written step", True: "hand-written step, torch.compile"}  # the paper plan's measured epoch


def plan_epoch(rows: list[dict]) -> tuple[float, str] | None:
    """(seconds per epoch, which step) of the epoch table's row the paper-scale plan scales: the hand-written step at
    the default batch, compiled where that was measured (as the ``paper-cpu`` chapters train); None without one."""
    fused_rows = [r for r in rows if r["batch_size"] == TrainConfig().batch_size and r["kernel"] == "fused"]
    if not fused_rows:
        return None
    row = max(fused_rows, key=lambda r: bool(r.get("compile")))
    return row["seconds_per_epoch"], PLAN_STEPS[bool(row.get("compile"))]


def _cluster(report: dict, split, seconds_per_epoch: float, flops: float, step: str = PLAN_STEPS[False]) -> None:
    """The Ray part of the report (when Ray is installed) and the paper-scale sweep plan."""
    from matvae import cluster_benchmark

    try:
        import ray  # noqa: F401
    except ImportError:
        print('Ray is not installed: pip install -e ".[cluster]" for the Ray measurements', flush=True)
    else:
        _, tiny = prepare_data(DataConfig(elements="Ga,Mo,S,Li,O"))
        report["ray"] = cluster_benchmark.ray_speed(tiny, split)
        cluster_benchmark.print_ray(report["ray"])
    width_flops = {w: forward_flops(replace(ModelConfig(), hidden_dim=w)) for w in PAPER_WIDTHS}
    report["paper_plan"] = cluster_benchmark.paper_plan(seconds_per_epoch, flops / 1e9, width_flops=width_flops,
                                                        kl_weights=TUNING_KL_WEIGHTS, step=f"{step}, batch {TrainConfig().batch_size:,}")
    cluster_benchmark.print_plan(report["paper_plan"])


def _existing(path: str | None) -> dict:
    """The report saved at ``path`` (empty when there is none)."""
    if path and Path(path).is_file():
        try:
            with open(path) as handle:
                report = json.load(handle)
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not a saved benchmark report ({error}); give another --json or remove it") from None
        if not isinstance(report, dict):
            raise ValueError(f"{path} is not a saved benchmark report (a JSON object); give another --json or remove it")
        return report
    return {}


def _write_json(path: str | None, report: dict) -> None:
    if path:
        from matvae.files import atomic_write

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, mode="w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    raise SystemExit(main())
