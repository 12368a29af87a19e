"""What the chapter "Inverse design" runs, so that the notebook only calls and shows.

:class:`DesignSettings` checks every parameter of the chapter in one construction; :func:`run_design` runs the
campaign of one objective (the latent methods on the sequence VAE, some also on the paper's VAE);
:func:`curve_bands` and :func:`method_summary` aggregate it over seeds; :func:`best_materials` and
:func:`nearest_known` list what each method found beside the closest material of the snapshot; :func:`verdict`
states, from the seeds' spread, what the campaign says about the paper's claim that RL in the latent space
beats RL that edits the composition directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matvae.composition import encode
from matvae.design.campaign import run_campaign
from matvae.design.methods import METHODS, NEEDS_MODEL
from matvae.design.objectives import OBJECTIVES, Objective, make_objective
from matvae.design.result import DesignResult
from matvae.models import AnyModel
from matvae.params import check_float, check_int, check_int_list, check_seed, check_str
from matvae.runner import check_backend

PAPER_SUFFIX: str = " (paper VAE)"
"""Appended to a latent method's name when it searches the paper's VAE instead of the sequence VAE."""
SUMMARY_COLUMNS: tuple[str, ...] = ("success_rate", "hits_per_call", "n_valid", "n_novel", "n_predicted_stable", "wall_seconds")
"""The numbers :func:`method_summary` aggregates over seeds at the largest budget."""


def _names(name: str, value: str, allowed: Sequence[str], *, allow_empty: bool = False) -> tuple[str, ...]:
    names = tuple(n for n in check_str(name, value).replace(" ", "").split(",") if n)
    if not names and not allow_empty:
        raise ValueError(f"{name} must name at least one of {tuple(allowed)}, got {value!r}")
    for n in names:
        if n not in allowed:
            raise ValueError(f"{name} must be a comma-separated list of {tuple(allowed)}, got {n!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{name} names a value twice: {value!r}")
    return names


@dataclass(frozen=True)
class DesignSettings:
    """The chapter's parameters (see its parameters cell); construction checks every value."""

    data_file: str
    paper_checkpoint: str
    checkpoint: str
    methods: str  # comma-separated names of matvae.design.METHODS
    paper_methods: str  # latent methods also run on the paper's VAE ("" for none)
    objectives: str  # comma-separated names of matvae.design.OBJECTIVES
    target_energy: float  # eV/atom, of the target-energy objective
    tolerance: float  # eV/atom, of the target-energy objective
    budgets: str  # comma-separated oracle-call budgets
    seeds: str  # comma-separated seeds
    ppo_steps: int  # environment steps per PPO update
    ppo_batch_size: int  # PPO minibatch
    ppo_epochs: int  # PPO passes per update
    n_best: int  # best materials shown per method
    results_dir: str
    figures_dir: str
    backend: str = "local"  # where the runs go: "local" (this process) or "ray" (matvae.runner)

    def __post_init__(self) -> None:
        check_backend(self.backend)
        for name in ("data_file", "paper_checkpoint", "checkpoint", "results_dir", "figures_dir"):
            check_str(name, getattr(self, name), allow_empty=False)
        _names("methods", self.methods, tuple(METHODS))
        _names("paper_methods", self.paper_methods, sorted(NEEDS_MODEL), allow_empty=True)
        _names("objectives", self.objectives, tuple(OBJECTIVES))
        check_float("target_energy", self.target_energy, low=-10.0, high=10.0)
        check_float("tolerance", self.tolerance, low=0.0, low_inclusive=False, high=5.0)
        check_int_list("budgets", self.budgets, minimum=1, maximum=1_000_000)
        for i, seed in enumerate(check_int_list("seeds", self.seeds, minimum=0)):
            check_seed(f"seeds[{i}]", seed)
        check_int("ppo_steps", self.ppo_steps, minimum=2, maximum=1_000_000)
        check_int("ppo_batch_size", self.ppo_batch_size, minimum=2, maximum=self.ppo_steps)
        check_int("ppo_epochs", self.ppo_epochs, minimum=1, maximum=1_000)
        check_int("n_best", self.n_best, minimum=1, maximum=1_000)

    @property
    def method_names(self) -> tuple[str, ...]:
        return _names("methods", self.methods, tuple(METHODS))

    @property
    def paper_method_names(self) -> tuple[str, ...]:
        return _names("paper_methods", self.paper_methods, sorted(NEEDS_MODEL), allow_empty=True)

    @property
    def objective_names(self) -> tuple[str, ...]:
        return _names("objectives", self.objectives, tuple(OBJECTIVES))

    @property
    def budget_list(self) -> tuple[int, ...]:
        return tuple(sorted(set(check_int_list("budgets", self.budgets, minimum=1))))

    @property
    def seed_list(self) -> tuple[int, ...]:
        return check_int_list("seeds", self.seeds, minimum=0)

    @property
    def ppo(self) -> dict:
        """Overrides of :data:`matvae.design.methods.PPO_SETTINGS`."""
        return {"n_steps": self.ppo_steps, "batch_size": self.ppo_batch_size, "n_epochs": self.ppo_epochs}

    def objective(self, name: str, *, oracle=None) -> Objective:
        """The objective ``name`` with the chapter's settings (``oracle``: None for the shipped one)."""
        if name == "target-energy":
            return make_objective(name, oracle=oracle, target=self.target_energy, tolerance=self.tolerance)
        return make_objective(name, oracle=oracle)


