"""``python -m matvae.design --method NAME[,NAME] --objective NAME --budget N --seed S[,S] --json PATH [--backend ray]``

Runs each method with each seed on ``budget`` oracle calls and writes (atomically) the summary of
:meth:`matvae.design.result.DesignResult.summary`: one JSON object for one run, a list for several.
``--model`` picks the shipped VAE the latent methods search (``sequence`` or ``paper``); ``--oracle
MODULE:FUNCTION`` replaces the default oracle (:func:`matvae.properties.oracle.predict_properties`) by any
function ``list[str] -> DataFrame`` with the columns of :data:`matvae.design.objectives.ORACLE_COLUMNS`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from matvae.design.campaign import check_methods, run_one
from matvae.design.methods import METHODS
from matvae.design.objectives import OBJECTIVES, make_objective
from matvae.params import argument_type, check_int, check_int_list, check_seed
from matvae.runner import BACKENDS, Job, check_backend, run_jobs

MODELS: tuple[str, ...] = ("sequence", "paper")


def _budget(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"budget must be an integer >= 1 (oracle calls), got {text!r}") from None
    return check_int("budget", value, minimum=1)


def _seeds(text: str) -> tuple[int, ...]:
    return tuple(check_seed("seed", s) for s in check_int_list("seed", text, minimum=0))


def _oracle(text: str):
    module, _, name = text.partition(":")
    if not module or not name:
        raise ValueError(f"oracle must be MODULE:FUNCTION, got {text!r}")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"oracle {text!r} cannot be imported ({exc})") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m matvae.design", description=__doc__.split("\n\n")[1])
    p.add_argument("--method", required=True, type=argument_type(check_methods), help=f"one or more (comma-separated) of {', '.join(METHODS)}")
    p.add_argument("--objective", required=True, choices=tuple(OBJECTIVES))
    p.add_argument("--budget", required=True, type=argument_type(_budget), help="oracle calls (distinct valid formulas scored)")
    p.add_argument("--seed", default=(0,), type=argument_type(_seeds), help="one or more (comma-separated) seeds")
    p.add_argument("--json", required=True, help="where the summary is written")
    p.add_argument("--model", default="sequence", choices=MODELS, help="the shipped VAE the latent methods search")
    p.add_argument("--target", type=float, default=None, help="eV/atom, objective target-energy (default -1.0)")
    p.add_argument("--tolerance", type=float, default=None, help="eV/atom, objective target-energy (default 0.1)")
    p.add_argument("--oracle", type=argument_type(_oracle), default=None, help="MODULE:FUNCTION replacing the default oracle")
    p.add_argument("--backend", default="local", choices=BACKENDS, help="local (one run after another here) or ray")
    p.add_argument("--storage", default=None, help="folder of the runs' attempt logs (shared by every Ray node)")
    return p


def main(argv: list[str] | None = None) -> int:
    from matvae.files import atomic_write
    from matvae.results import _plain

    p = parser()
    args = p.parse_args(argv)
    settings = {k: v for k in ("target", "tolerance") if (v := getattr(args, k)) is not None}
    try:
        objective = make_objective(args.objective, oracle=args.oracle, **settings)
        check_backend(args.backend)  # Ray missing: a usage error before anything loads
    except ValueError as exc:
        p.error(str(exc))
    model = train_counts = None
    if any(m in ("random-latent", "cmaes-latent", "rl-latent") for m in args.method):
        from matvae.pretrained import load_pretrained

        model = load_pretrained(args.model)
    if "marginal" in args.method:
        from matvae.data import DataConfig, prepare_data

        _, split = prepare_data(DataConfig())
        train_counts = split.train.counts
    jobs = [
        Job(f"{method}-seed{seed}", run_one,
            {"method": method, "seed": seed, "budgets": (args.budget,), "progress": False, "options": {}})
        for method in args.method
        for seed in args.seed
    ]
    done = run_jobs(jobs, backend=args.backend, storage=args.storage, desc="runs",
                    shared={"objective": objective, "model": model, "train_counts": train_counts})
    summaries = []
    for job, outcome in zip(jobs, done):
        summaries.append(outcome.value[1].summary())
        numbers = {k: summaries[-1][k] for k in ("n_oracle_calls", "n_proposals", "n_success", "success_rate", "best_score")}
        print(f"{job.kwargs['method']} seed {job.kwargs['seed']}: "
              + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in numbers.items()))
    with atomic_write(args.json, mode="w") as handle:
        json.dump(_plain(summaries[0] if len(summaries) == 1 else summaries), handle, indent=1)
    return 0


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)  # PPO is deterministic given its seed on one thread (set here: main() leaves callers alone)
    sys.exit(main())
