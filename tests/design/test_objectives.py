from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from matvae.design.objectives import (
    OBJECTIVES,
    PENALTIES,
    PROPOSALS_PER_CALL,
    SCORE_FLOOR,
    BudgetExhausted,
    Evaluator,
    MinimiseEnergyAboveHull,
    Objective,
    OracleError,
    TargetFormationEnergy,
    make_objective,
)

# LiF, Li3N, Na2S: SMACT-valid and novel to the fake oracle; NaCl2: invalid; NaCl, Li2O: known
VALID_NOVEL = ["LiF", "Li3N", "Na2S"]


def test_registry_and_unknown_names():
    assert set(OBJECTIVES) == {"target-energy", "stability"}
    assert make_objective("target-energy", target=-1.5) == TargetFormationEnergy(target=-1.5)
    with pytest.raises(ValueError, match=r"objective must be one of \('target-energy', 'stability'\), got 'hardness'"):
        make_objective("hardness")
    with pytest.raises(ValueError, match=r"'stability' takes the settings \('threshold',\), got \['target'\]"):
        make_objective("stability", target=-1.0)
    with pytest.raises(ValueError, match="tolerance must lie in"):
        TargetFormationEnergy(tolerance=0.0)


def test_scores_and_penalties_of_each_kind_of_proposal(fake):
    objective = TargetFormationEnergy(target=-1.0, tolerance=0.05, oracle=fake.predict)
    evaluator = Evaluator(objective)
    scores, records = evaluator.score([None, "NaCl2", "NaCl", "LiF"])
    assert [r.status for r in records] == ["undecodable", "invalid", "known", "scored"]
    assert scores[:3].tolist() == [PENALTIES["undecodable"], PENALTIES["invalid"], PENALTIES["known"]]
    energy = fake.energy("LiF")  # (-0.5 - 2.5) / 2 = -1.5
    assert scores[3] == pytest.approx(-abs(energy + 1.0)) and not records[3].meets
    assert records[3].properties["formation_energy_per_atom"] == pytest.approx(energy)
    assert max(PENALTIES.values()) < SCORE_FLOOR  # every penalty ranks below every novel, valid material
    near = TargetFormationEnergy(target=-1.45, tolerance=0.1, oracle=fake.predict)
    assert Evaluator(near).score_one("LiF").meets


def test_stability_objective_and_score_floor(fake):
    evaluator = Evaluator(MinimiseEnergyAboveHull(oracle=fake.predict))
    record = evaluator.score_one("LiF")  # e_above_hull = max(0, -1.5 + 1.2) = 0
    assert record.score == 0.0 and record.meets
    far = Evaluator(TargetFormationEnergy(target=9.0, oracle=fake.predict)).score_one("LiF")
    assert far.score == SCORE_FLOOR


def test_oracle_calls_count_distinct_valid_formulas(fake):
    evaluator = Evaluator(MinimiseEnergyAboveHull(oracle=fake.predict))
    evaluator.score(["LiF", "LiF", None, "NaCl2", "NaCl"])
    evaluator.score(["LiF", "NaCl", "Li3N", "NaCl2"])
    assert evaluator.n_oracle_calls == len(fake.CALLS) == 3  # LiF, NaCl, Li3N: repeats and invalid are free
    assert sorted(fake.CALLS) == ["Li3N", "LiF", "NaCl"]
    assert evaluator.n_proposals == 9
    assert [r.first for r in evaluator.records] == [True, False, True, True, True, False, False, True, False]
    assert [r.n_oracle_calls for r in evaluator.records] == [1, 1, 1, 1, 2, 2, 2, 3, 3]
    assert sum(r.called for r in evaluator.records) == 3


def test_budget_stops_at_the_last_call_and_caps_free_proposals(fake):
    evaluator = Evaluator(MinimiseEnergyAboveHull(oracle=fake.predict), budget=2)
    scores, records = evaluator.score(["LiF", "NaCl2", "LiF", "Li3N", "Na2S", "LiF"])
    assert [r.formula for r in records] == ["LiF", "NaCl2", "LiF", "Li3N"] and len(scores) == 4
    assert evaluator.exhausted and fake.CALLS == ["LiF", "Li3N"]
    with pytest.raises(BudgetExhausted, match="budget of 2 oracle calls"):
        evaluator.score_one("Na2S")
    capped = Evaluator(MinimiseEnergyAboveHull(oracle=fake.predict), budget=1)
    capped.score([None] * (PROPOSALS_PER_CALL + 5))
    assert capped.n_proposals == PROPOSALS_PER_CALL and capped.exhausted and capped.n_oracle_calls == 0


def test_oracle_errors_stop_the_run_and_nan_scores_the_floor(fake):
    def broken(formulas):
        raise ValueError("energy-net file not found")

    with pytest.raises(ValueError, match="energy-net file not found"):
        Evaluator(MinimiseEnergyAboveHull(oracle=broken)).score(VALID_NOVEL)

    def unsure(formulas):
        return fake.predict(formulas).assign(e_above_hull=np.nan)

    scores, records = Evaluator(MinimiseEnergyAboveHull(oracle=unsure)).score(VALID_NOVEL)
    assert scores.tolist() == [SCORE_FLOOR] * 3 and not any(r.meets for r in records)


def test_an_oracle_without_the_columns_is_refused():
    objective = MinimiseEnergyAboveHull(oracle=lambda formulas: pd.DataFrame({"formula": formulas}))
    with pytest.raises(OracleError, match="missing"):
        Evaluator(objective).score(["LiF"])


def test_a_researchers_own_objective(fake):
    @dataclass(frozen=True)
    class FewAtoms(Objective):
        name: ClassVar[str] = "few-atoms"
        most: int = 3

        def score_properties(self, properties):
            from pymatgen.core import Composition

            atoms = np.array([Composition(f).num_atoms for f in properties["formula"]])
            return -atoms, atoms <= self.most

    evaluator = Evaluator(FewAtoms(oracle=fake.predict))
    scores, records = evaluator.score(["LiF", "Li3N"])
    assert scores.tolist() == [-2.0, -4.0] and [r.meets for r in records] == [True, False]
    assert FewAtoms().settings() == {"most": 3}
