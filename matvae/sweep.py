"""``python -m matvae.sweep --setting {hidden_dim,kl_weight,seed} --values V1,V2,... --epochs N --json PATH``

Trains one paper-family VAE per value on the embedded snapshot (or a closed chemical space, ``--elements``) and
writes (atomically) one row per value with the columns of :func:`matvae.tuning.sweep`'s table. ``--backend ray``
runs the models as Ray tasks (the cluster of ``RAY_ADDRESS``, else a local Ray); ``--storage`` is where every
model's resumable checkpoint lands (a folder every Ray node sees), so a sweep stopped or killed at any point
resumes where it stopped. ``--stack K`` trains the models K at a time,
stacked (:func:`matvae.stacked.stacked_sweep`; widths zero-padded to the widest), one job per stack.
"""

from __future__ import annotations

import argparse
import json
import sys

from matvae.params import argument_type, check_float, check_int, check_str
from matvae.runner import BACKENDS, Resources, check_backend
from matvae.tuning import SWEEPABLE, check_sweep_values


def _int(name: str, minimum: int):
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {text!r}") from None
        return check_int(name, value, minimum=minimum)

    return convert


def _float(name: str, *, low: float, low_inclusive: bool = True):
    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {text!r}") from None
        return check_float(name, value, low=low, low_inclusive=low_inclusive)

    return convert


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m matvae.sweep", description=__doc__.split("\n\n")[1])
    p.add_argument("--setting", required=True, choices=SWEEPABLE, help="what varies from model to model")
    p.add_argument("--values", required=True, help="comma-separated values of the setting, e.g. 50,100,150")
    p.add_argument("--epochs", required=True, type=argument_type(_int("epochs", 1)), help="epochs per model (the paper: 2000)")
    p.add_argument("--elements", default="", type=argument_type(lambda t: check_str("elements", t)),
                   help="closed chemical space, e.g. Li,Fe,O (default: every material)")
    p.add_argument("--backend", default="local", choices=BACKENDS, help="local (this process) or ray")
    p.add_argument("--storage", required=True, help="folder of the models' checkpoints (shared by every Ray node)")
    p.add_argument("--json", required=True, help="where the table is written (one JSON object per value)")
    p.add_argument("--hidden-dim", type=argument_type(_int("hidden-dim", 1)), default=100, help="width when it does not vary")
    p.add_argument("--kl-weight", type=argument_type(_float("kl-weight", low=0.0)), default=0.03, help="beta when it does not vary")
    p.add_argument("--latent-dim", type=argument_type(_int("latent-dim", 1)), default=10)
    p.add_argument("--batch-size", type=argument_type(_int("batch-size", 1)), default=1024)
    p.add_argument("--seed", type=argument_type(_int("seed", 0)), default=0, help="training seed when it does not vary")
    p.add_argument("--device", default="auto", help="auto (a GPU where the job has one), cpu, cuda")
    p.add_argument("--checkpoint-every", type=argument_type(_int("checkpoint-every", 1)), default=25, help="epochs")
    p.add_argument("--plateau-window", type=argument_type(_int("plateau-window", 0)), default=0,
                   help="stop a model once its test loss has plateaued over this many epochs (0: train all --epochs)")
    p.add_argument("--plateau-tolerance", type=argument_type(_float("plateau-tolerance", low=0.0)), default=0.005,
                   help="plateau: the last window improves on the best before it by less than this fraction")
    p.add_argument("--n-samples", type=argument_type(_int("n-samples", 1)), default=10_000, help="samples per model")
    p.add_argument("--stack", type=argument_type(_int("stack", 1)), default=None, help="models per stacked job")
    p.add_argument("--cpus-per-job", type=argument_type(_float("cpus-per-job", low=0.0, low_inclusive=False)), default=1.0)
    p.add_argument("--gpus-per-job", type=argument_type(_float("gpus-per-job", low=0.0)), default=0.0)
    return p


def main(argv: list[str] | None = None) -> int:
    from matvae.data import DataConfig, prepare_data
    from matvae.files import atomic_write
    from matvae.model import ModelConfig
    from matvae.results import _plain
    from matvae.stacked import stacked_sweep
    from matvae.training import TrainConfig
    from matvae.tuning import sweep

    p = parser()
    args = p.parse_args(argv)
    try:
        values = check_sweep_values(args.setting, args.values)
        model_config = ModelConfig(hidden_dim=args.hidden_dim, kl_weight=args.kl_weight, latent_dim=args.latent_dim)
        train_config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, device=args.device,
                                   checkpoint_every=args.checkpoint_every, plateau_window=args.plateau_window,
                                   plateau_tolerance=args.plateau_tolerance)
        resources = Resources(cpus=args.cpus_per_job, gpus=args.gpus_per_job)
        data_config = DataConfig(elements=args.elements)
        check_backend(args.backend)  # Ray missing: a usage error before the data loads
        if args.stack is not None and args.plateau_window:
            raise ValueError("--stack trains every model of a stack for --epochs: it cannot take --plateau-window")
    except ValueError as exc:
        p.error(str(exc))
    _, split = prepare_data(data_config)
    options = dict(checkpoint_dir=args.storage, reference_counts=split.dataset.counts, n_samples=args.n_samples,
                   backend=args.backend, resources=resources)
    if args.stack is None:
        table = sweep(split.train, split.test, args.setting, values, model_config, train_config, **options)
    else:
        table = stacked_sweep(split.train, split.test, args.setting, values, model_config, train_config,
                              stack_size=args.stack, **options)
    rows = _plain(table.to_dict(orient="records"))
    with atomic_write(args.json, mode="w") as handle:
        json.dump(rows, handle, indent=1)
    for row in rows:
        print(f"{args.setting}={row[args.setting]:g}: test_nelbo={row['test_nelbo']:.4f} "
              f"prevalence_kl={row['prevalence_kl']:.4f} status={row['status']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
