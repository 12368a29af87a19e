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


README_REPORT_BASE = {"threads": 2, "machine": "x86_64", "torch": "2.13.0+cpu", "device": "cpu", "epoch_gflop": 42.7,
                      "matmul_gflops": 100.0, "epochs": []}


def test_the_readme_section_states_every_measured_row():
    from matvae.benchmark import markdown

    report = {**README_REPORT_BASE,
              "epochs": [{"batch_size": 1024, "kernel": "fused", "compile": False, "seconds_per_epoch": 1.2,
                          "gflops": 35.6, "matmul_gflops": 110.0, "share_of_matmul": 0.324,
                          "rounds": [{"seconds": 1.2, "matmul_gflops": 110.0}, {"seconds": 0.91, "matmul_gflops": 120.0},
                                     {"seconds": 1.43, "matmul_gflops": 100.0}]}],
              "stacked_sweep": {"kl_weights": [1.0, 0.1], "gflop_per_epoch": 85.4, "flop_floor_2000_epochs_seconds": 1708.0,
                                "ways": {"stacked": {"seconds_per_epoch": 2.0, "share_of_matmul": 0.427,
                                                     "projected_2000_epochs_seconds": 4000.0, "over_flop_floor": 2.34}}},
              "time_to_target": {"target": 4.0, "converged": 3.636, "within": 0.1, "runs": [
                  {"loop": "matvae.train", "compile": False, "batch_size": 1024, "learning_rate": 1e-3, "seconds": 100.0, "epochs": 79},
                  {"loop": "matvae.train", "compile": True, "batch_size": 1024, "learning_rate": 0.02, "seconds": 20.0, "epochs": 14},
                  {"loop": "matvae.train", "compile": False, "batch_size": 512, "learning_rate": 0.01, "seconds": math.inf, "epochs": 150},
                  {"loop": "DataLoader", "compile": False, "batch_size": 128, "learning_rate": 1e-3, "seconds": 116.0, "epochs": 17},
                  {"loop": "DataLoader", "compile": False, "batch_size": 1024, "learning_rate": 0.02, "seconds": 50.0, "epochs": 15},
                  {"loop": "matvae.train", "compile": False, "batch_size": 1024, "learning_rate": 0.02, "learning_rate_decay": 0.95,
                   "min_learning_rate": 1e-3, "seconds": 29.0, "epochs": 25},
                  {"loop": "DataLoader", "compile": False, "batch_size": 1024, "learning_rate": 0.02, "learning_rate_decay": 0.95,
                   "min_learning_rate": 1e-3, "seconds": 58.0, "epochs": 25}]}}
    report["gemm_ceiling"] = [{"batch_size": 1024, "gflops": 75.2, "share_of_matmul": 0.584, "matmul_gflops": 128.7,
                                "epoch_share": 0.62}]
    text = markdown(report)
    for expected in ("| 1,024 | fused | 1.20 (0.91-1.43) | 35.6 | 32% (110 GFLOP/s) | 40 min |", "| 1,024 | 75.2 GFLOP/s | 58% (129 GFLOP/s) | 62% |", "2.3x", "FLOP floor of 2,000 epochs 28 min",
                     "| `matvae.train` | 1,024 | 0.001 | 79 | 100 s | 1.2x | - |",
                     "| `matvae.train` + compile | 1,024 | 0.02 | 14 | 20 s | 5.8x | 2.5x |",
                     "| `matvae.train` | 512 | 0.01 | 150 | not in 150 epochs | - | - |",
                     "| `DataLoader` | 128 | 0.001 | 17 | 116 s | - | - |",
                     "| `matvae.train` | 1,024 | 0.02, x0.95 per epoch to 0.001 | 25 | 29 s | 4.0x | 2.0x |",
                     "the usual loop is the `DataLoader` one at batch 128 and step 0.001",
                     "Fastest: `matvae.train` with `compile=True` at batch 1,024 and step 0.02, 20 s: 5.8x faster than the usual loop"):
        assert expected in text, expected
    assert "change of recipe, not of loop" in text and "run of its own" not in text
    report["time_to_target"] |= {"separate_run": True, "matmul_gflops": 140.6}
    assert "(measured in a run of its own, `--time-to-target-only`, beside a matmul rate of 141 GFLOP/s)" in markdown(report)


