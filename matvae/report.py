"""The reproduction report: every figure and number of the paper next to this project's, with a verdict.

:func:`reproduction_table` reads the chapters' results (see :mod:`matvae.results`) and the paper's values
(:mod:`matvae.paper`). Each row's verdict follows an explicit criterion written in its ``criterion`` column;
the ``note`` gives the cause of a difference. ``python -m matvae.report --readme README.md`` writes the same
table into the README between its ``results`` markers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from matvae import paper
from matvae.files import atomic_write
from matvae.results import load_results

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"

SNAPSHOT_NOTE = (
    "the snapshot is the 2018-19 Matbench copy of the Materials Project (132,752 GGA/GGA+U entries, noble gases "
    "removed), not the ~154,000 materials the paper used"
)


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _row(item, paper_value, ours, verdict, criterion, note=""):
    return {"item": item, "paper": _text(paper_value), "this project": _text(ours), "reproduced": verdict,
            "criterion": criterion, "note": note}


def _yes(condition: bool, partly: bool = False) -> str:
    return "yes" if condition else "partly" if partly else "no"


def _spread_note(plateau: dict, width: int) -> str:
    """The sampling spread of the paper's width's prevalence KL against the picked width's lead (when recorded)."""
    spread = plateau.get("kl_spread")
    if not spread or width == paper.HIDDEN_DIM:
        return ""
    rows = {int(r["hidden_dim"]): r["prevalence_kl_converged"] for r in plateau["comparison"]}
    if paper.HIDDEN_DIM not in rows:
        return ""
    moved, lead = max(spread) - min(spread), rows[paper.HIDDEN_DIM] - rows[width]
    return (f"; its prevalence KL leads width {paper.HIDDEN_DIM}'s by {lead:.4f}, "
            + ("more than" if lead > moved else "within") + f" the {moved:.4f} that {len(spread)} sampling seeds move "
            f"width {paper.HIDDEN_DIM}'s")


