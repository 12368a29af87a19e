"""One runner for independent jobs (the models of a sweep, the runs of a design campaign), two backends.

``"local"`` (the default) runs the jobs one after another in this process: exactly what the book runs.
``"ray"`` hands each job to a Ray task (``pip install -e ".[cluster]"``): on the cluster named by the
``RAY_ADDRESS`` environment variable when it is set, else on a local Ray started with this machine's CPUs and
GPUs (no dashboard). Ray core tasks, not Tune: a sweep here is a fixed grid of independent runs that write their
own checkpoints, and what Tune would add (search algorithms, trial schedulers, its own checkpoint store) is not
used; a task whose worker dies is retried by Ray itself (``max_retries``), and the retried job resumes from its
last checkpoint because every job of the package trains through a resumable checkpoint under ``storage``.

A job is a module-level function (so a worker can import it), its keyword arguments and the resources it
declares. Large inputs shared by every job (the training data) go in ``shared``: placed once in Ray's object
store, passed to every job as keyword arguments. With ``storage``, each attempt of a job appends one line to
``storage/.runs/NAME.attempts`` (process id, host, time; the log is emptied when a run starts), so a retry is
visible: :class:`JobOutcome` counts them.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matvae.params import check_float, check_int, show
from matvae.progress import progress_bar

BACKENDS: tuple[str, ...] = ("local", "ray")
RAY_EXTRA = 'pip install -e ".[cluster]"'
ADDRESS_ENV = "RAY_ADDRESS"
"""Environment variable naming the Ray cluster to connect to (``ray start --head`` prints it)."""


@dataclass(frozen=True)
class Resources:
    """What one job asks the scheduler for. The local backend runs jobs in this process and ignores it."""

    cpus: float = 1.0  # CPU cores (the job's torch threads, at least 1)
    gpus: float = 0.0  # GPUs, or a fraction of one (e.g. 0.25: four jobs share a GPU)

    def __post_init__(self) -> None:
        check_float("cpus", self.cpus, low=0.0, low_inclusive=False)
        check_float("gpus", self.gpus, low=0.0)
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise ValueError(f"gpus above 1 must be a whole number, got {self.gpus!r}")


@dataclass(frozen=True)
class Job:
    """One independent run: ``function(**shared, **kwargs)``. ``name`` is unique in a run and safe as a file name."""

    name: str
    function: Callable[..., Any]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    resources: Resources = Resources()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"job name must be a non-empty file name (no '/', not starting with '.'), got {self.name!r}")
        if not callable(self.function):
            raise ValueError(f"job {self.name}: function must be callable, got {show(self.function)}")


@dataclass(frozen=True)
class JobOutcome:
    """What a job returned, and how it came about: ``attempts`` (1, or more after a worker died), the seconds of
    the last attempt and where it ran."""

    name: str
    value: Any
    attempts: int
    seconds: float
    host: str
    pid: int


def _import_ray():
    """``import ray`` without its import-time chatter in a notebook (a tqdm warning that names a file of this
    machine, an INFO line about ipywidgets); ``None`` when Ray is not installed."""
    logging.getLogger("ray.widgets.util").disabled = True  # its only message: ipywidgets missing in a notebook
    ray_logger = logging.getLogger("ray")
    level = ray_logger.level
    ray_logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import ray
    except ImportError:
        return None
    finally:
        ray_logger.setLevel(level)
    return ray


def check_backend(backend: Any) -> str:
    """``backend`` when it is one of :data:`BACKENDS` and usable here, else a ValueError naming what to do."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {show(backend)}")
    if backend == "ray" and _import_ray() is None:
        raise ValueError(f'backend "ray" needs Ray, which is not installed; install the extra: {RAY_EXTRA}')
    return backend


def default_resources(backend: str) -> Resources:
    """What a job asks for when its caller says nothing: one CPU, plus one GPU on a Ray cluster that has GPUs (so
    ``device="auto"`` training finds one; Ray hides the GPUs from a job that asks for none)."""
    if check_backend(backend) == "ray" and init_ray().cluster_resources().get("GPU", 0) > 0:
        return Resources(cpus=1.0, gpus=1.0)
    return Resources()


def resources_for(backend: str, resources: Resources | None) -> Resources:
    """``resources`` checked, or :func:`default_resources` of ``backend`` when ``None``."""
    if resources is None:
        return default_resources(backend)
    if not isinstance(resources, Resources):
        raise ValueError(f"resources must be a matvae.runner.Resources, got {type(resources).__name__}")
    return resources


def attempts_path(storage: str | os.PathLike, name: str) -> Path:
    """The attempt log of job ``name`` under ``storage``."""
    return Path(storage) / ".runs" / f"{name}.attempts"


