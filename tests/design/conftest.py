"""Fixtures of the design tests: a fake oracle (fake_oracle.py, never the real one) and small models."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("gymnasium")
pytest.importorskip("stable_baselines3")
pytest.importorskip("cma")

HERE = Path(__file__).parent


def _load_fake_oracle():
    if "fake_oracle" not in sys.modules:  # importable by name, as the command line's --oracle needs
        spec = importlib.util.spec_from_file_location("fake_oracle", HERE / "fake_oracle.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["fake_oracle"] = module
        spec.loader.exec_module(module)
    return sys.modules["fake_oracle"]


@pytest.fixture
def fake():
    """The fake oracle module, its call log emptied."""
    module = _load_fake_oracle()
    module.CALLS.clear()
    return module


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every design test module on one torch thread (:func:`one_torch_thread`), restored after each module."""


@pytest.fixture(scope="session")
def paper_model():
    """The shipped paper VAE (10-d)."""
    from matvae.pretrained import load_pretrained

    return load_pretrained("paper")


@pytest.fixture(scope="session")
def sequence_model():
    """The shipped sequence VAE (32-d)."""
    from matvae.pretrained import load_pretrained

    return load_pretrained("sequence")


@pytest.fixture(scope="session")
def tiny_models():
    """Untrained models of both families with a 4-d latent space."""
    from matvae.model import ModelConfig
    from matvae.models import build_model
    from matvae.models.sequence import SequenceConfig

    torch.manual_seed(0)
    paper = build_model(ModelConfig(hidden_dim=16, latent_dim=4)).eval()
    sequence = build_model(SequenceConfig(latent_dim=4, hidden_dim=16, embed_dim=8, max_length=4, n_components=3)).eval()
    return {"paper": paper, "sequence": sequence}
