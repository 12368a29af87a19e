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
# # Properties and stability
#
# **What this chapter shows.** The paper names the predictive power of its latent space for material properties
# as its first next step, and its whole motivation is proposing materials that are viable. The field now judges a
# generator by the share of its proposals that are **stable, unique and novel** (S.U.N., the rate MatterGen
# reports). This chapter builds what that needs on the book's data: predictors of the formation energy per atom
# from the composition alone, measured on formulas never seen in training; an oracle that places a predicted
# energy against the snapshot's convex hull; a measurement of how often that oracle is right; and the S.U.N. rate
# of every generator in the book.
#
# **The paper's claim it tests.** That the latent space carries the information a property predictor needs:
# a regression head on the latent code $\mu(x)$ of each model is set beside predictors that read the
# composition directly.

# %% tags=["parameters"]
data_file = "artifacts/data.npz"  # the split dataset written by 01_data
paper_checkpoint = "artifacts/vae-paper.pt"  # the model of the paper trained by 02_model
checkpoint = "artifacts/sequence.pt"  # the sequence model of 07_beyond
energy_checkpoint = "artifacts/formation-energy.pt"  # the formation-energy network: loaded if it holds this configuration, else trained
use_pretrained = True  # use the network shipped in matvae when it was trained on these data with these epochs
energy_epochs = 20  # epochs of the formation-energy network
gbm_iterations = 300  # boosting iterations of the Magpie baseline
head_epochs = 60  # epochs of the regression heads on frozen latent codes
joint_epochs = 30  # epochs of the head trained jointly with the paper encoder (0 skips it)
joint_learning_rate = 0.001  # Adam step size of the encoder during joint training
n_samples = 10000  # samples per generator for the S.U.N. table (the paper: 10,000)
threshold = 0.04  # T of the decoding rule of the paper model
seed = 0  # seed of every fit and of the samples
n_processes = 0  # processes for the SMACT checks (0: all CPUs)
results_dir = "artifacts/results"  # where the numbers for the README are written
figures_dir = "figures"  # where the figures are saved as PNG

# %% tags=["hide-input"]
import pandas as pd
from myst_nb import glue

from matvae import plots
from matvae.baselines import MarginalSampler, sample_test_split
from matvae.data import SplitData
from matvae.properties import chapter, predictors
from matvae.properties.hull import HullReference
from matvae.properties.network import EnergyNetConfig
from matvae.properties.oracle import STABILITY_THRESHOLD, StabilityOracle, stability_scores
from matvae.properties.pretrained import train_or_load_energy_net
from matvae.properties.sun import sun_table
from matvae.properties.targets import split_table
from matvae.results import record, save_figure
from matvae.sampling import sample
from matvae.training import load_model

settings = chapter.PropertiesSettings(
    data_file=data_file, paper_checkpoint=paper_checkpoint, checkpoint=checkpoint, energy_checkpoint=energy_checkpoint,
    use_pretrained=use_pretrained, energy_epochs=energy_epochs, gbm_iterations=gbm_iterations, head_epochs=head_epochs,
    joint_epochs=joint_epochs, joint_learning_rate=joint_learning_rate, n_samples=n_samples, threshold=threshold,
    seed=seed, n_processes=n_processes, results_dir=results_dir, figures_dir=figures_dir,
)
split = SplitData.load(settings.data_file)
table = split_table(split)
energy = table["formation_energy_per_atom"].to_numpy(dtype=float)
x_train, y_train = split.dataset.x[split.train_rows], energy[split.train_rows]
x_test, y_test = split.dataset.x[split.test_rows], energy[split.test_rows]
n_elements_test = (split.dataset.counts[split.test_rows] > 0).sum(axis=1)
paper_model, sequence_model = load_model(settings.paper_checkpoint), load_model(settings.checkpoint)
plots.use_style()

# %% [markdown]
# ## Formation energy from composition
#
# Every predictor is fitted on the training split and scored on the test split, whose reduced formulas never
# occur in training (one row per material, so polymorphs of a formula count separately):
#
# - **the mean** of the training energies: the floor;
# - **Magpie + gradient boosting**: the standard composition-feature baseline, 132 element-property statistics
#   (matminer's Magpie data) and the element fractions into scikit-learn's histogram gradient boosting;
# - **heads on the latent code** $\mu(x)$ of the paper's VAE and of the sequence VAE, the encoders frozen: the
#   paper's question, how much of the property the latent space carries; and the paper's encoder trained jointly
#   with its head, to see what its 10-d code can carry when allowed to adapt to the property;
# - **the attention network**: an attention model over the elements and their fractions in the spirit of Roost
#   and CrabNet, written compactly in `matvae.properties.network`. It is the oracle's energy model.

# %% tags=["nbval-ignore-output"]
network = train_or_load_energy_net(split, energy, EnergyNetConfig(epochs=settings.energy_epochs, seed=settings.seed),
                                   checkpoint_path=settings.energy_checkpoint, use_pretrained=settings.use_pretrained)