def method_label(result: DesignResult) -> str:
    """The method's name, with :data:`PAPER_SUFFIX` when it searched the paper's VAE."""
    return result.method + (PAPER_SUFFIX if result.model == "paper" else "")


def run_design(
    settings: DesignSettings,
    objective: Objective,
    *,
    model: AnyModel,
    paper_model: AnyModel | None,
    train_counts: np.ndarray,
    results: list[DesignResult],
    progress: bool | None = False,
) -> pd.DataFrame:
    """The campaign of one objective: every method of ``settings`` (latent ones on ``model``), then the paper
    methods on ``paper_model`` labelled ``METHOD (paper VAE)``. One row per method x seed x budget
    (:func:`matvae.design.run_campaign`); the runs are appended to ``results``."""
    common = {"budgets": settings.budget_list, "seeds": settings.seed_list, "train_counts": train_counts,
              "progress": progress, "ppo": settings.ppo, "backend": settings.backend}
    frames = [run_campaign(settings.method_names, objective, model=model, results=results, **common)]
    if settings.paper_method_names:
        if paper_model is None:
            raise ValueError(f"paper_methods {settings.paper_method_names} need the paper's VAE: pass paper_model=")
        paper = run_campaign(settings.paper_method_names, objective, model=paper_model, results=results, **common)
        paper["method"] = paper["method"] + PAPER_SUFFIX
        frames.append(paper)
    return pd.concat(frames, ignore_index=True)


def curve_bands(campaign: pd.DataFrame, column: str = "success_rate") -> pd.DataFrame:
    """Mean, min and max of ``column`` over seeds: one row per method x budget (methods in campaign order)."""
    grouped = campaign.groupby(["method", "budget"], sort=False)[column]
    bands = grouped.agg(["mean", "min", "max"]).reset_index()
    return bands.sort_values(["method", "budget"], key=lambda s: s.map(_order(campaign)) if s.name == "method" else s,
                             ignore_index=True)


def _order(campaign: pd.DataFrame) -> dict[str, int]:
    return {m: i for i, m in enumerate(dict.fromkeys(campaign["method"]))}


def final_rows(campaign: pd.DataFrame) -> pd.DataFrame:
    """The rows of the largest budget (one per method x seed)."""
    return campaign[campaign["budget"] == campaign["budget"].max()]


