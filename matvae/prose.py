"""The sentences of the book's chapters that depend on what was measured.

A chapter computes its numbers in a code cell and glues them (``myst_nb.glue``); its prose lives in Markdown cells
that paste them. Where the wording itself depends on a value (whether a code collapsed, which of two nulls wins),
the chapter glues the string one of these functions returns, so that the sentence stays true when the chapter is
rerun at another scale or with another model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from matvae.comparison import collapsed
from matvae.composition import reduced_formula
from matvae.elements import ELEMENTS
from matvae.paper import EXAMPLE_DECOMPOSITION



def listing(items: dict) -> str:
    """``{"Ga": 26, "Mo": 44}`` -> ``"Ga 26, Mo 44"``."""
    return ", ".join(f"{key} {value}" for key, value in items.items())


def names(items) -> str:
    """``["O", "F"]`` -> ``"O, F"``; ``"none"`` when empty."""
    return ", ".join(items) or "none"


# --- 01_data -------------------------------------------------------------------------------------------------------


def load_source(from_cache: bool) -> str:
    """Where the decompositions came from."""
    return "from the cache" if from_cache else "hulls computed in this run"


def top_pair(pairs: pd.DataFrame) -> str:
    """The most correlated element pair of :func:`matvae.metrics.correlated_pairs`, as a clause."""
    if not len(pairs):
        return "no pair is correlated"
    top = pairs.iloc[0]
    return f"the largest is ({top.element_a}, {top.element_b}) at {top.correlation:.2f}"


def correlation_verdict(n_correlated: int, n_defined: int) -> str:
    """Whether few enough element pairs are correlated for independent Bernoulli outputs."""
    if n_defined and n_correlated / n_defined < 0.01:
        return "as the paper says, element presences are nearly independent, so independent Bernoulli outputs are a fair model"
    return "more element presences are correlated than the paper found, so independent Bernoulli outputs are an approximation"


def positions(counts: np.ndarray) -> dict[str, int]:
    """1-based positions of the elements present in an (89,) count vector, in vector order."""
    return {ELEMENTS[j]: int(j) + 1 for j in np.flatnonzero(counts)}


@dataclass(frozen=True)
class ExampleEntry:
    """The worked example's entry in the data, for the chapter's Figure 3 comparison."""

    sentence: str  # which entries there are
    verdict: str  # whether the decomposition is the paper's
    values: dict  # formation_energy, energy_above_hull, n_components, amount_<component>: plain floats and ints
    record: dict | None  # what the results file keeps (None: the example is not in the data)


def example_entry(table: pd.DataFrame, counts: np.ndarray, *, tolerance: float = 0.005) -> ExampleEntry:
    """The lowest-energy entry of the example composition and its decomposition next to the paper's Figure 3.

    Args:
        table: the materials table of :func:`matvae.data.prepare_data`.
        counts: (89,) atom counts of the example.
        tolerance: largest difference of a component amount that still counts as the paper's.
    """
    name = reduced_formula(counts)
    rows = table[table["formula"] == name]
    if rows.empty:
        nan = float("nan")
        values = {"formation_energy": nan, "energy_above_hull": nan, "n_components": 0}
        values |= {f"amount_{k}": nan for k in EXAMPLE_DECOMPOSITION}
        missing = f"{name} is not in this dataset."
        return ExampleEntry(missing, missing, values, None)
    ours = rows.sort_values("energy_above_hull").iloc[0]
    decomposition = {part["formula"]: float(part["amount"]) for part in ours["decomposes_to"]}
    values = {
        "formation_energy": float(ours["formation_energy_per_atom"]),
        "energy_above_hull": float(ours["energy_above_hull"]),
        "n_components": int(ours["n_components"]),
    } | {f"amount_{k}": decomposition.get(k, 0.0) for k in EXAMPLE_DECOMPOSITION}
    entries = "entry" if len(rows) == 1 else "entries"
    sentence = f"{name} has {len(rows)} {entries} here; the lowest in energy is {ours['material_id']}."
    same = set(decomposition) == set(EXAMPLE_DECOMPOSITION) and all(
        abs(decomposition[k] - float(v)) <= tolerance for k, v in EXAMPLE_DECOMPOSITION.items()
    )
    verdict = (
        f"The worked example {name} decomposes as in the paper's Figure 3: into the same components with the same amounts."
        if same
        else f"The worked example {name} does not decompose as in the paper's Figure 3 (components {names(decomposition)})."
    )
    record = {
        "material_id": ours["material_id"], "formation_energy_per_atom": ours["formation_energy_per_atom"],
        "energy_above_hull": ours["energy_above_hull"], "decomposition": decomposition,
    }
    return ExampleEntry(sentence, verdict, values, record)


# --- 02_model ------------------------------------------------------------------------------------------------------


def parameter_parts(counts: dict[str, int]) -> str:
    """``{"encoder": 11120, ..., "total": ...}`` -> ``"encoder 11,120, decoder ..."`` (the total left out)."""
    return ", ".join(f"{name} {count:,}" for name, count in counts.items() if name != "total")


def variance_formula(variance: str) -> str:
    """The encoder's variance parameterisation of :class:`matvae.model.ModelConfig` as a formula."""
    return {"softplus": "softplus(h) + 1e-8", "exp": "exp(h)"}[variance]


