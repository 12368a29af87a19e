"""Gymnasium environments for inverse design: steps in a VAE's latent space, or elements added and removed.

Both run a fixed ``horizon`` of steps and score only the material of the final state: the reward is 0 before
the last step and the objective's score (or penalty, :mod:`matvae.design.objectives`) at it. Every final
material goes through an :class:`~matvae.design.objectives.Evaluator`, shared with the caller when one is
given, so that oracle calls are counted across episodes; ``info`` carries ``n_oracle_calls`` at every step and
the final ``formula``, ``score``, ``status`` and ``meets`` at the last.

``LatentDesignEnv``
    observation: the latent code z (latent_dim,) float32, clipped to [-latent_bound, latent_bound];
    action: a in [-1, 1]^latent_dim, z <- clip(z + step_size * a); reset: z from the model's prior (or
    ``start``); the final z is decoded by :func:`matvae.sampling.decode_codes`.
``ElementDesignEnv`` (after Pan, Karpovich & Olivetti 2022, who build a composition element by element)
    observation: the atom counts (89,) float32 in [0, max_count]; action (MultiDiscrete [2, 89, max_count]):
    ``(0, e, c)`` sets element e to c + 1 atoms (ignored when e is new and ``max_elements`` are present),
    ``(1, e, _)`` removes element e; reset: the empty composition; the final counts' reduced formula is scored
    (None, penalised as undecodable, when they are empty).
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from matvae.composition import reduced_formula
from matvae.design.objectives import DesignRecord, Evaluator, Objective
from matvae.elements import N_ELEMENTS
from matvae.models import AnyModel, family_of
from matvae.params import check_float, check_int, check_seed
from matvae.sampling import decode_codes

LATENT_BOUND: float = 8.0
"""Latent codes are kept in [-8, 8]^d (prior draws beyond it are clipped; the sequence model's mixture prior
reaches about 10 in one coordinate of a thousand draws)."""


def prior_codes(model: AnyModel, n: int, *, seed: int) -> np.ndarray:
    """``n`` codes from the model's prior p(z) (N(0, I) for the paper family). (n, latent_dim) float32"""
    generator = torch.Generator().manual_seed(check_seed("seed", seed))
    with torch.no_grad():
        if family_of(model) == "sequence":
            z = model.sample_prior(n, generator)
        else:
            z = torch.randn((n, model.config.latent_dim), generator=generator)
    return z.cpu().numpy().astype(np.float32)


def _evaluator(objective: Objective, evaluator: Evaluator | None) -> Evaluator:
    if evaluator is None:
        return Evaluator(objective)
    if evaluator.objective is not objective:
        raise ValueError("evaluator must score the environment's objective (evaluator.objective is objective)")
    return evaluator


class _FinalScoreEnv(gym.Env):
    """Shared episode logic: a fixed horizon, the final material scored by the evaluator."""

    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(self, objective: Objective, *, horizon: int, seed: int | None, evaluator: Evaluator | None) -> None:
        self.objective = objective
        self.evaluator = _evaluator(objective, evaluator)
        self.horizon = check_int("horizon", horizon, minimum=1)
        self._seed = None if seed is None else check_seed("seed", seed)
        self._t = 0
        self.last_record: DesignRecord | None = None

    def _seed_once(self, seed: int | None) -> int | None:
        """The constructor's seed applies to the first reset that names none."""
        if seed is None and self._seed is not None:
            seed, self._seed = self._seed, None
        return seed

    def _finish(self, formula: str | None, info: dict) -> float:
        record = self.evaluator.score_one(formula)
        self.last_record = record
        info.update(formula=record.formula, score=record.score, status=record.status, meets=record.meets)
        info["n_oracle_calls"] = self.evaluator.n_oracle_calls
        return float(record.score)

    def _advance(self) -> tuple[bool, dict]:
        self._t += 1
        return self._t >= self.horizon, {"step": self._t, "n_oracle_calls": self.evaluator.n_oracle_calls}


class LatentDesignEnv(_FinalScoreEnv):
    """Design by moving a latent code (see the module docstring)."""

    def __init__(
        self,
        model: AnyModel,
        objective: Objective,
        *,
        horizon: int = 8,
        step_size: float = 0.5,
        seed: int | None = None,
        start: np.ndarray | None = None,
        latent_bound: float = LATENT_BOUND,
        evaluator: Evaluator | None = None,
    ) -> None:
        super().__init__(objective, horizon=horizon, seed=seed, evaluator=evaluator)
        self.model = model
        self.latent_dim = int(model.config.latent_dim)
        self.step_size = check_float("step_size", step_size, low=0.0, low_inclusive=False)
        self.latent_bound = check_float("latent_bound", latent_bound, low=0.0, low_inclusive=False)
        if start is not None:
            start = np.asarray(start, dtype=np.float32)
            if start.shape != (self.latent_dim,) or not np.isfinite(start).all():
                raise ValueError(f"start must be a finite code of shape ({self.latent_dim},), got shape {start.shape}")
        self.start = start
        self.observation_space = spaces.Box(-self.latent_bound, self.latent_bound, (self.latent_dim,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (self.latent_dim,), np.float32)
        self.z = np.zeros(self.latent_dim, dtype=np.float32)

    def _clip(self, z: np.ndarray) -> np.ndarray:
        return np.clip(z, -self.latent_bound, self.latent_bound).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=self._seed_once(seed))
        self._t = 0
        start = (options or {}).get("start", self.start)
        if start is None:
            start = prior_codes(self.model, 1, seed=int(self.np_random.integers(2**62)))[0]
        self.z = self._clip(np.asarray(start, dtype=np.float32))
        return self.z.copy(), {"step": 0, "n_oracle_calls": self.evaluator.n_oracle_calls}

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
        self.z = self._clip(self.z + self.step_size * action)
        done, info = self._advance()
        reward = self._finish(decode_codes(self.model, self.z[None])[0], info) if done else 0.0
        return self.z.copy(), reward, done, False, info


class ElementDesignEnv(_FinalScoreEnv):
    """Design by adding and removing elements (see the module docstring)."""

    ADD, REMOVE = 0, 1

    def __init__(
        self,
        objective: Objective,
        *,
        horizon: int = 6,
        max_count: int = 8,
        max_elements: int = 5,
        seed: int | None = None,
        evaluator: Evaluator | None = None,
    ) -> None:
        super().__init__(objective, horizon=horizon, seed=seed, evaluator=evaluator)
        self.max_count = check_int("max_count", max_count, minimum=1)
        self.max_elements = check_int("max_elements", max_elements, minimum=1, maximum=N_ELEMENTS)
        self.observation_space = spaces.Box(0.0, float(self.max_count), (N_ELEMENTS,), np.float32)
        self.action_space = spaces.MultiDiscrete([2, N_ELEMENTS, self.max_count])
        self.counts = np.zeros(N_ELEMENTS, dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=self._seed_once(seed))
        self._t = 0
        self.counts = np.zeros(N_ELEMENTS, dtype=np.int64)
        return self.counts.astype(np.float32), {"step": 0, "n_oracle_calls": self.evaluator.n_oracle_calls}

    def step(self, action):
        operation, element, count = (int(a) for a in np.asarray(action).reshape(3))
        if operation == self.REMOVE:
            self.counts[element] = 0
        elif self.counts[element] > 0 or (self.counts > 0).sum() < self.max_elements:
            self.counts[element] = count + 1
        done, info = self._advance()
        if done:
            formula = reduced_formula(self.counts) if self.counts.any() else None
            reward = self._finish(formula, info)
        else:
            reward = 0.0
        return self.counts.astype(np.float32), reward, done, False, info