def reproduction_table(results: dict[str, dict]) -> pd.DataFrame:
    """One row per figure and number of the paper; chapters missing from ``results`` are skipped."""
    rows = []
    data = results.get("01_data")
    if data:
        positions = data["example_positions"]
        rows.append(_row("Figure 2: Ga(MoS2)4 vector", "1, 4, 8 at 26, 44, 66", ", ".join(f"{k} {v}" for k, v in positions.items()),
                         _yes(positions == paper.EXAMPLE_POSITIONS), "same positions"))
        example = data.get("example")
        if example:
            decomposition = example["decomposition"]
            same_parts = set(decomposition) == set(paper.EXAMPLE_DECOMPOSITION)
            close = same_parts and all(abs(decomposition[k] - float(v)) < 0.005 for k, v in paper.EXAMPLE_DECOMPOSITION.items())
            rows.append(_row(
                "Figure 3: decomposition of Ga(MoS2)4",
                " + ".join(f"{v} {k}" for k, v in paper.EXAMPLE_DECOMPOSITION.items()),
                " + ".join(f"{a:.4f} {k}" for k, a in decomposition.items()),
                _yes(close), "same components, amounts within 0.005",
                "amounts from our own hull of the snapshot's energies; the paper shows the Materials Project page",
            ))
            e_hull = example["energy_above_hull"]
            rows.append(_row("Figure 3: energy above hull (eV/atom)", paper.EXAMPLE_ENERGY_ABOVE_HULL, round(e_hull, 3),
                             _yes(abs(e_hull - paper.EXAMPLE_ENERGY_ABOVE_HULL) < 0.005), "within 0.005 eV/atom",
                             "GGA/GGA+U energies here; the web page mixes in r2SCAN"))
            rows.append(_row("Figure 3: formation energy (eV/atom)", paper.EXAMPLE_FORMATION_ENERGY,
                             round(example["formation_energy_per_atom"], 3),
                             _yes(abs(example["formation_energy_per_atom"] - paper.EXAMPLE_FORMATION_ENERGY) < 0.02),
                             "within 0.02 eV/atom",
                             "different functional: GGA/GGA+U here, the GGA/GGA+U/r2SCAN mixing scheme on the page"))
        rows.append(_row("materials in the dataset", f"~{paper.N_MATERIALS_MP:,}", f"{data['n_materials']:,}",
                         _yes(False, partly=True), "same source, different release", SNAPSHOT_NOTE))
        rows.append(_row("most elements in a material", paper.MAX_ELEMENTS, data["max_elements"],
                         _yes(data["max_elements"] == paper.MAX_ELEMENTS), "equal", SNAPSHOT_NOTE))
        share = data["share_at_most_6_elements"]
        rows.append(_row("materials with <= 6 elements", f"{paper.SHARE_AT_MOST_6_ELEMENTS:.0%}", f"{share:.1%}",
                         _yes(abs(share - paper.SHARE_AT_MOST_6_ELEMENTS) < 0.01, partly=share >= paper.SHARE_AT_MOST_6_ELEMENTS),
                         "within 1 point (partly: the claim '96% or more' holds)", SNAPSHOT_NOTE))
        n_pairs = data["correlated_pairs"]["presence"]
        top = data["top_pair"]["presence"]
        same_top = top is not None and set(top[:2]) == set(paper.TOP_PAIR)
        rows.append(_row("element pairs with |correlation| > 0.2", f"{paper.N_PAIRS_ABOVE_0_2} of {paper.N_ELEMENT_PAIRS:,}",
                         f"{n_pairs} of {data['n_pairs']:,} (presence)", _yes(n_pairs == paper.N_PAIRS_ABOVE_0_2, partly=n_pairs <= 20),
                         "equal count (partly: still only a handful)",
                         "the paper does not say what it correlated; presence, fractions and counts are all in the data chapter"))
        rows.append(_row("most correlated pair", f"{paper.TOP_PAIR} {paper.TOP_PAIR_CORRELATION}",
                         f"({top[0]}, {top[1]}) {top[2]:.2f}" if top else "-", _yes(same_top), "same pair",
                         "no reading of the snapshot gives (Nb, O) 0.54; the data differ (see above)"))
    model = results.get("02_model")
    if model:
        elbo = model.get("elbo")
        if elbo:
            collapsed = elbo["test"]["kl"] < 0.1
            rows.append(_row("the ELBO trains a useful latent code", "implied (samples, Figure 8)",
                             f"test KL {elbo['test']['kl']:.2g} nats after {elbo['epochs']} epochs",
                             _yes(not collapsed), "KL term above 0.1 nats",
                             "posterior collapse: the Bernoulli reconstruction of fractions cannot pay for the information; "
                             f"the later chapters use beta = {model['model_config']['kl_weight']:g}" if collapsed else ""))
        rows.append(_row("latent dimension / epochs", f"{paper.LATENT_DIM} / {paper.EPOCHS:,}",
                         f"{model['model_config']['latent_dim']} / {model['epochs']:,}",
                         _yes(model["model_config"]["latent_dim"] == paper.LATENT_DIM and model["epochs"] == paper.EPOCHS), "equal",
                         "" if model["epochs"] == paper.EPOCHS else
                         f"{model['epochs']:,} epochs on {model.get('device', 'this machine')} ({model.get('train_minutes', 0):.0f} min); "
                         f"the paper's {paper.EPOCHS:,} are the paper scale (make book SCALE=paper, meant for a GPU)"))
    tuning = results.get("03_tuning")
    if tuning:
        rows.append(_row("Figure 5: chosen hidden width", paper.HIDDEN_DIM, tuning["chosen_width"],
                         _yes(tuning["chosen_width"] == paper.HIDDEN_DIM), "equal",
                         f"{tuning['epochs']} epochs per width here (the paper: {paper.EPOCHS:,}), beta = {tuning['kl_weight']:g}"))
        rows.append(_row("threshold T", paper.THRESHOLD, tuning["best_threshold"],
                         _yes(abs(tuning["best_threshold"] - paper.THRESHOLD) < 1e-9, partly=abs(tuning["best_threshold"] - paper.THRESHOLD) <= 0.01 + 1e-9),
                         "equal (partly: within 0.01)", "best match of the number of elements per material (Wasserstein-1)"))
        plateau = tuning.get("plateau")
        if plateau:
            rows_ = plateau["comparison"]
            width = next(int(r["hidden_dim"]) for r in rows_ if r["chosen_converged"])
            low, high = min(r["epochs_converged"] for r in rows_), max(r["epochs_converged"] for r in rows_)
            rows.append(_row("Figure 5, each width trained to its plateau: chosen width", paper.HIDDEN_DIM, width,
                             _yes(width == paper.HIDDEN_DIM), "equal",
                             f"{low:,} to {high:,} epochs per width (plateau rule: the last {plateau['window']} epochs improve "
                             f"the best test loss by less than {plateau['tolerance']:.1%}); best T of the width-"
                             f"{paper.HIDDEN_DIM if any(int(r['hidden_dim']) == paper.HIDDEN_DIM for r in rows_) else width} "
                             f"model so trained: {plateau['best_threshold']:g}" + _spread_note(plateau, width)))
    sampling = results.get("04_sampling")
    if sampling:
        kl = sampling["prevalence_kl"]
        rows.append(_row("Figure 6: prevalence KL", paper.PREVALENCE_KL, round(kl, 3),
                         _yes(kl <= 2 * paper.PREVALENCE_KL, partly=kl <= 5 * paper.PREVALENCE_KL), "within a factor 2 (partly: 5)",
                         "KL(data || samples) with 1e-6 smoothing; the paper states neither direction nor smoothing"))
        over = set(sampling["over_represented"]) & set(paper.OVER_REPRESENTED)
        under = set(sampling["under_represented"]) & set(paper.UNDER_REPRESENTED)
        rows.append(_row("Figure 6: over-represented elements", ", ".join(paper.OVER_REPRESENTED), ", ".join(sampling["over_represented"]),
                         _yes(len(over) >= 4, partly=len(over) >= 1), "4 or more shared (partly: 1 or more)", f"shared: {', '.join(sorted(over)) or 'none'}"))
        rows.append(_row("Figure 6: under-represented elements", ", ".join(paper.UNDER_REPRESENTED), ", ".join(sampling["under_represented"]),
                         _yes(len(under) >= 3, partly=len(under) >= 1), "3 or more shared (partly: 1 or more)", f"shared: {', '.join(sorted(under)) or 'none'}"))
        vae = sampling["table"].get("VAE, paper rule", {})
        if vae.get("n_elements_wasserstein") is not None:
            rows.append(_row("Figure 7: elements per material, samples vs data", "good match, fewer samples above 6",
                             f"Wasserstein-1 {vae['n_elements_wasserstein']:.3f} (train vs test: {sampling['n_elements_noise_floor']:.3f})",
                             _yes(vae["n_elements_wasserstein"] <= 0.25, partly=vae["n_elements_wasserstein"] <= 0.5),
                             "distance to the test split at most 0.25 (partly: 0.5)"))
    latent = results.get("05_decomposition")
    if latent:
        median = latent["medians"]["VAE"]["all"]
        centred = latent["medians"].get("VAE, centred", {}).get("all")
        rows.append(_row("Figure 8: latent decomposition similarity", "close to 1 for all component counts",
                         f"median {median:.4f}, {latent['share_high']:.1%} above {latent['high_similarity']:g}",
                         _yes(median > 0.9), "median above 0.9",
                         f"but PCA gives exactly 1 and the untrained network about 1; nulls: {latent['null_verdict']}"
                         + (f"; centred median {centred:.4f}" if centred is not None else "")))
    return pd.DataFrame(rows)


