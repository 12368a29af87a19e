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
# # Decomposition in the latent space
#
# **What this chapter shows.** Section 4.2 of the paper: a material $x$ that decomposes into components $x_k$ with atomic-fraction weights
# $a_k$ is their weighted mean, $x = \sum_k a_k x_k$ with $\sum_k a_k = 1$. The paper encodes every material to
# its latent mean $\mu(x)$ and, for each material with two or more components, measures the
# **latent decomposition similarity**
#
# $$s(x) = \cos\Big(\mu(x),\ \sum_k a_k\, \mu(x_k)\Big),$$
#
# shows its histograms by number of components (Figure 8), finds them close to 1.
#
# **The paper's claim it tests.** That "our latent representation can learn and preserve the decomposition
# property". A cosine close to 1 means little on its own. This chapter reproduces Figure 8 and sets it beside null
# models computed with the same encoder:
#
# * **random components**: each component replaced by a randomly drawn stable material (class 0), the weights
#   kept;
# * **random pairs**: $\cos(\mu(x), \mu(x'))$ for a random other material $x'$;
# * **centred**: the same three quantities after subtracting the dataset's mean code $\bar\mu$ from every code,
#   $\cos(\mu(x) - \bar\mu, \sum_k a_k (\mu(x_k) - \bar\mu))$, because an offset shared by all codes pushes every
#   cosine towards 1;
# * **linear and untrained encoders**: because $x = \sum_k a_k x_k$ and the weights sum to one, *any* affine
#   encoder $e(x) = Wx + b$ gives $e(x) = \sum_k a_k e(x_k)$ and so a similarity of exactly 1. We measure it for
#   PCA to the same latent dimension (fitted on the training split), and for the paper's encoder architecture
#   with random, untrained weights.
#
# Finally the combined code $\sum_k a_k \mu(x_k)$ is decoded with the paper's rule and compared with $x$.

# %% tags=["parameters"]
data_file = "artifacts/data.npz"  # the split dataset written by 01_data
checkpoint = "artifacts/vae-paper.pt"  # the trained model written by 02_model
threshold = 0.04  # T of the paper's decoding rule
seed = 0  # seed of the null models' random draws and of the untrained encoder's weights
high_similarity = 0.9  # the table reports the share of similarities above this value
n_examples = 8  # materials shown in the decoding examples
results_dir = "artifacts/results"  # where the numbers for the reproduction report are written
figures_dir = "figures"  # where Figure 8 is saved as PNG (for the README)

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
import torch
from myst_nb import glue

from matvae import latent, plots, prose
from matvae.chapters import DecompositionSettings
from matvae.data import SplitData
from matvae.model import VAE
from matvae.results import record, save_figure
from matvae.sampling import encode_means
from matvae.training import load_checkpoint, load_model

settings = DecompositionSettings(
    data_file=data_file, checkpoint=checkpoint, threshold=threshold, seed=seed, high_similarity=high_similarity,
    n_examples=n_examples, results_dir=results_dir, figures_dir=figures_dir,
)
split = SplitData.load(settings.data_file)
dataset = split.dataset
saved = load_checkpoint(settings.checkpoint)
model = load_model(settings.checkpoint)
plots.use_style()

# %% [markdown]
# ## The decomposed materials
#
# Every material of the dataset (training and test splits together, as in the paper) is encoded once. The
# similarity is measured for the materials with two or more components whose components are all in the
# dataset. The identity $x = \sum_k a_k x_k$ is checked on the stored vectors.

# %%
codes = encode_means(model, dataset.x)  # (n, latent_dim)
component_row, component_amount = dataset.component_row, dataset.component_amount
rows = latent.decomposed_rows(component_row, dataset.complete_decomposition)
n_components = dataset.y[rows]
stable_rows = np.flatnonzero(dataset.y == 0)
weights_hold, identity_holds = latent.decomposition_identity_holds(dataset.x, component_row, component_amount, rows)
glue("n_decomposed", len(rows), display=False)
glue("n_materials", len(dataset), display=False)
glue("max_components", int(n_components.max()), display=False)
glue("n_incomplete", int(((dataset.y >= 2) & ~dataset.complete_decomposition).sum()), display=False)
glue("n_stable", len(stable_rows), display=False)
glue("weight_decimals", latent.WEIGHT_SUM_DECIMALS, display=False)
glue("identity_decimals", latent.IDENTITY_DECIMALS, display=False)
glue("weights_hold", prose.yes_no(weights_hold), display=False)
glue("identity_holds", prose.yes_no(identity_holds), display=False)

