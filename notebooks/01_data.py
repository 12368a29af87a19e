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
# The paper represents every material by its **modified 1-hot vector**: the number of atoms of each of
# the 89 Materials Project elements, in alphabetical order, normalised to sum to one. Each material also
# carries its **thermodynamic decomposition**: where it sits on the convex hull of formation energies, the
# stable phases it would decompose into, and their atomic-fraction weights. The number of those components
# is the class $Y$ (0 for a stable material).
#
# This chapter loads the data, computes every decomposition, and checks the paper's statements about the
# dataset. The data are a real Materials Project snapshot shipped with `matvae` (the Matbench
# `mp_e_form` task: 132,752 entries with GGA/GGA+U formation energies; see the book's introduction for its
# provenance and licence). The live Materials Project can be used instead with `source = "mp"` and an
# `MP_API_KEY` in the environment.

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
from IPython.display import Markdown, display

from matvae import ELEMENTS, encode, metrics, paper, plots
from matvae.results import record
from matvae.composition import reduced_formula
from matvae.data import DataConfig, prepare_data
from matvae.data.materials import is_cached
from matvae.params import check_float, check_str

config = DataConfig(source=source, elements=elements, test_fraction=test_fraction, seed=seed)
example_counts = encode(example)
check_float("correlation_threshold", correlation_threshold, low=0.0, high=1.0, low_inclusive=False)
check_str("data_file", data_file, allow_empty=False)
check_str("results_dir", results_dir, allow_empty=False)
plots.use_style()
config

# %% [markdown]
# ## Loading and decomposing
#
# The hull decompositions are computed by `matvae.data.hull`, which builds pymatgen's convex hull
# one chemical system at a time from the stable phases of its sub-systems, with the elements at
# 0 eV/atom as references. The test suite checks it against `pymatgen`'s `PhaseDiagram` (same components,
# amounts and energies above the hull to 1e-6). The result is cached, keyed by the snapshot's checksum.

# %%
from_cache = config.source == "snapshot" and is_cached(elements=config.elements or None)
started = time.perf_counter()
table, split = prepare_data(config)
elapsed = time.perf_counter() - started
split.save(data_file)
dataset = split.dataset
display(Markdown(f"Loaded {len(table):,} materials in {elapsed:.1f} s ({'from the cache' if from_cache else 'hulls computed in this run'})."))
table.head()

# %% [markdown]
# ## The dataset in numbers

# %%
n_elements = metrics.elements_per_material(dataset.counts)
per_material = metrics.count_distribution(n_elements, support=range(1, max(n_elements.max(), paper.MAX_ELEMENTS) + 1))
classes = metrics.count_distribution(dataset.y, support=range(config.n_classes))
share_le6 = (n_elements <= 6).mean()
display(
    Markdown(
        f"""
| quantity | this dataset | the paper |
| --- | --- | --- |
| materials (entries) | {len(table):,} | about {paper.N_MATERIALS_MP:,} in the Materials Project |
| distinct reduced formulas | {table['formula'].nunique():,} | |
| most elements in one material | {n_elements.max()} | {paper.MAX_ELEMENTS} |
| materials with 6 or fewer elements | {share_le6:.1%} | {paper.SHARE_AT_MOST_6_ELEMENTS:.0%} |
| stable materials (class 0) | {classes[0]:,} ({classes[0] / len(table):.1%}) | |
| largest class present | {dataset.y.max()} components | 9 |
"""
    )
)
pd.DataFrame(
    {"materials": per_material, "share": (per_material / per_material.sum()).map("{:.2%}".format)}
).rename_axis("elements per material").T

# %%
fig = plots.plot_distributions(
    {"data": per_material / per_material.sum()}, xlabel="number of elements in the material",
    title="Elements per material", log=True,
)

# %% [markdown]
# The class $Y$ is the number of components a material decomposes into: 0 for the stable materials on the
# hull, 1 for a polymorph that transforms into the stable phase of its own composition, and up to 9.

# %%
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
pairs = metrics.correlated_pairs(corr, threshold=correlation_threshold)
top = pairs.iloc[0] if len(pairs) else None
display(
    Markdown(
        f"Of the {pairs.attrs['n_pairs']:,} element pairs, {pairs.attrs['n_defined']:,} have a defined correlation "
        f"(the others involve an element absent from the data). **{len(pairs)} exceed {correlation_threshold} in "
        f"magnitude** (the paper: {paper.N_PAIRS_ABOVE_0_2}); "
        + (
            f"the largest is ({top.element_a}, {top.element_b}) at {top.correlation:.2f} "
            f"(the paper: {paper.TOP_PAIR} at {paper.TOP_PAIR_CORRELATION})."
            if top is not None
            else "none is correlated."
        )
    )
)
pairs.head(15).round({"correlation": 3})  # three decimals: the claim, not the last bits

