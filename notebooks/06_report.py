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
# **What this chapter shows.** Every figure and number of the paper, next to what this book measured, with the
# criterion used to call it reproduced and, where it differs, the cause. The numbers are read from what the
# chapters recorded when they ran; the scale each chapter ran at is listed first.
#
# **The paper's claims it tests.** All of them at once: this chapter adds no measurement, it collects the verdicts
# of the chapters before it.

# %% tags=["parameters"]
results_dir = "artifacts/results"  # where the chapters wrote their numbers

# %% tags=["hide-input"]
from myst_nb import glue

from matvae.chapters import ReportSettings
from matvae.report import chapter_scales, reproduction_table
from matvae.results import load_results

settings = ReportSettings(results_dir=results_dir)
results = load_results(settings.results_dir)
if not results:
    raise ValueError(f"no chapter results in {settings.results_dir}: run the chapters 01-05 first")

# %% [markdown]
# ## The scale of each chapter

# %% tags=["nbval-ignore-output", "hide-input"]
chapter_scales(results).style.hide(axis="index")

# %% [markdown]
# ## Figures and numbers

# %% tags=["nbval-ignore-output", "hide-input"]
table = reproduction_table(results)
counts = table["reproduced"].value_counts()
glue("n_items", len(table), display=False)
for verdict in ("yes", "partly", "no"):
    glue(f"n_{verdict}", int(counts.get(verdict, 0)), display=False)
table[["item", "paper", "this project", "reproduced", "criterion", "note"]].style.hide(axis="index").set_properties(
    **{"text-align": "left"})

# %% [markdown]
# ## What this shows
#
# Of the {glue:text}`n_items` items the paper reports, {glue:text}`n_yes` are reproduced, {glue:text}`n_partly`
# partly and {glue:text}`n_no` not; the table gives the criterion of each verdict and, where it differs, the cause.