# %% [markdown]
# {glue:text}`n_decomposed:,d` of the {glue:text}`n_materials:,d` materials have 2 to {glue:text}`max_components`
# components and a complete decomposition ({glue:text}`n_incomplete:,d` with 2 or more components are left out
# because a component is missing); {glue:text}`n_stable:,d` materials are stable (class 0). Over the decomposed
# materials the weights sum to 1 to {glue:text}`weight_decimals` decimal places: **{glue:text}`weights_hold`**, and
# $x = \sum_k a_k x_k$ holds to {glue:text}`identity_decimals` decimal places per entry (the vectors are stored in
# float32): **{glue:text}`identity_holds`**.

# %% tags=["nbval-ignore-output", "hide-input"]
kl = float(saved.history.get("test_kl", [np.nan])[-1])  # KL(q(z|x) || N(0, I)) on the test split, last epoch
glue("checkpoint", settings.checkpoint, display=False)
glue("epoch", int(saved.epoch), display=False)
glue("planned", str(saved.train_config.epochs) if saved.train_config else "an unknown number of", display=False)
glue("latent_dim", model.config.latent_dim, display=False)
glue("hidden_dim", model.config.hidden_dim, display=False)
glue("test_kl", kl, display=False)
glue("collapse_verdict", prose.collapse_verdict(kl), display=False)

# %% [markdown]
# The model is {glue:text}`checkpoint` after **{glue:text}`epoch:d` epochs** (of {glue:text}`planned` planned),
# latent dimension {glue:text}`latent_dim:d`, hidden width {glue:text}`hidden_dim:d`. Its KL term on the test split
# is {glue:text}`test_kl:.3g` nats per material: {glue:text}`collapse_verdict`.
#
# ## Figure 8, with two null models
#
# The paper's similarity (orange) for every decomposed material, by number of components, with the two nulls
# computed from the same codes: the components replaced by random stable materials (brown), and a random other
# material in place of the whole combination (grey). Each panel gives its number of materials.

# %% tags=["nbval-ignore-output"]
similarity = {
    "VAE": latent.decomposition_similarity(codes, component_row, component_amount, rows=rows)[0],
    "random components": latent.random_component_similarity(
        codes, component_row, component_amount, stable_rows, seed=settings.seed, rows=rows
    )[0],
    "random pairs": latent.random_pair_similarity(codes, rows, seed=settings.seed),
}

# %% tags=["nbval-ignore-output", "hide-input"]
fig = plots.plot_decomposition_similarity(
    similarity, n_components, title=f"Latent decomposition similarity, cos(μ(x), Σ a_k μ(x_k)) (epoch {saved.epoch})"
)
save_figure(fig, f"{settings.figures_dir}/latent_similarity.png")

# %% [markdown]
# ## Centred similarity
#
# The cosine measures the angle seen from the origin of the latent space. If every code carries the same offset
# $\bar\mu$, every pair of codes points roughly the same way and every cosine is inflated. Subtracting the mean
# code of the dataset measures the angle seen from the centre of the codes instead.

# %% tags=["nbval-ignore-output"]
center = codes.mean(axis=0)  # (latent_dim,) mean code of the dataset
spread = float(np.median(np.linalg.norm(codes - center, axis=1)))
glue("center_norm", float(np.linalg.norm(center)), display=False)
glue("spread", spread, display=False)
glue("offset_ratio", float(np.linalg.norm(center) / spread), display=False)
centred = {
    "VAE, centred": latent.decomposition_similarity(codes, component_row, component_amount, rows=rows, center=center)[0],
    "random components, centred": latent.random_component_similarity(
        codes, component_row, component_amount, stable_rows, seed=settings.seed, rows=rows, center=center
    )[0],
    "random pairs, centred": latent.random_pair_similarity(codes, rows, seed=settings.seed, center=center),
}

# %% [markdown]
# The mean code has length {glue:text}`center_norm:.3g`; the codes lie at a median distance {glue:text}`spread:.3g`
# from it (ratio {glue:text}`offset_ratio:.2f`).

# %% tags=["nbval-ignore-output", "hide-input"]
fig = plots.plot_decomposition_similarity(
    centred, n_components, title="Centred: cos(μ(x) - μ̄, Σ a_k (μ(x_k) - μ̄))", xlabel="centred cosine similarity"
)

# %% [markdown]
# ## Summary by number of components
#
# For each measure and number of components: the number of materials, the median, the 5th percentile and the
# share of similarities above the cut. First the medians side by side, then the full table.

