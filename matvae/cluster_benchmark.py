"""What running past one machine costs and buys: the Ray backend against the local one, measured, and the wall
time of the paper-scale sweeps on several workers, planned from measured per-epoch costs.

Used by ``python -m matvae.benchmark`` (its Ray part, ``--ray-only``); every number printed comes from a run on this machine,
except the GPU rows of the plan, which scale an assumed per-model time (stated as such); a GPU's own paper-scale
timings are measured by ``python -m matvae.benchmark --paper-scale-only``.
"""

from __future__ import annotations

import heapq
import os
import tempfile
import textwrap
import time
from collections.abc import Sequence

from matvae.model import ModelConfig
from matvae.params import check_int
from matvae.runner import init_ray
from matvae.training import TrainConfig
from matvae.tuning import sweep

PAPER_EPOCHS = 2000


def plan_wall_seconds(job_seconds: Sequence[float], workers: int) -> float:
    """Wall time of independent jobs on ``workers`` equal workers, longest job first to the least-loaded worker
    (the LPT rule; within 4/3 of the best possible schedule)."""
    workers = check_int("workers", workers, minimum=1)
    loads = [0.0] * workers
    for seconds in sorted(job_seconds, reverse=True):
        heapq.heapreplace(loads, loads[0] + seconds)  # loads is a heap: loads[0] is the least-loaded worker
    return max(loads) if job_seconds else 0.0


def _timed_sweep(split, values, epochs: int, *, setting: str = "hidden_dim", backend: str, n_samples: int,
                 batch_size: int = 1024) -> tuple[float, object]:
    """Wall seconds of a fresh sweep (checkpoints in a temporary folder, so nothing is read back) and its table."""
    with tempfile.TemporaryDirectory(prefix="matvae-bench-") as storage:
        started = time.perf_counter()
        table = sweep(split.train, split.test, setting, values, ModelConfig(kl_weight=0.03),
                      TrainConfig(epochs=epochs, batch_size=batch_size, device="cpu"), checkpoint_dir=storage,
                      reference_counts=split.dataset.counts, n_samples=n_samples, backend=backend, show_progress=False)
        return time.perf_counter() - started, table


def ray_speed(tiny_split, full_split, *, small_values: str = "50,100,150,200", small_epochs: int = 2,
              n_samples: int = 1000) -> dict:
    """The Ray backend on this machine: start-up, the overhead per job on a tiny sweep (local vs Ray, same jobs),
    and a small sweep on the full snapshot with as many workers as CPUs against the local serial run."""
    import ray

    report: dict = {"cpus": os.cpu_count()}
    started = time.perf_counter()
    init_ray(num_cpus=os.cpu_count())
    report["start_seconds"] = time.perf_counter() - started
    tiny_values, tiny_epochs = "8,16,24,32", 2
    local, _ = _timed_sweep(tiny_split, tiny_values, tiny_epochs, backend="local", n_samples=200, batch_size=128)
    on_ray, _ = _timed_sweep(tiny_split, tiny_values, tiny_epochs, backend="ray", n_samples=200, batch_size=128)
    report["tiny"] = {"values": tiny_values, "epochs": tiny_epochs, "local_seconds": local, "ray_seconds": on_ray,
                      "overhead_per_job_seconds": (on_ray - local) / len(tiny_values.split(","))}
    local, local_table = _timed_sweep(full_split, small_values, small_epochs, backend="local", n_samples=n_samples)
    on_ray, ray_table = _timed_sweep(full_split, small_values, small_epochs, backend="ray", n_samples=n_samples)
    report["small"] = {"values": small_values, "epochs": small_epochs, "n_samples": n_samples,
                       "local_serial_seconds": local, "ray_seconds": on_ray, "speed_up": local / on_ray,
                       "workers": int(ray.cluster_resources().get("CPU", 0) or os.cpu_count()),
                       "local_train_seconds": float(local_table["train_seconds"].sum()),
                       "ray_train_seconds": float(ray_table["train_seconds"].sum())}
    report["load_average"] = list(os.getloadavg())
    return report


def print_ray(report: dict) -> None:
    tiny, small = report["tiny"], report["small"]
    print(f"Ray (local, {report['cpus']} CPUs): started in {report['start_seconds']:.1f} s; tiny sweep of "
          f"{len(tiny['values'].split(','))} models: local {tiny['local_seconds']:.1f} s, Ray {tiny['ray_seconds']:.1f} s "
          f"= {tiny['overhead_per_job_seconds']:+.2f} s per job", flush=True)
    print(f"  small sweep (widths {small['values']}, {small['epochs']} epochs, full snapshot): local serial "
          f"{small['local_serial_seconds']:.1f} s, Ray with {small['workers']} workers {small['ray_seconds']:.1f} s = "
          f"{small['speed_up']:.2f}x (load average {report['load_average'][0]:.2f})", flush=True)