def _note_attempt(storage: str | None, name: str) -> int:
    """Append this attempt to the job's log; the number of attempts so far (1 without storage)."""
    if storage is None:
        return 1
    path = attempts_path(storage, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
    # One short line per attempt (appends do not interleave), counted through the same open file: another run on
    # this storage may empty the log (unlink it) at its start, and a second open would then find no file.
    with open(path, "a+", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        handle.seek(0)
        return sum(1 for text in handle if text.strip())


def _execute(job: Job, storage: str | None, shared: Mapping[str, Any], threads: int | None) -> JobOutcome:
    """Run one job here (in this process or in a Ray worker); ``threads``: torch threads for the job."""
    attempts = _note_attempt(storage, job.name)
    started = time.perf_counter()
    if threads is None:
        value = job.function(**shared, **job.kwargs)
    else:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            value = job.function(**shared, **job.kwargs)
        finally:
            torch.set_num_threads(before)
    return JobOutcome(job.name, value, attempts, time.perf_counter() - started, socket.gethostname(), os.getpid())


def _ray_execute(job: Job, storage: str | None, shared_refs: Mapping[str, Any]) -> JobOutcome:
    """The body of a Ray task: fetch the shared inputs from the object store, run the job on its declared CPUs."""
    import ray

    shared = dict(zip(shared_refs, ray.get(list(shared_refs.values())))) if shared_refs else {}
    return _execute(job, storage, shared, threads=max(1, int(job.resources.cpus)))


def init_ray(*, num_cpus: int | None = None, **options):
    """Connect to the Ray cluster of ``RAY_ADDRESS``, else start a local one (this machine's CPUs, or ``num_cpus``,
    and its GPUs; no dashboard; ``options`` go to ``ray.init``, e.g. ``object_store_memory``). Reuses a Ray this
    process already started or joined. Returns the ``ray`` module."""
    check_backend("ray")
    ray = _import_ray()
    if not ray.is_initialized():
        address = os.environ.get(ADDRESS_ENV)
        if address:
            ray.init(address=address, logging_level="WARNING")
        else:  # a private Ray of this process: errors only (not its notice about token authentication)
            ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, logging_level="ERROR",
                     log_to_driver=False, **options)
    return ray


def run_jobs(
    jobs: Sequence[Job],
    *,
    backend: str = "local",
    storage: str | os.PathLike | None = None,
    shared: Mapping[str, Any] | None = None,
    max_retries: int = 3,
    desc: str = "jobs",
    show_progress: bool | None = None,
) -> list[JobOutcome]:
    """Run ``jobs`` and return their outcomes in the order given.

    ``backend="local"`` runs them one after another here; ``"ray"`` as Ray tasks with the resources each declares,
    retrying a task up to ``max_retries`` times when its worker dies (an exception raised by the job itself is not
    retried: it is raised here, as itself). ``storage`` is where the jobs write (checkpoints, attempt logs); with
    Ray on several machines it must be a folder every node sees at the same path (a shared file system).
    """
    backend = check_backend(backend)
    jobs = list(jobs)
    names = [job.name for job in jobs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"job names must be unique, got {duplicated} more than once")
    max_retries = check_int("max_retries", max_retries, minimum=0)
    storage = None if storage is None else str(Path(storage).resolve())
    if storage is not None:  # attempts count within this run: an earlier run's log is not this run's retry
        for job in jobs:
            attempts_path(storage, job.name).unlink(missing_ok=True)
    shared = dict(shared or {})
    if backend == "local":
        return [_execute(job, storage, shared, threads=None) for job in progress_bar(jobs, desc=desc, unit="job", enabled=show_progress)]

    ray = init_ray()
    refs = {key: ray.put(value) for key, value in shared.items()}
    remote = ray.remote(_ray_execute)
    pending = {
        remote.options(
            num_cpus=job.resources.cpus, num_gpus=job.resources.gpus, max_retries=max_retries, retry_exceptions=False,
            name=f"matvae:{job.name}",
        ).remote(job, storage, refs): i
        for i, job in enumerate(jobs)
    }
    outcomes: list[JobOutcome | None] = [None] * len(jobs)
    bar = progress_bar(range(len(jobs)), desc=desc, unit="job", enabled=show_progress)
    waiting = list(pending)
    try:
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            for ref in done:
                try:
                    outcomes[pending[ref]] = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    raise exc.as_instanceof_cause() from None
                bar.update(1)
    finally:
        bar.close()
        if waiting:  # a job failed: the others would run on unobserved
            for ref in waiting:
                ray.cancel(ref, force=True)
    return outcomes
