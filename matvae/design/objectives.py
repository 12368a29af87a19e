"""Design objectives, and the ledger that scores proposals with an oracle on a budget.

An *oracle* is any callable ``list[str] -> pandas.DataFrame`` with one row per formula, in input order, and
the columns of :data:`ORACLE_COLUMNS` (``formation_energy_per_atom`` and ``e_above_hull`` in eV/atom,
``novel``: the reduced formula is not in the snapshot); :func:`matvae.properties.oracle.predict_properties`
is the default, imported only when a score is first needed. Tests and researchers inject their own.

An :class:`Objective` says what is wanted (a frozen dataclass of settings): :meth:`Objective.score_properties`
turns the oracle's properties into scores (higher is better) and whether each material meets the goal. An
:class:`Evaluator` applies it to proposals, in order:

1. ``None`` (no formula decoded) scores :data:`PENALTIES` ``["undecodable"]``;
2. a formula that fails SMACT (:data:`VALIDITY_CHECK`) scores ``PENALTIES["invalid"]``, without asking the oracle;
   the formulas that pass are reduced formulas over matvae's 89 elements, which the oracle must score (its
   errors stop the run; an oracle that cannot place a material may return NaN, scored :data:`SCORE_FLOOR`);
3. every other distinct formula is sent to the oracle once (**one oracle call = one distinct formula**; a
   repeat is answered from the cache and costs nothing); a known (not novel) material scores
   ``PENALTIES["known"]``; a novel one its objective score, floored at :data:`SCORE_FLOOR` so that every
   penalty ranks below every novel, valid material.

A budget of N stops the ledger after the N-th oracle call; free proposals (repeats, invalid, undecodable)
are capped at :data:`PROPOSALS_PER_CALL` x N so that a method that never spends its budget still ends.

Your own objective: subclass :class:`Objective` (a frozen dataclass), give it a ``name`` and implement
``score_properties``; pass an instance wherever an objective goes, or add its class to :data:`OBJECTIVES`::

    @dataclass(frozen=True)
    class LowEnergy(Objective):
        name: ClassVar[str] = "low-energy"
        cutoff: float = -2.0

        def score_properties(self, properties):
            energy = properties["formation_energy_per_atom"].to_numpy(float)
            return -energy, energy <= self.cutoff
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import ClassVar

import numpy as np
import pandas as pd

from matvae.params import check_float, check_int, show
from matvae.properties.oracle import STABILITY_THRESHOLD

Oracle = Callable[[list[str]], pd.DataFrame]
ORACLE_COLUMNS: tuple[str, ...] = ("formula", "formation_energy_per_atom", "e_above_hull", "decomposes_to", "novel")

VALIDITY_CHECK: str = "smact (ICSD24)"
"""The column of :func:`matvae.validity.validity` a proposal must pass."""
SCORE_FLOOR: float = -4.0
"""Lowest score of a valid, novel material (objective scores below it are raised to it)."""
PENALTIES: dict[str, float] = {"known": -5.0, "invalid": -6.0, "undecodable": -7.0}
"""Fixed scores of proposals that cannot count: a known material, a SMACT-invalid formula, no formula at all. Ordered so that a searcher is pushed towards decodable, valid, novel."""
PROPOSALS_PER_CALL: int = 20
"""A run with a budget of N oracle calls stops after at most this many x N proposals."""


class OracleError(RuntimeError):
    """The oracle broke its contract: not one row per formula, or columns missing."""


def default_oracle(formulas: list[str]) -> pd.DataFrame:
    """:func:`matvae.properties.oracle.predict_properties`, imported on first use."""
    from matvae.properties.oracle import predict_properties

    return predict_properties(formulas)


@dataclass(frozen=True)
class Objective:
    """What a design run wants; subclasses set ``name`` and implement :meth:`score_properties`.

    ``oracle`` (keyword only): the property oracle, default :func:`default_oracle`.
    """

    name: ClassVar[str] = "objective"
    oracle: Oracle | None = field(default=None, kw_only=True, compare=False, repr=False)

    def score_properties(self, properties: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Oracle rows (n) of novel, valid materials -> (scores (n,) float, higher is better; meets (n,) bool)."""
        raise NotImplementedError(f"{type(self).__name__} must implement score_properties")

    def ask_oracle(self, formulas: list[str]) -> pd.DataFrame:
        """The oracle's properties of ``formulas``, checked: one row per formula with :data:`ORACLE_COLUMNS`
        (:class:`OracleError` otherwise; the oracle's own ``ValueError`` for a bad formula passes through)."""
        oracle = self.oracle or default_oracle
        frame = oracle(list(formulas))
        missing = [c for c in ORACLE_COLUMNS if c not in frame.columns]
        if missing or len(frame) != len(formulas):
            raise OracleError(
                f"the oracle must return one row per formula with columns {ORACLE_COLUMNS}: "
                f"{len(formulas)=}, got {len(frame)} rows, missing {missing}"
            )
        return frame.reset_index(drop=True)

    def settings(self) -> dict:
        """The objective's settings (its dataclass fields but the oracle)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "oracle"}


@dataclass(frozen=True)
class TargetFormationEnergy(Objective):
    """Formation energy near ``target`` (eV/atom): score -|E - target|, met within ``tolerance``."""

    name: ClassVar[str] = "target-energy"
    target: float = -1.0  # eV/atom
    tolerance: float = 0.1  # eV/atom

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", check_float("target", self.target, low=-10.0, high=10.0))
        object.__setattr__(self, "tolerance", check_float("tolerance", self.tolerance, low=0.0, low_inclusive=False))

    def score_properties(self, properties: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        distance = np.abs(properties["formation_energy_per_atom"].to_numpy(float) - self.target)
        return -distance, distance <= self.tolerance


@dataclass(frozen=True)
class MinimiseEnergyAboveHull(Objective):
    """(Predicted) stability: score -e_above_hull, met at e_above_hull <= ``threshold`` (eV/atom)."""

    name: ClassVar[str] = "stability"
    threshold: float = STABILITY_THRESHOLD  # eV/atom

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", check_float("threshold", self.threshold, low=0.0))

    def score_properties(self, properties: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        above = properties["e_above_hull"].to_numpy(float)
        return -above, above <= self.threshold


OBJECTIVES: dict[str, type[Objective]] = {cls.name: cls for cls in (TargetFormationEnergy, MinimiseEnergyAboveHull)}
"""Objective name -> class (add yours here to reach it by name, e.g. from the command line)."""


def make_objective(name: str, *, oracle: Oracle | None = None, **settings) -> Objective:
    """The objective ``name`` of :data:`OBJECTIVES` with ``settings`` (e.g. ``target=-1.0``)."""
    if name not in OBJECTIVES:
        raise ValueError(f"objective must be one of {tuple(OBJECTIVES)}, got {name!r}")
    cls = OBJECTIVES[name]
    allowed = tuple(f.name for f in fields(cls) if f.name != "oracle")
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ValueError(f"objective {name!r} takes the settings {allowed}, got {unknown}")
    return cls(oracle=oracle, **settings)


@dataclass(frozen=True)
class DesignRecord:
    """One proposal and its verdict."""

    formula: str | None  # reduced formula; None: nothing decoded
    score: float  # the objective score, or a penalty (higher is better)
    status: str  # "scored" (novel and valid), "known", "invalid", "undecodable"
    valid: bool  # passes SMACT
    novel: bool | None  # not in the snapshot (None: the oracle was not asked)
    meets: bool  # novel, valid and meets the objective
    first: bool  # first time this formula was proposed in the run
    called: bool  # this proposal cost an oracle call (first proposal of a valid formula)
    n_oracle_calls: int  # oracle calls of the run once this proposal was scored
    seconds: float = 0.0  # since the evaluator was made, once this proposal was scored
    properties: dict = field(default_factory=dict)  # the oracle's row (empty if it was not asked)


class BudgetExhausted(RuntimeError):
    """Raised by :meth:`Evaluator.score_one` when a proposal would need an oracle call beyond the budget."""


class Evaluator:
    """Scores proposals with an objective (see the module docstring), caching and counting oracle calls.

    ``budget``: the most oracle calls (distinct valid formulas sent to the oracle), None for no limit; the
    proposals are then capped at ``PROPOSALS_PER_CALL * budget``. ``records`` lists every proposal in order.
    """

    def __init__(self, objective: Objective, *, budget: int | None = None) -> None:
        if not isinstance(objective, Objective):
            raise TypeError(f"objective must be a matvae.design.Objective, got {type(objective).__name__}")
        self.objective = objective
        self.budget = None if budget is None else check_int("budget", budget, minimum=1)
        self.max_proposals = None if budget is None else PROPOSALS_PER_CALL * self.budget
        self.records: list[DesignRecord] = []
        self.n_oracle_calls = 0
        self._cache: dict[str, DesignRecord] = {}  # formula -> its first record
        self._valid: dict[str, bool] = {}
        self._started = time.perf_counter()

    @property
    def n_proposals(self) -> int:
        return len(self.records)

    @property
    def exhausted(self) -> bool:
        """The budget of oracle calls, or the cap on proposals, is used up."""
        return self.budget is not None and (
            self.n_oracle_calls >= self.budget or self.n_proposals >= self.max_proposals
        )

    def _check_validity(self, formulas: Sequence[str]) -> None:
        from matvae.validity import validity

        new = sorted({f for f in formulas if f not in self._valid})
        if new:
            self._valid.update(zip(new, validity(new, n_processes=1)[VALIDITY_CHECK].tolist()))

    def _ask(self, formulas: list[str]) -> dict[str, dict]:
        """The oracle's row of each formula (its errors propagate: a broken oracle stops the run)."""
        return dict(zip(formulas, self.objective.ask_oracle(formulas).to_dict("records")))

    def score(self, formulas: Sequence[str | None]) -> tuple[np.ndarray, list[DesignRecord]]:
        """Score proposals in order: (scores (m,), records (m,)). With a budget, m < len(formulas) when the
        budget or the proposal cap runs out part-way (the rest are not scored)."""
        formulas = list(formulas)
        for formula in formulas:
            if formula is not None and not isinstance(formula, str):
                raise ValueError(f"proposals must be formulas (str) or None, got {show(formula)}")
        self._check_validity([f for f in formulas if f is not None and f not in self._cache])
        # which proposals fit: walk in order, counting new oracle calls and proposals
        calls, to_ask, n_fit = self.n_oracle_calls, [], 0
        for formula in formulas:
            if self.budget is not None and (calls >= self.budget or self.n_proposals + n_fit >= self.max_proposals):
                break  # a run ends with its last oracle call, or at the proposal cap
            if formula is not None and formula not in self._cache and self._valid[formula] and formula not in to_ask:
                calls += 1
                to_ask.append(formula)
            n_fit += 1
        rows = self._ask(to_ask) if to_ask else {}
        verdicts = self._objective_scores(rows)
        new_records = []
        for formula in formulas[:n_fit]:
            if formula in self._cache:
                first = self._cache[formula]
                record = replace(first, first=False, called=False, n_oracle_calls=self.n_oracle_calls, seconds=self._elapsed())
            else:
                called = formula in rows
                self.n_oracle_calls += called
                record = self._judge(formula, rows.get(formula), verdicts.get(formula), called)
                if formula is not None:
                    self._cache[formula] = record
            self.records.append(record)
            new_records.append(record)
        return np.array([r.score for r in new_records], dtype=float), new_records

    def score_one(self, formula: str | None) -> DesignRecord:
        """One proposal's record; :class:`BudgetExhausted` if it does not fit the budget."""
        _, records = self.score([formula])
        if not records:
            raise BudgetExhausted(f"the budget of {self.budget} oracle calls ({self.max_proposals} proposals) is spent")
        return records[0]

    def _objective_scores(self, rows: dict[str, dict | None]) -> dict[str, tuple[float, bool]]:
        """(score, meets) of the novel materials among the oracle's rows, in one call of the objective."""
        novel = [f for f, row in rows.items() if row is not None and bool(row["novel"])]
        if not novel:
            return {}
        scores, meets = self.objective.score_properties(pd.DataFrame([rows[f] for f in novel]))
        scores, meets = np.asarray(scores, dtype=float), np.asarray(meets, dtype=bool)
        if scores.shape != (len(novel),) or meets.shape != (len(novel),):
            raise ValueError(
                f"{type(self.objective).__name__}.score_properties must return (scores, meets) of shape "
                f"({len(novel)},), got {scores.shape} and {meets.shape}"
            )
        scores = np.where(np.isfinite(scores), np.maximum(scores, SCORE_FLOOR), SCORE_FLOOR)
        return {f: (float(s), bool(m)) for f, s, m in zip(novel, scores, meets)}

    def _elapsed(self) -> float:
        return time.perf_counter() - self._started

    def _judge(self, formula: str | None, row: dict | None, verdict: tuple[float, bool] | None, called: bool) -> DesignRecord:
        """The record of a formula's first proposal (``row``: the oracle's, None when it was not asked)."""
        common = {
            "formula": formula, "first": True, "called": called, "n_oracle_calls": self.n_oracle_calls, "seconds": self._elapsed()
        }
        if formula is None:
            return DesignRecord(score=PENALTIES["undecodable"], status="undecodable", valid=False, novel=None, meets=False, **common)
        if not self._valid[formula]:
            return DesignRecord(score=PENALTIES["invalid"], status="invalid", valid=False, novel=None, meets=False, **common)
        if not bool(row["novel"]):
            return DesignRecord(
                score=PENALTIES["known"], status="known", valid=True, novel=False, meets=False, properties=row, **common
            )
        score, meets = verdict
        return DesignRecord(score=score, status="scored", valid=True, novel=True, meets=meets, properties=row, **common)
