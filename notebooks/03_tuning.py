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
# # Tuning: the KL weight, the hidden width (Figure 5) and the threshold T
#
# **What this chapter shows.** Three sweeps. First one setting the paper does not vary: the weight $\beta$ of the
# KL term. With $\beta = 1$ (the ELBO, the paper's objective) the model of the previous chapter ignores its latent
# code; this chapter shows why, sweeps $\beta$, and picks the value the later chapters use. Then the paper's own
# two: the hidden width (its Figure 5) and the threshold $T$ of the decoding rule.
#
# **The paper's claim it tests.** That, judged by the test negative ELBO and by how far the element prevalence of
# 10,000 samples is from the data's (a KL divergence), 100 units per hidden layer is the best width between 50
# and 500; and that $T = 0.04$ makes the number of elements per material of the samples "match the distribution
# of the number of elements per material in the dataset".

# %% tags=["parameters"]
data_file = "artifacts/data.npz"  # the split dataset written by 01_data
checkpoint = "artifacts/vae-paper.pt"  # the model of 02_model, used for the threshold sweep
sweep_dir = "artifacts/sweep-paper"  # one checkpoint per model of the sweeps (resumable)
kl_weights = "1,0.3,0.1,0.03,0.01,0.003"  # values of beta to compare (1 is the ELBO)
widths = "50,100,150,200,250,300,350,400,450,500"  # the paper's range
epochs = 2000  # per model of the width sweep; the paper: 2,000
beta_epochs = 2000  # per model of the beta sweep (trained stacked, all six at once); the paper: 2,000
kl_weight = 0.03  # beta of the width sweep (the value chosen for the later chapters)
latent_dim = 10
batch_size = 1024
learning_rate = 0.001
seed = 0
device = "auto"
oversample_factor = 20
compile = False
backend = "local"  # where the sweep models train: local (this process) or ray (Ray tasks on the cluster named by RAY_ADDRESS, else a local one)
n_samples = 10000  # samples per width for the prevalence KL
threshold = 0.04  # T used while sweeping the width
thresholds = "0.01,0.02,0.03,0.04,0.05,0.06,0.07,0.08,0.09,0.1"  # values of T to compare
results_dir = "artifacts/results"  # where the numbers for the reproduction report are written
plateau_dir = ""  # checkpoints of the width sweep trained to its plateau (empty: that section is skipped)
plateau_epochs = 2000  # the most epochs a width trains before the plateau rule stops it
plateau_window = 50  # plateau rule: window in epochs
plateau_tolerance = 0.005  # plateau rule: the window must improve the best test loss by less than this fraction

# %% tags=["hide-input"]
from dataclasses import replace

from myst_nb import glue

from matvae import metrics, paper, plots, prose
from matvae.chapters import TuningSettings
from matvae.data import SplitData
from matvae.results import record
from matvae.sampling import sample
from matvae.stacked import stacked_sweep
from matvae.training import load_model
from matvae.tuning import (
    best_threshold,
    choose_kl_weight,
    choose_width,
    convergence_table,
    prevalence_kl_spread,
    sweep,
    sweep_checkpoint,
    sweep_thresholds,
)

settings = TuningSettings(
    data_file=data_file, checkpoint=checkpoint, sweep_dir=sweep_dir, kl_weights=kl_weights, widths=widths,
    epochs=epochs, kl_weight=kl_weight, latent_dim=latent_dim, batch_size=batch_size, learning_rate=learning_rate,
    seed=seed, device=device, oversample_factor=oversample_factor, compile=compile, backend=backend,
    n_samples=n_samples, threshold=threshold, thresholds=thresholds, results_dir=results_dir, plateau_dir=plateau_dir,
    plateau_epochs=plateau_epochs, plateau_window=plateau_window, plateau_tolerance=plateau_tolerance,
    beta_epochs=beta_epochs,
)
model_config, train_config, sample_config = settings.model_config, settings.train_config, settings.sample_config
split = SplitData.load(settings.data_file)
plots.use_style()
glue("n_betas", len(settings.beta_list), display=False)
glue("n_widths", len(settings.width_list), display=False)
glue("width_list", ", ".join(map(str, settings.width_list)), display=False)
glue("epochs", train_config.epochs, display=False)
glue("beta_epochs", settings.beta_epochs, display=False)
glue("n_samples", sample_config.n_samples, display=False)