def chapter_scales(results: dict[str, dict]) -> pd.DataFrame:
    """What each chapter ran at (materials, epochs, sweeps, samples), one row per chapter that recorded."""
    scale = {}
    if "01_data" in results:
        d = results["01_data"]
        scale["01 data"] = (
            f"{d['n_materials']:,} materials ({d['config']['elements'] or 'all elements'}), split {d['n_train']:,} / {d['n_test']:,}"
        )
    if "02_model" in results:
        m = results["02_model"]
        text = (
            f"{m['epochs']:,} epochs, beta = {m['model_config']['kl_weight']:g}, hidden {m['model_config']['hidden_dim']} "
            f"({m['train_minutes']:.0f} min on {m['device']})"
        )
        if m.get("elbo"):
            text += f"; the beta = 1 model: {m['elbo']['epochs']:,} epochs ({m['elbo']['train_minutes']:.0f} min on {m['elbo']['device']})"
        scale["02 model"] = text
    if "03_tuning" in results:
        t = results["03_tuning"]
        beta_epochs = t.get("beta_epochs", t["epochs"])  # results written before the beta sweep had its own epochs
        if beta_epochs == t["epochs"]:
            scale["03 tuning"] = f"{len(t['beta_sweep'])} values of beta and {len(t['width_sweep'])} widths at {t['epochs']:,} epochs each"
        else:
            scale["03 tuning"] = (f"{len(t['beta_sweep'])} values of beta at {beta_epochs:,} epochs each (stacked) and "
                                  f"{len(t['width_sweep'])} widths at {t['epochs']:,} epochs each")
        scale["03 tuning"] += f", {t['n_samples']:,} samples per model"
        if t.get("plateau"):
            epochs = [r["epochs_converged"] for r in t["plateau"]["comparison"]]
            scale["03 tuning"] += f"; the widths again, each to its plateau: {min(epochs):,} to {max(epochs):,} epochs"
    if "04_sampling" in results:
        scale["04 sampling"] = f"{results['04_sampling']['n_samples']:,} samples at T = {results['04_sampling']['threshold']}"
    if "05_decomposition" in results:
        r = results["05_decomposition"]
        scale["05 decomposition"] = f"{r['n_decomposed']:,} decomposed materials, model after {r['epoch']:,} epochs"
    return pd.DataFrame({"chapter": list(scale), "scale": list(scale.values())})


