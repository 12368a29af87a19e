"""A design campaign and the design command line on the Ray backend give what the local backend gives."""

import json

import pytest
from ray import cloudpickle

from matvae.design.__main__ import main
from matvae.design.campaign import run_campaign
from matvae.design.objectives import make_objective

FAST = {"ppo": {"n_steps": 32, "batch_size": 32, "n_epochs": 1}, "env": {"horizon": 2}, "batch_size": 10}


@pytest.fixture
def fake_by_value(fake):
    """The fake oracle, pickled by value (by Ray's cloudpickle) so that Ray workers, which cannot import the test
    folder, get it."""
    cloudpickle.register_pickle_by_value(fake)
    yield fake
    cloudpickle.unregister_pickle_by_value(fake)


def test_a_campaign_on_ray_gives_the_local_table(local_ray, fake_by_value, paper_model, tmp_path):
    objective = make_objective("target-energy", target=-1.0, tolerance=0.2, oracle=fake_by_value.predict)
    tables, results = {}, {}
    for backend in ("local", "ray"):
        results[backend] = []
        tables[backend] = run_campaign("random-latent,rl-element", objective, [5, 12], "0,1", model=paper_model,
                                       progress=False, results=results[backend], backend=backend,
                                       storage=tmp_path / backend, **FAST)
    local, ray = (tables[b].drop(columns="wall_seconds") for b in ("local", "ray"))
    assert len(local) == 8
    assert local.to_dict(orient="records") == ray.to_dict(orient="records")
    proposals = {b: [[(x.formula, x.score, x.status) for x in r.records] for r in results[b]] for b in results}
    assert proposals["local"] == proposals["ray"]  # the same proposals, in the same order


def test_the_command_line_runs_methods_and_seeds_on_ray(local_ray, fake_by_value, tmp_path):
    summaries = {}
    for backend in ("local", "ray"):
        path = tmp_path / f"{backend}.json"
        argv = ["--method", "random-latent,cmaes-latent", "--objective", "stability", "--budget", "5", "--seed", "0,1",
                "--model", "paper", "--json", str(path), "--oracle", "fake_oracle:predict", "--backend", backend,
                "--storage", str(tmp_path / "runs")]
        assert main(argv) == 0
        summaries[backend] = [{k: v for k, v in run.items() if k != "wall_seconds"} for run in json.loads(path.read_text())]
    assert [(r["method"], r["seed"]) for r in summaries["ray"]] == [
        ("random-latent", 0), ("random-latent", 1), ("cmaes-latent", 0), ("cmaes-latent", 1)
    ]
    assert summaries["local"] == summaries["ray"]