def test_recipes_are_parsed_and_a_bad_one_is_named():
    from matvae.benchmark import REFERENCE_RECIPES, TARGET_RECIPES, parse_recipes

    assert parse_recipes("128:1e-3, 1024:2e-2:0.9:1e-3") == [(128, 1e-3, 1.0, 0.0), (1024, 0.02, 0.9, 1e-3)]
    assert parse_recipes(TARGET_RECIPES)[0] == (128, 1e-3, 1.0, 0.0) and parse_recipes(REFERENCE_RECIPES)[0] == (128, 1e-3, 1.0, 0.0)
    assert parse_recipes("1024:2e-2:0.95:1e-3")[0].label() == "0.02, x0.95 per epoch to 0.001"
    for bad in ("128", "128:x", "0:1e-3", "1.5:1e-3", "128:1e-3,", "128:1e-3:0.9", "128:1e-3:0.9:1e-3:1"):
        with pytest.raises(ValueError, match="batch:step|batch size >= 1"):
            parse_recipes(bad)
    # the step, decay and floor are held to TrainConfig's bounds, in its words, after the entry
    for bad, field in (("128:0", "learning_rate must lie in"), ("128:-1", "learning_rate must lie in"),
                       ("128:11", "learning_rate must lie in"), ("128:1e-3:0:0", "learning_rate_decay must lie in"),
                       ("128:1e-3:1.5:0", "learning_rate_decay must lie in"), ("128:1e-3:0.9:-1", "min_learning_rate must lie in"),
                       ("128:1e-3:0.9:2e-3", "min_learning_rate .* must not exceed learning_rate")):
        with pytest.raises(ValueError, match=f"^recipes: '{bad}': {field}"):
            parse_recipes(bad)


def test_target_runs_times_every_recipe_of_both_loops(small_split):
    import torch

    from matvae.benchmark import parse_recipes, target_runs

    history = train(small_split.train, small_split.test, SMALL, TrainConfig(epochs=4, batch_size=64, device="cpu")).history
    goal = float(history["test_loss"][-1])
    report = target_runs(small_split.train, small_split.test, torch.device("cpu"), within=0.1, max_epochs=8,
                         recipes=parse_recipes("64:1e-3,32:2e-3:0.5:1e-3"), reference_recipes=parse_recipes("64:1e-3,32:2e-3:0.5:1e-3"),
                         target=(goal, goal / 1.1, SMALL))
    runs = report["runs"]
    assert [(r["loop"], r["batch_size"], r["learning_rate"], r["learning_rate_decay"], r["min_learning_rate"]) for r in runs] == [
        ("matvae.train", 64, 1e-3, 1.0, 0.0), ("matvae.train", 32, 2e-3, 0.5, 1e-3), ("DataLoader", 64, 1e-3, 1.0, 0.0),
        ("DataLoader", 32, 2e-3, 0.5, 1e-3)]
    assert runs[0]["epochs"] <= 4 and 0 < runs[0]["seconds"] < math.inf  # the same recipe as the run that set the goal
    assert all(1 <= r["epochs"] <= 8 for r in runs) and report["target"] == goal


