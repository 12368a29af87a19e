"""Numbers the chapters hand to the reproduction report, and the figures they hand to the README.

Each chapter writes ``results_dir/CHAPTER.json`` (atomically) with the values the report compares with the
paper; :func:`load_results` reads them all back.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from matvae.files import atomic_path, atomic_write


def _plain(value):
    """numpy scalars/arrays -> JSON-able Python values; NaN and infinities -> None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return value


def record(results_dir: str | Path, chapter: str, values: dict) -> None:
    """Write one chapter's values to ``results_dir/chapter.json`` (replacing what it wrote before)."""
    path = Path(results_dir) / f"{chapter}.json"
    with atomic_write(path, mode="w") as handle:
        json.dump(_plain(values), handle, indent=1, sort_keys=True)


def load_results(results_dir: str | Path) -> dict[str, dict]:
    """``{chapter: values}`` of every JSON file in ``results_dir`` (empty if there is none)."""
    folder = Path(results_dir)
    results = {}
    for path in sorted(folder.glob("*.json")):
        try:
            results[path.stem] = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"results file {path.name} is damaged ({exc}); rerun its chapter") from None
    return results


def save_figure(fig, path: str | Path, *, dpi: int = 120) -> None:
    """Save a matplotlib figure as PNG, atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