# %% [markdown]
# The paper does not say which quantity it correlated. The same count for the other two readings of
# "element pair-wise correlation": the normalised fractions the model sees, and the atom counts.

# %%
variants = {
    kind: metrics.correlated_pairs(metrics.element_correlation(dataset.counts, kind=kind), threshold=correlation_threshold)
    for kind in metrics.CORRELATION_KINDS
}
pd.DataFrame(
    {
        kind: {
            f"pairs with |r| > {correlation_threshold}": len(p),
            "largest pair": f"({p.iloc[0].element_a}, {p.iloc[0].element_b})" if len(p) else "-",
            "largest |r|": round(abs(p.iloc[0].correlation), 2) if len(p) else None,
        }
        for kind, p in variants.items()
    }
)

# %% [markdown]
# ## Figure 2: the modified 1-hot vector of Ga(MoS2)4

# %%
fig = plots.plot_composition_vector(example_counts, title=f"Modified 1-hot vector of {reduced_formula(example_counts)}")
positions = {ELEMENTS[j]: int(j) + 1 for j in example_counts.nonzero()[0]}
display(Markdown(f"Non-zero positions (1-based): {positions}; the paper: {paper.EXAMPLE_POSITIONS}."))

# %% [markdown]
# ## Figure 3: the example's entry and decomposition
#
# The paper's Figure 3 is the Materials Project page of Ga(MoS2)4 (mp-559694). Our snapshot has the
# GGA/GGA+U energies; the web page shows the later GGA/GGA+U/r2SCAN mixing scheme, so the formation energy
# differs while the decomposition is the same.

# %%
name = reduced_formula(example_counts)
rows = table[table["formula"] == name]
if rows.empty:
    display(Markdown(f"{name} is not in this dataset."))
else:
    ours = rows.sort_values("energy_above_hull").iloc[0]
    decomposition = {part["formula"]: part["amount"] for part in ours["decomposes_to"]}
    paper_decomposition = {k: float(v) for k, v in paper.EXAMPLE_DECOMPOSITION.items()}
    display(
        Markdown(
            f"""
{name} has {len(rows)} entr{'y' if len(rows) == 1 else 'ies'} here; the lowest in energy is `{ours['material_id']}`.

| | this project | the paper (Figure 3) |
| --- | --- | --- |
| formation energy (eV/atom) | {ours['formation_energy_per_atom']:.3f} (GGA/GGA+U) | {paper.EXAMPLE_FORMATION_ENERGY} (r2SCAN mixing) |
| energy above hull (eV/atom) | {ours['energy_above_hull']:.3f} | {paper.EXAMPLE_ENERGY_ABOVE_HULL} |
| number of components Y | {ours['n_components']} | {len(paper.EXAMPLE_DECOMPOSITION)} |
"""
            + "\n".join(
                f"| amount of {k} | {decomposition.get(k, 0):.4f} | {paper.EXAMPLE_DECOMPOSITION[k]} = {paper_decomposition[k]:.4f} |"
                for k in paper.EXAMPLE_DECOMPOSITION
            )
        )
    )

# %% [markdown]
# ## The train/test split
#
# 80/20, seeded and grouped by reduced formula, so that no composition (and none of its polymorphs) is on
# both sides. The split and the arrays the model needs are written to `data_file` for the next chapters.

# %%
train_formulas = set(dataset.formula[split.train_rows])
overlap = sum(f in train_formulas for f in set(dataset.formula[split.test_rows]))
display(
    Markdown(
        f"Train: {len(split.train_rows):,} materials; test: {len(split.test_rows):,} "
        f"({len(split.test_rows) / len(dataset):.1%}); formulas on both sides: {overlap}. Written to `{data_file}`."
    )
)

# %%
record(
    results_dir,
    "01_data",
    {
        "config": {"source": config.source, "elements": config.elements, "seed": config.seed},
        "n_materials": len(table),
        "n_formulas": int(table["formula"].nunique()),
        "max_elements": int(n_elements.max()),
        "share_at_most_6_elements": float(share_le6),
        "classes": classes.to_dict(),
        "elements_per_material": per_material.to_dict(),
        "n_pairs": pairs.attrs["n_pairs"],
        "n_defined_pairs": pairs.attrs["n_defined"],
        "correlated_pairs": {kind: len(p) for kind, p in variants.items()},
        "top_pair": {kind: ([p.iloc[0].element_a, p.iloc[0].element_b, float(p.iloc[0].correlation)] if len(p) else None) for kind, p in variants.items()},
        "example_positions": positions,
        "example": None if rows.empty else {
            "material_id": ours["material_id"], "formation_energy_per_atom": ours["formation_energy_per_atom"],
            "energy_above_hull": ours["energy_above_hull"], "decomposition": decomposition,
        },
        "n_train": len(split.train_rows),
        "n_test": len(split.test_rows),
        "load_seconds": elapsed,
        "from_cache": from_cache,
    },
)
