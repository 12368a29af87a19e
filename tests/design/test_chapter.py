"""The chapter helpers of "Inverse design": settings, nearest known material, verdict, the curves figure."""

import itertools

import matplotlib
import numpy as np
import pandas as pd
import pytest

from matvae.composition import encode
from matvae.design import chapter

matplotlib.use("Agg")

GOOD = {
    "data_file": "artifacts/data.npz", "paper_checkpoint": "artifacts/vae-paper.pt", "checkpoint": "artifacts/sequence.pt",
    "methods": "random-latent,rl-latent,rl-element", "paper_methods": "rl-latent", "objectives": "stability,target-energy",
    "target_energy": -2.0, "tolerance": 0.1, "budgets": "10,50", "seeds": "0,1", "ppo_steps": 32, "ppo_batch_size": 16,
    "ppo_epochs": 2, "n_best": 3, "results_dir": "results", "figures_dir": "figures",
}


def test_settings_parse_their_lists():
    settings = chapter.DesignSettings(**GOOD)
    assert settings.method_names == ("random-latent", "rl-latent", "rl-element")
    assert settings.paper_method_names == ("rl-latent",)
    assert settings.objective_names == ("stability", "target-energy")
    assert settings.budget_list == (10, 50)
    assert settings.seed_list == (0, 1)
    assert settings.ppo == {"n_steps": 32, "batch_size": 16, "n_epochs": 2}
    assert chapter.DesignSettings(**{**GOOD, "paper_methods": ""}).paper_method_names == ()
    objective = settings.objective("target-energy", oracle=lambda formulas: None)
    assert (objective.target, objective.tolerance) == (-2.0, 0.1)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("methods", "rl-latent,bogus", "methods must be a comma-separated list"),
        ("methods", "", "methods must name at least one"),
        ("methods", "rl-latent,rl-latent", "methods names a value twice"),
        ("paper_methods", "rl-element", "paper_methods must be a comma-separated list"),
        ("objectives", "stability,fast", "objectives must be a comma-separated list"),
        ("target_energy", -20.0, "target_energy must lie in"),
        ("tolerance", 0.0, "tolerance must lie in"),
        ("budgets", "10,abc", "budgets must be a comma-separated list of integers"),
        ("budgets", "0,10", r"budgets\[0\] must be >= 1"),
        ("seeds", "-1", r"seeds\[0\] must be >= 0"),
        ("ppo_steps", 32.0, r"ppo_steps must be an integer .* got 32.0 \(float\)"),
        ("ppo_batch_size", 64, "ppo_batch_size must be .*<= 32"),
        ("ppo_epochs", 0, "ppo_epochs must be >= 1"),
        ("n_best", 2.5, "n_best must be an integer"),
        ("data_file", "", "data_file must not be empty"),
        ("figures_dir", 3, "figures_dir must be a string"),
        ("backend", "slurm", r"backend must be one of \('local', 'ray'\), got 'slurm'"),
    ],
)
def test_settings_refuse_bad_values_by_name(name, value, message):
    with pytest.raises(ValueError, match=message):
        chapter.DesignSettings(**{**GOOD, name: value})


KNOWN = ["Li2O", "LiO2", "Fe2O3", "FeO", "LiFePO4", "NaCl"]


def test_nearest_known_matches_a_hand_computed_search():
    counts = np.array([encode(f) for f in KNOWN])
    queries = ["Li3O2", "Fe3O4", "NaCl", "Li2FePO4"]
    found = chapter.nearest_known(queries, counts, KNOWN, k=2)
    assert list(found.columns) == ["formula", "rank", "nearest", "distance"]
    assert len(found) == 2 * len(queries)
    for query in queries:
        q = np.array(encode(query), dtype=float)
        q /= q.sum()
        distances = sorted((np.abs(c / c.sum() - q).sum(), i) for i, c in enumerate(counts.astype(float)))
        rows = found[found["formula"] == query].sort_values("rank")
        assert rows["nearest"].tolist() == [KNOWN[i] for _, i in distances[:2]]
        np.testing.assert_allclose(rows["distance"], [d for d, _ in distances[:2]])
    # by hand: Li3O2 is (0.6, 0.4); Li2O (2/3, 1/3) is 2 x 1/15 away
    assert found.iloc[0]["nearest"] == "Li2O"
    assert found.iloc[0]["distance"] == pytest.approx(2 / 15)
    assert found[found["formula"] == "NaCl"].iloc[0]["distance"] == 0.0
    with pytest.raises(ValueError, match="must match"):
        chapter.nearest_known(queries, counts[:3], KNOWN)


