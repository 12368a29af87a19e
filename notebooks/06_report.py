# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Reproduction report
#
# Every figure and number of the paper, next to what this book measured, with the criterion used to call it
# reproduced and, where it differs, the cause. The numbers are read from what the chapters recorded when they
# ran; the scale each chapter ran at is listed first.

# %% tags=["parameters"]
results_dir = "artifacts/results"  # where the chapters wrote their numbers

# %%
import pandas as pd
from IPython.display import Markdown, display

from matvae.params import check_str
from matvae.report import reproduction_table
from matvae.results import load_results

check_str("results_dir", results_dir, allow_empty=False)
results = load_results(results_dir)
if not results:
    raise ValueError(f"no chapter results in {results_dir}: run the chapters 01-05 first")

# %% [markdown]
# ## The scale of each chapter

# %% tags=["nbval-ignore-output"]
scale = {}
if "01_data" in results:
    d = results["01_data"]
    scale["01 data"] = f"{d['n_materials']:,} materials ({d['config']['elements'] or 'all elements'}), split {d['n_train']:,} / {d['n_test']:,}"
if "02_model" in results:
    m = results["02_model"]
    text = f"{m['epochs']:,} epochs, β = {m['model_config']['kl_weight']:g}, hidden {m['model_config']['hidden_dim']} ({m['train_minutes']:.0f} min on {m['device']})"
    if m.get("elbo"):
        text += f"; β = 1 model: {m['elbo']['epochs']:,} epochs ({m['elbo']['train_minutes']:.0f} min on {m['elbo']['device']})"
    scale["02 model"] = text
if "03_tuning" in results:
    t = results["03_tuning"]
    scale["03 tuning"] = f"{len(t['beta_sweep'])} values of β and {len(t['width_sweep'])} widths at {t['epochs']:,} epochs each, {t['n_samples']:,} samples per model"
if "04_sampling" in results:
    scale["04 sampling"] = f"{results['04_sampling']['n_samples']:,} samples at T = {results['04_sampling']['threshold']}"
if "05_decomposition" in results:
    scale["05 decomposition"] = f"{results['05_decomposition']['n_decomposed']:,} decomposed materials, model after {results['05_decomposition']['epoch']:,} epochs"
pd.Series(scale, name="scale").to_frame()

# %% [markdown]
# ## Figures and numbers

# %% tags=["nbval-ignore-output"]
table = reproduction_table(results)
counts = table["reproduced"].value_counts()
display(Markdown(f"{len(table)} items: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in ("yes", "partly", "no")) + "."))
table.style.hide(axis="index").set_properties(**{"text-align": "left"})