def test_time_to_target_only_replaces_that_part_of_a_saved_report(tmp_path, monkeypatch, small_split, capsys):
    import json

    from matvae import benchmark

    calls = []

    def fake_runs(*args, **kwargs):
        calls.append(kwargs)
        return {"target": 4.0, "converged": 3.6, "within": 0.1, "runs": []}

    monkeypatch.setattr(benchmark, "prepare_data", lambda config: (None, small_split))
    monkeypatch.setattr(benchmark, "matmul_rate", lambda device: 1e9)
    monkeypatch.setattr(benchmark, "target_runs", fake_runs)
    saved = tmp_path / "bench.json"
    saved.write_text(json.dumps({"threads": 2, "epochs": [], "time_to_target": {"old": True}, "stacked_sweep": {"kept": 1}}))
    assert benchmark.main(["--time-to-target-only", "--device", "cpu", "--skip-reference", "--recipes", "64:1e-3",
                           "--json", str(saved)]) == 0
    report = json.loads(saved.read_text())
    assert report["stacked_sweep"] == {"kept": 1} and report["time_to_target"]["converged"] == 3.6
    assert report["time_to_target"]["separate_run"] is True and report["time_to_target"]["matmul_gflops"] == 1.0
    assert calls[0]["recipes"] == [(64, 1e-3, 1.0, 0.0)] and calls[0]["reference_recipes"] == []
    with pytest.raises(SystemExit):
        benchmark.main(["--time-to-target-only", "--recipes", "64:", "--json", str(saved)])
    saved.write_bytes(b'{"threads": 2, "epo\xff')  # damaged: named, nothing measured
    with pytest.raises(SystemExit):
        benchmark.main(["--time-to-target-only", "--device", "cpu", "--json", str(saved)])
    assert len(calls) == 1 and "not a saved benchmark report" in capsys.readouterr().err


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


def test_width_stacks_cut_neighbours_for_the_fewest_padded_flops():
    from itertools import combinations

    from matvae.benchmark import PAPER_WIDTHS, padded_flops, width_stacks

    assert width_stacks(PAPER_WIDTHS, 1) == [list(PAPER_WIDTHS)] and padded_flops([list(PAPER_WIDTHS)]) > 2
    assert width_stacks([300, 50, 100], 3) == [[50], [100], [300]] and padded_flops([[50], [100]]) == 1.0
    widths = sorted(PAPER_WIDTHS)
    for k in (2, 3, 4):
        every = [[widths[i:j] for i, j in zip((0, *cuts), (*cuts, len(widths)))] for cuts in combinations(range(1, len(widths)), k - 1)]
        best = min(padded_flops(s) for s in every)
        chosen = width_stacks(PAPER_WIDTHS, k)
        assert len(chosen) == k and sum(chosen, []) == widths and padded_flops(chosen) == pytest.approx(best)
    for bad in (0, 11, 2.0, True):
        with pytest.raises(ValueError, match="n_stacks must be an integer from 1 to the number of widths"):
            width_stacks(PAPER_WIDTHS, bad)
    with pytest.raises(ValueError, match="widths is empty"):
        width_stacks([], 1)


def test_paper_scale_trains_the_widths_in_stacks_of_neighbours(small_split):
    import torch

    from matvae.benchmark import gpu_markdown, paper_scale

    report = paper_scale(small_split.train, small_split.test, torch.device("cpu"), epochs=1, probe_epochs=1, n_width_stacks=3)
    assert list(report["runs"]) == ["paper_model", "kl_weight_sweep", "width_sweep 50..200", "width_sweep 250..350",
                                    "width_sweep 400..500"]
    assert report["width_stacks"] == [[50, 100, 150, 200], [250, 300, 350], [400, 450, 500]]
    assert list(report["runs"]["width_sweep 250..350"]["test_nelbo"]) == ["250", "300", "350"]
    text = gpu_markdown({"gpu": "G", "torch": "2", "matmul_gflops": 1.0, "paper_scale": report})
    assert "| width stack 250..350 | 3 | 1 |" in text and "3 stacks of neighbours, 50..200, 250..350, 400..500" in text
    assert "padded, 1.3x the widths' own FLOPs" in text
    with pytest.raises(ValueError, match="n_stacks"):
        paper_scale(small_split.train, small_split.test, torch.device("cpu"), epochs=1, n_width_stacks=0)