def campaign(rates: dict[str, list[float]], budget: int = 100) -> pd.DataFrame:
    """A synthetic campaign: the given success rates per seed at ``budget``, half of them at half the budget."""
    rows = []
    for (method, values), b in itertools.product(rates.items(), (budget // 2, budget)):
        for seed, rate in enumerate(values):
            rows.append({"method": method, "seed": seed, "budget": b, "success_rate": rate * (1 if b == budget else 0.5),
                         "hits_per_call": 2 * rate, "n_valid": 10, "n_novel": 8, "n_predicted_stable": 3,
                         "wall_seconds": 1.0 + seed, "budget_reached": True})
    return pd.DataFrame(rows)


def test_verdict_says_the_claim_holds_when_every_latent_seed_wins():
    text = chapter.verdict(campaign({"rl-latent": [0.10, 0.12, 0.11], "rl-element": [0.02, 0.03, 0.04]}))
    assert text.startswith("At 100 oracle calls (3 seeds)")
    assert "the claim holds here" in text
    assert "11.00% ± 1.00% for rl-latent against 3.00% ± 1.00% for rl-element" in text


def test_verdict_says_the_claim_fails_or_is_undecided():
    fails = chapter.verdict(campaign({"rl-latent": [0.01, 0.02], "rl-element": [0.05, 0.06]}))
    assert "the claim does not hold here" in fails
    overlap = chapter.verdict(campaign({"rl-latent": [0.01, 0.05], "rl-element": [0.03, 0.04]}))
    assert "cannot be told apart" in overlap
    tie = chapter.verdict(campaign({"rl-latent": [0.0], "rl-element": [0.0]}))
    assert tie.startswith("At 100 oracle calls (1 seed) the success rate is 0.00% for rl-latent against 0.00% for")
    assert "the two tie" in tie
    with pytest.raises(ValueError, match="missing"):
        chapter.verdict(campaign({"rl-latent": [0.1]}))


def test_verdict_names_a_better_latent_method():
    text = chapter.verdict(campaign({"cmaes-latent": [0.30, 0.31], "rl-latent": [0.01, 0.05], "rl-element": [0.03, 0.04],
                                     "marginal": [0.9, 0.9]}))
    assert "The best latent-space method, cmaes-latent, is above rl-element on every seed" in text
    assert "marginal" not in text


def test_summary_and_bands_aggregate_over_seeds():
    frame = campaign({"rl-latent": [0.10, 0.12], "rl-element": [0.02, 0.04]})
    bands = chapter.curve_bands(frame)
    assert bands["method"].tolist() == ["rl-latent", "rl-latent", "rl-element", "rl-element"]
    last = bands.iloc[1]
    assert (last["budget"], last["mean"], last["min"], last["max"]) == (100, pytest.approx(0.11), 0.10, 0.12)
    summary = chapter.method_summary(frame)
    assert summary.loc["rl-element", ("success_rate", "mean")] == pytest.approx(0.03)
    assert summary.loc["rl-element", ("wall_seconds", "sd")] == pytest.approx(np.std([1.0, 2.0], ddof=1))
    shown = chapter.format_summary(summary)
    assert shown.loc["rl-latent", "success rate"] == "11.00% ± 1.41%"
    assert shown.loc["rl-latent", "seeds"] == 2


def test_plot_design_curves_returns_a_figure():
    from matvae import plots

    frame = campaign({"rl-latent": [0.10, 0.12], "rl-element": [0.02, 0.04], "rl-latent (paper VAE)": [0.0, 0.01]})
    fig = plots.plot_design_curves(chapter.curve_bands(frame), title="stability")
    ax = fig.axes[0]
    assert len(ax.lines) == 3
    assert ax.get_title() == "stability"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["rl-latent", "rl-element", "rl-latent (paper VAE)"]
    matplotlib.pyplot.close(fig)


def test_design_markdown_tables_and_verdict():
    from matvae.design.chapter import design_markdown

    values = {
        "settings": {"budgets": "10,50"},
        "summary": {"stability": [
            {"method": "rl-latent", "success_rate mean": 0.4, "success_rate sd": 0.05, "hits_per_call mean": 0.5,
             "hits_per_call sd": None, "n_predicted_stable mean": 20.0, "n_predicted_stable sd": 1.0,
             "wall_seconds mean": 12.0, "wall_seconds sd": 2.0, "seeds n": 3}]},
        "verdict": {"stability": "the claim holds here."},
    }
    text = design_markdown(values)
    assert "Objective **stability**, 50 oracle calls:" in text
    assert "| rl-latent | 40.0% ± 5.0% | 50.0% | 20.0 ± 1.0 | 12 ± 2 | 3 |" in text
    assert text.rstrip().endswith("the claim holds here.")
