import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from matvae.design.__main__ import main

FAKE = ["--oracle", "fake_oracle:predict"]
FIELDS = {"success_rate", "best_score", "n_oracle_calls", "n_valid", "n_novel", "n_predicted_stable", "formulas",
          "wall_seconds", "method", "objective", "seed", "budget", "model", "n_proposals"}


def test_one_run_writes_its_summary(tmp_path, fake):
    path = tmp_path / "out" / "run.json"
    argv = ["--method", "random-latent", "--objective", "target-energy", "--target", "-1.2", "--budget", "8",
            "--seed", "2", "--model", "sequence", "--json", str(path), *FAKE]
    assert main(argv) == 0
    summary = json.loads(path.read_text())
    assert FIELDS <= set(summary)
    assert (summary["method"], summary["objective"], summary["seed"], summary["budget"]) == ("random-latent", "target-energy", 2, 8)
    assert summary["objective_settings"] == {"target": -1.2, "tolerance": 0.1} and summary["model"] == "sequence"
    assert summary["n_oracle_calls"] == 8 and len(fake.CALLS) == 8
    assert all({"formula", "score", "status", "meets"} <= set(row) for row in summary["formulas"])


def test_lists_of_methods_and_seeds_write_one_summary_per_run(tmp_path, fake):
    path = tmp_path / "runs.json"
    argv = ["--method", "random-latent,cmaes-latent", "--objective", "stability", "--budget", "5", "--seed", "0,1",
            "--model", "paper", "--json", str(path), *FAKE]
    assert main(argv) == 0
    runs = json.loads(path.read_text())
    assert [(r["method"], r["seed"]) for r in runs] == [
        ("random-latent", 0), ("random-latent", 1), ("cmaes-latent", 0), ("cmaes-latent", 1)
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--method": "genetic"}, "method must be one of ('random-latent', 'cmaes-latent', 'rl-latent', 'rl-element', 'marginal'), got 'genetic'"),
        ({"--method": "rl-latent,genetic"}, "got 'genetic'"),
        ({"--objective": "hardness"}, "invalid choice: 'hardness' (choose from"),
        ({"--budget": "0"}, "budget must be >= 1, got 0"),
        ({"--budget": "2.5"}, "budget must be an integer >= 1 (oracle calls), got '2.5'"),
        ({"--seed": "1.5"}, "seed must be a comma-separated list of integers, got '1.5'"),
        ({"--seed": "-1"}, "seed[0] must be >= 0, got -1"),
        ({"--target": "-1"}, "'stability' takes the settings ('threshold',), got ['target']"),
        ({"--oracle": "nowhere"}, "oracle must be MODULE:FUNCTION, got 'nowhere'"),
    ],
)
def test_bad_arguments_stop_with_a_clear_message(tmp_path, capsys, change, message):
    options = {"--method": "rl-element", "--objective": "stability", "--budget": "5", "--json": str(tmp_path / "x.json"), **change}
    with pytest.raises(SystemExit) as stop:
        main([part for pair in options.items() for part in pair])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_the_command_line_runs_in_a_fresh_process(tmp_path):
    path = tmp_path / "run.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "matvae.design", "--method", "random-latent", "--objective", "stability",
               "--budget", "3", "--model", "sequence", "--json", str(path), *FAKE]
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(path.read_text())["n_oracle_calls"] == 3
    assert "random-latent seed 0: n_oracle_calls=3" in done.stdout