def paper_plan(seconds_per_epoch: float, gflop_per_epoch_at_100: float, *, width_flops: dict[int, float],
               kl_weights: Sequence[float], workers: Sequence[int] = (1, 4, 16),
               assumed_gpu_model_seconds: float = 60.0, step: str = "") -> dict:
    """Wall time of the paper-scale sweeps (``PAPER_EPOCHS`` epochs a model) on 1, 4 and 16 workers.

    ``width_flops``: hidden width -> FLOPs of one forward pass (width 100 among them), e.g. from
    :func:`matvae.benchmark.forward_flops`. CPU workers are machines like this one, one model at a time: a width's
    epoch costs ``seconds_per_epoch`` (the measured epoch at width 100) scaled by its FLOPs. GPU workers:
    ``assumed_gpu_model_seconds`` per 2,000-epoch model at width 100 (the performance issue's target on one H100,
    not a measurement), scaled the same way. ``step``: which training step the epoch was measured with, for the text."""
    if 100 not in width_flops:
        raise ValueError(f"width_flops must include width 100 (the measured one), got {sorted(width_flops)}")
    scale = {w: flops / width_flops[100] for w, flops in width_flops.items()}
    widths = sorted(width_flops)
    cpu_model = PAPER_EPOCHS * seconds_per_epoch
    jobs = {
        "width": [cpu_model * scale[w] for w in widths],
        "beta": [cpu_model] * len(kl_weights),
    }
    plan = {"epochs": PAPER_EPOCHS, "cpu_seconds_per_epoch_at_100": seconds_per_epoch,
            "gflop_per_epoch_at_100": gflop_per_epoch_at_100, "assumed_gpu_model_seconds": assumed_gpu_model_seconds,
            "step": step, "rows": []}
    for name, seconds in jobs.items():
        gpu = [s / cpu_model * assumed_gpu_model_seconds for s in seconds]
        for n in workers:
            plan["rows"].append({"sweep": name, "models": len(seconds), "workers": n,
                                 "cpu_hours": plan_wall_seconds(seconds, n) / 3600,
                                 "gpu_minutes_assumed": plan_wall_seconds(gpu, n) / 60})
    return plan


def print_plan(plan: dict) -> None:
    step = f", {plan['step']}" if plan.get("step") else ""
    print(f"paper-scale sweeps at {plan['epochs']:,} epochs a model (CPU: this machine's measured "
          f"{plan['cpu_seconds_per_epoch_at_100']:.2f} s/epoch at width 100{step}, scaled by FLOPs; GPU: an assumed "
          f"{plan['assumed_gpu_model_seconds']:.0f} s per model at width 100, not measured):", flush=True)
    for row in plan["rows"]:
        print(f"  {row['sweep']:5s} sweep, {row['models']:2d} models on {row['workers']:2d} workers: "
              f"{row['cpu_hours']:6.1f} h on CPU machines like this one, {row['gpu_minutes_assumed']:5.1f} min on GPUs",
              flush=True)


def markdown(report: dict) -> str:
    """The README's measured figures of running past one machine, from a benchmark report with ``ray`` and
    ``paper_plan`` parts."""
    tiny, small, plan = report["ray"], report["ray"]["small"], report["paper_plan"]
    tiny_runs = tiny["tiny"]
    n_tiny = len(tiny_runs["values"].split(","))
    lines = [
        f"Measured by `python -m matvae.benchmark` (`--ray-only`: just this part) on this project's {tiny['cpus']}-core x86_64 CPU "
        f"(torch {report['torch']}, dense float32 matmul {report['matmul_gflops']:.0f} GFLOP/s in the same run, load "
        f"average {tiny['load_average'][0]:.1f}): a local Ray starts in {tiny['start_seconds']:.1f} s; a tiny sweep of "
        f"{n_tiny} models takes {tiny_runs['local_seconds']:.1f} s locally and {tiny_runs['ray_seconds']:.1f} s on Ray, "
        f"{tiny_runs['overhead_per_job_seconds']:+.2f} s per job; a small sweep on the full snapshot (widths "
        f"{small['values']}, {small['epochs']} epochs each, {small['n_samples']:,} samples each) takes "
        f"{small['local_serial_seconds']:.0f} s serially in one process on {report['threads']} torch threads and "
        f"{small['ray_seconds']:.0f} s on Ray with {small['workers']} one-thread workers: "
        f"**{small['speed_up']:.2f}x**.",
        "",
        f"Planned from that run's measured {plan['cpu_seconds_per_epoch_at_100']:.2f} s per epoch at width 100 "
        f"({plan['step'] + '; ' if plan.get('step') else ''}each width scaled by its FLOPs), the paper-scale sweeps "
        f"at {plan['epochs']:,} epochs a model, with one model per worker at a time. The GPU column assumes "
        f"{plan['assumed_gpu_model_seconds']:.0f} s per 2,000-epoch model at width 100 (the performance issue's "
        "target on one H100, not a measurement; on a GPU a model this small costs kernel launches rather than "
        "FLOPs, so the scaling by FLOPs is a guess too: the measured GPU runs are in the GPU table of the speed "
        "section):",
        "",
        "| sweep | models | workers | CPU machines like this one | GPUs (assumed per-model time) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in plan["rows"]:
        lines.append(f"| {'width 50..500' if row['sweep'] == 'width' else 'beta'} | {row['models']} | {row['workers']} | "
                     f"{row['cpu_hours']:.1f} h | {row['gpu_minutes_assumed']:.1f} min |")
    wrapped = [textwrap.fill(line, width=110, break_on_hyphens=False) if not line.startswith("|") else line for line in lines]
    return "\n".join(wrapped) + "\n"
