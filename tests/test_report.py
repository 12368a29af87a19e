
import numpy as np
import pytest

from matvae import paper
from matvae.report import README_END, README_START, chapter_scales, reproduction_table, to_markdown, update_readme
from matvae.results import load_results, record, save_figure

RESULTS = {
    "01_data": {
        "example_positions": {"Ga": 26, "Mo": 44, "S": 66},
        "example": {"decomposition": {"Ga31Mo6": 0.0662, "MoS2": 0.8909, "GaS": 0.0429}, "energy_above_hull": 0.0401,
                    "formation_energy_per_atom": -1.174},
        "n_materials": 132752, "max_elements": 9, "share_at_most_6_elements": 0.998,
        "correlated_pairs": {"presence": 6}, "top_pair": {"presence": ["H", "N", 0.27]}, "n_pairs": 3916,
    },
    "02_model": {"model_config": {"latent_dim": 10, "kl_weight": 0.01}, "epochs": 2000,
                 "elbo": {"test": {"kl": 1e-5}, "epochs": 2000}},
    "03_tuning": {"chosen_width": 100, "best_threshold": 0.05, "epochs": 50, "kl_weight": 0.01},
    "04_sampling": {"prevalence_kl": 0.12, "over_represented": ["O", "F", "Zr"], "under_represented": ["Mg", "Xe"],
                    "table": {"VAE, paper rule": {"n_elements_wasserstein": 0.2}}, "n_elements_noise_floor": 0.01},
    "05_decomposition": {"medians": {"VAE": {"all": 0.999}, "VAE, centred": {"all": 0.95}}, "share_high": 1.0,
                         "high_similarity": 0.9, "null_verdict": "separated"},
}


def test_verdicts_follow_their_criteria():
    table = reproduction_table(RESULTS).set_index("item")
    assert table.loc["Figure 2: Ga(MoS2)4 vector", "reproduced"] == "yes"
    assert table.loc["Figure 3: decomposition of Ga(MoS2)4", "reproduced"] == "yes"
    assert table.loc["Figure 3: formation energy (eV/atom)", "reproduced"] == "no"  # -1.174 vs -1.076
    assert table.loc["most elements in a material", "reproduced"] == "no"
    assert table.loc["materials with <= 6 elements", "reproduced"] == "partly"
    assert table.loc["element pairs with |correlation| > 0.2", "reproduced"] == "partly"
    assert table.loc["the ELBO trains a useful latent code", "reproduced"] == "no"
    assert "posterior collapse" in table.loc["the ELBO trains a useful latent code", "note"]
    assert table.loc["Figure 5: chosen hidden width", "reproduced"] == "yes"
    assert table.loc["threshold T", "reproduced"] == "partly"
    assert table.loc["Figure 6: prevalence KL", "reproduced"] == "yes"  # 0.12 <= 2 x 0.08
    assert table.loc["Figure 6: over-represented elements", "reproduced"] == "partly"
    assert table.loc["Figure 7: elements per material, samples vs data", "reproduced"] == "yes"
    assert table.loc["Figure 8: latent decomposition similarity", "reproduced"] == "yes"
    assert table.loc["threshold T", "paper"] == f"{paper.THRESHOLD:g}"


def test_missing_chapters_are_skipped():
    assert reproduction_table({}).empty
    assert set(reproduction_table({"03_tuning": RESULTS["03_tuning"]})["item"]) == {"Figure 5: chosen hidden width", "threshold T"}



def test_the_width_sweep_at_its_plateau_gets_a_row_and_a_scale():
    comparison = [{"hidden_dim": w, "epochs_short": 40, "epochs_converged": e, "chosen_short": w == 100, "chosen_converged": w == c}
                  for w, e, c in ((50, 358, 150), (100, 324, 150), (150, 315, 150))]
    tuning = dict(RESULTS["03_tuning"], n_samples=10000, beta_sweep=[{}], width_sweep=[{}] * 3,
                  plateau={"window": 50, "tolerance": 0.005, "max_epochs": 2000, "comparison": comparison, "best_threshold": 0.05})
    row = reproduction_table({"03_tuning": tuning}).set_index("item").loc["Figure 5, each width trained to its plateau: chosen width"]
    assert row["this project"] == "150" and row["reproduced"] == "no"
    assert "315 to 358 epochs per width" in row["note"] and "less than 0.5%" in row["note"]
    assert "best T of the width-100 model so trained: 0.05" in row["note"]
    comparison = [dict(r, prevalence_kl_converged=k) for r, k in zip(comparison, (0.04, 0.033, 0.030))]
    noisy = dict(tuning, plateau=dict(tuning["plateau"], comparison=comparison, kl_spread=[0.031, 0.036]))
    note = reproduction_table({"03_tuning": noisy}).set_index("item").loc[
        "Figure 5, each width trained to its plateau: chosen width", "note"]
    assert note.endswith("; its prevalence KL leads width 100's by 0.0030, within the 0.0050 that 2 sampling seeds move width 100's")
    scale = chapter_scales({"03_tuning": tuning}).set_index("chapter")["scale"]["03 tuning"]
    assert scale == ("1 values of beta and 3 widths at 50 epochs each, 10,000 samples per model; "
                     "the widths again, each to its plateau: 315 to 358 epochs")  # results from before beta_epochs
    scale = chapter_scales({"03_tuning": dict(tuning, beta_epochs=2000)}).set_index("chapter")["scale"]["03 tuning"]
    assert scale.startswith("1 values of beta at 2,000 epochs each (stacked) and 3 widths at 50 epochs each, 10,000 samples")