def collapse_verdict(test_kl: float) -> str:
    """Whether a test KL term (nats per material) means the latent code has collapsed."""
    if not np.isfinite(test_kl):
        return "not measured"
    if collapsed(test_kl):
        return "the encoder's codes carry almost no information about the material (posterior collapse)"
    return "the codes still carry information about the material"


@dataclass(frozen=True)
class ElboCheck:
    """The chapter's model beside the same model trained at the paper's ELBO (beta 1)."""

    comparison: pd.DataFrame  # test metrics, one column per beta; the beta-1 column absent when it was not trained
    test_kl: float  # test KL term of the beta-1 model (nan when not trained)
    distinct: int  # distinct formulas its mean codes decode to over the test split
    verdict: str  # whether its code collapsed
    nelbo_verdict: str  # a sentence when its test NELBO is the lower one ("" otherwise)


def elbo_check(model, result, elbo, test, *, threshold: float) -> ElboCheck:
    """Compare the chapter's model (``result``, a :class:`~matvae.training.TrainResult`) with ``elbo``, the same
    model trained at beta 1 (``None`` when it was skipped), on the test split ``test``."""
    from matvae import metrics
    from matvae.sampling import reconstruct

    metric_names = ("nelbo", "rec", "kl", "accuracy")
    columns = {f"β = {model.config.kl_weight:g}": (model, result)}
    if elbo is not None:
        columns["β = 1"] = (elbo.model, elbo)
    comparison, distinct = {}, 0
    for label, (net, trained) in columns.items():
        rebuilt = reconstruct(net, test.x, y=test.y, threshold=threshold)
        comparison[label] = {m: trained.history[f"test_{m}"][-1] for m in metric_names}
        comparison[label]["test element sets recovered"] = metrics.element_set_match_rate(rebuilt.counts, test.counts)
        distinct = len(set(rebuilt.formulas))
    if elbo is None:
        return ElboCheck(pd.DataFrame(comparison), float("nan"), 0, collapse_verdict(float("nan")), "")
    test_kl = float(elbo.history["test_kl"][-1])
    lower = elbo.history["test_nelbo"][-1] < result.history["test_nelbo"][-1]
    nelbo_verdict = "Its test NELBO is still the lower of the two: that is the objective it minimises." if lower else ""
    return ElboCheck(pd.DataFrame(comparison), test_kl, distinct, collapse_verdict(test_kl), nelbo_verdict)


# --- 04_sampling ---------------------------------------------------------------------------------------------------


def prevalence_verdict(kl: float, paper_kl: float) -> str:
    """How the samples' prevalence KL compares with the paper's."""
    if kl <= paper_kl:
        return "as close as the paper's or closer, so Figure 6 is reproduced"
    if kl <= 2 * paper_kl:
        return "within twice the paper's divergence, so Figure 6 is reproduced in part"
    return "further from the data than the paper's samples, so Figure 6 is not reproduced"


