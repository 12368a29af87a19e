"""Two model families side by side on every metric the book reports (the "Beyond the paper" chapter).

Each function takes any model of :mod:`matvae.models` and returns plain numbers, so a row of the comparison
is computed the same way for the paper's VAE and for the sequence family.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from matvae import latent, metrics
from matvae.composition import DEFAULT_THRESHOLD
from matvae.data.dataset import MaterialsDataset
from matvae.models import AnyModel, family_of
from matvae.params import check_int
from matvae.sampling import FAMILY_RULES, encode_means, reconstruct

COLLAPSE_KL: float = 0.1
"""nats per material: a test KL term below this means the code carries almost nothing (posterior collapse)."""


def round_trip(model: AnyModel, data: MaterialsDataset, *, threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """Encode every material of ``data`` to its mean code, decode it with each of the family's rules, and
    compare with the material: one row per rule, columns ``exact formula`` and ``same elements`` (shares of
    the materials). The paper's family decodes with the material's true class and threshold ``threshold``."""
    family = family_of(model)
    rows = {}
    for rule in FAMILY_RULES[family]:
        if family == "paper":
            decoded = reconstruct(model, data.x, y=data.y, threshold=threshold, rule=rule)
        else:
            decoded = reconstruct(model, data.x, rule=rule)
        rows[rule] = {
            "exact formula": metrics.exact_match_rate(decoded.formulas, list(data.formula)),
            "same elements": metrics.element_set_match_rate(decoded.counts, data.counts),
        }
    return pd.DataFrame(rows).T.rename_axis("rule")


def decomposition_evidence(
    model: AnyModel, dataset: MaterialsDataset, *, seed: int = 0, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, float]:
    """Figure 8 for one model with its nulls, and whether the combined code decodes to the material.

    Returns the medians of cos(mu(x), sum_k a_k mu(x_k)) over the decomposed materials, plain and centred on
    the mean code, with the two nulls (random stable components; a random other material), and the shares of
    decomposed materials whose combined code sum_k a_k mu(x_k) (and whose own code mu(x)) decodes to the exact
    formula and to the right element set.
    """
    codes = encode_means(model, dataset.x)  # (n, latent_dim)
    component_row, component_amount = dataset.component_row, dataset.component_amount
    rows = latent.decomposed_rows(component_row, dataset.complete_decomposition)
    stable_rows = np.flatnonzero(dataset.y == 0)
    if len(rows) == 0 or len(stable_rows) == 0:
        raise ValueError("the dataset has no decomposed or no stable materials: Figure 8 is undefined")
    center = codes.mean(axis=0)
    result: dict[str, float] = {"materials": float(len(rows))}
    for suffix, offset in (("", None), (", centred", center)):
        result[f"model{suffix}"] = float(np.median(
            latent.decomposition_similarity(codes, component_row, component_amount, rows=rows, center=offset)[0]
        ))
        result[f"random components{suffix}"] = float(np.nanmedian(
            latent.random_component_similarity(
                codes, component_row, component_amount, stable_rows, seed=seed, rows=rows, center=offset
            )[0]
        ))
        result[f"random pairs{suffix}"] = float(np.median(latent.random_pair_similarity(codes, rows, seed=seed, center=offset)))
    decoding = latent.decode_combination(model, codes, component_row, component_amount, rows, dataset.y, threshold=threshold)
    rates = latent.decoding_rates(decoding, dataset.formula, dataset.counts)
    result["combination exact"] = float(rates.iloc[1]["exact formula"])
    result["combination same elements"] = float(rates.iloc[1]["same elements"])
    result["own code exact"] = float(rates.iloc[0]["exact formula"])
    result["own code same elements"] = float(rates.iloc[0]["same elements"])
    return result


def wasserstein_spread(
    model: AnyModel, reference_counts: np.ndarray, *, n_samples: int = 10_000, seeds=range(5),
    threshold: float | None = None,
) -> np.ndarray:
    """Elements-per-material W1 of ``n_samples`` samples against ``reference_counts``, once per sampling seed.

    A W1 from 10,000 samples moves by about 0.01 from one seed to the next (a single draw of a distance is
    biased upwards by its own sampling noise), so a comparison with a target of 0.05 needs the spread, not one
    draw. Returns a (len(seeds),) float64 array in the order of ``seeds``; ``threshold`` is the paper family's T
    (leave it unset for the sequence family)."""
    from matvae.sampling import sample

    seeds = [check_int("seed", seed, minimum=0) for seed in seeds]
    if not seeds:
        raise ValueError("seeds is empty: give at least one sampling seed")
    reference_counts = np.asarray(reference_counts)
    if reference_counts.ndim != 2 or not reference_counts.any(axis=1).any():
        raise ValueError(f"reference_counts must be a (materials, 89) array with a material, got shape {reference_counts.shape}")
    kwargs = {} if threshold is None else {"threshold": threshold}
    return np.array(
        [metrics.n_elements_wasserstein(sample(model, n_samples, seed=seed, **kwargs).counts, reference_counts) for seed in seeds]
    )


def collapsed(test_kl: float) -> bool:
    """Whether a test KL term (nats per material) means posterior collapse (below :data:`COLLAPSE_KL`)."""
    return bool(test_kl < COLLAPSE_KL)


def design_summary(
    checkpoint_path, data: MaterialsDataset, test: MaterialsDataset, *, n_samples: int = 10_000, seed: int = 0,
    n_processes: int | None = None,
) -> dict:
    """One row of the chapter's "designs tried" table for a trained checkpoint of either family: its settings,
    the test KL, the round trip of the test split, and the metrics of ``n_samples`` samples (validity, unique,
    novel against ``data``, prevalence KL against ``data``, elements-per-material W1 against ``test``)."""
    from matvae.sampling import sample
    from matvae.training import load_checkpoint

    checkpoint = load_checkpoint(checkpoint_path)
    model = checkpoint.build_model()
    config = checkpoint.model_config
    trip = round_trip(model, test).iloc[0]
    samples = sample(model, n_samples, seed=seed)
    generated = metrics.generation_metrics(
        samples.counts, samples.formulas, data_counts=data.counts, train_formulas=set(data.formula),
        test_counts=test.counts, n_processes=n_processes,
    )
    return {
        "checkpoint": Path(checkpoint_path).name,
        "family": family_of(config),
        "latent_dim": config.latent_dim,
        "kl_weight": config.kl_weight,
        "prior": getattr(config, "prior", "normal"),
        "epochs": checkpoint.epoch,
        "test_kl": checkpoint.history["test_kl"][-1],
        "test_nelbo": checkpoint.history["test_nelbo"][-1],
        "exact formula": float(trip["exact formula"]),
        "same elements": float(trip["same elements"]),
        **{key: generated[key] for key in ("smact (ICSD24)", "uniqueness", "novelty", "prevalence_kl", "n_elements_wasserstein")},
    }


DESIGNS_PATH = Path(__file__).with_name("models") / "designs.json"
"""The designs tried for the sequence family, as written by ``python -m matvae.comparison``."""


def recorded_designs(path: str | Path = DESIGNS_PATH) -> pd.DataFrame:
    """The recorded "designs tried" table, one row per checkpoint (``ValueError`` naming a damaged file)."""
    import json

    path = Path(path)
    try:
        rows = json.loads(path.read_text())
        return pd.DataFrame(rows).set_index("checkpoint")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"designs file {path.name} cannot be read ({type(exc).__name__}: {exc})") from None


def main(argv: list[str] | None = None) -> int:
    """``python -m matvae.comparison --data DATA.npz --checkpoint A.pt --checkpoint B.pt --json OUT.json``:
    the "designs tried" table of the Beyond-the-paper chapter, one row per checkpoint."""
    import argparse
    import json

    from matvae.data import SplitData
    from matvae.files import atomic_write
    from matvae.results import _plain

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--data", required=True, help="split dataset written by the data chapter (artifacts/data.npz)")
    parser.add_argument("--checkpoint", action="append", required=True, help="a trained checkpoint (repeatable)")
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", required=True, help="where the table is written")
    args = parser.parse_args(argv)
    split = SplitData.load(args.data)
    rows = [
        design_summary(path, split.dataset, split.test, n_samples=args.n_samples, seed=args.seed) for path in args.checkpoint
    ]
    with atomic_write(args.json, mode="w") as handle:
        json.dump(_plain(rows), handle, indent=1)
    print(pd.DataFrame(rows).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
