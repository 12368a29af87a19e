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
PALETTE = {"data": DATA_COLOR, "samples": SAMPLE_COLOR, "VAE": SAMPLE_COLOR, "test split": TEST_COLOR}


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
