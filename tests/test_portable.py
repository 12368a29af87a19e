"""The CI step ``make test-portable`` re-runs the nbval references on other kernel code paths; these tests
prove that the step really is on another path (they are skipped in the ordinary ``make test``)."""

import os

import pytest
import torch

portable_only = pytest.mark.skipif(os.environ.get("MATVAE_EXPECT_PORTABLE") != "1", reason="only in make test-portable")


@portable_only
def test_torch_runs_its_portable_kernels():
    assert torch.backends.cpu.get_cpu_capability() == "DEFAULT"
    assert torch.get_num_threads() == 1


@portable_only
def test_numpy_dispatches_to_its_baseline_only():
    from numpy._core import _multiarray_umath as umath

    enabled = [feature for feature in umath.__cpu_dispatch__ if umath.__cpu_features__.get(feature)]
    assert enabled == [], f"numpy still dispatches to {enabled}"

