"""The job runner (matvae.runner) and the sweeps and campaigns that run through it, on both backends.

The Ray tests run on a local Ray with 2 CPUs (the ``local_ray`` fixture). Each Ray job runs on one torch thread, so
the local runs they are compared with run on one thread too (``one_torch_thread``): equal tables then mean equal
floating-point results, not close ones.
"""

import json
import os
import signal
import sys
import threading
import time
from dataclasses import replace

import pytest

from matvae.model import ModelConfig
from matvae.runner import Job, Resources, attempts_path, check_backend, run_jobs
from matvae.training import TrainConfig, load_checkpoint
from matvae.tuning import sweep

# 29 Adam steps per epoch on the small split: slow enough (tenths of a second an epoch) for a test to kill a job
# between two checkpoints, fast enough for CI.
CONFIG = TrainConfig(epochs=40, batch_size=8, device="cpu", checkpoint_every=2)
TIMINGS = ("train_seconds", "wall_seconds")


def square(x, offset=0):
    return x * x + offset


def fail(message):
    raise ValueError(message)


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Local runs on one thread, as every Ray job of these tests."""


@pytest.fixture(scope="module")
def local_table(small_split, tmp_path_factory):
    """The reference: the tiny width sweep run locally, one model after another."""
    return _sweep(small_split, tmp_path_factory.mktemp("local"), backend="local")


def _sweep(split, storage, config=CONFIG, **options):
    return sweep(split.train, split.test, "hidden_dim", "8,16", ModelConfig(latent_dim=2), config, checkpoint_dir=storage,
                 reference_counts=split.dataset.counts, n_samples=200, **options)


def _same_results(a, b):
    """Two sweep tables with the same results (all but the timings and how each model came about)."""
    columns = [c for c in a.columns if c not in (*TIMINGS, "status")]
    assert list(a.columns) == list(b.columns)
    assert a[columns].to_dict(orient="records") == b[columns].to_dict(orient="records")


def test_local_jobs_run_in_order_here(tmp_path):
    jobs = [Job(f"j{i}", square, {"x": i}) for i in range(4)]
    outcomes = run_jobs(jobs, shared={"offset": 10}, storage=tmp_path)
    assert [o.value for o in outcomes] == [10, 11, 14, 19]
    assert [o.name for o in outcomes] == ["j0", "j1", "j2", "j3"]
    assert {o.pid for o in outcomes} == {os.getpid()} and all(o.attempts == 1 for o in outcomes)
    assert len(attempts_path(tmp_path, "j2").read_text().splitlines()) == 1
    again = run_jobs(jobs, shared={"offset": 0}, storage=tmp_path)  # a new run counts its own attempts
    assert [o.value for o in again] == [0, 1, 4, 9] and all(o.attempts == 1 for o in again)
    assert run_jobs([], storage=tmp_path) == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: check_backend("slurm"), r"backend must be one of \('local', 'ray'\), got 'slurm'"),
        (lambda: check_backend(None), r"backend must be one of \('local', 'ray'\), got None"),
        (lambda: run_jobs([Job("a", square, {"x": 1})] * 2), r"job names must be unique, got \['a'\]"),
        (lambda: Job("../x", square), "job name must be a non-empty file name"),
        (lambda: Job("", square), "job name must be a non-empty file name"),
        (lambda: Job("a", 3), "function must be callable"),
        (lambda: Resources(cpus=0), r"cpus must lie in \(0.0, inf\], got 0.0"),
        (lambda: Resources(gpus=-1), r"gpus must lie in \[0.0, inf\], got -1.0"),
        (lambda: Resources(gpus=1.5), "gpus above 1 must be a whole number"),
        (lambda: run_jobs([], max_retries=-1), "max_retries must be >= 0"),
    ],
)
def test_bad_input_is_refused_naming_it(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_ray_missing_is_an_error_naming_the_extra(monkeypatch, small_split, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ValueError, match=r'needs Ray, which is not installed; install the extra: pip install -e "\.\[cluster\]"'):
        check_backend("ray")
    with pytest.raises(ValueError, match="needs Ray"):
        _sweep(small_split, tmp_path, backend="ray")
    with pytest.raises(ValueError, match="backend must be one of"):
        _sweep(small_split, tmp_path, backend="dask")


def test_a_job_error_is_raised_as_itself_on_ray(local_ray):
    with pytest.raises(ValueError, match="bad value 7"):
        run_jobs([Job("ok", square, {"x": 2}), Job("bad", fail, {"message": "bad value 7"})], backend="ray")


def test_ray_jobs_return_in_order_from_other_processes(local_ray, tmp_path):
    outcomes = run_jobs([Job(f"j{i}", square, {"x": i}) for i in range(5)], backend="ray", shared={"offset": 1},
                        storage=tmp_path)
    assert [o.value for o in outcomes] == [1, 2, 5, 10, 17]
    assert os.getpid() not in {o.pid for o in outcomes}


def test_a_killed_job_resumes_from_its_checkpoint_and_the_table_is_unchanged(local_ray, local_table, small_split, tmp_path):
    """The same table as the local run, row for row, although one job's worker is killed mid-training."""
    checkpoint, log = tmp_path / "hidden_dim-16.pt", attempts_path(tmp_path, "hidden_dim-16")
    killed = {}

    def kill_once():
        """SIGKILL the worker training the width-16 model once its second checkpoint (epoch 4) is on disk."""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if checkpoint.exists() and log.exists():
                try:
                    epoch = load_checkpoint(checkpoint).epoch
                except (OSError, ValueError):  # being replaced right now
                    continue
                if epoch >= 4:
                    pid = json.loads(log.read_text().splitlines()[0])["pid"]
                    os.kill(pid, signal.SIGKILL)
                    killed.update(pid=pid, epoch=epoch)
                    return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_once)
    killer.start()
    outcomes = []
    table = _sweep(small_split, tmp_path, backend="ray", outcomes=outcomes)
    killer.join()
    assert killed, "the job finished before it could be killed"
    assert 4 <= killed["epoch"] < CONFIG.epochs
    print(f"worker {killed['pid']} killed after the checkpoint of epoch {killed['epoch']}; the retry resumed from it")
    _same_results(local_table, table)  # the same numbers as a run that was never killed
    assert table["status"].tolist() == ["trained", "resumed"]  # resumed from the checkpoint, not retrained from 0
    assert [o.attempts for o in outcomes] == [1, 2] and outcomes[1].pid != killed["pid"]
    assert os.getpid() not in {o.pid for o in outcomes}  # the jobs ran in Ray's workers, not here
    outcomes.clear()
    again = _sweep(small_split, tmp_path, backend="ray", outcomes=outcomes)  # finished checkpoints are read back
    assert again["status"].tolist() == ["loaded", "loaded"] and [o.attempts for o in outcomes] == [1, 1]
    _same_results(local_table, again)


