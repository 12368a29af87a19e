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
# New materials come from the generative story of the model: $z \sim \mathcal{N}(0, I)$, $y$ from the class
# prior, the decoder's mean, then the decoding rule. The paper draws 10,000 samples and compares their
# element prevalence (Figure 6, KL 0.08) and their number of elements per material (Figure 7) with the
# data's. This chapter reproduces both figures and then asks what the field asks of generated compositions
# (chemical validity, uniqueness, novelty, the distribution of the number of elements), next to two honest
# baselines computed with the same code: the held-out test split itself (the ceiling) and a random sampler
# that knows only the data's marginals.

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
from IPython.display import Markdown, display

from matvae import literature, metrics, paper, plots
from matvae.baselines import MarginalSampler, sample_test_split
from matvae.composition import DECODE_RULES
from matvae.data import SplitData
from matvae.params import check_int, check_str
from matvae.results import record, save_figure
from matvae.sampling import SampleConfig, reconstruct, sample
from matvae.training import load_model
from matvae.validity import CHECKS, SMACT_VERSION

configs = {rule: SampleConfig(n_samples=n_samples, threshold=threshold, rule=rule, max_atoms=max_atoms, seed=seed) for rule in DECODE_RULES}
check_str("checkpoint", checkpoint, allow_empty=False)
check_int("n_processes", n_processes, minimum=0)
check_int("n_show", n_show, minimum=0)
check_str("results_dir", results_dir, allow_empty=False)
check_str("figures_dir", figures_dir, allow_empty=False)
split = SplitData.load(data_file)
model = load_model(checkpoint)
processes = n_processes or None
data = split.dataset
plots.use_style()
configs["paper"]

# %% [markdown]
# ## The samples

# %% tags=["nbval-ignore-output"]
samples = {rule: sample(model, c.n_samples, threshold=c.threshold, rule=c.rule, max_atoms=c.max_atoms, seed=c.seed) for rule, c in configs.items()}
main = samples["paper"]
display(
    Markdown(
        f"{len(main):,} samples; {main.valid.mean():.1%} decode to a formula with the paper's rule "
        f"({(~main.valid).sum():,} have no element at or above T)."
    )
)
pd.DataFrame(
    {"class y": main.classes[:n_show], "paper rule": main.formulas[:n_show], "nearest rule": samples["nearest"].formulas[:n_show]}
).fillna("(nothing above T)")

# %% [markdown]
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
fig = plots.plot_prevalence(data_prevalence, sample_prevalence, kl=kl)
save_figure(fig, f"{figures_dir}/prevalence.png")
over, under = metrics.represented_elements(data_prevalence, sample_prevalence)
display(
    Markdown(
        f"KL(data ‖ samples) = **{kl:.3f}** nats (the paper: {paper.PREVALENCE_KL}); Jensen-Shannon "
        f"{metrics.jensen_shannon(data_prevalence, sample_prevalence):.3f} nats.\n\n"
        f"| | here | the paper |\n| --- | --- | --- |\n"
        f"| most over-represented in the samples | {', '.join(over)} | {', '.join(paper.OVER_REPRESENTED)} |\n"
        f"| most under-represented | {', '.join(under)} | {', '.join(paper.UNDER_REPRESENTED)} |\n"
        f"| shared with the paper's lists | {', '.join(sorted(set(over) & set(paper.OVER_REPRESENTED))) or 'none'} / "
        f"{', '.join(sorted(set(under) & set(paper.UNDER_REPRESENTED))) or 'none'} | |"
    )
)

# %% [markdown]
# ## Figure 7: elements per material

# %% tags=["nbval-ignore-output"]
support = range(1, max(int(metrics.elements_per_material(data.counts).max()), 10) + 1)
distributions = {
    "data": metrics.count_distribution(np.minimum(metrics.elements_per_material(data.counts), support[-1]), support=support, normalize=True),
    "samples": metrics.count_distribution(np.minimum(metrics.elements_per_material(main.counts[main.valid]), support[-1]), support=support, normalize=True),
}
distributions = {name: d.rename(index={support[-1]: f"{support[-1]}+"}) for name, d in distributions.items()}
fig = plots.plot_distributions(distributions, xlabel="number of elements in the material", title="Elements per material: data vs samples (paper's rule)")
save_figure(fig, f"{figures_dir}/elements_per_material.png")
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
train_formulas = set(split.train.formula)
test = split.test
sets = {
    "test split": sample_test_split(test.counts, n_samples, seed=seed),
    "random (marginals)": MarginalSampler.fit(split.train.counts).sample(n_samples, seed=seed),
    "VAE, paper rule": (samples["paper"].counts, samples["paper"].formulas),
    "VAE, nearest rule": (samples["nearest"].counts, samples["nearest"].formulas),
}
table = metrics.generation_table(
    sets, data_counts=data.counts, train_formulas=train_formulas, test_counts=test.counts, n_processes=processes
)
floor = metrics.n_elements_wasserstein(split.train.counts, test.counts)
display(Markdown(f"Noise floor of the # elements distance (training split vs test split): **{floor:.4f}**. SMACT version {SMACT_VERSION}. " + " ".join(table.attrs["notes"])))
percent = ["decoded", "uniqueness", "novelty", "too_many_for_smact", *CHECKS]
table.style.format(na_rep="-", formatter={**{c: "{:.1%}" for c in percent}, "prevalence_kl": "{:.3f}", "prevalence_js": "{:.3f}",
                    "novel_formulas": "{:,.0f}", "n_elements_wasserstein": "{:.3f}", "mean_elements": "{:.2f}"})

# %% [markdown]
# Numbers other papers report, **for other models on other data** (not comparable one-to-one: other training
# sets, sample sizes and, for CDVAE, crystal structures):

# %%
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
        reconstruct(model, test.x, y=test.y, threshold=threshold, rule=rule, max_atoms=max_atoms).formulas, list(test.formula)
    )
    for rule in DECODE_RULES
}
pd.Series(exact, name="exact formula").to_frame().T.style.format("{:.1%}")

# %% tags=["nbval-ignore-output"]
record(
    results_dir,
    "04_sampling",
    {
        "n_samples": n_samples,
        "threshold": threshold,
        "decoded": float(main.valid.mean()),
        "prevalence_kl": kl,
        "prevalence_js": metrics.jensen_shannon(data_prevalence, sample_prevalence),
        "over_represented": over,
        "under_represented": under,
        "elements_per_material": {name: d.to_dict() for name, d in distributions.items()},
        "n_elements_noise_floor": floor,
        "table": table.to_dict(orient="index"),
        "reconstruction_exact": exact,
        "smact_version": SMACT_VERSION,
    },
)