def method_summary(campaign: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample standard deviation over seeds of :data:`SUMMARY_COLUMNS` at the largest budget.

    One row per method (campaign order); columns ``(number, "mean" | "sd")`` and ``("seeds", "n")``. The sd of
    a single seed is NaN."""
    final = final_rows(campaign)
    grouped = final.groupby("method", sort=False)
    table = grouped[list(SUMMARY_COLUMNS)].agg(["mean", "std"]).rename(columns={"std": "sd"}, level=1)
    table[("seeds", "n")] = grouped.size()
    return table.reindex([m for m in _order(campaign) if m in table.index])


def format_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`method_summary` as ``mean ± sd`` strings (percentages for the rates, seconds rounded)."""
    formats = {"success_rate": "{:.2%}", "hits_per_call": "{:.2%}", "wall_seconds": "{:.0f}"}
    shown = pd.DataFrame(index=summary.index)
    for column in SUMMARY_COLUMNS:
        spec = formats.get(column, "{:.1f}")
        mean, sd = summary[(column, "mean")], summary[(column, "sd")]
        shown[column.replace("_", " ")] = [
            spec.format(m) + ("" if np.isnan(s) else " ± " + spec.format(s)) for m, s in zip(mean, sd)
        ]
    shown["seeds"] = summary[("seeds", "n")].astype(int)
    return shown.rename(columns={"wall seconds": "wall time (s)"})


def _fractions(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)


def nearest_known(formulas: Sequence[str], known_counts: np.ndarray, known_formulas: Sequence[str], k: int = 1) -> pd.DataFrame:
    """The ``k`` known materials closest to each formula: L1 distance between atomic-fraction vectors.

    Args:
        formulas: m formulas (any :func:`matvae.encode` spelling).
        known_counts: (n, 89) atom counts of the known materials (e.g. ``SplitData.dataset.counts``).
        known_formulas: (n,) their formulas.
        k: neighbours per formula (ties broken by row order).

    Returns:
        one row per formula x neighbour: ``formula``, ``rank`` (1..k), ``nearest`` (a known formula) and
        ``distance`` (in [0, 2]; 0 for the same composition).
    """
    known = _fractions(known_counts)
    known_formulas = np.asarray(known_formulas)
    if known.ndim != 2 or known.shape[0] != len(known_formulas):
        raise ValueError(f"known_counts (n, 89) and known_formulas (n,) must match: {known.shape=} {len(known_formulas)=}")
    k = check_int("k", k, minimum=1, maximum=max(len(known_formulas), 1))
    rows = []
    for formula in formulas:
        query = np.asarray(encode(formula), dtype=np.float64)
        query = query / query.sum()
        distance = np.abs(known - query).sum(axis=1)  # (n,)
        for rank, row in enumerate(np.argsort(distance, kind="stable")[:k], start=1):
            rows.append({"formula": formula, "rank": rank, "nearest": str(known_formulas[row]),
                         "distance": float(distance[row])})
    return pd.DataFrame(rows, columns=["formula", "rank", "nearest", "distance"])


def best_materials(results: Sequence[DesignResult], n_best: int, known_counts: np.ndarray,
                   known_formulas: Sequence[str]) -> pd.DataFrame:
    """The ``n_best`` highest-scoring valid, novel formulas of each method (over its seeds, each formula once),
    with their predicted properties and nearest known material (:func:`nearest_known`)."""
    n_best = check_int("n_best", n_best, minimum=1)
    rows = []
    for result in results:
        for record in result.records:
            if record.first and record.status == "scored":
                rows.append({"method": method_label(result), "formula": record.formula, "score": record.score + 0.0,
                             "meets": record.meets, "seed": result.seed,
                             "formation energy (eV/atom)": float(record.properties["formation_energy_per_atom"]),
                             "e above hull (eV/atom)": float(record.properties["e_above_hull"]),
                             "decomposes to": record.properties.get("decomposes_to", "")})
    columns = ["method", "formula", "score", "meets", "seed", "formation energy (eV/atom)", "e above hull (eV/atom)",
               "decomposes to", "nearest known", "distance"]
    if not rows:
        return pd.DataFrame(columns=columns)
    found = pd.DataFrame(rows)
    order = {m: i for i, m in enumerate(dict.fromkeys(method_label(r) for r in results))}
    found = found.sort_values("score", ascending=False, kind="stable").drop_duplicates(["method", "formula"])
    best = found.groupby("method", sort=False).head(n_best)
    best = best.sort_values(["method", "score"], key=lambda s: s.map(order) if s.name == "method" else -s, kind="stable")
    nearest = nearest_known(best["formula"].tolist(), known_counts, known_formulas)
    best = best.assign(**{"nearest known": nearest["nearest"].to_numpy(), "distance": nearest["distance"].to_numpy()})
    return best[columns].reset_index(drop=True)


def _spread(values: np.ndarray) -> str:
    mean = f"{np.mean(values):.2%}"
    return mean if len(values) < 2 else f"{mean} ± {np.std(values, ddof=1):.2%}"


def _compare(campaign: pd.DataFrame, first: str, second: str) -> tuple[int, str]:
    """(+1 first above on every seed, -1 below on every seed, 0 overlapping; the numbers as words)."""
    final = final_rows(campaign)
    a = final.loc[final["method"] == first, "success_rate"].to_numpy(float)
    b = final.loc[final["method"] == second, "success_rate"].to_numpy(float)
    sign = 1 if a.min() > b.max() else -1 if a.max() < b.min() else 0
    return sign, f"{_spread(a)} for {first} against {_spread(b)} for {second}"


def _tie(campaign: pd.DataFrame, first: str, second: str) -> bool:
    """Every seed of both methods has the same success rate at the largest budget."""
    final = final_rows(campaign)
    return final.loc[final["method"].isin([first, second]), "success_rate"].nunique() == 1


def verdict(campaign: pd.DataFrame, *, latent: str = "rl-latent", element: str = "rl-element") -> str:
    """A sentence on the paper's claim, from the success rates at the largest budget.

    A method counts as better only when every seed of it is above every seed of the other (the seeds' ranges do
    not overlap); otherwise the two are called indistinguishable at this number of seeds. Compares ``latent``
    with ``element``, and the best latent-space method (highest mean) with ``element`` when it is another one.
    """
    methods = set(campaign["method"])
    missing = sorted({latent, element} - methods)
    if missing:
        raise ValueError(f"the campaign must hold {latent!r} and {element!r} to judge the claim; missing {missing}")
    final = final_rows(campaign)
    budget, n_seeds = int(final["budget"].iloc[0]), final.loc[final["method"] == latent, "seed"].nunique()
    seeds = f"{n_seeds} seed" + ("s" if n_seeds != 1 else "")
    sign, numbers = _compare(campaign, latent, element)
    outcome = {
        1: "the claim holds here: every seed of RL in the latent space beats every seed of RL over elements",
        -1: "the claim does not hold here: every seed of RL over elements beats every seed of RL in the latent space",
        0: "the seeds' ranges overlap, so the two cannot be told apart at this number of seeds",
    }[sign]
    if _tie(campaign, latent, element):
        outcome = "the two tie, so this campaign says nothing about the claim"
    sentence = f"At {budget:,} oracle calls ({seeds}) the success rate is {numbers}: {outcome}."
    latent_methods = [m for m in dict.fromkeys(final["method"]) if m.split(" ")[0] in NEEDS_MODEL]
    means = final[final["method"].isin(latent_methods)].groupby("method", sort=False)["success_rate"].mean()
    best = means.idxmax()  # the first in campaign order among equals
    if best != latent and means[best] > means[latent]:
        sign, numbers = _compare(campaign, best, element)
        relation = {1: f"above {element} on every seed", -1: f"below {element} on every seed",
                    0: f"not separable from {element}"}[sign]
        sentence += f" The best latent-space method, {best}, is {relation} ({numbers})."
    return sentence


def design_record(settings: DesignSettings, campaigns: dict[str, pd.DataFrame], best: dict[str, pd.DataFrame]) -> dict:
    """What the chapter records (:func:`matvae.results.record`): its settings, and per objective the campaign
    rows, the summary at the largest budget, the verdict and the best materials."""
    def summary(campaign: pd.DataFrame) -> list[dict]:
        table = method_summary(campaign)
        table.columns = [f"{number} {statistic}" for number, statistic in table.columns]
        return table.reset_index().to_dict(orient="records")

    return {
        "settings": {name: getattr(settings, name) for name in settings.__dataclass_fields__},
        "campaigns": {name: c.to_dict(orient="records") for name, c in campaigns.items()},
        "summary": {name: summary(c) for name, c in campaigns.items()},
        "verdict": {name: verdict(c) for name, c in campaigns.items()},
        "best": {name: table.to_dict(orient="records") for name, table in best.items()},
    }


def design_markdown(values: dict) -> str:
    """The README's "Inverse design" tables from the chapter's recorded values (``09_design``): per objective,
    mean ± sd over seeds at the largest budget, and the verdict."""
    budgets = str(values["settings"].get("budgets", ""))
    budget = max((int(b) for b in budgets.split(",") if b.strip()), default=None)
    parts = []
    for objective, rows in values["summary"].items():
        columns = ["success_rate", "hits_per_call", "n_predicted_stable", "wall_seconds"]
        header = "| method | success rate | hits per oracle call | valid, novel, predicted stable | wall time (s) | seeds |\n"
        header += "| --- | --- | --- | --- | --- | --- |\n"
        body = ""
        for row in rows:
            cells = []
            for column in columns:
                mean, sd = row.get(f"{column} mean"), row.get(f"{column} sd")
                spec = "{:.1%}" if column in ("success_rate", "hits_per_call") else "{:.0f}" if column == "wall_seconds" else "{:.1f}"
                text = "-" if mean is None else spec.format(mean) + ("" if sd is None else " ± " + spec.format(sd))
                cells.append(text)
            body += f"| {row['method']} | " + " | ".join(cells) + f" | {row.get('seeds n', '-')} |\n"
        title = f"Objective **{objective}**" + (f", {budget:,} oracle calls" if budget else "") + ":"
        parts.append(f"{title}\n\n{header}{body}\n{values['verdict'][objective]}\n")
    return "\n".join(parts)
