"""The benchmark's measuring functions on a tiny split (their numbers are reported, never asserted)."""

import math

import pytest

from matvae.benchmark import default_target, time_to_target
from matvae.model import ModelConfig
from matvae.training import TrainConfig, train

SMALL = ModelConfig(hidden_dim=16, latent_dim=3)
FAST = TrainConfig(batch_size=64, device="cpu")


def test_time_to_target_stops_at_the_first_epoch_that_reaches_it(small_split):
    history = train(small_split.train, small_split.test, SMALL, TrainConfig(epochs=6, batch_size=64, device="cpu")).history
    target = history["test_loss"][3]  # reached at epoch 4 at the latest
    first = next(i for i, v in enumerate(history["test_loss"]) if v <= target) + 1
    seconds, epochs = time_to_target(small_split.train, small_split.test, SMALL, FAST, target=target, max_epochs=6, chunk=2)
    assert epochs == first and 0 < seconds < math.inf
    assert time_to_target(small_split.train, small_split.test, SMALL, FAST, target=-1.0, max_epochs=3, chunk=2) == (math.inf, 3)


def test_the_default_target_is_above_the_shipped_models_converged_loss():
    target, converged = default_target(0.1)
    assert target == pytest.approx(1.1 * converged) and 0 < converged < 10
