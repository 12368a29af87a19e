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
# # The data: compositions and their decompositions
#
# **What this chapter shows.** The paper represents every material by its **modified 1-hot vector**: the number of
# atoms of each of the 89 Materials Project elements, in alphabetical order, normalised to sum to one. Each
# material also carries its **thermodynamic decomposition**: where it sits on the convex hull of formation
# energies, the stable phases it would decompose into, and their atomic-fraction weights. The number of those
# components is the class $Y$ (0 for a stable material). This chapter loads the data, computes every
# decomposition, and splits the materials for the next chapters.
#
# **The paper's claims it tests.** What the paper says of its dataset: its size, that 96 % of the materials have
# 6 or fewer elements, that element presences are nearly uncorrelated (which justifies independent Bernoulli
# outputs), and its worked example Ga(MoS2)4 (Figures 2 and 3).
#
# The data are a real Materials Project snapshot shipped with `matvae` (the Matbench `mp_e_form` task: 132,752
# entries with GGA/GGA+U formation energies; see the book's introduction for its provenance and licence). The
# live Materials Project can be used instead with `source = "mp"` and an `MP_API_KEY` in the environment.

# %% tags=["parameters"]
source = "snapshot"  # "snapshot" (embedded) or "mp" (live Materials Project; needs MP_API_KEY)
elements = ""  # restrict to a closed chemical space, e.g. "Ga,Mo,S"; "" keeps every material
test_fraction = 0.2  # share of materials held out, grouped by reduced formula
seed = 0  # seed of the train/test split
example = "Ga(MoS2)4"  # the worked example of the paper's Figures 2 and 3
correlation_threshold = 0.2  # |correlation| above which an element pair counts as correlated
data_file = "artifacts/data.npz"  # where the split dataset is written for the next chapters
results_dir = "artifacts/results"  # where the numbers for the reproduction report are written

# %% tags=["hide-input"]
import time

import pandas as pd
from myst_nb import glue

from matvae import metrics, paper, plots, prose
from matvae.chapters import DataSettings
from matvae.composition import reduced_formula
from matvae.data import prepare_data
from matvae.data.materials import is_cached
from matvae.results import record

settings = DataSettings(
    source=source, elements=elements, test_fraction=test_fraction, seed=seed, example=example,
    correlation_threshold=correlation_threshold, data_file=data_file, results_dir=results_dir,
)
config = settings.config
plots.use_style()

# %% [markdown]
# ## Loading and decomposing
#
# The hull decompositions are computed by `matvae.data.hull`, which builds pymatgen's convex hull
# one chemical system at a time from the stable phases of its sub-systems, with the elements at
# 0 eV/atom as references. The test suite checks it against `pymatgen`'s `PhaseDiagram` (same components,
# amounts and energies above the hull to 1e-6). The result is cached, keyed by the snapshot's checksum.

# %% tags=["nbval-ignore-output"]
from_cache = config.source == "snapshot" and is_cached(elements=config.elements or None)
started = time.perf_counter()
table, split = prepare_data(config)
elapsed = time.perf_counter() - started
split.save(settings.data_file)
dataset = split.dataset
glue("n_materials", len(table), display=False)
glue("load_seconds", float(elapsed), display=False)
glue("load_source", prose.load_source(from_cache), display=False)

# %% [markdown]
# The {glue:text}`n_materials:,d` materials loaded in {glue:text}`load_seconds:.1f` s
# ({glue:text}`load_source`). The first rows:

# %%
table.head()

# %% [markdown]
# ## The dataset in numbers

# %%
n_elements = metrics.elements_per_material(dataset.counts)
per_material = metrics.count_distribution(n_elements, support=range(1, max(n_elements.max(), paper.MAX_ELEMENTS) + 1))
classes = metrics.count_distribution(dataset.y, support=range(config.n_classes))
share_le6 = float((n_elements <= 6).mean())
glue("n_formulas", int(table["formula"].nunique()), display=False)
glue("max_elements", int(n_elements.max()), display=False)
glue("share_le6", share_le6, display=False)
glue("n_stable", int(classes[0]), display=False)
glue("share_stable", float(classes[0] / len(table)), display=False)
glue("max_class", int(dataset.y.max()), display=False)