def test_paper_scale_passes_compile_to_every_run(small_split, monkeypatch):
    from dataclasses import replace

    import torch

    from matvae import benchmark, stacked

    seen = []
    real_train, real_stacked = benchmark.train, stacked.train_stacked

    def spy(real):
        def run(train_data, test_data, configs, config, **kwargs):
            seen.append(config.compile)
            return real(train_data, test_data, configs, replace(config, compile=False), **kwargs)
        return run

    monkeypatch.setattr(benchmark, "train", spy(real_train))
    monkeypatch.setattr(stacked, "train_stacked", spy(real_stacked))
    report = benchmark.paper_scale(small_split.train, small_split.test, torch.device("cpu"), epochs=1, probe_epochs=1,
                                   compile=True)
    assert seen == [True, True, True] and report["compile"] is True
    text = benchmark.gpu_markdown({"gpu": "G", "paper_scale": report})
    assert "compiled (`compile=True`) and replayed from a CUDA graph" in text and "widths zero-padded to 500" in text


def test_step_products_are_those_of_the_fused_step():
    import torch

    from matvae import fused
    from matvae.benchmark import epoch_flops, forward_flops, gemm_ceiling, step_products
    from matvae.model import VAE

    config = ModelConfig(hidden_dim=16, latent_dim=3)
    products = step_products(config, 32)
    forward = [p for p in products if p[3:] == (False, True)]
    weight_gradients = [p for p in products if p[3:] == (True, False)]
    input_gradients = [p for p in products if p[3:] == (False, False)]
    assert (len(forward), len(weight_gradients), len(input_gradients)) == (9, 9, 7)
    flops = sum(2 * m * k * n for m, k, n, _, _ in products)
    first_layers = 2 * 32 * 16 * config.n_elements * 2  # the encoder's and classifier's first layers need no input gradient
    assert flops == 3 * 32 * forward_flops(config) - first_layers
    assert step_products(config, 32, backward=False) == forward

    # the products the fused step runs: count its bmm and baddbmm calls
    model = VAE(config, torch.full((config.n_classes,), 1.0 / config.n_classes))
    params = fused.stacked_parameters([model])
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        fused.loss_and_gradients(params, config, torch.tensor([0.5]), torch.rand(1, 32, config.n_elements),
                                 torch.randint(0, config.n_classes, (1, 32)), torch.randn(1, 32, config.latent_dim))
    calls = {event.key: event.count for event in profile.key_averages()}
    assert calls["aten::baddbmm"] == len(forward) and calls["aten::bmm"] == len(weight_gradients) + len(input_gradients)

    ceiling = gemm_ceiling(config, 32, 100, 40, torch.device("cpu"), rate=1e9)
    assert ceiling["step_gflop"] == pytest.approx(flops / 1e9)
    assert ceiling["epoch_seconds"] >= 4 * ceiling["step_seconds"] > 0  # ceil(100 / 32) = 4 steps and the evaluation
    assert ceiling["epoch_share"] == pytest.approx(epoch_flops(config, 100, 40) / ceiling["epoch_seconds"] / 1e9)


def test_stacked_speed_measures_each_way_beside_its_own_matmul_rate(small_split, monkeypatch):
    from matvae import benchmark

    rates = iter([100e9, 120e9, 90e9, 110e9, 200e9, 200e9])
    monkeypatch.setattr(benchmark, "matmul_rate", lambda device: next(rates))
    report = benchmark.stacked_speed(small_split.train, small_split.test, SMALL, FAST, rate=50e9, epochs=1,
                                     kl_weights=(1.0, 0.1))
    flops = report["gflop_per_epoch"] * 1e9
    assert list(report["ways"]) == ["serial", "stacked", "stacked_autograd"]
    assert report["flop_floor_2000_epochs_seconds"] == pytest.approx(2000 * flops / 50e9)
    for name, beside in zip(report["ways"], (110.0, 100.0, 200.0)):  # the mean of the rates before and after each way
        row = report["ways"][name]
        assert row["matmul_gflops"] == pytest.approx(beside)
        assert row["over_flop_floor"] == pytest.approx(row["seconds_per_epoch"] * beside * 1e9 / flops)
        assert row["share_of_matmul"] == pytest.approx(1 / row["over_flop_floor"])
    assert len(report["serial_seconds_per_model"]) == 2
    assert "(110 GFLOP/s)" in benchmark.markdown({**README_REPORT_BASE, "stacked_sweep": report})