def validity_verdict(model_rate: float, random_rate: float, *, margin: float = 0.02) -> str:
    """Whether a model's samples are more often chemically valid than a random sampler's."""
    if model_rate > random_rate + margin:
        return "the model does better than a sampler that knows only element frequencies"
    if model_rate < random_rate - margin:
        return "the model does worse than a sampler that knows only element frequencies"
    return "the model does no better than a sampler that knows only element frequencies"


# --- 05_decomposition ----------------------------------------------------------------------------------------------


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def figure8_verdict(median: float, high_similarity: float) -> str:
    """Whether the median latent decomposition similarity is as high as the paper's Figure 8 shows."""
    return "Figure 8 is reproduced." if median > high_similarity else "Figure 8 is not reproduced."


NULL_VERDICTS: dict[str, str] = {
    "separated": "the nulls lie far below the VAE, so the code of a material agrees with the combined code of its "
    "own components much better than with those of random materials, and not because of a shared offset",
    "offset": "the nulls come close to the VAE because the codes share an offset that brings every cosine near 1; "
    "after centring the nulls fall while the VAE keeps its similarity, so once the offset is removed a material's "
    "code does agree with the combined code of its own components",
    "not specific": "the nulls come close to the VAE even after centring, so the similarity is not specific to a "
    "material's own components",
}
"""What the comparison of the VAE's similarity with the null models' means, by :func:`null_verdict`."""


def null_verdict(vae: float, vae_centred: float, null: float, null_centred: float, *, margin: float = 0.1) -> str:
    """A key of :data:`NULL_VERDICTS` from the median similarities of the VAE and of the higher null model."""
    if vae_centred - null_centred <= margin:
        return "not specific"
    return "separated" if vae - null > margin else "offset"


def linearity_verdict(ratio: float) -> str:
    """What the trained encoder's centred departure from linear, as a multiple of the untrained one's, means."""
    if ratio > 3:
        return ("training moved the encoder further from linear, yet the similarity stays near 1: it is inherited from "
                "the near-linearity of such a network on these inputs, not evidence that the VAE learned decomposition")
    if ratio >= 1 / 3:
        return ("the trained encoder is about as close to linear as the untrained one, so the near-1 similarity is a "
                "property of the architecture on these inputs, not evidence that the VAE learned decomposition")
    return ("training brought the encoder closer to linear than at initialisation, but a linear map with no training "
            "at all gives exactly 1, so the similarity alone cannot show that decomposition was learned")


def decoding_verdict(exact_combination: float, exact_own: float, elements_combination: float, elements_own: float,
                     *, margin: float = 0.02) -> str:
    """Whether the combined code of a material's components decodes to the material as well as its own code."""
    if elements_own < 0.05:
        return ("The decoder hardly reconstructs materials from their own codes, so decoding cannot test the latent "
                "arithmetic with this model.")
    if exact_combination >= exact_own - margin and elements_combination >= elements_own - margin:
        return ("The combination decodes about as well as the material's own code, so as far as the decoder can tell "
                "the latent arithmetic lands on the material.")
    return ("The combination decodes worse than the material's own code: the latent arithmetic lands on the material "
            "less often than its own code does.")


# --- 07_beyond -----------------------------------------------------------------------------------------------------


def family_similarity_verdict(sequence: float, paper: float, *, margin: float = 0.1) -> str:
    """What the two families' median latent decomposition similarities (Figure 8) mean for inverse design."""
    if sequence < paper - margin:
        return ("A code that round-trips is far from affine in the composition, so the identity x = Σ a_k x_k does not "
                "carry over to the codes as it does for a near-affine encoder: inverse design should move through the "
                "latent space with the decoder, not by mixing codes.")
    return "The similarity holds for both families."


# --- 03_tuning -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BetaOne:
    """The model at the paper's objective (beta 1) in the KL-weight sweep."""

    values: dict  # test_kl, uniqueness, reconstructed, prevalence_kl: plain floats (nan when beta 1 was not swept)
    verdict: str  # whether its code collapsed