# %% tags=["nbval-ignore-output"]
measures = {**similarity, **centred}
summary = latent.similarity_summary(measures, n_components, above=settings.high_similarity)
summary["median"].unstack("measure")[list(measures)].map("{:.6f}".format)

# %% tags=["nbval-ignore-output", "hide-input"]
summary.style.format({"median": "{:.5f}", "5th percentile": "{:.5f}", f"share > {settings.high_similarity:g}": "{:.1%}"})

# %% [markdown]
# ## A linear encoder, and the same network untrained
#
# The identity $x = \sum_k a_k x_k$ means that a similarity of 1 needs no learning at all: PCA to the same
# latent dimension, fitted on the training split, is an affine map and reaches 1 up to rounding. The paper's
# encoder architecture with random weights (PyTorch's default initialisation, seeded) shows how much of the
# similarity comes from the architecture alone. What distinguishes an encoder is therefore how far it departs
# from 1: the histogram below shows $1 - s$ on a logarithmic axis.

# %% tags=["nbval-ignore-output"]
pca = latent.PCAEncoder.fit(dataset.x[split.train_rows], model.config.latent_dim)
pca_codes = pca.encode(dataset.x)
torch.manual_seed(settings.seed)
untrained_codes = encode_means(VAE(model.config).eval(), dataset.x)
baselines = {
    "untrained encoder": latent.decomposition_similarity(untrained_codes, component_row, component_amount, rows=rows)[0],
    "untrained encoder, centred": latent.decomposition_similarity(
        untrained_codes, component_row, component_amount, rows=rows, center=untrained_codes.mean(axis=0)
    )[0],
    "PCA": latent.decomposition_similarity(pca_codes, component_row, component_amount, rows=rows)[0],
    "PCA, centred": latent.decomposition_similarity(
        pca_codes, component_row, component_amount, rows=rows, center=pca_codes.mean(axis=0)
    )[0],
}
gap = 1 - latent.similarity_summary(
    {"VAE": similarity["VAE"], "VAE, centred": centred["VAE, centred"], **baselines}, n_components
)["median"].unstack("measure")
glue("pca_variance", float(pca.explained_variance.sum() / dataset.x[split.train_rows].var(axis=0, ddof=1).sum()), display=False)
glue("pca_min", float(baselines["PCA"].min()), display=False)
glue("pca_max", float(baselines["PCA"].max()), display=False)
glue("pca_centred_min", float(baselines["PCA, centred"].min()), display=False)
glue("pca_centred_max", float(baselines["PCA, centred"].max()), display=False)
gap[["VAE", "VAE, centred", "untrained encoder", "untrained encoder, centred", "PCA", "PCA, centred"]].map("{:.2e}".format)

# %% [markdown]
# PCA keeps {glue:text}`pca_variance:.1%` of the training variance. Its similarity lies in
# [{glue:text}`pca_min:.12f`, {glue:text}`pca_max:.12f`] (centred: [{glue:text}`pca_centred_min:.12f`,
# {glue:text}`pca_centred_max:.12f`]). Above: the median of 1 - s by number of components.

# %% tags=["nbval-ignore-output", "hide-input"]
fig = plots.plot_similarity_gap(
    {
        "VAE": similarity["VAE"], "VAE, centred": centred["VAE, centred"],
        "untrained encoder": baselines["untrained encoder"], "untrained encoder, centred": baselines["untrained encoder, centred"],
        "PCA": baselines["PCA"], "random components": similarity["random components"],
    },
    title="Departure from an exactly linear encoder, all decomposed materials",
)

# %% [markdown]
# ## Decoding the combination
#
# If the latent space preserves decomposition, the combined code $\sum_k a_k \mu(x_k)$ should decode to the
# material itself. Both it and the material's own code $\mu(x)$ (a plain reconstruction) are decoded with the
# decoder given the material's class $y$ and turned into formulas with the paper's rule at the threshold $T$.

# %% tags=["nbval-ignore-output"]
decoding = latent.decode_combination(model, codes, component_row, component_amount, rows, dataset.y, threshold=settings.threshold)
rates = latent.decoding_rates(decoding, dataset.formula, dataset.counts)
rates.style.format("{:.1%}")

# %% tags=["nbval-ignore-output", "hide-input"]
picked = np.random.default_rng(settings.seed).choice(len(rows), size=min(settings.n_examples, len(rows)), replace=False)
pd.DataFrame({
    "material": dataset.formula[rows[picked]],
    "components": [
        " + ".join(f"{a:.2f} {dataset.formula[r]}" for r, a in zip(component_row[i], component_amount[i]) if r >= 0)
        for i in rows[picked]
    ],
    "decoded combination": [decoding.combination.formulas[p] or "(nothing above T)" for p in picked],
    "decoded μ(x)": [decoding.reconstruction.formulas[p] or "(nothing above T)" for p in picked],
})

