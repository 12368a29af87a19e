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

# %% tags=["hide-input"]
from IPython.display import Markdown, display

from matvae.params import check_str
from matvae.report import chapter_scales, reproduction_table, to_markdown
from matvae.results import load_results

check_str("results_dir", results_dir, allow_empty=False)
results = load_results(results_dir)
if not results:
    raise ValueError(f"no chapter results in {results_dir}: run the chapters 01-05 first")

# %% [markdown]
# ## The scale of each chapter

# %% tags=["nbval-ignore-output"]
display(Markdown(to_markdown(chapter_scales(results), columns=("chapter", "scale"))))

# %% [markdown]
# ## Figures and numbers

# %% tags=["nbval-ignore-output"]
table = reproduction_table(results)
counts = table["reproduced"].value_counts()
display(Markdown(f"{len(table)} items: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in ("yes", "partly", "no")) + "."))
display(Markdown(to_markdown(table, columns=("item", "paper", "this project", "reproduced", "criterion", "note"))))
