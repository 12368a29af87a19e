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
# # Sampling: Figures 6 and 7, and how good the samples are
#
# **What this chapter shows.** New materials come from the generative story of the model: $z \sim \mathcal{N}(0, I)$,
# $y$ from the class prior, the decoder's mean, then the decoding rule. This chapter draws the paper's 10,000
# samples, reproduces its Figures 6 and 7, and then asks what the field asks of generated compositions (chemical
# validity, uniqueness, novelty, the distribution of the number of elements), next to two honest baselines
# computed with the same code: the held-out test split itself (the ceiling) and a random sampler that knows only
# the data's marginals.
#
# **The paper's claim it tests.** That the samples match the data: their element prevalence is close to the
# data's (Figure 6, a KL divergence of 0.08, with O, F, C, N, Li and P over-represented and Mg, Co, Cu, S and Si
# under-represented), and so is their number of elements per material (Figure 7).

# %% tags=["parameters"]
data_file = "artifacts/data.npz"  # the split dataset written by 01_data
checkpoint = "artifacts/vae-paper.pt"  # the model of 02_model
n_samples = 10000  # the paper: 10,000
threshold = 0.04  # the paper's T
max_atoms = 50  # largest formula unit of the "nearest" rule
seed = 0  # seed of the samples and of the baselines
n_processes = 0  # processes for the SMACT checks (0: all CPUs)
n_show = 20  # samples listed
results_dir = "artifacts/results"  # where the numbers for the reproduction report are written
figures_dir = "figures"  # where Figures 6 and 7 are saved as PNG (for the README)

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
from myst_nb import glue

from matvae import literature, metrics, paper, plots, prose
from matvae.baselines import MarginalSampler, sample_test_split
from matvae.chapters import SamplingSettings
from matvae.composition import DECODE_RULES
from matvae.data import SplitData
from matvae.results import record, save_figure
from matvae.sampling import reconstruct, sample
from matvae.training import load_model
from matvae.validity import CHECKS, SMACT_VERSION

settings = SamplingSettings(
    data_file=data_file, checkpoint=checkpoint, n_samples=n_samples, threshold=threshold, max_atoms=max_atoms, seed=seed,
    n_processes=n_processes, n_show=n_show, results_dir=results_dir, figures_dir=figures_dir,
)
split = SplitData.load(settings.data_file)
model = load_model(settings.checkpoint)
data = split.dataset
plots.use_style()

# %% [markdown]
# ## The samples

# %% tags=["nbval-ignore-output"]
samples = {rule: sample(model, c.n_samples, threshold=c.threshold, rule=c.rule, max_atoms=c.max_atoms, seed=c.seed)
           for rule, c in settings.configs.items()}
main = samples["paper"]
glue("n_samples", len(main), display=False)
glue("decoded", float(main.valid.mean()), display=False)
glue("n_undecoded", int((~main.valid).sum()), display=False)
pd.DataFrame(
    {"class y": main.classes[:settings.n_show], "paper rule": main.formulas[:settings.n_show],
     "nearest rule": samples["nearest"].formulas[:settings.n_show]}
).fillna("(nothing above T)")

# %% [markdown]
# {glue:text}`n_samples:,d` samples; {glue:text}`decoded:.1%` decode to a formula with the paper's rule
# ({glue:text}`n_undecoded:,d` have no element at or above T). The first ones are listed above.
#
# ## Figure 6: element prevalence
#
# Prevalence, as the paper defines it: the modified 1-hot (atom count) vectors summed over all materials and
# normalised over the elements. The divergence is $\mathrm{KL}(p_\text{data} \,\|\, p_\text{samples}) =
# \sum_j p_j \log(p_j / q_j)$ in nats, both distributions smoothed by adding $10^{-6}$ to every element
# and renormalising, so that an element the samples never produce costs a large but finite amount.