# %% [markdown]
# | quantity | this dataset | the paper |
# | --- | --- | --- |
# | materials (entries) | {glue:text}`n_materials:,d` | about 154,000 in the Materials Project |
# | distinct reduced formulas | {glue:text}`n_formulas:,d` | |
# | most elements in one material | {glue:text}`max_elements` | 10 |
# | materials with 6 or fewer elements | {glue:text}`share_le6:.1%` | 96% |
# | stable materials (class 0) | {glue:text}`n_stable:,d` ({glue:text}`share_stable:.1%`) | |
# | largest class present | {glue:text}`max_class` components | 9 |
#
# The number of materials with each number of elements:

# %% tags=["hide-input"]
pd.DataFrame(
    {"materials": per_material, "share": (per_material / per_material.sum()).map("{:.2%}".format)}
).rename_axis("elements per material").T

# %% tags=["hide-input"]
fig = plots.plot_distributions(
    {"data": per_material / per_material.sum()}, xlabel="number of elements in the material",
    title="Elements per material", log=True,
)

# %% [markdown]
# The class $Y$ is the number of components a material decomposes into: 0 for the stable materials on the
# hull, 1 for a polymorph that transforms into the stable phase of its own composition, and up to 9.

# %% tags=["hide-input"]
fig = plots.plot_distributions(
    {"data": classes / classes.sum()}, xlabel="Y = number of decomposition components",
    title="Decomposition classes", log=True,
)
classes.rename("materials").to_frame().T

# %% [markdown]
# ## Are element presences correlated?
#
# The paper models the elements as independent Bernoulli variables because "of the 3,916 unique
# off-diagonal element pairs only 7 have correlations exceeding 0.2 in magnitude. The largest is the pair
# (Nb, O) with a correlation coefficient of 0.54." We recompute the Pearson correlation of the presence
# indicators over all materials.

# %%
corr = metrics.element_correlation(dataset.counts, kind="presence")
pairs = metrics.correlated_pairs(corr, threshold=settings.correlation_threshold)
glue("n_pairs", int(pairs.attrs["n_pairs"]), display=False)
glue("n_defined", int(pairs.attrs["n_defined"]), display=False)
glue("n_correlated", len(pairs), display=False)
glue("correlation_threshold", settings.correlation_threshold, display=False)
glue("top_pair", prose.top_pair(pairs), display=False)
glue("correlation_verdict", prose.correlation_verdict(len(pairs), int(pairs.attrs["n_defined"])), display=False)
pairs.head(15).round({"correlation": 3})  # three decimals: the claim, not the last bits

# %% [markdown]
# Of the {glue:text}`n_pairs:,d` element pairs, {glue:text}`n_defined:,d` have a defined correlation (the others
# involve an element absent from the data). **{glue:text}`n_correlated` exceed {glue:text}`correlation_threshold:g`
# in magnitude** (the paper: 7); {glue:text}`top_pair` (the paper: (Nb, O) at 0.54).
#
# The paper does not say which quantity it correlated. The same count for the other two readings of
# "element pair-wise correlation": the normalised fractions the model sees, and the atom counts.

# %%
variants = {
    kind: metrics.correlated_pairs(metrics.element_correlation(dataset.counts, kind=kind), threshold=settings.correlation_threshold)
    for kind in metrics.CORRELATION_KINDS
}
pd.DataFrame(
    {
        kind: {
            f"pairs with |r| > {settings.correlation_threshold}": len(p),
            "largest pair": f"({p.iloc[0].element_a}, {p.iloc[0].element_b})" if len(p) else "-",
            "largest |r|": round(abs(p.iloc[0].correlation), 2) if len(p) else None,
        }
        for kind, p in variants.items()
    }
)

# %% [markdown]
# ## Figure 2: the modified 1-hot vector of Ga(MoS2)4

# %% tags=["hide-input"]
positions = prose.positions(settings.example_counts)
fig = plots.plot_composition_vector(settings.example_counts, title=f"Modified 1-hot vector of {reduced_formula(settings.example_counts)}")
glue("example_positions", prose.listing(positions), display=False)

