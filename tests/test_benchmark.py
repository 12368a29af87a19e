"""The benchmark's measuring functions on a tiny split (their numbers are reported, never asserted)."""

import math

import pytest

from matvae.benchmark import default_target, time_to_target
from matvae.model import ModelConfig
from matvae.training import TrainConfig, train

SMALL = ModelConfig(hidden_dim=16, latent_dim=3)
FAST = TrainConfig(batch_size=64, device="cpu")


def test_time_to_target_stops_at_the_first_epoch_that_reaches_it(small_split):
    history = train(small_split.train, small_split.test, SMALL, TrainConfig(epochs=6, batch_size=64, device="cpu")).history
    target = history["test_loss"][3]  # reached at epoch 4 at the latest
    first = next(i for i, v in enumerate(history["test_loss"]) if v <= target) + 1
    seconds, epochs = time_to_target(small_split.train, small_split.test, SMALL, FAST, target=target, max_epochs=6, chunk=2)
    assert epochs == first and 0 < seconds < math.inf
    assert time_to_target(small_split.train, small_split.test, SMALL, FAST, target=-1.0, max_epochs=3, chunk=2) == (math.inf, 3)


def test_the_default_target_is_above_the_shipped_models_converged_loss():
    target, converged, model_config = default_target(0.1)
    assert target == pytest.approx(1.1 * converged) and 0 < converged < 10 and model_config.kl_weight == 0.03


def test_the_readme_section_states_every_measured_row():
    from matvae.benchmark import markdown

    report = {"threads": 2, "machine": "x86_64", "torch": "2.13.0+cpu", "device": "cpu", "epoch_gflop": 42.7,
              "matmul_gflops": 100.0,
              "epochs": [{"batch_size": 1024, "kernel": "fused", "compile": False, "seconds_per_epoch": 1.2,
                          "gflops": 35.6, "matmul_gflops": 110.0, "share_of_matmul": 0.324}],
              "stacked_sweep": {"kl_weights": [1.0, 0.1], "gflop_per_epoch": 85.4, "flop_floor_2000_epochs_seconds": 1708.0,
                                "ways": {"stacked": {"seconds_per_epoch": 2.0, "share_of_matmul": 0.427,
                                                     "projected_2000_epochs_seconds": 4000.0, "over_flop_floor": 2.34}}},
              "time_to_target": {"target": 4.0, "converged": 3.636, "within": 0.1, "matvae": {"seconds": 100.0, "epochs": 79},
                                 "matvae_compiled": {"seconds": 58.0, "epochs": 80},
                                 "references": [{"batch_size": 128, "seconds": 116.0, "epochs": 17, "speed_up": 1.16}]}}
    text = markdown(report)
    for expected in ("| 1,024 | fused | 1.20 | 35.6 | 32% (110 GFLOP/s) | 40 min |", "2.3x", "79 epochs", "batch 128: 116 s",
                     "speed-up of `matvae.train` 1.2x, with `compile=True` 2.0x", "with `compile=True` 58 s (80 epochs, compilation included)", "FLOP floor of 2,000 epochs 28 min"):
        assert expected in text, expected


def test_paper_scale_trains_every_run_and_stops_a_run_at_the_budget(small_split):
    import torch

    from matvae.benchmark import PAPER_WIDTHS, TUNING_KL_WEIGHTS, markdown, paper_scale

    full = paper_scale(small_split.train, small_split.test, torch.device("cpu"), epochs=2, probe_epochs=1)
    assert list(full["runs"]) == ["paper_model", "kl_weight_sweep", "width_sweep"]
    assert [r["models"] for r in full["runs"].values()] == [1, len(TUNING_KL_WEIGHTS), len(PAPER_WIDTHS)]
    assert list(full["runs"]["paper_model"]["test_nelbo"]) == ["0.03"]
    assert all(r["complete"] and r["epochs_trained"] == 2 for r in full["runs"].values())
    assert list(full["runs"]["width_sweep"]["test_nelbo"]) == [str(w) for w in PAPER_WIDTHS]
    assert all(math.isfinite(v) for r in full["runs"].values() for v in r["test_nelbo"].values())
    # a budget smaller than one probe: every run keeps its probe epoch only and says so
    short = paper_scale(small_split.train, small_split.test, torch.device("cpu"), epochs=50, probe_epochs=1, budget_seconds=1e-3)
    assert all(r["epochs_trained"] == 1 and not r["complete"] for r in short["runs"].values())
    text = markdown({"threads": 2, "machine": "x86_64", "torch": "2", "device": "cuda", "gpu": "GPU X", "epoch_gflop": 1.0,
                     "matmul_gflops": 1.0, "epochs": [], "paper_scale": short})
    assert "GPU X" in text and "| width sweep 50..500 | 10 | 1 |" in text and "(projected)" in text and "budget of 0 s" in text


def test_the_gpu_section_is_written_from_a_saved_run(tmp_path, capsys):
    import json

    from matvae.benchmark import main

    runs = {name: {"models": m, "epochs_trained": 2000, "complete": True, "train_seconds": t, "wall_seconds": t + 1,
                   "seconds_per_epoch": t / 2000, "projected_seconds": t, "test_nelbo": {}}
            for name, m, t in (("paper_model", 1, 50.0), ("kl_weight_sweep", 6, 120.0), ("width_sweep", 10, 300.0))}
    saved = tmp_path / "gpu.json"
    saved.write_text(json.dumps({"gpu": "GPU Y", "torch": "2.11", "matmul_gflops": 48000.0,
                                 "paper_scale": {"epochs": 2000, "budget_seconds": None, "runs": runs}}))
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- gpu:start -->\nold\n<!-- gpu:end -->\nrest\n")
    assert main(["--from-json", str(saved), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("rest\n")
    assert "| the paper's model (width 100, beta 0.03) | 1 | 2,000 | 50 s | 25 | 50 s |" in text
    assert "Both sweeps at 2,000 epochs: 7.0 min." in text and "48.0 TFLOP/s" in text and "budget" not in text
    saved.write_text(json.dumps({"gpu": "GPU Y"}))
    with pytest.raises(SystemExit):
        main(["--from-json", str(saved), "--readme", str(readme)])
    assert "no paper_scale measurements" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--from-json", str(saved)])
    assert "give --readme" in capsys.readouterr().err


@pytest.mark.parametrize(("options", "match"), [({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
                                                ({"probe_epochs": 2.0}, "probe_epochs must be an integer >= 1, got 2.0"),
                                                ({"budget_seconds": 0}, "budget_seconds must be > 0")])
def test_paper_scale_refuses_bad_settings(small_split, options, match):
    import torch

    from matvae.benchmark import paper_scale

    with pytest.raises(ValueError, match=match):
        paper_scale(small_split.train, small_split.test, torch.device("cpu"), **options)