# %% tags=["nbval-ignore-output"]
data_prevalence = metrics.prevalence(data.counts)
sample_prevalence = metrics.prevalence(main.counts[main.valid])
kl = metrics.prevalence_kl(data_prevalence, sample_prevalence)
js = metrics.jensen_shannon(data_prevalence, sample_prevalence)
over, under = metrics.represented_elements(data_prevalence, sample_prevalence)
glue("prevalence_kl", float(kl), display=False)
glue("prevalence_js", float(js), display=False)
glue("over", prose.names(over), display=False)
glue("under", prose.names(under), display=False)
glue("shared_over", prose.names(sorted(set(over) & set(paper.OVER_REPRESENTED))), display=False)
glue("shared_under", prose.names(sorted(set(under) & set(paper.UNDER_REPRESENTED))), display=False)
glue("prevalence_verdict", prose.prevalence_verdict(kl, paper.PREVALENCE_KL), display=False)

# %% tags=["nbval-ignore-output", "hide-input"]
fig = plots.plot_prevalence(data_prevalence, sample_prevalence, kl=kl)
save_figure(fig, f"{settings.figures_dir}/prevalence.png")

# %% [markdown]
# KL(data ‖ samples) = **{glue:text}`prevalence_kl:.3f`** nats (the paper: 0.08); Jensen-Shannon
# {glue:text}`prevalence_js:.3f` nats.
#
# | | here | the paper |
# | --- | --- | --- |
# | most over-represented in the samples | {glue:text}`over` | O, F, C, N, Li, P |
# | most under-represented | {glue:text}`under` | Mg, Co, Cu, S, Si |
# | shared with the paper's lists | {glue:text}`shared_over` / {glue:text}`shared_under` | |
#
# ## Figure 7: elements per material

# %% tags=["nbval-ignore-output", "hide-input"]
support = range(1, max(int(metrics.elements_per_material(data.counts).max()), 10) + 1)
distributions = {
    "data": metrics.count_distribution(np.minimum(metrics.elements_per_material(data.counts), support[-1]), support=support, normalize=True),
    "samples": metrics.count_distribution(np.minimum(metrics.elements_per_material(main.counts[main.valid]), support[-1]), support=support, normalize=True),
}
distributions = {name: d.rename(index={support[-1]: f"{support[-1]}+"}) for name, d in distributions.items()}
fig = plots.plot_distributions(distributions, xlabel="number of elements in the material", title="Elements per material: data vs samples (paper's rule)")
save_figure(fig, f"{settings.figures_dir}/elements_per_material.png")
pd.DataFrame(distributions).T.style.format("{:.2%}")

# %% [markdown]
# ## Generation metrics against baselines
#
# The same metrics for four sets of the same size: the held-out **test split** (real, unseen materials: the
# ceiling), a **random** sampler that knows only the training data's marginals (number of elements, how often
# each element occurs, the counts), and the VAE decoded with each rule.
#
# - **decoded**: share of samples with at least one element at or above $T$.
# - **prevalence KL / JS**: as above, against the whole dataset.
# - **validity** (SMACT, version below): share of all samples that pass; the four variants are explained in
#   `matvae.validity` (defaults with ICSD24 oxidation states; the `smact14` set of CDVAE-era papers; charge
#   neutrality alone; charge neutrality plus the Pauling electronegativity test).
# - **uniqueness**: distinct formulas / samples. **novelty**: distinct formulas absent from the training split,
#   as a share of the distinct formulas.
# - **too many for SMACT**: share of samples with more than 8 elements, which SMACT's exponential search is
#   not run on; they count as invalid.
# - **# elements W1**: Wasserstein-1 distance between the number of elements per material of the set and of
#   the test split (CDVAE's "# elem"); the train/test distance is the noise floor.

# %% tags=["nbval-ignore-output"]
test = split.test
sets = {
    "test split": sample_test_split(test.counts, settings.n_samples, seed=settings.seed),
    "random (marginals)": MarginalSampler.fit(split.train.counts).sample(settings.n_samples, seed=settings.seed),
    "VAE, paper rule": (samples["paper"].counts, samples["paper"].formulas),
    "VAE, nearest rule": (samples["nearest"].counts, samples["nearest"].formulas),
}
table = metrics.generation_table(
    sets, data_counts=data.counts, train_formulas=set(split.train.formula), test_counts=test.counts,
    n_processes=settings.processes,
)
floor = metrics.n_elements_wasserstein(split.train.counts, test.counts)
glue("floor", float(floor), display=False)
glue("smact_version", SMACT_VERSION, display=False)
glue("table_notes", " ".join(table.attrs["notes"]), display=False)
for name, key in (("test split", "test"), ("random (marginals)", "random"), ("VAE, paper rule", "paper"), ("VAE, nearest rule", "nearest")):
    glue(f"valid_{key}", float(table.loc[name, "smact (ICSD24)"]), display=False)