def test_the_reference_loop_takes_the_decaying_step_of_each_epoch(small_split, monkeypatch):
    import torch

    from matvae.benchmark import reference_loop_time_to_target

    taken, step = [], torch.optim.Adam.step

    def recording(self, *args, **kwargs):
        taken.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording)
    seconds, epochs = reference_loop_time_to_target(small_split.train, small_split.test, SMALL, target=-1.0, seed=0,
                                                    device=torch.device("cpu"), max_epochs=3, batch_size=256,
                                                    learning_rate=1e-2, learning_rate_decay=0.5, min_learning_rate=3e-3)
    assert (seconds, epochs) == (math.inf, 3)
    per_epoch = len(taken) // 3
    assert taken == [1e-2] * per_epoch + [5e-3] * per_epoch + [3e-3] * per_epoch


class _Result:
    def __init__(self, seconds, nelbo):
        self.history = {"seconds": seconds, "test_nelbo": [nelbo] * len(seconds)}


def test_the_long_beta_sweep_report_puts_each_segment_against_its_own_rate():
    from matvae.benchmark import beta_sweep_report

    results = [_Result([2.0, 4.0, 7.0, 10.0], 4.5 + i) for i in range(6)]  # epochs of 2, 2, 3, 3 s
    segments = [{"first_epoch": 1, "matmul_gflops_start": 100.0, "matmul_gflops_end": 300.0},  # 200 GFLOP/s
                {"first_epoch": 3, "matmul_gflops_start": 50.0}]  # cut short: its start rate only
    report = beta_sweep_report(results, segments, flops=100e9, epochs=5)
    assert [(r["first_epoch"], r["last_epoch"], r["train_seconds"]) for r in report["segments"]] == [(1, 2, 4.0), (3, 4, 6.0)]
    assert [r["matmul_gflops"] for r in report["segments"]] == [200.0, 50.0]
    assert report["flop_floor_seconds"] == pytest.approx(2 * 0.5 + 2 * 2.0)
    assert report["over_flop_floor"] == pytest.approx(10.0 / 5.0)
    assert [r["over_flop_floor"] for r in report["segments"]] == pytest.approx([4.0, 1.5])
    assert (report["epochs_done"], report["complete"], report["test_nelbo"]["0.003"]) == (4, False, 9.5)
    # epochs trained before any rate was kept: no floor claimed
    late = beta_sweep_report(results, segments[1:], flops=100e9, epochs=4)
    assert late["flop_floor_seconds"] is None and late["over_flop_floor"] is None and late["complete"]


