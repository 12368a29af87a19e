"""What a design run proposed, and the numbers it is judged by.

Counting (the same for every method):

- **oracle calls**: distinct SMACT-valid formulas sent to the oracle (a repeat costs nothing); the budget;
- **proposals**: every material a method put forward, repeats, invalid and undecodable ones included;
- **successes**: distinct formulas that are SMACT-valid, novel and meet the objective;
- ``success_rate`` = successes / proposals (the share of proposed materials that are valid, novel, unique and
  meet the objective); ``hits_per_call`` = successes / oracle calls.

``n_valid``, ``n_novel`` and ``n_predicted_stable`` count distinct formulas: SMACT-valid; valid and novel;
valid, novel and e_above_hull <= :data:`~matvae.design.objectives.STABILITY_THRESHOLD`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matvae.design.objectives import PROPOSALS_PER_CALL, STABILITY_THRESHOLD, DesignRecord


def records_until(records: Sequence[DesignRecord], n_calls: int) -> list[DesignRecord]:
    """The proposals a run with a budget of ``n_calls`` would have made: the prefix that ends with the
    ``n_calls``-th oracle call (or at ``PROPOSALS_PER_CALL * n_calls`` proposals, whichever comes first).
    Exact for every method here, as none behaves differently before its budget runs out."""
    prefix = []
    for record in records[: PROPOSALS_PER_CALL * n_calls]:
        if record.n_oracle_calls > n_calls:
            break
        prefix.append(record)
        if record.called and record.n_oracle_calls == n_calls:
            break
    return prefix


def summarise(records: Sequence[DesignRecord]) -> dict:
    """The run's numbers (see the module docstring) from its proposals in order."""
    first = [r for r in records if r.first and r.formula is not None]
    successes = [r for r in first if r.meets]
    n_calls = records[-1].n_oracle_calls if records else 0
    scores = [r.score for r in records]
    best = max(records, key=lambda r: r.score) if records else None

    def stable(r: DesignRecord) -> bool:
        return r.status == "scored" and float(r.properties["e_above_hull"]) <= STABILITY_THRESHOLD

    return {
        "n_proposals": len(records),
        "n_oracle_calls": n_calls,
        "n_unique": len(first),
        "n_undecodable": sum(r.formula is None for r in records),
        "n_valid": sum(r.valid for r in first),
        "n_novel": sum(r.status == "scored" for r in first),
        "n_predicted_stable": sum(stable(r) for r in first),
        "n_success": len(successes),
        "success_rate": len(successes) / len(records) if records else 0.0,
        "hits_per_call": len(successes) / n_calls if n_calls else 0.0,
        "best_score": float(max(scores)) if scores else None,
        "best_formula": best.formula if best else None,
        "mean_score": float(np.mean(scores)) if scores else None,
    }


@dataclass(frozen=True)
class DesignResult:
    """One run of one method: its settings, every proposal in order, and its wall time."""

    method: str
    objective: str
    objective_settings: dict
    seed: int
    budget: int  # oracle calls allowed
    model: str | None  # model family searched ("sequence", "paper"), None for methods without a model
    records: tuple[DesignRecord, ...]
    wall_seconds: float

    @property
    def n_oracle_calls(self) -> int:
        return self.records[-1].n_oracle_calls if self.records else 0

    def summary(self) -> dict:
        """Settings, :func:`summarise`'s numbers, wall time and the distinct proposed formulas with scores."""
        formulas = [
            {
                "formula": r.formula,
                "score": r.score,
                "status": r.status,
                "meets": r.meets,
                "formation_energy_per_atom": r.properties.get("formation_energy_per_atom"),
                "e_above_hull": r.properties.get("e_above_hull"),
            }
            for r in self.records
            if r.first and r.formula is not None
        ]
        return {
            "method": self.method,
            "objective": self.objective,
            "objective_settings": dict(self.objective_settings),
            "seed": self.seed,
            "budget": self.budget,
            "model": self.model,
            **summarise(self.records),
            "wall_seconds": self.wall_seconds,
            "formulas": formulas,
        }

    def curve(self, budgets: Sequence[int]) -> pd.DataFrame:
        """One row per budget checkpoint: the numbers of :func:`summarise` over :func:`records_until` it, and
        the wall time at that point."""
        rows = []
        for budget in sorted(set(budgets)):
            prefix = records_until(self.records, budget)
            numbers = summarise(prefix)
            seconds = prefix[-1].seconds if prefix else 0.0
            rows.append(
                {"method": self.method, "seed": self.seed, "budget": budget, **numbers, "wall_seconds": seconds,
                 "budget_reached": numbers["n_oracle_calls"] >= budget}
            )
        return pd.DataFrame(rows)