def to_markdown(table: pd.DataFrame, *, columns=("item", "paper", "this project", "reproduced", "note")) -> str:
    """A GitHub-flavoured Markdown table of the chosen columns."""
    header = "| " + " | ".join(columns) + " |\n| " + " | ".join("---" for _ in columns) + " |\n"
    body = "".join("| " + " | ".join(str(row[c]).replace("|", "\\|") for c in columns) + " |\n" for _, row in table.iterrows())
    return header + body


def update_readme(readme: str | Path, table: pd.DataFrame) -> None:
    """Replace the README's text between the results markers with the table (atomically)."""
    path = Path(readme)
    text = path.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{path.name} has no {README_START} ... {README_END} section")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    with atomic_write(path, mode="w") as handle:
        handle.write(head + README_START + "\n" + to_markdown(table) + README_END + tail)


BEYOND_START, BEYOND_END = "<!-- beyond:start -->", "<!-- beyond:end -->"
BEYOND_COLUMNS: tuple[str, ...] = ("metric", "paper's VAE", "sequence VAE", "test split", "target")


def beyond_table(values: dict) -> pd.DataFrame:
    """The "Beyond the paper" chapter's comparison (its recorded ``07_beyond`` values) as one table: a row
    per metric, the two families, the test split where it is the ceiling, and the issue's target."""
    generation = values["generation"]
    paper, sequence, test = generation["paper's VAE"], generation["sequence VAE"], generation["test split"]
    trip = values["round_trip"]
    paper_ev, sequence_ev = values["decomposition"]["paper's VAE"], values["decomposition"]["sequence VAE"]

    def share(value) -> str:
        return "-" if value is None else f"{value:.1%}"

    rows = [
        ("exact formula from the mean code (test split)", share(trip["paper's VAE / paper"]["exact formula"]),
         share(trip["sequence VAE / greedy"]["exact formula"]), "-", ">= 50 %"),
        ("right element set from the mean code", share(trip["paper's VAE / paper"]["same elements"]),
         share(trip["sequence VAE / greedy"]["same elements"]), "-", ">= 90 %"),
        ("SMACT-valid samples (ICSD24 states)", share(paper["smact (ICSD24)"]), share(sequence["smact (ICSD24)"]),
         share(test["smact (ICSD24)"]), ">= 80 %"),
        ("SMACT-valid samples (smact14 states)", share(paper["smact (smact14)"]), share(sequence["smact (smact14)"]),
         share(test["smact (smact14)"]), "-"),
        ("charge-neutral + EN-balanced samples", share(paper["charge-neutral + EN-balanced"]),
         share(sequence["charge-neutral + EN-balanced"]), share(test["charge-neutral + EN-balanced"]), ">= 0.9 x test"),
        ("unique among the samples", share(paper["uniqueness"]), share(sequence["uniqueness"]), "-", ">= 90 %"),
        ("novel vs the whole snapshot", share(paper["novelty"]), share(sequence["novelty"]), "-", ">= 80 %"),
        ("prevalence KL (nats)", f"{paper['prevalence_kl']:.3f}", f"{sequence['prevalence_kl']:.3f}",
         f"{test['prevalence_kl']:.3f}", "<= 0.02"),
        ("elements-per-material W1", f"{paper['n_elements_wasserstein']:.3f}", f"{sequence['n_elements_wasserstein']:.3f}",
         f"{values['n_elements_noise_floor']:.3f} (train vs test)", "<= 0.05"),
    ]
    spread = values.get("n_elements_w1_spread")  # W1 once per sampling seed (recorded since the 0.3 model)
    if spread is not None:

        def mean_sd(draws) -> str:
            draws = np.asarray(draws, dtype=float)
            return f"{draws.mean():.3f} ± {draws.std(ddof=1) if len(draws) > 1 else 0.0:.3f}"

        n_seeds = len(spread["sequence VAE"])
        rows.append((f"elements-per-material W1, {n_seeds} sampling seeds (mean ± sd)", mean_sd(spread["paper's VAE"]),
                     mean_sd(spread["sequence VAE"]), "-", "<= 0.05"))
    rows += [
        ("Figure 8 median similarity (centred)", f"{paper_ev['model']:.3f} ({paper_ev['model, centred']:.3f})",
         f"{sequence_ev['model']:.3f} ({sequence_ev['model, centred']:.3f})", "-", "measured"),
        ("decoded sum_k a_k mu(x_k) has x's element set", share(paper_ev["combination same elements"]),
         share(sequence_ev["combination same elements"]), "-", "measured (moonshot >= 60 %)"),
        ("test KL term (nats per material)", "-", f"{values['test_kl']:.2f}", "-", "no collapse"),
    ]
    return pd.DataFrame(rows, columns=list(BEYOND_COLUMNS))