fitted = {
    "mean": predictors.MeanPredictor(),
    "Magpie + gradient boosting": predictors.MagpieGBM(seed=settings.seed, max_iter=settings.gbm_iterations),
    "head on the paper's code": predictors.LatentHead(paper_model, seed=settings.seed, epochs=settings.head_epochs),
    "head on the sequence code": predictors.LatentHead(sequence_model, seed=settings.seed, epochs=settings.head_epochs),
}
if settings.joint_epochs:
    fitted["paper encoder + head, joint"] = predictors.JointLatentHead(
        paper_model, seed=settings.seed, epochs=settings.joint_epochs, encoder_learning_rate=settings.joint_learning_rate)
predictions, seconds = chapter.fit_and_predict(fitted, x_train, y_train, x_test)
predictions["attention network"], seconds["attention network"] = chapter.timed(network.predict, x_test)
errors, by_elements = predictors.compare_predictions(predictions, y_test, n_elements_test)
errors["fit + predict (s)"] = pd.Series(seconds)
best = errors["mae"].idxmin()
latent_best = errors.loc[[n for n in errors.index if "code" in n or "joint" in n], "mae"].idxmin()
glue("n_test", f"{len(y_test):,}", display=False)
glue("best", best, display=False)
glue("best_mae", float(errors.loc[best, "mae"]), display=False)
glue("mean_mae", float(errors.loc["mean", "mae"]), display=False)
glue("latent_best", latent_best, display=False)
glue("latent_mae", float(errors.loc[latent_best, "mae"]), display=False)
glue("paper_head_mae", float(errors.loc["head on the paper's code", "mae"]), display=False)
glue("sequence_head_mae", float(errors.loc["head on the sequence code", "mae"]), display=False)
glue("latent_ratio", float(errors.loc[latent_best, "mae"] / errors.loc[best, "mae"]), display=False)
glue("network_status", network.describe(), display=False)
errors.style.format({"mae": "{:.3f}", "rmse": "{:.3f}", "n": "{:,}", "fit + predict (s)": "{:.0f}"})

# %% [markdown]
# {glue:text}`network_status`
#
# On the {glue:text}`n_test` test materials the best predictor is the **{glue:text}`best`**, with a mean absolute
# error of {glue:text}`best_mae:.3f` eV/atom against {glue:text}`mean_mae:.3f` for the mean. The best head on a
# latent code ({glue:text}`latent_best`) reaches {glue:text}`latent_mae:.3f` eV/atom,
# {glue:text}`latent_ratio:.2f` times the best error.

# %% tags=["nbval-ignore-output", "hide-input"]
shown = [best, "Magpie + gradient boosting", latent_best]
fig = plots.plot_parity(y_test, {name: predictions[name] for name in dict.fromkeys(shown)},
                        title="Formation energy per atom, test split")
save_figure(fig, f"{settings.figures_dir}/properties_parity.png")

# %% tags=["nbval-ignore-output", "hide-input"]
fig = plots.plot_error_by_elements(by_elements.drop(index="mean"), title="Error by number of elements, test split")
save_figure(fig, f"{settings.figures_dir}/properties_error_by_elements.png")

# %% [markdown]
# ## The stability oracle and how often it is right
#
# `matvae.predict_properties(formulas)` predicts the formation energy with the attention network and places it
# against the snapshot's convex hull of the formula's chemical system (`matvae.properties.hull`, checked against
# pymatgen's `PhaseDiagram` in the tests): the energy above the hull, the competing phases and whether the
# formula is novel. To see how far its verdicts can be trusted on formulas it has never seen, every test material
# is placed against the hull the **training split alone** spans, once with its true energy and once with the
# predicted one. A material counts as stable at a threshold when its energy above that hull is at or below it.

# %% tags=["nbval-ignore-output"]
train_hull = chapter.training_hull(table, split)
check = chapter.oracle_check(table, split, predictions["attention network"], train_hull)
scores = stability_scores(check.frame["true e_above_hull"], check.frame["predicted e_above_hull"])
on_hull = check.on_snapshot_hull
found = float((check.frame["predicted e_above_hull"][on_hull] <= STABILITY_THRESHOLD).mean()) if on_hull.any() else float("nan")
glue("on_hull_n", f"{int(on_hull.sum()):,}", display=False)
glue("on_hull_found", found, display=False)
glue("precision_loose", float(scores.loc[STABILITY_THRESHOLD, "precision"]), display=False)
glue("recall_loose", float(scores.loc[STABILITY_THRESHOLD, "recall"]), display=False)
glue("precision_strict", float(scores.loc[0.0, "precision"]), display=False)
glue("recall_strict", float(scores.loc[0.0, "recall"]), display=False)
scores.style.format({"precision": "{:.1%}", "recall": "{:.1%}", "false-positive rate": "{:.1%}", "accuracy": "{:.1%}"})

# %% [markdown]
# Of the {glue:text}`on_hull_n` test materials that lie on the whole snapshot's hull, the oracle gives
# {glue:text}`on_hull_found:.1%` a predicted energy above the training hull of at most 0.1 eV/atom. When it calls a
# material stable within 0.1 eV/atom it is right {glue:text}`precision_loose:.1%` of the time (it finds
# {glue:text}`recall_loose:.1%` of those that are); on or below the hull, precision {glue:text}`precision_strict:.1%`
# and recall {glue:text}`recall_strict:.1%`. The predicted stabilities below are read with these rates in mind.

