"""Inverse-design methods, each run on a budget of oracle calls with a seed (:func:`run_method`).

==================  ====================================================================================
``random-latent``   batches of :func:`matvae.sample` (the model's prior and its own decoding)
``cmaes-latent``    CMA-ES (the ``cma`` package) over latent codes, fitness = -score of the decoded
                    formula; restarted from a new prior draw when it converges
``rl-latent``       PPO (stable-baselines3) in :class:`~matvae.design.envs.LatentDesignEnv`
``rl-element``      PPO in :class:`~matvae.design.envs.ElementDesignEnv` (no model)
``marginal``        :class:`matvae.baselines.MarginalSampler` fitted to the training split's counts (no model)
==================  ====================================================================================

Budgets count oracle calls as :mod:`matvae.design.objectives` does: one call per distinct SMACT-valid formula
(repeats, invalid and undecodable proposals are free, up to ``PROPOSALS_PER_CALL`` x budget proposals). Every
method stops when its :class:`~matvae.design.objectives.Evaluator` is exhausted, and none behaves differently
before that, so a run with budget N also tells what any budget below N would have given
(:meth:`DesignResult.curve`). Each method is deterministic given its seed (PPO: on CPU, one thread).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable

import numpy as np

from matvae.design.envs import LATENT_BOUND, ElementDesignEnv, LatentDesignEnv, prior_codes
from matvae.design.objectives import Evaluator, Objective, make_objective
from matvae.design.result import DesignResult
from matvae.models import AnyModel, family_of, is_model
from matvae.params import check_int, check_seed
from matvae.progress import progress_bar

BATCH_SIZE: int = 50
"""Proposals per batch of the sampling methods."""
PPO_SETTINGS: dict = {"n_steps": 256, "batch_size": 64, "n_epochs": 4, "learning_rate": 3e-4, "gamma": 1.0, "ent_coef": 0.01}
"""PPO's settings in both environments (gamma 1: the only reward comes at the fixed horizon)."""
LATENT_ENV_SETTINGS: dict = {"horizon": 8, "step_size": 0.5}
ELEMENT_ENV_SETTINGS: dict = {"horizon": 6, "max_count": 8, "max_elements": 5}
CMAES_SETTINGS: dict = {"sigma0": 0.5}  # popsize: cma's default 4 + 3 ln(latent_dim)


def _batch_seed(seed: int, batch: int, stream: int = 0) -> int:
    """A seed in [0, 2**63) for batch ``batch`` of random stream ``stream`` of a run seeded ``seed``."""
    return int(np.random.SeedSequence([seed, stream, batch]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _run_batches(evaluator: Evaluator, propose: Callable[[int], list[str | None]], bar) -> None:
    for batch in itertools.count():
        if evaluator.exhausted:
            return
        evaluator.score(propose(batch))
        bar.update(evaluator.n_oracle_calls - bar.n)


def random_latent(evaluator: Evaluator, *, model: AnyModel, seed: int, bar, batch_size: int = BATCH_SIZE, **_) -> None:
    from matvae.sampling import sample

    _run_batches(evaluator, lambda b: sample(model, batch_size, seed=_batch_seed(seed, b)).formulas, bar)


def marginal(evaluator: Evaluator, *, train_counts: np.ndarray, seed: int, bar, batch_size: int = BATCH_SIZE, **_) -> None:
    from matvae.baselines import MarginalSampler

    sampler = MarginalSampler.fit(train_counts)
    _run_batches(evaluator, lambda b: sampler.sample(batch_size, seed=_batch_seed(seed, b))[1], bar)


def cmaes_latent(evaluator: Evaluator, *, model: AnyModel, seed: int, bar, sigma0: float = CMAES_SETTINGS["sigma0"], **_) -> None:
    import cma

    from matvae.sampling import decode_codes

    saved = np.random.get_state()  # cma draws from numpy's global generator, which it seeds
    try:
        for restart in itertools.count():
            x0 = prior_codes(model, 1, seed=_batch_seed(seed, restart))[0].astype(float)
            options = {"seed": 1 + _batch_seed(seed, restart, stream=1) % (2**31 - 2), "verbose": -9,
                       "bounds": [-LATENT_BOUND, LATENT_BOUND]}
            es = cma.CMAEvolutionStrategy(x0, sigma0, options)
            while not es.stop():
                if evaluator.exhausted:
                    return
                codes = np.asarray(es.ask())
                scores, records = evaluator.score(decode_codes(model, codes))
                bar.update(evaluator.n_oracle_calls - bar.n)
                if len(records) < len(codes):
                    return
                es.tell(list(codes), list(-scores))
    finally:
        np.random.set_state(saved)


def _ppo(env, evaluator: Evaluator, seed: int, bar, settings: dict) -> None:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    class StopAtBudget(BaseCallback):
        def _on_step(self) -> bool:
            bar.update(evaluator.n_oracle_calls - bar.n)
            return not evaluator.exhausted

    settings = {**PPO_SETTINGS, **settings}
    saved = random.getstate(), np.random.get_state()  # PPO seeds Python's, numpy's and torch's global generators
    try:
        with torch.random.fork_rng(devices=[]):
            agent = PPO("MlpPolicy", env, seed=seed % 2**32, device="cpu", verbose=0, **settings)
            steps = evaluator.max_proposals * env.horizon + settings["n_steps"] if evaluator.max_proposals else 10**9
            agent.learn(total_timesteps=steps, callback=StopAtBudget())
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])


