"""A campaign: several methods and seeds on one objective, read at several budgets of oracle calls."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from matvae.design.methods import METHODS, run_method
from matvae.design.objectives import Objective, make_objective
from matvae.design.result import DesignResult
from matvae.models import AnyModel
from matvae.params import check_int_list, check_seed
from matvae.runner import Job, Resources, resources_for, run_jobs


def check_methods(methods: Sequence[str] | str) -> tuple[str, ...]:
    """Method names, as a list or a comma-separated string, each one of :data:`METHODS`."""
    names = [m for m in methods.replace(" ", "").split(",") if m] if isinstance(methods, str) else list(methods)
    if not names:
        raise ValueError(f"methods must name at least one of {tuple(METHODS)}, got {methods!r}")
    for name in names:
        if name not in METHODS:
            raise ValueError(f"method must be one of {tuple(METHODS)}, got {name!r}")
    return tuple(names)


def run_one(*, objective: Objective, model: AnyModel | None, train_counts: np.ndarray | None, method: str, seed: int,
            budgets: tuple[int, ...], progress: bool | None, options: dict) -> tuple[pd.DataFrame, DesignResult]:
    """One job of :func:`run_campaign`: ``method`` with ``seed`` on the largest budget, read at every budget."""
    result = run_method(method, objective, budget=max(budgets), seed=seed, model=model, train_counts=train_counts,
                        progress=progress, **options)
    return result.curve(budgets), result


def run_campaign(
    methods: Sequence[str] | str,
    objective: Objective | str,
    budgets: Sequence[int] | str,
    seeds: Sequence[int] | str,
    *,
    model: AnyModel | None = None,
    train_counts: np.ndarray | None = None,
    progress: bool | None = None,
    results: list[DesignResult] | None = None,
    backend: str = "local",
    storage: str | None = None,
    resources: Resources | None = None,
    **options,
) -> pd.DataFrame:
    """Success rate against oracle calls: one row per method x seed x budget checkpoint.

    Each method and seed runs once, with the largest budget; the smaller budgets are read from its proposals
    (:meth:`DesignResult.curve`, exact because no method behaves differently before its budget runs out).
    Columns: method, seed, budget, the numbers of :func:`matvae.design.result.summarise` (``success_rate``,
    ``hits_per_call``, ``n_oracle_calls``, ...), ``wall_seconds`` (when the checkpoint was reached) and
    ``budget_reached`` (False where the proposal cap ended the run first). Pass a list as ``results`` to get
    the :class:`DesignResult` of every run too. ``options`` go to :func:`run_method`.

    Each method x seed is one job of :func:`matvae.runner.run_jobs` on ``backend`` (``"local"``: one after another
    here; ``"ray"``: Ray tasks asking ``resources``, by default :func:`~matvae.runner.default_resources`),
    ``storage`` holding their attempt logs. A run has no checkpoint: a job whose worker dies is run again from its
    start (it is minutes, not hours).
    """
    methods = check_methods(methods)
    objective = make_objective(objective) if isinstance(objective, str) else objective
    budgets = check_int_list("budgets", budgets, minimum=1)
    seeds = tuple(check_seed(f"seeds[{i}]", s) for i, s in enumerate(check_int_list("seeds", seeds, minimum=0)))
    resources = resources_for(backend, resources)
    jobs = [
        Job(f"{method}-seed{seed}", run_one,
            {"method": method, "seed": seed, "budgets": budgets, "progress": progress if backend == "local" else False,
             "options": options}, resources)
        for method in methods
        for seed in seeds
    ]
    shared = {"objective": objective, "model": model, "train_counts": train_counts}
    done = run_jobs(jobs, backend=backend, storage=storage, shared=shared, desc=f"{objective.name} runs",
                    show_progress=progress)
    if results is not None:
        results.extend(outcome.value[1] for outcome in done)
    return pd.concat([outcome.value[0] for outcome in done], ignore_index=True)