# %% [markdown]
# ## The S.U.N. rate of every generator
#
# {glue:text}`n_samples_text` samples from each generator: the paper's VAE (its decoding rule at $T$), the
# sequence VAE of {doc}`07_beyond`, and the random marginal sampler of {doc}`04_sampling`. Each sample is
# **valid** (SMACT, alloys valid, Pauling test), **unique** (its first occurrence among the samples), **novel**
# (its reduced formula is not in the snapshot) and predicted **stable** (energy above the snapshot's hull at most
# 0.1 eV/atom, or at most 0 for the strict rate). The test split is the ceiling: its formulas are placed against
# the training split's hull, and novel means absent from the training split. Stability is predicted throughout.

# %% tags=["nbval-ignore-output"]
energy_model = network.predict
max_elements = network.model.config.max_present
snapshot_oracle = StabilityOracle(HullReference.from_table(table), energy_model, max_elements=max_elements)
train_oracle = StabilityOracle(train_hull, energy_model, max_elements=max_elements)
_, marginal_formulas = MarginalSampler.fit(split.dataset.counts[split.train_rows]).sample(settings.n_samples, seed=settings.seed)
_, test_formulas = sample_test_split(split.dataset.counts[split.test_rows], settings.n_samples, seed=settings.seed)
generators = {
    "paper's VAE": (sample(paper_model, settings.n_samples, seed=settings.seed, threshold=settings.threshold).formulas,
                    snapshot_oracle),
    "sequence VAE": (sample(sequence_model, settings.n_samples, seed=settings.seed).formulas, snapshot_oracle),
    "random (marginals)": (marginal_formulas, snapshot_oracle),
    "test split": (test_formulas, train_oracle),
}
sun, e_above_hull = sun_table(generators, max_elements=max_elements, n_processes=settings.processes)
glue("n_samples_text", f"{settings.n_samples:,}", display=False)
for name, key in (("paper's VAE", "paper"), ("sequence VAE", "sequence"), ("random (marginals)", "marginal"), ("test split", "test")):
    glue(f"sun_{key}", float(sun.loc[name, "S.U.N."]), display=False)
    glue(f"valid_sun_{key}", float(sun.loc[name, "valid S.U.N."]), display=False)
sun.style.format({"n": "{:,}", **{c: "{:.1%}" for c in sun.columns if c != "n"}})

# %% tags=["remove-cell"]
# What the nbval reference compares (no floats): the predictors, the oracle check and the S.U.N. table kept their shape.
print(list(errors.index), list(errors.columns), list(by_elements.columns))
print(list(scores.index), list(scores.columns), len(check.frame) == len(split.test_rows))
print(list(sun.index), list(sun.columns), sorted(e_above_hull))

# %% tags=["nbval-ignore-output", "hide-input"]
fig = plots.plot_e_above_hull(e_above_hull, title="Predicted energy above the hull of the samples")
save_figure(fig, f"{settings.figures_dir}/properties_e_above_hull.png")

# %% [markdown]
# The S.U.N. rate (stable within 0.1 eV/atom, unique, novel) is {glue:text}`sun_sequence:.1%` for the sequence
# VAE, {glue:text}`sun_paper:.1%` for the paper's VAE and {glue:text}`sun_marginal:.1%` for the random sampler;
# requiring SMACT validity as well gives {glue:text}`valid_sun_sequence:.1%`, {glue:text}`valid_sun_paper:.1%`
# and {glue:text}`valid_sun_marginal:.1%`. Unseen test-split formulas, the ceiling, reach
# {glue:text}`sun_test:.1%` ({glue:text}`valid_sun_test:.1%` valid).

# %% tags=["remove-cell"]
record(settings.results_dir, "08_properties", {
    "errors": errors.reset_index(names="predictor").to_dict(orient="records"),
    "errors_by_elements": by_elements.reset_index(names="predictor").to_dict(orient="records"),
    "stability_scores": scores.reset_index().to_dict(orient="records"),
    "on_hull_found": found,
    "sun": sun.reset_index(names="generator").to_dict(orient="records"),
})

# %% [markdown]
# ## What this shows
#
# - A composition alone predicts the formation energy of unseen formulas: the best predictor
#   ({glue:text}`best`) errs by {glue:text}`best_mae:.3f` eV/atom on average, against {glue:text}`mean_mae:.3f`
#   for the mean.
# - The latent codes carry part of the property, not all of it: a head on the paper's frozen code reaches
#   {glue:text}`paper_head_mae:.3f` eV/atom, one on the sequence VAE's frozen code {glue:text}`sequence_head_mae:.3f`,
#   the best latent head {glue:text}`latent_ratio:.2f` times the error of the best predictor.
# - Predicted stability is a screen, not a verdict: the oracle's precision above says how many of its "stable"
#   calls hold on unseen formulas, and the S.U.N. rates are to be read with it.
