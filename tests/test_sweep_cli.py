"""``python -m matvae.sweep``: the same JSON on both backends, clear usage errors."""

import json
import subprocess
import sys

import pytest

from matvae.sweep import main

TINY = ["--values", "8,16", "--epochs", "3", "--elements", "Ga,Mo,S,Li,O", "--latent-dim", "2", "--batch-size", "64",
        "--n-samples", "100"]
TIMINGS = ("train_seconds", "wall_seconds")


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """The local run on one thread, as each Ray job."""


def _rows(path):
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in json.loads(path.read_text())]


def test_a_tiny_sweep_writes_the_same_json_on_both_backends(local_ray, tmp_path, capsys):
    for backend in ("local", "ray"):
        argv = ["--setting", "hidden_dim", *TINY, "--backend", backend, "--storage", str(tmp_path / backend),
                "--json", str(tmp_path / f"{backend}.json")]
        assert main(argv) == 0
    local, ray = _rows(tmp_path / "local.json"), _rows(tmp_path / "ray.json")
    assert [row["hidden_dim"] for row in local] == [8, 16]
    assert local == ray
    assert {"test_nelbo", "prevalence_kl", "uniqueness", "reconstructed_elements", "status", "n_parameters"} <= set(local[0])
    assert "hidden_dim=16: test_nelbo=" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "ray").glob("*.pt")) == ["hidden_dim-16.pt", "hidden_dim-8.pt"]


def test_seed_and_stacked_sweeps(tmp_path):
    seeds = tmp_path / "seeds.json"
    assert main(["--setting", "seed", *TINY[2:], "--values", "0,1", "--storage", str(tmp_path), "--json", str(seeds)]) == 0
    rows = _rows(seeds)
    assert [row["seed"] for row in rows] == [0, 1] and rows[0]["test_nelbo"] != rows[1]["test_nelbo"]
    stacked = tmp_path / "stacked.json"
    argv = ["--setting", "kl_weight", *TINY[2:], "--values", "1,0.1,0.03", "--stack", "2", "--storage", str(tmp_path),
            "--json", str(stacked)]
    assert main(argv) == 0
    assert [row["kl_weight"] for row in _rows(stacked)] == [1.0, 0.1, 0.03]
    assert sorted(p.name for p in tmp_path.glob("stack-*.pt")) == ["stack-kl_weight-0.03.pt", "stack-kl_weight-1_0.1.pt"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--setting": "latent_dim"}, "invalid choice: 'latent_dim'"),
        ({"--values": "8,0"}, "values[1] must be >= 1, got 0"),
        ({"--values": "8,x"}, "values must be a comma-separated list of integers"),
        ({"--values": "8,16,8"}, "values must differ (one model each), got 8 more than once"),
        ({"--epochs": "2.5"}, "epochs must be an integer >= 1, got '2.5'"),
        ({"--backend": "dask"}, "invalid choice: 'dask'"),
        ({"--elements": "Li,Xx"}, "Xx"),
        ({"--stack": "0"}, "stack must be >= 1, got 0"),
        ({"--gpus-per-job": "1.5"}, "gpus above 1 must be a whole number"),
    ],
)
def test_bad_arguments_stop_with_a_clear_message(tmp_path, capsys, change, message):
    options = {"--setting": "hidden_dim", "--values": "8", "--epochs": "1", "--storage": str(tmp_path),
               "--json": str(tmp_path / "x.json"), **change}
    with pytest.raises(SystemExit) as stop:
        main([part for pair in options.items() for part in pair])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_ray_missing_is_a_usage_error_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(SystemExit):
        main(["--setting", "seed", "--values", "0", "--epochs", "1", "--backend", "ray", "--storage", str(tmp_path),
              "--json", str(tmp_path / "x.json")])
    assert 'pip install -e ".[cluster]"' in capsys.readouterr().err


def test_the_command_line_runs_in_a_fresh_process(tmp_path):
    path = tmp_path / "out.json"
    command = [sys.executable, "-m", "matvae.sweep", "--setting", "hidden_dim", *TINY[2:], "--values", "8",
               "--storage", str(tmp_path), "--json", str(path)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [row["hidden_dim"] for row in json.loads(path.read_text())] == [8]


def test_plateau_options_reach_the_training_and_are_refused_with_stack(tmp_path):
    from matvae.sweep import main

    with pytest.raises(SystemExit) as stop:
        main(["--setting", "kl_weight", "--values", "1,0.1", "--epochs", "3", "--stack", "2", "--plateau-window", "5",
              "--storage", str(tmp_path), "--json", str(tmp_path / "out.json")])
    assert stop.value.code == 2
    with pytest.raises(SystemExit) as stop:
        main(["--setting", "hidden_dim", "--values", "8", "--epochs", "3", "--plateau-window", "-1",
              "--storage", str(tmp_path), "--json", str(tmp_path / "out.json")])
    assert stop.value.code == 2