def test_results_round_trip_and_readme(tmp_path):
    record(tmp_path / "results", "04_sampling", {"kl": np.float32(0.5), "bad": float("nan"), "n": np.int64(3), "a": np.arange(2)})
    loaded = load_results(tmp_path / "results")
    assert loaded == {"04_sampling": {"a": [0, 1], "bad": None, "kl": 0.5, "n": 3}}
    (tmp_path / "results" / "05_decomposition.json").write_text("{oops")
    with pytest.raises(ValueError, match="05_decomposition.json is damaged"):
        load_results(tmp_path / "results")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nOLD-CONTENT\n{README_END}\noutro\n")
    table = reproduction_table(RESULTS)
    update_readme(readme, table)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "OLD-CONTENT" not in text
    assert to_markdown(table) in text
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="no <!-- results:start -->"):
        update_readme(readme, table)


def test_save_figure_writes_a_png(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    save_figure(fig, tmp_path / "figures" / "f.png")
    assert (tmp_path / "figures" / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chapter_scales_lists_what_each_chapter_ran_at():
    results = {
        "02_model": {"epochs": 2000, "model_config": {"kl_weight": 0.01, "hidden_dim": 100}, "train_minutes": 75.2,
                     "device": "cpu", "elbo": {"epochs": 2000, "train_minutes": 70.0, "device": "cpu"}},
        "04_sampling": {"n_samples": 10000, "threshold": 0.04},
    }
    table = chapter_scales(results).set_index("chapter")["scale"]
    assert table["02 model"].startswith("2,000 epochs, beta = 0.01, hidden 100 (75 min on cpu)")
    assert "the beta = 1 model: 2,000 epochs" in table["02 model"]
    assert table["04 sampling"] == "10,000 samples at T = 0.04"


def test_the_beyond_table_names_both_families_and_the_targets(tmp_path):
    from matvae.report import BEYOND_END, BEYOND_START, beyond_table, update_readme_beyond

    metrics_row = {"smact (ICSD24)": 0.8, "smact (smact14)": 0.81, "charge-neutral + EN-balanced": 0.7, "uniqueness": 0.99,
                   "novelty": 0.95, "prevalence_kl": 0.0123, "n_elements_wasserstein": 0.0456}
    evidence = {"model": 0.95, "model, centred": 0.9, "combination same elements": 0.42}
    values = {
        "generation": {"paper's VAE": metrics_row, "sequence VAE": {**metrics_row, "smact (ICSD24)": 0.85}, "test split": metrics_row},
        "round_trip": {"paper's VAE / paper": {"exact formula": 0.016, "same elements": 0.61},
                       "sequence VAE / greedy": {"exact formula": 0.97, "same elements": 0.98}},
        "decomposition": {"paper's VAE": evidence, "sequence VAE": evidence},
        "n_elements_noise_floor": 0.02, "test_kl": 33.2,
    }
    table = beyond_table(values)
    exact = table.set_index("metric").loc["exact formula from the mean code (test split)"]
    assert (exact["paper's VAE"], exact["sequence VAE"], exact["target"]) == ("1.6%", "97.0%", ">= 50 %")
    assert table.set_index("metric").loc["SMACT-valid samples (ICSD24 states)", "sequence VAE"] == "85.0%"
    assert not table["metric"].str.contains("sampling seeds").any()  # records without the spread: no row
    spread = beyond_table({**values, "n_elements_w1_spread": {"paper's VAE": [0.2, 0.3, 0.25], "sequence VAE": [0.04, 0.06, 0.05]}})
    row = spread.set_index("metric").loc["elements-per-material W1, 3 sampling seeds (mean ± sd)"]
    assert (row["paper's VAE"], row["sequence VAE"], row["target"]) == ("0.250 ± 0.050", "0.050 ± 0.010", "<= 0.05")
    assert len(spread) == len(table) + 1
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEYOND_START}\nold\n{BEYOND_END}\nrest\n")
    update_readme_beyond(readme, table)
    text = readme.read_text()
    assert "old" not in text and "| exact formula from the mean code (test split) | 1.6% | 97.0% |" in text
    assert "| MatGAN (Dan et al., npj Comput. Mater. 2020) | ICSD / OQMD compositions | - | 84.5% | - |" in text
    assert text.index("exact formula from the mean code") < text.index("MatGAN") < text.index(BEYOND_END)
    assert text.startswith("intro\n") and text.endswith("rest\n")