glue("uniqueness_paper", float(table.loc["VAE, paper rule", "uniqueness"]), display=False)
glue("novelty_paper", float(table.loc["VAE, paper rule", "novelty"]), display=False)
glue("validity_verdict", prose.validity_verdict(table.loc["VAE, paper rule", "smact (ICSD24)"],
                                                table.loc["random (marginals)", "smact (ICSD24)"]), display=False)
percent = ["decoded", "uniqueness", "novelty", "too_many_for_smact", *CHECKS]
table.style.format(na_rep="-", formatter={**{c: "{:.1%}" for c in percent}, "prevalence_kl": "{:.3f}", "prevalence_js": "{:.3f}",
                   "novel_formulas": "{:,.0f}", "n_elements_wasserstein": "{:.3f}", "mean_elements": "{:.2f}"})

# %% [markdown]
# Noise floor of the # elements distance (training split vs test split): **{glue:text}`floor:.4f`**. SMACT version
# {glue:text}`smact_version`. {glue:text}`table_notes`
#
# Numbers other papers report, **for other models on other data** (not comparable one-to-one: other training
# sets, sample sizes and, for CDVAE, crystal structures):

# %% tags=["hide-input"]
pd.DataFrame(literature.REPORTED).set_index("work").style.format(
    "{:.1%}", na_rep="-", subset=["charge-neutral", "charge-neutral + EN-balanced", "smact (smact14)"]
)

# %% [markdown]
# ## Reconstruction under both rules
#
# The test split encoded to $\mu(x)$ and decoded with its true class: how often the exact formula comes back.

# %% tags=["nbval-ignore-output"]
exact = {
    rule: metrics.exact_match_rate(
        reconstruct(model, test.x, y=test.y, threshold=settings.threshold, rule=rule, max_atoms=settings.max_atoms).formulas,
        list(test.formula),
    )
    for rule in DECODE_RULES
}
glue("exact_paper", float(exact["paper"]), display=False)
glue("exact_nearest", float(exact["nearest"]), display=False)
pd.Series(exact, name="exact formula").to_frame().T.style.format("{:.1%}")

# %% tags=["hide-input"]
record(
    settings.results_dir,
    "04_sampling",
    {
        "n_samples": settings.n_samples,
        "threshold": settings.threshold,
        "decoded": float(main.valid.mean()),
        "prevalence_kl": kl,
        "prevalence_js": js,
        "over_represented": over,
        "under_represented": under,
        "elements_per_material": {name: d.to_dict() for name, d in distributions.items()},
        "n_elements_noise_floor": floor,
        "table": table.to_dict(orient="index"),
        "reconstruction_exact": exact,
        "smact_version": SMACT_VERSION,
    },
)

# %% [markdown]
# ## What this shows
#
# - **Figure 6**: the samples' element prevalence is {glue:text}`prevalence_kl:.3f` nats from the data's
#   (the paper: 0.08): {glue:text}`prevalence_verdict`. Of the elements the samples over- and under-represent,
#   these are on the paper's lists: {glue:text}`shared_over` / {glue:text}`shared_under`.
# - **Validity**: {glue:text}`valid_paper:.1%` of the VAE's samples pass SMACT (paper's rule), against
#   {glue:text}`valid_random:.1%` for the random sampler and {glue:text}`valid_test:.1%` for real test materials:
#   {glue:text}`validity_verdict`.
# - {glue:text}`uniqueness_paper:.1%` of the samples are distinct and {glue:text}`novelty_paper:.1%` of those are
#   absent from the training split; a test material's mean code decodes to its exact formula
#   {glue:text}`exact_paper:.1%` of the time with the paper's rule, {glue:text}`exact_nearest:.1%` with the
#   nearest rule.
