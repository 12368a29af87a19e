"""One function per figure. Each takes computed data (and optionally an ``ax``) and returns the figure;
none computes anything the book reports. Colours are shared across chapters: data is always
:data:`DATA_COLOR`, model samples :data:`SAMPLE_COLOR`.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from matvae.elements import ELEMENTS

DATA_COLOR = "#4C72B0"
SAMPLE_COLOR = "#DD8452"
TEST_COLOR = "#55A868"
BASELINE_COLOR = "#8172B3"
NULL_COLOR = "#937860"
PALETTE = {
    "data": DATA_COLOR,
    "samples": SAMPLE_COLOR,
    "VAE": SAMPLE_COLOR,
    "test split": TEST_COLOR,
    "random (marginals)": BASELINE_COLOR,
}


def use_style() -> None:
    """The book's plotting style (seaborn whitegrid, readable fonts)."""
    sns.set_theme(style="whitegrid", context="notebook", font_scale=1.0)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "axes.titlesize": "medium"})


def _axes(ax, figsize):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax.figure, ax


def plot_composition_vector(vector: np.ndarray, *, title: str, ylabel: str = "atoms per formula unit", ax=None):
    """Figure 2: a modified 1-hot vector as bars over the 89 elements, non-zero entries labelled."""
    vector = np.asarray(vector, dtype=float)
    fig, ax = _axes(ax, (11, 3.2))
    positions = np.arange(1, len(ELEMENTS) + 1)
    ax.bar(positions, vector, color=DATA_COLOR, width=0.8)
    for j in np.flatnonzero(vector):
        ax.annotate(
            f"{ELEMENTS[j]} ({j + 1})", (positions[j], vector[j]), xytext=(0, 3), textcoords="offset points",
            ha="center", va="bottom", fontsize=9,
        )
    ax.set_xticks(positions, ELEMENTS, rotation=90, fontsize=6.5)
    ax.set_xlim(0.3, len(ELEMENTS) + 0.7)
    ax.set_ylim(0, max(vector.max() * 1.2, 1))
    ax.set_xlabel("element (alphabetical position j = 1 .. 89)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


def plot_distributions(
    distributions: Mapping[str, pd.Series], *, xlabel: str, ylabel: str = "share of materials", title: str = "",
    log: bool = False, ax=None,
):
    """Grouped bars of one or more discrete distributions on a common support (Figure 7 and friends)."""
    frame = pd.concat(
        {name: series.astype(float) for name, series in distributions.items()}, names=["source", "value"]
    ).rename("share").reset_index()
    fig, ax = _axes(ax, (7, 3.6))
    palette = {name: PALETTE.get(name, BASELINE_COLOR) for name in distributions}
    sns.barplot(frame, x="value", y="share", hue="source", palette=palette, ax=ax)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(title=None)
    return fig


def plot_training_curves(history: Mapping[str, list[float]], *, title: str = ""):
    """Train and test curves of the negative ELBO, its two terms, the classifier loss and accuracy."""
    frame = pd.DataFrame(history)
    panels = [
        ("nelbo", "negative ELBO (nats/material)"),
        ("rec", "reconstruction (nats/material)"),
        ("kl", "KL to the prior (nats/material)"),
        ("ce", "classifier cross-entropy (nats)"),
        ("accuracy", "classifier accuracy"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(16, 3.3), layout="constrained")
    for ax, (key, label) in zip(axes, panels):
        for split, color in (("train", DATA_COLOR), ("test", TEST_COLOR)):
            values = frame[f"{split}_{key}"]
            ok = values.notna()
            ax.plot(frame.loc[ok, "epoch"], values[ok], color=color, label=split, lw=1.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if key in ("nelbo", "rec") and len(frame) > 5:
            tail = frame[[f"train_{key}", f"test_{key}"]].iloc[len(frame) // 20 :]
            low, high = np.nanmin(tail.to_numpy()), np.nanmax(tail.to_numpy())
            ax.set_ylim(low - 0.05 * (high - low + 1e-9), high + 0.05 * (high - low + 1e-9))
    axes[0].legend()
    if title:
        fig.suptitle(title)
    return fig


# --- tuning and sampling (03_tuning, 04_sampling) ---

def plot_width_sweep(sweep: pd.DataFrame, *, chosen: int, paper_width: int, title: str = ""):
    """Figure 5: test NELBO and prevalence KL against the hidden width (column ``hidden_dim``), the chosen
    and the paper's widths marked."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
    for ax, column, label, color in (
        (left, "test_nelbo", "test negative ELBO (nats/material)", TEST_COLOR),
        (right, "prevalence_kl", "prevalence KL(data ‖ samples) (nats)", SAMPLE_COLOR),
    ):
        ax.plot(sweep["hidden_dim"], sweep[column], "o-", color=color)
        ax.axvline(paper_width, color="0.4", ls=":", label=f"the paper's choice ({paper_width})")
        picked = sweep.loc[sweep["hidden_dim"] == chosen, column]
        ax.plot([chosen], picked, "*", ms=16, color="black", label=f"chosen here ({chosen})")
        ax.set_xlabel("hidden layer width (units)")
        ax.set_ylabel(label)
        ax.set_xticks(sweep["hidden_dim"])
    left.legend()
    if title:
        fig.suptitle(title)
    return fig


def plot_width_convergence(comparison: pd.DataFrame, *, short_epochs: int, title: str = ""):
    """The width sweep at a fixed number of epochs against the same widths trained to their plateau
    (:func:`matvae.tuning.convergence_table`): test NELBO and prevalence KL of both, and the epochs each width
    trained before the plateau rule stopped it; each sweep's pick starred."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), layout="constrained")
    widths = comparison["hidden_dim"]
    for ax, column, label in ((axes[0], "test_nelbo", "test negative ELBO (nats/material)"),
                              (axes[1], "prevalence_kl", "prevalence KL(data ‖ samples) (nats)")):
        for kind, style, color, name in (("short", "o--", BASELINE_COLOR, f"{short_epochs} epochs"),
                                         ("converged", "o-", TEST_COLOR, "trained to its plateau")):
            ax.plot(widths, comparison[f"{column}_{kind}"], style, color=color, label=name)
            picked = comparison[comparison[f"chosen_{kind}"]]
            ax.plot(picked["hidden_dim"], picked[f"{column}_{kind}"], "*", ms=15, color=color)
        ax.set_xlabel("hidden layer width (units)")
        ax.set_ylabel(label)
        ax.set_xticks(widths)
    axes[0].legend(title="★ the width chosen")
    axes[2].bar(widths, comparison["epochs_converged"], width=30, color=TEST_COLOR)
    axes[2].axhline(short_epochs, color=BASELINE_COLOR, ls="--", label=f"{short_epochs} epochs")
    axes[2].set_xlabel("hidden layer width (units)")
    axes[2].set_ylabel("epochs until the plateau")
    axes[2].set_xticks(widths)
    axes[2].legend()
    if title:
        fig.suptitle(title)
    return fig


def plot_threshold_sweep(sweep: pd.DataFrame, *, best: float, paper_threshold: float, ax=None):
    """Distance between the samples' and the data's number-of-elements distributions against T."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
    fig = ax.figure
    ax.plot(sweep["threshold"], sweep["wasserstein"], "o-", color=SAMPLE_COLOR, label="Wasserstein-1 (elements)")
    ax.plot(sweep["threshold"], sweep["total_variation"], "s--", color=BASELINE_COLOR, label="total variation")
    ax.axvline(paper_threshold, color="0.4", ls=":", label=f"the paper's T = {paper_threshold}")
    ax.axvline(best, color="black", lw=1, label=f"best here, T = {best:g}")
    ax.set_xlabel("threshold T")
    ax.set_ylabel("distance to the data's distribution")
    ax.legend()
    return fig


def plot_prevalence(data: np.ndarray, samples: np.ndarray, *, kl: float, label: str = "samples", ax=None):
    """Figure 6: elementwise prevalence of the data and of the samples over the 89 elements, KL written on it."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(14, 3.8), layout="constrained")
    fig = ax.figure
    positions = np.arange(len(ELEMENTS))
    ax.bar(positions - 0.2, data, width=0.4, color=DATA_COLOR, label="data")
    ax.bar(positions + 0.2, samples, width=0.4, color=SAMPLE_COLOR, label=label)
    ax.set_xticks(positions, ELEMENTS, rotation=90, fontsize=7.5)
    ax.set_xlim(-0.8, len(ELEMENTS) - 0.2)
    ax.set_xlabel("element")
    ax.set_ylabel("prevalence (share of all atoms)")
    ax.text(0.99, 0.95, f"KL(data ‖ {label}) = {kl:.3f} nats", transform=ax.transAxes, ha="right", va="top",
            fontsize=11, bbox={"facecolor": "white", "edgecolor": "0.7"})
    ax.legend(loc="upper left")
    return fig


def plot_kl_weight_sweep(sweep: pd.DataFrame, *, chosen: float, title: str = ""):
    """What the KL weight beta does: the two ELBO terms, the samples' prevalence KL, and whether the latent
    code carries the composition (uniqueness of samples, element sets recovered through mu(x))."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6), layout="constrained")
    beta = sweep["kl_weight"]
    axes[0].plot(beta, sweep["test_rec"], "o-", color=TEST_COLOR, label="reconstruction")
    axes[0].plot(beta, sweep["test_kl"], "s-", color=SAMPLE_COLOR, label="KL to the prior")
    axes[0].set_ylabel("test term (nats/material)")
    axes[1].plot(beta, sweep["prevalence_kl"], "o-", color=SAMPLE_COLOR)
    axes[1].set_ylabel("prevalence KL(data ‖ samples) (nats)")
    axes[2].plot(beta, sweep["uniqueness"], "o-", color=SAMPLE_COLOR, label="unique samples")
    axes[2].plot(beta, sweep["reconstructed_elements"], "s-", color=TEST_COLOR, label="test element sets recovered")
    axes[2].set_ylabel("share")
    axes[2].set_ylim(-0.02, 1.02)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("KL weight β (1 = the paper's ELBO)")
        ax.axvline(1.0, color="0.4", ls=":")
        ax.axvline(chosen, color="black", lw=1)
    axes[0].legend()
    axes[2].legend()
    if title:
        fig.suptitle(title)
    return fig

# --- latent decomposition (05_decomposition) ---

SIMILARITY_COLORS = {
    "VAE": SAMPLE_COLOR,
    "random components": NULL_COLOR,
    "random pairs": "#8C8C8C",
    "untrained encoder": TEST_COLOR,
    "PCA": BASELINE_COLOR,
}
"""Colour of each similarity measure; a centred variant ("VAE, centred") takes its measure's colour."""


def _similarity_color(name: str) -> str:
    return SIMILARITY_COLORS.get(name.split(",")[0], DATA_COLOR)


def plot_decomposition_similarity(
    similarities: Mapping[str, np.ndarray], n_components: np.ndarray, *, components=range(2, 10), bins: int = 40,
    title: str = "", xlabel: str = "cosine similarity", log: bool = True,
):
    """Figure 8: histograms of similarities, one panel per number of components, measures overlaid.

    ``similarities`` maps a measure name to (m,) values aligned with ``n_components`` (m,); each panel says
    how many materials it holds. Bins span [-1, 1]; ``log`` puts the counts on a log axis so that a spike at 1
    does not hide the spread-out nulls.
    """
    components = list(components)
    n_components = np.asarray(n_components)
    n_cols = 4
    n_rows = -(-len(components) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(13, 3.0 * n_rows), layout="constrained", sharex=True, squeeze=False)
    edges = np.linspace(-1, 1, bins + 1)
    for ax, c in zip(axes.flat, components):
        mask = n_components == c
        for name, values in similarities.items():
            chosen = np.asarray(values)[mask]
            chosen = chosen[np.isfinite(chosen)]
            ax.hist(np.clip(chosen, -1, 1), bins=edges, histtype="step", color=_similarity_color(name), linewidth=1.6,
                    linestyle="--" if "centred" in name else "-", label=name)
        if log and mask.any():
            ax.set_yscale("log")
            ax.set_ylim(bottom=0.7)
            ax.yaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_title(f"{c} components")
        ax.text(0.03, 0.95, f"n = {int(mask.sum()):,}", transform=ax.transAxes, ha="left", va="top")
        ax.set_xlim(-1.02, 1.05)
    for ax in axes.flat[len(components):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("materials")
    for ax in axes[-1, :]:
        ax.set_xlabel(xlabel)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    if title:
        fig.suptitle(title)
    return fig


def plot_similarity_gap(
    similarities: Mapping[str, np.ndarray], *, floor: float = 1e-12, bins: int = 60, title: str = "", log: bool = True,
    ax=None,
):
    """Histograms of 1 - similarity on a log x axis (how far each encoder is from an exactly linear one).

    Values below ``floor`` (including the exact zeros of a linear encoder) are drawn in the first bin; ``log``
    also puts the counts on a log axis.
    """
    fig, ax = _axes(ax, (10, 3.8))
    edges = np.logspace(np.log10(floor), np.log10(2.0), bins + 1)
    for name, values in similarities.items():
        gap = 1.0 - np.asarray(values, dtype=np.float64)
        gap = np.clip(gap[np.isfinite(gap)], floor, 2.0)
        ax.hist(gap, bins=edges, histtype="step", linewidth=1.6, color=_similarity_color(name), label=name,
                linestyle="--" if "centred" in name else "-")
    ax.set_xscale("log")
    if log:
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.7)
        ax.yaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel(f"1 - cosine similarity (values below {floor:g}, and 0, in the first bin)")
    ax.set_ylabel("materials")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title)
    return fig


def plot_parity(y_true: np.ndarray, predictions: Mapping[str, np.ndarray], *, unit: str = "eV/atom", title: str = ""):
    """Predicted against true values, one panel per predictor (hexbin density, the diagonal drawn)."""
    y_true = np.asarray(y_true, dtype=float)
    n = len(predictions)
    fig, axes = plt.subplots(1, n, figsize=(3.3 * n, 3.4), layout="constrained", squeeze=False, sharex=True, sharey=True)
    low, high = np.percentile(y_true, [0.1, 99.9])
    low, high = low - 0.2, high + 0.2
    for ax, (name, predicted) in zip(axes[0], predictions.items()):
        ax.hexbin(y_true, np.asarray(predicted, dtype=float), gridsize=60, extent=(low, high, low, high), bins="log",
                  cmap="viridis", mincnt=1)
        ax.plot([low, high], [low, high], color="black", lw=0.8)
        ax.set_title(name)
        ax.set_xlabel(f"true ({unit})")
    axes[0, 0].set_ylabel(f"predicted ({unit})")
    if title:
        fig.suptitle(title)
    return fig


def plot_error_by_elements(errors: pd.DataFrame, *, unit: str = "eV/atom", title: str = "", ax=None):
    """Mean absolute error by number of elements: one line per predictor (rows), columns the element counts."""
    fig, ax = _axes(ax, (6.5, 3.6))
    for name, row in errors.iterrows():
        ax.plot(row.index.astype(int), row.to_numpy(dtype=float), marker="o", label=name)
    ax.set_xlabel("elements in the material")
    ax.set_ylabel(f"mean absolute error ({unit})")
    ax.set_title(title)
    ax.legend(title=None, fontsize="small")
    return fig


def plot_e_above_hull(e_above_hull: Mapping[str, np.ndarray], *, thresholds: tuple[float, ...] = (0.0, 0.1),
                      limits: tuple[float, float] = (-0.5, 1.5), title: str = "", ax=None):
    """Distribution of (predicted) energies above the hull per source, stability thresholds marked."""
    fig, ax = _axes(ax, (7, 3.6))
    bins = np.linspace(*limits, 81)
    for name, values in e_above_hull.items():
        values = np.asarray(values, dtype=float)
        values = np.clip(values[np.isfinite(values)], *limits)
        ax.hist(values, bins=bins, density=True, histtype="step", lw=1.5, label=name, color=PALETTE.get(name))
    for threshold in thresholds:
        ax.axvline(threshold, color="black", lw=0.8, ls="--" if threshold else "-")
    ax.set_xlabel(f"energy above the hull (eV/atom, clipped to {limits[0]:g}..{limits[1]:g})")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(title=None, fontsize="small")
    return fig


def plot_design_curves(bands: pd.DataFrame, *, ylabel: str = "success rate", title: str = "", ax=None):
    """A measure against oracle calls, one line per method: the mean over seeds, a band from min to max.

    ``bands``: one row per method x budget with columns method, budget, mean, min, max
    (:func:`matvae.design.chapter.curve_bands`); rates in [0, 1] are shown as percentages.
    """
    from matplotlib.ticker import PercentFormatter

    fig, ax = _axes(ax, (7, 4))
    for method, rows in bands.groupby("method", sort=False):
        line, = ax.plot(rows["budget"], rows["mean"], marker="o", ms=3, label=method)
        ax.fill_between(rows["budget"], rows["min"], rows["max"], color=line.get_color(), alpha=0.2, lw=0)
    budgets = sorted(bands["budget"].unique())
    ax.set_xscale("log")
    ax.set_xticks(budgets, [f"{b:,}" for b in budgets])
    ax.minorticks_off()
    ax.set_xlabel("oracle calls (budget)")
    ax.set_ylabel(ylabel)
    if bands[["min", "max"]].to_numpy(float).max(initial=0.0) <= 1.0:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title(title)
    ax.legend(title=None, fontsize="small")
    return fig
