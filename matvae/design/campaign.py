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


def check_methods(methods: Sequence[str] | str) -> tuple[str, ...]:
    """Method names, as a list or a comma-separated string, each one of :data:`METHODS`."""
    names = [m for m in methods.replace(" ", "").split(",") if m] if isinstance(methods, str) else list(methods)
    if not names:
        raise ValueError(f"methods must name at least one of {tuple(METHODS)}, got {methods!r}")
    for name in names:
        if name not in METHODS:
            raise ValueError(f"method must be one of {tuple(METHODS)}, got {name!r}")
    return tuple(names)


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
    **options,
) -> pd.DataFrame:
    """Success rate against oracle calls: one row per method x seed x budget checkpoint.

    Each method and seed runs once, with the largest budget; the smaller budgets are read from its proposals
    (:meth:`DesignResult.curve`, exact because no method behaves differently before its budget runs out).
    Columns: method, seed, budget, the numbers of :func:`matvae.design.result.summarise` (``success_rate``,
    ``hits_per_call``, ``n_oracle_calls``, ...), ``wall_seconds`` (when the checkpoint was reached) and
    ``budget_reached`` (False where the proposal cap ended the run first). Pass a list as ``results`` to get
    the :class:`DesignResult` of every run too. ``options`` go to :func:`run_method`.
    """
    methods = check_methods(methods)
    objective = make_objective(objective) if isinstance(objective, str) else objective
    budgets = check_int_list("budgets", budgets, minimum=1)
    seeds = tuple(check_seed(f"seeds[{i}]", s) for i, s in enumerate(check_int_list("seeds", seeds, minimum=0)))
    frames = []
    for method in methods:
        for seed in seeds:
            result = run_method(
                method, objective, budget=max(budgets), seed=seed, model=model, train_counts=train_counts,
                progress=progress, **options,
            )
            if results is not None:
                results.append(result)
            frames.append(result.curve(budgets))
    return pd.concat(frames, ignore_index=True)