# %% [markdown]
# **Scale of this run:** {glue:text}`n_betas` values of β at {glue:text}`beta_epochs:,d` epochs each (trained
# together, stacked) and {glue:text}`n_widths` widths ({glue:text}`width_list`) at {glue:text}`epochs:,d` epochs
# each, {glue:text}`n_samples:,d` samples per model.
#
# ## The KL weight β: why the paper's objective ignores the latent code
#
# The reconstruction term treats each of the 89 atomic fractions as the probability of a Bernoulli variable.
# For a material whose element sets and proportions the decoder cannot guess, telling it the composition
# through $z$ saves at most the gap between that loss for the marginal guess and for the exact fractions.
# Those few nats are smaller than what naming one composition among ~10⁵ costs in the KL term, so the ELBO
# is best served by a code that carries (almost) nothing: posterior collapse. The paragraph after the sweep measures
# the gap on the test split. A weight $\beta < 1$ on the KL term (a β-VAE) makes the information worth
# encoding; each value is trained like the model chapter's model, all of them at once (one step updates every
# model, `matvae.stacked`: the same models as trained one after another, to float32 rounding).

# %% tags=["nbval-ignore-output"]
entropy_floor = metrics.bernoulli_entropy(split.test.x)
beta_sweep = stacked_sweep(
    split.train, split.test, "kl_weight", settings.beta_list, replace(model_config, hidden_dim=paper.HIDDEN_DIM),
    settings.beta_config, checkpoint_dir=settings.sweep_dir, reference_counts=split.dataset.counts,
    n_samples=sample_config.n_samples, threshold=sample_config.threshold, seed=sample_config.seed, backend=settings.backend,
)
chosen_beta = choose_kl_weight(beta_sweep)
at_one = prose.beta_one(beta_sweep)
glue("entropy_floor", float(entropy_floor), display=False)
glue("chosen_beta", float(chosen_beta), display=False)
glue("kl_weight", model_config.kl_weight, display=False)
for key, value in at_one.values.items():
    glue(f"beta1_{key}", value, display=False)
glue("beta1_verdict", at_one.verdict, display=False)
beta_sweep.style.format({"kl_weight": "{:g}", "test_nelbo": "{:.3f}", "test_rec": "{:.3f}", "test_kl": "{:.3f}", "prevalence_kl": "{:.3f}", "prevalence_js": "{:.3f}",
                         "uniqueness": "{:.1%}", "reconstructed_elements": "{:.1%}", "train_seconds": "{:.0f}", "wall_seconds": "{:.0f}",
                         "n_parameters": "{:,}"}).hide(axis="index")

# %% tags=["nbval-ignore-output", "hide-input"]
fig = plots.plot_kl_weight_sweep(beta_sweep, chosen=chosen_beta, title=f"hidden width {paper.HIDDEN_DIM}, {settings.beta_epochs:,} epochs per model")

# %% [markdown]
# The best reconstruction term possible on the test split (decoder output = x itself) is
# **{glue:text}`entropy_floor:.3f`** nats per material. At β = 1 the test KL term is {glue:text}`beta1_test_kl:.2g`
# nats ({glue:text}`beta1_verdict`); {glue:text}`beta1_uniqueness:.1%` of the samples are distinct,
# {glue:text}`beta1_reconstructed:.1%` of the test element sets come back through μ(x), and the prevalence KL is
# {glue:text}`beta1_prevalence_kl:.2f`.
#
# The samples' prevalence is closest to the data's at **β = {glue:text}`chosen_beta:g`**; the width sweep below and
# the later chapters use β = {glue:text}`kl_weight:g`.
#
# ## Figure 5: the hidden width
#
# One model per width, trained exactly like the model chapter's (with the β above) but for the width; each is
# checkpointed, so the sweep can be stopped and resumed. The prevalence KL is KL(data ‖ samples) over the 89
# elements (see the sampling chapter for its definition).