def _replace_between(text: str, start: str, end: str, body: str, name: str) -> str:
    if start not in text or end not in text:
        raise ValueError(f"{name} has no {start} ... {end} section")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return head + start + "\n" + body + end + tail


def update_readme_section(readme: str | Path, section: str, body: str) -> None:
    """Replace the README's text between ``<!-- SECTION:start -->`` and ``<!-- SECTION:end -->`` (atomically)."""
    path = Path(readme)
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    text = _replace_between(path.read_text(), start, end, body, path.name)
    with atomic_write(path, mode="w") as handle:
        handle.write(text)


LITERATURE_COLUMNS: tuple[str, ...] = ("work", "data", "charge-neutral", "charge-neutral + EN-balanced", "smact (smact14)")


def literature_markdown() -> str:
    """The validity figures other works report (:data:`matvae.literature.REPORTED`) as a markdown table, shares
    as percentages and "-" where a work reports none; other models on other data, for context only."""
    from matvae.literature import REPORTED

    rows = [
        {key: ("-" if row[key] is None else f"{row[key]:.1%}") if key not in ("work", "data") else row[key]
         for key in LITERATURE_COLUMNS}
        for row in REPORTED
    ]
    return to_markdown(pd.DataFrame(rows), columns=LITERATURE_COLUMNS)


def update_readme_beyond(readme: str | Path, table: pd.DataFrame) -> None:
    """Replace the README's text between the beyond markers with the comparison table and, below it, the
    figures other works report (atomically)."""
    body = (to_markdown(table, columns=BEYOND_COLUMNS)
            + "\nFigures other works report, **for other models on other data** (context, not a like-for-like "
            "comparison; the test split's own rates above are this data's ceiling):\n\n" + literature_markdown())
    update_readme_section(readme, "beyond", body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the reproduction table into the README.")
    parser.add_argument("--results", default="book/artifacts/results", help="folder of the chapters' results")
    parser.add_argument("--readme", default="README.md")
    args = parser.parse_args(argv)
    results = load_results(args.results)
    if not results:
        print(f"no results in {args.results}: run the book first (make book)", file=sys.stderr)
        return 1
    update_readme(args.readme, reproduction_table(results))
    if "07_beyond" in results:
        update_readme_beyond(args.readme, beyond_table(results["07_beyond"]))
    if "08_properties" in results:
        from matvae.properties.chapter import properties_markdown

        update_readme_section(args.readme, "properties", properties_markdown(results["08_properties"]))
    if "09_design" in results:
        from matvae.design.chapter import design_markdown

        update_readme_section(args.readme, "design", design_markdown(results["09_design"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