def rl_latent(evaluator: Evaluator, *, model: AnyModel, seed: int, bar, ppo: dict | None = None, env: dict | None = None, **_) -> None:
    environment = LatentDesignEnv(model, evaluator.objective, seed=seed, evaluator=evaluator, **{**LATENT_ENV_SETTINGS, **(env or {})})
    _ppo(environment, evaluator, seed, bar, ppo or {})


def rl_element(evaluator: Evaluator, *, seed: int, bar, ppo: dict | None = None, env: dict | None = None, **_) -> None:
    environment = ElementDesignEnv(evaluator.objective, seed=seed, evaluator=evaluator, **{**ELEMENT_ENV_SETTINGS, **(env or {})})
    _ppo(environment, evaluator, seed, bar, ppo or {})


METHODS: dict[str, Callable] = {
    "random-latent": random_latent,
    "cmaes-latent": cmaes_latent,
    "rl-latent": rl_latent,
    "rl-element": rl_element,
    "marginal": marginal,
}
"""Method name -> function(evaluator, *, seed, bar, model, train_counts, **options) that proposes until the
evaluator is exhausted."""
NEEDS_MODEL: frozenset[str] = frozenset({"random-latent", "cmaes-latent", "rl-latent"})


def run_method(
    method: str,
    objective: Objective | str,
    *,
    budget: int,
    seed: int = 0,
    model: AnyModel | None = None,
    train_counts: np.ndarray | None = None,
    progress: bool | None = None,
    **options,
) -> DesignResult:
    """Run ``method`` (a name of :data:`METHODS`) on ``budget`` oracle calls; ``objective`` an
    :class:`Objective` or a name of :data:`~matvae.design.objectives.OBJECTIVES`.

    ``model``: the VAE the latent methods search (either family); ``train_counts`` (n, 89): the training
    split's reduced counts, for ``marginal``. ``options`` go to the method (``batch_size``, ``sigma0``,
    ``ppo={...}``, ``env={...}``).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {tuple(METHODS)}, got {method!r}")
    objective = make_objective(objective) if isinstance(objective, str) else objective
    budget = check_int("budget", budget, minimum=1)
    seed = check_seed("seed", seed)
    if method in NEEDS_MODEL and not is_model(model):
        raise ValueError(f"method {method!r} searches a model's latent space: pass model= (matvae.load_pretrained())")
    if method == "marginal" and train_counts is None:
        raise ValueError("method 'marginal' is fitted to the training split: pass train_counts= (n, 89) counts")
    evaluator = Evaluator(objective, budget=budget)
    started = time.perf_counter()
    with progress_bar(None, desc=f"{method} ({objective.name})", total=budget, enabled=progress, unit="call") as bar:
        METHODS[method](evaluator, model=model, train_counts=train_counts, seed=seed, bar=bar, **options)
    return DesignResult(
        method=method,
        objective=objective.name,
        objective_settings=objective.settings(),
        seed=seed,
        budget=budget,
        model=family_of(model) if method in NEEDS_MODEL else None,
        records=tuple(evaluator.records),
        wall_seconds=time.perf_counter() - started,
    )