def beta_one(beta_sweep: pd.DataFrame) -> BetaOne:
    """The row of ``beta_sweep`` (:func:`matvae.tuning.sweep` over ``kl_weight``) at beta 1."""
    rows = beta_sweep[beta_sweep["kl_weight"] == 1.0]
    if not len(rows):
        nan = float("nan")
        return BetaOne({"test_kl": nan, "uniqueness": nan, "reconstructed": nan, "prevalence_kl": nan},
                       "β = 1 was not among the swept values")
    row = rows.iloc[0]
    values = {"test_kl": float(row["test_kl"]), "uniqueness": float(row["uniqueness"]),
              "reconstructed": float(row["reconstructed_elements"]), "prevalence_kl": float(row["prevalence_kl"])}
    verdict = ("the code carries almost nothing: the posterior has collapsed" if collapsed(values["test_kl"])
               else "the code still carries information at this scale")
    return BetaOne(values, verdict)


def width_verdict(chosen: int, paper_width: int) -> str:
    """Whether the width sweep agrees with the paper's Figure 5."""
    if chosen == paper_width:
        return "This agrees with the paper."
    return f"The later chapters keep the paper's {paper_width} so that they reproduce the paper's model."


def convergence_verdict(comparison: pd.DataFrame, *, short_epochs: int, paper_width: int, threshold_short: float,
                        threshold_converged: float, threshold_width: int, paper_threshold: float,
                        kl_spread: list[float] | None = None) -> str:
    """What training each width to its plateau changes in Figure 5's choices: the width picked and the best T; with
    ``kl_spread`` (the prevalence KL of the width-``threshold_width`` model under several sampling seeds,
    :func:`matvae.tuning.prevalence_kl_spread`), whether the picked width's lead in prevalence KL exceeds what
    sampling alone moves."""
    short = int(comparison.loc[comparison["chosen_short"], "hidden_dim"].iloc[0])
    converged = int(comparison.loc[comparison["chosen_converged"], "hidden_dim"].iloc[0])
    low, high = int(comparison["epochs_converged"].min()), int(comparison["epochs_converged"].max())
    span = f"{low:,} epochs each" if low == high else f"{low:,} to {high:,} epochs"
    epochs = f"{short_epochs:,} epoch{'' if short_epochs == 1 else 's'}"
    if converged == paper_width:
        verdict = "the paper's choice survives" if short == paper_width else f"the paper's choice (it was {short} at {epochs})"
    elif short == paper_width:
        verdict = f"the paper's {paper_width}, chosen at {epochs}, does not survive"
    else:
        verdict = f"neither is the paper's {paper_width} ({short} at {epochs})"
    same = abs(threshold_converged - threshold_short) < 1e-9
    threshold = (f"the best T for the width-{threshold_width} model trained to its plateau is {threshold_converged:g}, "
                 + ("the same as" if same else "against") + f" {threshold_short:g} for the model chapter's model "
                 f"(the paper: {paper_threshold:g})")
    text = f"Trained to their plateaus ({span}), the sweep picks width {converged}: {verdict}; {threshold}."
    if kl_spread:
        moved = max(kl_spread) - min(kl_spread)
        rows = comparison.set_index("hidden_dim")["prevalence_kl_converged"]
        kl = [f"{v:.4f}" for v in (min(rows), max(rows))]
        text += (f" Sampling alone moves the width-{threshold_width} model's prevalence KL by up to {moved:.4f} "
                 f"({len(kl_spread)} sampling seeds: {min(kl_spread):.4f} to {max(kl_spread):.4f}); the widths trained "
                 f"to their plateaus span {kl[0]} to {kl[1]}")
        if converged != threshold_width and threshold_width in rows.index:
            lead = rows[threshold_width] - rows[converged]
            text += (f", and width {converged} leads width {threshold_width} by {lead:.4f}: "
                     + ("more than sampling alone moves" if lead > moved else "within what sampling alone moves, so the "
                        "pick among these widths is not resolved by the prevalence KL at this number of samples"))
        text += "."
    return text


def threshold_verdict(best: float, paper_threshold: float) -> str:
    """Whether the threshold sweep agrees with the paper's T."""
    if abs(best - paper_threshold) < 1e-9:
        return "the paper's value"
    return "not the paper's value; the later chapters keep the paper's T so that they reproduce its decoding rule"
