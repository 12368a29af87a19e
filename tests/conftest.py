"""Shared test settings: a private cache folder (inherited by nbval's kernels) and small snapshot slices."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

# Set before any test or notebook kernel starts so that nothing touches the user's cache.
os.environ.setdefault("MATVAE_CACHE_DIR", tempfile.mkdtemp(prefix="matvae-test-cache-"))
os.environ.setdefault("MATVAE_PROGRESS", "0")


@pytest.fixture(scope="session")
def snapshot_raw():
    """The embedded snapshot as (formulas, energies, counts)."""
    from matvae.data.snapshot import parse_cell_formulas, read_snapshot

    raw = read_snapshot()
    return raw["formula"].to_numpy(), raw["target"].to_numpy(), parse_cell_formulas(raw["formula"])


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def small_split():
    """A closed chemical space of a few hundred materials, split 80/20 (no cache: tests build it)."""
    from matvae.data import DataConfig, prepare_data

    _, split = prepare_data(DataConfig(elements="Ga,Mo,S,Li,O", seed=0), cache=False)
    return split


@pytest.fixture(scope="session")
def small_table():
    """The materials table of the closed chemical space of :func:`small_split` (same rows, same order)."""
    from matvae.data import load_materials

    return load_materials(elements="Ga,Mo,S,Li,O", cache=False)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a test module (tiny models on a busy 2-core machine run faster without thread
    hand-offs; PPO and resume checks are bit-exact only at a fixed thread count), restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray with 2 CPUs (what CI has) for the tests of the ``ray`` backend, started by the first of them and
    shut down at the end of the session (one start, and its workers stay warm, instead of one per test module).
    Ray is part of the dev install (the ``cluster`` extra): these tests fail, not skip, where it is missing."""
    import ray

    from matvae.runner import init_ray

    if ray.is_initialized():
        ray.shutdown()
    address = os.environ.pop("RAY_ADDRESS", None)  # never the user's cluster
    init_ray(num_cpus=2, object_store_memory=200 * 1024**2)
    yield ray
    ray.shutdown()
    if address is not None:
        os.environ["RAY_ADDRESS"] = address