# %% tags=["nbval-ignore-output"]
width_sweep = sweep(
    split.train, split.test, "hidden_dim", settings.width_list, model_config, train_config, checkpoint_dir=settings.sweep_dir,
    reference_counts=split.dataset.counts, n_samples=sample_config.n_samples, threshold=sample_config.threshold,
    seed=sample_config.seed, backend=settings.backend,
)
chosen = choose_width(width_sweep)
best_nelbo = int(width_sweep.loc[width_sweep["test_nelbo"].idxmin(), "hidden_dim"])
best_kl = int(width_sweep.loc[width_sweep["prevalence_kl"].idxmin(), "hidden_dim"])
glue("chosen_width", int(chosen), display=False)
glue("best_nelbo_width", best_nelbo, display=False)
glue("best_kl_width", best_kl, display=False)
glue("width_verdict", prose.width_verdict(chosen, paper.HIDDEN_DIM), display=False)
width_sweep.style.format({"test_nelbo": "{:.4f}", "test_rec": "{:.3f}", "test_kl": "{:.3f}", "prevalence_kl": "{:.4f}", "prevalence_js": "{:.4f}",
                          "uniqueness": "{:.1%}", "reconstructed_elements": "{:.1%}", "train_seconds": "{:.0f}", "wall_seconds": "{:.0f}",
                          "n_parameters": "{:,}"}).hide(axis="index")

# %% tags=["nbval-ignore-output", "hide-input"]
fig = plots.plot_width_sweep(width_sweep, chosen=chosen, paper_width=paper.HIDDEN_DIM,
                             title=f"Figure 5: β = {model_config.kl_weight:g}, {settings.epochs} epochs per width")

# %% [markdown]
# The lowest test NELBO is at width {glue:text}`best_nelbo_width`, the lowest prevalence KL at width
# {glue:text}`best_kl_width`. Scoring each width by the sum of its two metrics, each rescaled to 0..1 over the sweep,
# picks **{glue:text}`chosen_width`** (the paper: 100). {glue:text}`width_verdict`
#
# ## The threshold T
#
# The decoder's means of one set of samples from the model chapter's model are decoded at every $T$; each
# $T$ gives a distribution of the number of elements per material, compared with the data's by the
# Wasserstein-1 distance (and the total-variation distance).

# %% tags=["nbval-ignore-output"]
model = load_model(settings.checkpoint)
means = sample(model, sample_config.n_samples, threshold=sample_config.threshold, seed=sample_config.seed).probabilities
threshold_sweep = sweep_thresholds(means, split.dataset.counts, settings.threshold_list)
best = best_threshold(threshold_sweep)
glue("best_threshold", float(best), display=False)
glue("threshold_verdict", prose.threshold_verdict(best, paper.THRESHOLD), display=False)
threshold_sweep.style.format({"threshold": "{:.2f}", "wasserstein": "{:.3f}", "total_variation": "{:.3f}", "decoded": "{:.1%}", "mean_elements": "{:.2f}"}).hide(axis="index")

# %% tags=["nbval-ignore-output", "hide-input"]
fig = plots.plot_threshold_sweep(threshold_sweep, best=best, paper_threshold=paper.THRESHOLD)

# %% [markdown]
# The number-of-elements distribution is closest to the data's at **T = {glue:text}`best_threshold:g`** (the
# paper: 0.04).

# %% [markdown]
# ## Figure 5 again, each width trained to its plateau
#
# The width sweep above gives every width the same number of epochs, so a wide model may simply not have finished
# learning. Here each width trains until the plateau rule of the model chapter holds: the best test loss of the
# last {glue:text}`plateau_window` epochs improves on the best before them by less than
# {glue:text}`plateau_tolerance:.1%` (`matvae.training.plateaued`; at most {glue:text}`plateau_epochs:,d` epochs), and
# the best T is measured again on the paper's width trained that way. The paper's width is also sampled under five
# sampling seeds, to show how much of the widths' differences in prevalence KL sampling alone makes.