# %% [markdown]
# The non-zero positions (1-based) are {glue:text}`example_positions`; the paper's Figure 2 has Ga 26, Mo 44, S 66.
#
# ## Figure 3: the example's entry and decomposition
#
# The paper's Figure 3 is the Materials Project page of Ga(MoS2)4 (mp-559694). Our snapshot has the
# GGA/GGA+U energies; the web page shows the later GGA/GGA+U/r2SCAN mixing scheme, so the formation energy
# differs while the decomposition is the same.

# %% tags=["nbval-ignore-output"]
example_entry = prose.example_entry(table, settings.example_counts)
glue("example_status", example_entry.sentence, display=False)
glue("example_verdict", example_entry.verdict, display=False)
for key, value in example_entry.values.items():
    glue(f"example_{key}", value, display=False)

# %% [markdown]
# {glue:text}`example_status`
#
# | | this project | the paper (Figure 3) |
# | --- | --- | --- |
# | formation energy (eV/atom) | {glue:text}`example_formation_energy:.3f` (GGA/GGA+U) | -1.076 (r2SCAN mixing) |
# | energy above hull (eV/atom) | {glue:text}`example_energy_above_hull:.3f` | 0.042 |
# | number of components Y | {glue:text}`example_n_components` | 3 |
# | amount of Ga31Mo6 | {glue:text}`example_amount_Ga31Mo6:.4f` | 6/91 = 0.0659 |
# | amount of MoS2 | {glue:text}`example_amount_MoS2:.4f` | 49/55 = 0.8909 |
# | amount of GaS | {glue:text}`example_amount_GaS:.4f` | 3/70 = 0.0429 |

# %% tags=["remove-cell"]
# What the nbval reference compares (the hull's last bits vary between CPUs): the example's entry to four decimals.
print(example_entry.sentence, {key: round(value, 4) for key, value in example_entry.values.items()})

# %% [markdown]
# ## The train/test split
#
# 80/20, seeded and grouped by reduced formula, so that no composition (and none of its polymorphs) is on
# both sides. The split and the arrays the model needs are written to `data_file` for the next chapters.

# %%
train_formulas = set(dataset.formula[split.train_rows])
overlap = sum(f in train_formulas for f in set(dataset.formula[split.test_rows]))
glue("n_train", len(split.train_rows), display=False)
glue("n_test", len(split.test_rows), display=False)
glue("share_test", len(split.test_rows) / len(dataset), display=False)
glue("overlap", int(overlap), display=False)
glue("data_file", settings.data_file, display=False)

# %% [markdown]
# Train: {glue:text}`n_train:,d` materials; test: {glue:text}`n_test:,d` ({glue:text}`share_test:.1%`); formulas on
# both sides: {glue:text}`overlap`. Written to {glue:text}`data_file`.

# %% tags=["hide-input"]
record(
    settings.results_dir,
    "01_data",
    {
        "config": {"source": config.source, "elements": config.elements, "seed": config.seed},
        "n_materials": len(table),
        "n_formulas": int(table["formula"].nunique()),
        "max_elements": int(n_elements.max()),
        "share_at_most_6_elements": share_le6,
        "classes": classes.to_dict(),
        "elements_per_material": per_material.to_dict(),
        "n_pairs": pairs.attrs["n_pairs"],
        "n_defined_pairs": pairs.attrs["n_defined"],
        "correlated_pairs": {kind: len(p) for kind, p in variants.items()},
        "top_pair": {kind: ([p.iloc[0].element_a, p.iloc[0].element_b, float(p.iloc[0].correlation)] if len(p) else None) for kind, p in variants.items()},
        "example_positions": positions,
        "example": example_entry.record,
        "n_train": len(split.train_rows),
        "n_test": len(split.test_rows),
        "load_seconds": elapsed,
        "from_cache": from_cache,
    },
)

# %% [markdown]
# ## What this shows
#
# - The snapshot has {glue:text}`n_materials:,d` materials, {glue:text}`share_le6:.1%` of them with 6 or fewer
#   elements (the paper: 96 %); at most {glue:text}`max_elements` elements in one material (the paper: 10).
# - {glue:text}`n_correlated` of {glue:text}`n_defined:,d` defined element pairs have a presence correlation above
#   {glue:text}`correlation_threshold:g` in magnitude (the paper: 7 of 3,916): {glue:text}`correlation_verdict`.
# - {glue:text}`example_verdict`