def test_two_sweeps_on_one_storage_path_do_not_corrupt_each_other(small_split, tmp_path):
    short = replace(CONFIG, epochs=12)
    reference = _sweep(small_split, tmp_path / "alone", short)
    tables, errors = {}, []

    def run(name):
        try:
            tables[name] = _sweep(small_split, tmp_path / "shared", short, backend="local")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for table in tables.values():
        _same_results(reference, table)
    # each model trained once, by one of the two; the other waited for it and read it back
    statuses = sorted(zip(tables["a"]["status"], tables["b"]["status"]))
    assert all(sorted(pair) in (["loaded", "trained"], ["trained", "loaded"]) for pair in statuses), statuses



def test_a_damaged_checkpoint_stops_a_ray_sweep_naming_it(local_ray, small_split, tmp_path):
    _sweep(small_split, tmp_path, replace(CONFIG, epochs=2), backend="local")
    path = tmp_path / "hidden_dim-16.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the weights
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="hidden_dim-16.pt"):
        _sweep(small_split, tmp_path, replace(CONFIG, epochs=2), backend="ray")


def test_an_attempt_is_counted_even_when_another_run_empties_the_log_meanwhile(tmp_path, monkeypatch):
    import builtins

    from matvae import runner

    real_open = builtins.open

    def open_then_unlink(path, *args, **kwargs):  # another run starting on this storage removes the log here
        handle = real_open(path, *args, **kwargs)
        if str(path).endswith(".attempts"):
            os.unlink(path)
        return handle

    monkeypatch.setattr(builtins, "open", open_then_unlink)
    assert runner._note_attempt(str(tmp_path), "job") == 1
