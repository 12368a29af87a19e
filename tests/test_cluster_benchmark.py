"""The sweep plan and the README figures of the cluster benchmark (its timings are measured, not tested)."""

import pytest

from matvae.benchmark import forward_flops
from matvae.cluster_benchmark import markdown, paper_plan, plan_wall_seconds
from matvae.model import ModelConfig


def _flops(*widths):
    return {w: forward_flops(ModelConfig(hidden_dim=w)) for w in widths}


def test_the_sweep_plan_schedules_longest_jobs_first():
    assert plan_wall_seconds([5, 3, 3, 2, 2, 1], 1) == 16
    assert plan_wall_seconds([5, 3, 3, 2, 2, 1], 2) == 8  # LPT: 5 + 2 + 1 and 3 + 3 + 2
    assert plan_wall_seconds([5, 3, 3, 2, 2, 1], 16) == 5
    assert plan_wall_seconds([], 4) == 0.0
    with pytest.raises(ValueError, match="workers must be >= 1"):
        plan_wall_seconds([1.0], 0)
    with pytest.raises(ValueError, match="width_flops must include width 100"):
        paper_plan(1.0, 10.0, width_flops=_flops(50), kl_weights=(1.0,))
    plan = paper_plan(1.0, 10.0, width_flops=_flops(50, 100, 500), kl_weights=(1.0, 0.1))
    rows = {(r["sweep"], r["workers"]): r for r in plan["rows"]}
    assert rows[("beta", 1)]["cpu_hours"] == pytest.approx(2 * 2000 / 3600)
    assert rows[("beta", 4)]["cpu_hours"] == pytest.approx(2000 / 3600)
    assert rows[("beta", 1)]["gpu_minutes_assumed"] == pytest.approx(2.0)
    widest = forward_flops(ModelConfig(hidden_dim=500)) / forward_flops(ModelConfig()) * 2000 / 3600
    assert rows[("width", 16)]["cpu_hours"] == pytest.approx(widest)  # one model a worker: the widest sets the time
    assert rows[("width", 1)]["cpu_hours"] > rows[("width", 4)]["cpu_hours"] == rows[("width", 16)]["cpu_hours"]


def test_the_readme_figures_come_from_the_report():
    plan = paper_plan(0.8, 12.0, width_flops=_flops(50, 100), kl_weights=(1.0, 0.1, 0.01), workers=(1, 4),
                      step="hand-written step, torch.compile, batch 1,024")
    report = {
        "torch": "2.13.0+cpu", "threads": 2, "matmul_gflops": 176.4, "paper_plan": plan,
        "ray": {"cpus": 2, "start_seconds": 6.25, "load_average": [0.31, 0.2, 0.1],
                "tiny": {"values": "8,16,24,32", "epochs": 2, "local_seconds": 3.0, "ray_seconds": 9.0,
                         "overhead_per_job_seconds": 1.5},
                "small": {"values": "50,100", "epochs": 2, "n_samples": 1000, "local_serial_seconds": 40.0,
                          "ray_seconds": 32.0, "speed_up": 1.25, "workers": 2}},
    }
    text = markdown(report)
    prose = " ".join(text.split())  # the paragraph is wrapped for the README
    for figure in ("176 GFLOP/s", "starts in 6.2 s", "+1.50 s per job", "**1.25x**", "2 one-thread workers", "0.80 s per epoch",
                   "(hand-written step, torch.compile, batch 1,024; each width"):
        assert figure in prose, figure
    rows = [line for line in text.splitlines() if line.startswith("| beta")]
    assert rows == ["| beta | 3 | 1 | 1.3 h | 3.0 min |", "| beta | 3 | 4 | 0.4 h | 1.0 min |"]