def test_the_long_beta_sweep_resumes_in_segments_and_keeps_their_rates(small_split, tmp_path):
    import json
    import threading

    import torch

    from matvae.benchmark import long_beta_markdown, long_beta_sweep

    cpu = torch.device("cpu")
    first = long_beta_sweep(small_split.train, small_split.test, cpu, folder=tmp_path, epochs=2, compile=False,
                            segment_epochs=1)
    assert (first["epochs_done"], first["complete"]) == (1, False)
    kept = json.loads((tmp_path / "segments.json").read_text())
    assert [(s["first_epoch"], s["last_epoch"]) for s in kept] == [(1, 1)] and kept[0]["matmul_gflops_start"] > 0
    assert (tmp_path / "stack-kl_weight-1_0.3_0.1_0.03_0.01_0.003.pt").exists()  # the name stacked_sweep gives it
    done = long_beta_sweep(small_split.train, small_split.test, cpu, folder=tmp_path, epochs=2, compile=False)
    assert done["complete"] and [(s["first_epoch"], s["last_epoch"]) for s in done["segments"]] == [(1, 1), (2, 2)]
    assert done["train_seconds"] == pytest.approx(sum(s["train_seconds"] for s in done["segments"]))
    assert done["over_flop_floor"] > 0 and len(done["test_nelbo"]) == 6
    again = long_beta_sweep(small_split.train, small_split.test, cpu, folder=tmp_path, epochs=2, compile=False)
    assert again["segments"] == done["segments"]  # a finished sweep trains nothing and keeps no new segment
    text = long_beta_markdown(done | {"threads": 2, "machine": "x86_64", "device": "cpu", "torch": "2.13.0+cpu"})
    assert "| 1-1 |" in text and "| 2-2 |" in text and f"**{done['over_flop_floor']:.1f}x**" in text
    with pytest.raises(ValueError, match="segment_epochs must"):
        long_beta_sweep(small_split.train, small_split.test, cpu, folder=tmp_path, epochs=2, segment_epochs=0.5)
    with pytest.raises(ValueError, match="epochs must"):
        long_beta_sweep(small_split.train, small_split.test, cpu, folder=tmp_path, epochs=0)
    with pytest.raises(ValueError, match="more than the 1 asked for"):  # fewer epochs than the checkpoint holds
        long_beta_sweep(small_split.train, small_split.test, cpu, folder=tmp_path, epochs=1, compile=False)
    from filelock import FileLock

    from matvae.training import CheckpointBusyError

    held, release = threading.Event(), threading.Event()

    def other_run():  # another run holds the folder (a thread here: filelock refuses a second holder in one thread)
        with FileLock(tmp_path / ".segments.json.train.lock"):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=other_run)
    holder.start()
    try:
        assert held.wait(30)
        with pytest.raises(CheckpointBusyError, match="segments.json is being trained by another run"):
            long_beta_sweep(small_split.train, small_split.test, cpu, folder=tmp_path, epochs=2, compile=False)
    finally:
        release.set()
        holder.join()
    with pytest.raises(ValueError, match="compile must"):
        long_beta_sweep(small_split.train, small_split.test, cpu, folder=tmp_path, epochs=2, compile="yes")
    (tmp_path / "segments.json").write_bytes(b'[{"first_epoch": 1, "matm')  # damaged at a random byte
    with pytest.raises(ValueError, match="segments.json is damaged"):
        long_beta_sweep(small_split.train, small_split.test, cpu, folder=tmp_path, epochs=2, compile=False)


def test_the_long_beta_sweep_trains_the_stack_the_paper_cpu_tuning_chapter_reads():
    """Same models, training identity and file name as chapter 03 at the paper-cpu scale, so the chapter loads it."""
    import ast
    from dataclasses import asdict, fields, replace
    from pathlib import Path

    import jupytext
    import papermill
    import torch

    from matvae.benchmark import long_beta_stack
    from matvae.book import load_scales
    from matvae.chapters import TuningSettings
    from matvae.stacked import _training_identity

    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    defaults = {name: ast.literal_eval(p["default"])
                for name, p in papermill.inspect_notebook(jupytext.read(notebooks / "03_tuning.py")).items()}
    preset = defaults | load_scales(notebooks / "scales.yaml")["paper-cpu"]["03_tuning"]
    settings = TuningSettings(**{f.name: preset[f.name] for f in fields(TuningSettings) if f.init and f.name in preset})
    configs, train_config, name = long_beta_stack(2000, torch.device("cpu"), True)
    assert configs == [replace(settings.model_config, kl_weight=b) for b in settings.beta_list]
    assert _training_identity(asdict(train_config)) == _training_identity(asdict(settings.beta_config))
    assert settings.beta_config.epochs == train_config.epochs == 2000
    assert name == f"stack-kl_weight-{'_'.join(f'{b:g}' for b in settings.beta_list)}.pt"


def test_the_paper_plan_scales_the_compiled_default_step_where_it_was_measured():
    from matvae.benchmark import PLAN_STEPS, plan_epoch

    def row(batch, kernel, compile, seconds):
        return {"batch_size": batch, "kernel": kernel, "compile": compile, "seconds_per_epoch": seconds}

    eager, compiled = row(1024, "fused", False, 1.2), row(1024, "fused", True, 0.9)
    others = [row(1024, "autograd", True, 0.1), row(4096, "fused", True, 0.2)]
    assert plan_epoch([eager, compiled, *others]) == (0.9, PLAN_STEPS[True])
    assert plan_epoch([*others, compiled, eager]) == (0.9, PLAN_STEPS[True])
    assert plan_epoch([eager, *others]) == (1.2, PLAN_STEPS[False])
    assert plan_epoch(others) is None