# %% tags=["nbval-ignore-output"]
if settings.plateau_dir:
    plateau_sweep = sweep(
        split.train, split.test, "hidden_dim", settings.width_list, model_config, settings.plateau_config,
        checkpoint_dir=settings.plateau_dir, reference_counts=split.dataset.counts, n_samples=sample_config.n_samples,
        threshold=sample_config.threshold, seed=sample_config.seed, backend=settings.backend,
    )
    comparison = convergence_table(width_sweep, plateau_sweep)
    threshold_width = paper.HIDDEN_DIM if paper.HIDDEN_DIM in settings.width_list else int(comparison.loc[comparison["chosen_converged"], "hidden_dim"].iloc[0])
    converged_model = load_model(sweep_checkpoint(settings.plateau_dir, "hidden_dim", threshold_width))
    converged_means = sample(converged_model, sample_config.n_samples, threshold=sample_config.threshold, seed=sample_config.seed).probabilities
    converged_thresholds = sweep_thresholds(converged_means, split.dataset.counts, settings.threshold_list)
    best_converged = best_threshold(converged_thresholds)
    kl_spread = prevalence_kl_spread(converged_model, split.dataset.counts, n_samples=sample_config.n_samples,
                                     threshold=sample_config.threshold, seeds=range(sample_config.seed, sample_config.seed + 5))
    convergence = prose.convergence_verdict(comparison, short_epochs=settings.epochs, paper_width=paper.HIDDEN_DIM,
                                            threshold_short=best, threshold_converged=best_converged,
                                            threshold_width=threshold_width, paper_threshold=paper.THRESHOLD,
                                            kl_spread=kl_spread)
    fig = plots.plot_width_convergence(comparison, short_epochs=settings.epochs,
                                       title=f"Figure 5, β = {model_config.kl_weight:g}: {settings.epochs} epochs per width against each width's plateau")
else:
    comparison, best_converged, kl_spread = None, None, None
    convergence = "Not run at this scale (the plateau_dir parameter is empty)."
glue("plateau_window", settings.plateau_window, display=False)
glue("plateau_tolerance", settings.plateau_tolerance, display=False)
glue("plateau_epochs", settings.plateau_epochs, display=False)
glue("convergence_verdict", convergence, display=False)
comparison if comparison is None else comparison.style.format(
    {"test_nelbo_short": "{:.4f}", "test_nelbo_converged": "{:.4f}", "prevalence_kl_short": "{:.4f}",
     "prevalence_kl_converged": "{:.4f}", "epochs_short": "{:,}", "epochs_converged": "{:,}"}).hide(axis="index")

# %% [markdown]
# {glue:text}`convergence_verdict`

# %% tags=["hide-input"]
columns = ["test_nelbo", "test_rec", "test_kl", "prevalence_kl", "uniqueness", "reconstructed_elements"]
record(
    settings.results_dir,
    "03_tuning",
    {
        "epochs": settings.epochs,
        "beta_epochs": settings.beta_epochs,
        "n_samples": settings.n_samples,
        "kl_weight": model_config.kl_weight,
        "beta_sweep": beta_sweep[["kl_weight", *columns]].to_dict(orient="records"),
        "chosen_beta": chosen_beta,
        "width_sweep": width_sweep[["hidden_dim", *columns]].to_dict(orient="records"),
        "chosen_width": chosen,
        "best_nelbo_width": best_nelbo,
        "best_kl_width": best_kl,
        "threshold_sweep": threshold_sweep.to_dict(orient="records"),
        "best_threshold": best,
        "plateau": None if comparison is None else {
            "window": settings.plateau_window, "tolerance": settings.plateau_tolerance, "max_epochs": settings.plateau_epochs,
            "comparison": comparison.to_dict(orient="records"), "best_threshold": best_converged,
            "kl_spread": kl_spread,
        },
    },
)

# %% [markdown]
# ## What this shows
#
# - **The paper's objective.** At β = 1 the test KL term is {glue:text}`beta1_test_kl:.2g` nats:
#   {glue:text}`beta1_verdict`. The samples' prevalence is closest to the data's at β = {glue:text}`chosen_beta:g`.
# - **Figure 5.** The width sweep picks {glue:text}`chosen_width` units (the paper: 100). {glue:text}`width_verdict`
# - **The threshold.** T = {glue:text}`best_threshold:g` matches the data's number of elements per material best
#   (the paper: 0.04): {glue:text}`threshold_verdict`.
# - **Trained to convergence.** {glue:text}`convergence_verdict`