# %% tags=["nbval-ignore-output", "hide-input"]
med = summary["median"]
vae, vae_c = med[("VAE", "all")], med[("VAE, centred", "all")]
null_best = max(med[("random components", "all")], med[("random pairs", "all")])
null_best_c = max(med[("random components, centred", "all")], med[("random pairs, centred", "all")])
share_high = summary.loc[("VAE", "all"), f"share > {settings.high_similarity:g}"]
verdict = prose.null_verdict(vae, vae_c, null_best, null_best_c)
gap_all = gap.loc["all"]
ratio = gap_all["VAE, centred"] / gap_all["untrained encoder, centred"]
exact_comb, exact_rec = rates.iloc[1]["exact formula"], rates.iloc[0]["exact formula"]
elements_comb, elements_rec = rates.iloc[1]["same elements"], rates.iloc[0]["same elements"]
for key, value in {
    "vae_median": vae, "vae_centred_median": vae_c, "null_median": null_best, "null_centred_median": null_best_c,
    "share_high": share_high, "high_similarity": settings.high_similarity,
    "pca_departure": np.abs(1 - baselines["PCA"]).max(), "gap_vae": gap_all["VAE"], "gap_vae_centred": gap_all["VAE, centred"],
    "gap_untrained": gap_all["untrained encoder"], "gap_untrained_centred": gap_all["untrained encoder, centred"],
    "linearity_ratio": ratio, "exact_combination": exact_comb, "exact_own": exact_rec,
    "elements_combination": elements_comb, "elements_own": elements_rec,
}.items():
    glue(key, float(value), display=False)
glue("figure8_verdict", prose.figure8_verdict(vae, settings.high_similarity), display=False)
glue("null_verdict", prose.NULL_VERDICTS[verdict], display=False)
glue("linearity_verdict", prose.linearity_verdict(ratio), display=False)
glue("decoding_verdict", prose.decoding_verdict(exact_comb, exact_rec, elements_comb, elements_rec), display=False)

# %% [markdown]
# ## What this shows
#
# Each statement below is filled in from the numbers above, so it stays true when the chapter is rerun with
# another model.
#
# **{glue:text}`figure8_verdict`** The median similarity of the {glue:text}`n_decomposed:,d` decomposed materials is
# {glue:text}`vae_median:.6f`, and {glue:text}`share_high:.1%` exceed {glue:text}`high_similarity:g` (model after
# {glue:text}`epoch:d` epochs).
#
# **Against the nulls.** The higher null median is {glue:text}`null_median:.4f` ({glue:text}`null_centred_median:.4f`
# after centring), against the VAE's {glue:text}`vae_median:.6f` ({glue:text}`vae_centred_median:.6f` centred):
# {glue:text}`null_verdict`.
#
# **Against linear and untrained encoders.** PCA gives 1 to within {glue:text}`pca_departure:.0e`. The median
# departure from 1 is {glue:text}`gap_vae:.1e` for the trained encoder ({glue:text}`gap_vae_centred:.1e` centred)
# and {glue:text}`gap_untrained:.1e` for the same network with random weights
# ({glue:text}`gap_untrained_centred:.1e` centred). Since $x = \sum_k a_k x_k$ exactly, a similarity near 1 is what
# any encoder that is close to affine on the compositions gives, with or without training. Centred, the trained
# encoder departs from linear {glue:text}`linearity_ratio:.2f` times as far as the untrained one:
# {glue:text}`linearity_verdict`.
#
# **Decoding.** The combined code decodes to the exact formula for {glue:text}`exact_combination:.1%` of the
# materials and to the right set of elements for {glue:text}`elements_combination:.1%`; decoding $\mu(x)$ itself
# gives {glue:text}`exact_own:.1%` and {glue:text}`elements_own:.1%`. {glue:text}`decoding_verdict`

# %% tags=["hide-input"]
record(
    settings.results_dir,
    "05_decomposition",
    {
        "epoch": saved.epoch,
        "n_decomposed": len(rows),
        "test_kl": kl,
        "medians": {measure: med[measure].to_dict() for measure in med.index.get_level_values("measure").unique()},
        "share_high": share_high,
        "high_similarity": settings.high_similarity,
        "null_verdict": verdict,
        "pca_max_departure": float(np.abs(1 - baselines["PCA"]).max()),
        "median_departure": gap_all.to_dict(),
        "decoding": rates.to_dict(orient="index"),
    },
)
