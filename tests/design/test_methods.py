import numpy as np
import pytest

from matvae.design.campaign import run_campaign
from matvae.design.methods import METHODS, run_method
from matvae.design.objectives import MinimiseEnergyAboveHull, make_objective
from matvae.design.result import records_until, summarise

FAST = {"ppo": {"n_steps": 32, "batch_size": 32, "n_epochs": 1}, "env": {"horizon": 2}, "batch_size": 10}


@pytest.fixture
def objective(fake):
    return MinimiseEnergyAboveHull(oracle=fake.predict)


@pytest.fixture(scope="module")
def train_counts(small_split):
    return small_split.train.counts


def formulas(result):
    return [(r.formula, r.score) for r in result.records]


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_spends_its_budget_deterministically(method, objective, fake, paper_model, train_counts):
    run = {"model": paper_model, "train_counts": train_counts, "progress": False, **FAST}
    result = run_method(method, objective, budget=25, seed=3, **run)
    assert result.n_oracle_calls == 25 == len(set(fake.CALLS)) == len(fake.CALLS)  # one call per distinct formula
    assert result.records[-1].called  # stops right at the last call
    assert result.model == ("paper" if method in ("random-latent", "cmaes-latent", "rl-latent") else None)
    summary = result.summary()
    assert summary["n_oracle_calls"] == 25 and summary["n_proposals"] == len(result.records)
    assert 0 <= summary["success_rate"] <= 1
    assert formulas(run_method(method, objective, budget=25, seed=3, **run)) == formulas(result)
    assert formulas(run_method(method, objective, budget=25, seed=4, **run)) != formulas(result)


@pytest.mark.parametrize("method", ["random-latent", "rl-latent"])
def test_latent_methods_search_the_sequence_model_too(method, objective, sequence_model):
    result = run_method(method, objective, budget=10, seed=0, model=sequence_model, progress=False, **FAST)
    assert result.n_oracle_calls == 10 and result.model == "sequence"


@pytest.mark.parametrize("method", ["cmaes-latent", "rl-element"])
def test_a_smaller_budget_is_a_prefix_of_a_larger_one(method, objective, paper_model):
    small = run_method(method, objective, budget=12, seed=1, model=paper_model, progress=False, **FAST)
    large = run_method(method, objective, budget=30, seed=1, model=paper_model, progress=False, **FAST)
    assert [r.formula for r in records_until(large.records, 12)] == [r.formula for r in small.records]


def test_summary_counts_distinct_formulas():
    from matvae.design.objectives import DesignRecord

    def record(formula, status, first, calls, meets=False, e=0.5):
        valid = status in ("scored", "known")
        properties = {"e_above_hull": e} if valid else {}
        return DesignRecord(formula, 0.0 if valid else -6.0, status, valid, status == "scored" if valid else None,
                            meets, first, first and valid, calls, properties=properties)

    records = [record("LiF", "scored", True, 1, meets=True, e=0.0), record("LiF", "scored", False, 1, meets=True, e=0.0),
               record(None, "undecodable", True, 1), record("NaCl2", "invalid", True, 1), record("NaCl", "known", True, 2)]
    numbers = summarise(records)
    assert numbers["n_proposals"] == 5 and numbers["n_oracle_calls"] == 2 and numbers["n_unique"] == 3
    assert (numbers["n_valid"], numbers["n_novel"], numbers["n_predicted_stable"], numbers["n_success"]) == (2, 1, 1, 1)
    assert numbers["success_rate"] == pytest.approx(1 / 5) and numbers["hits_per_call"] == pytest.approx(1 / 2)


def test_run_method_refuses_bad_arguments(objective, paper_model):
    with pytest.raises(ValueError, match=r"method must be one of \('random-latent', .*got 'genetic'"):
        run_method("genetic", objective, budget=5)
    with pytest.raises(ValueError, match="budget must be an integer >= 1"):
        run_method("rl-element", objective, budget=2.0)
    with pytest.raises(ValueError, match="pass model="):
        run_method("cmaes-latent", objective, budget=5)
    with pytest.raises(ValueError, match="pass train_counts="):
        run_method("marginal", objective, budget=5)


def test_campaign_reads_every_budget_from_one_run(fake, paper_model):
    objective = make_objective("target-energy", target=-1.0, tolerance=0.2, oracle=fake.predict)
    results = []
    table = run_campaign("random-latent,rl-element", objective, [5, 15], "0,1", model=paper_model, progress=False,
                         results=results, **FAST)
    assert len(results) == 4 and len(table) == 8
    assert table[["method", "seed", "budget"]].drop_duplicates().shape[0] == 8
    assert (table["n_oracle_calls"] == table["budget"]).all() and table["budget_reached"].all()
    by_run = table.groupby(["method", "seed"])
    assert (by_run["n_proposals"].diff().dropna() >= 0).all() and (by_run["wall_seconds"].diff().dropna() >= 0).all()
    assert np.isfinite(table["success_rate"]).all()
