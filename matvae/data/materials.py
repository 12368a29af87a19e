"""``load_materials``: the materials table from the embedded snapshot or the live Materials Project."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from typing import Literal

import numpy as np
import pandas as pd

from matvae.composition import reduced_formula
from matvae.data import snapshot
from matvae.data.hull import HULL_VERSION, compute_decompositions
from matvae.data.table import CacheError, MaterialColumns, load_columns, save_columns, to_frame
from matvae.elements import ELEMENT_INDEX, ELEMENTS, check_elements
from matvae.files import CacheDirError, build_lock, cache_dir, warn_cache_unusable

log = logging.getLogger(__name__)

Source = Literal["snapshot", "mp"]
SOURCES: tuple[str, ...] = ("snapshot", "mp")


def load_materials(
    source: Source = "snapshot",
    *,
    elements: Iterable[str] | str | None = None,
    cache: bool = True,
    show_progress: bool | None = None,
    **mp_options,
) -> pd.DataFrame:
    """The materials table, one row per Materials Project entry (columns: :data:`TABLE_COLUMNS`).

    Args:
        source: ``"snapshot"`` (default): the embedded Matbench ``mp_e_form`` snapshot, with hull
            decompositions computed by :mod:`matvae.data.hull`. ``"mp"``: the live Materials Project through
            ``mp-api``, the key read from the ``MP_API_KEY`` environment variable only.
        elements: keep only materials made of these elements (a closed chemical space, so every hull and
            decomposition stays exact), e.g. ``"Li,Fe,P,O"``. ``None``: all materials.
        cache: reuse (and write) the derived table in :func:`matvae.files.cache_dir`, keyed by the input's
            checksum and the algorithm version. A damaged cache file is ignored and rebuilt.
        show_progress: progress bars (default: when stderr is a terminal).
        **mp_options: for ``source="mp"``: ``thermo_type``, ``chunk_size``, ``max_retries`` (see
            :func:`matvae.data.mp.fetch_thermo_columns`).
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    symbols = check_elements(elements)
    if source == "snapshot":
        if mp_options:
            raise ValueError(f"options {sorted(mp_options)} apply only to source='mp'")
        columns = _cached(
            _snapshot_key(symbols), lambda: snapshot_columns(symbols, show_progress=show_progress), cache=cache, prefix="snapshot"
        )
    else:
        from matvae.data import mp

        columns = _cached(
            mp.cache_key(symbols, **mp_options),
            lambda: mp.fetch_thermo_columns(symbols, show_progress=show_progress, **mp_options),
            cache=cache,
            prefix="mp",
        )
    return to_frame(columns)


def is_cached(source: Source = "snapshot", *, elements: Iterable[str] | str | None = None) -> bool:
    """Whether :func:`load_materials` would read the snapshot table from the cache (snapshot source only)."""
    if source != "snapshot":
        return False
    key = _snapshot_key(check_elements(elements))
    try:
        path = _cache_path("snapshot", key)
    except CacheDirError:
        return False
    try:
        load_columns(path, key=key)
    except CacheError:
        return False
    return True


def _cache_path(prefix: str, key: str):
    return cache_dir() / f"{prefix}-{key[:20]}.npz"


def _snapshot_key(symbols: tuple[str, ...] | None) -> str:
    text = f"{snapshot.SNAPSHOT_SHA256}|hull{HULL_VERSION}|{','.join(symbols or ())}"
    return hashlib.sha256(text.encode()).hexdigest()


def _cached(key: str, build, *, cache: bool, prefix: str) -> MaterialColumns:
    """``build()``, read from and written to the cache when it can be; never lost to a cache failure.

    Processes that want the same table at once take the cache file's lock: the first builds and writes it,
    the others wait and read it. A damaged or stale file is rebuilt; an unusable cache folder (see
    :func:`matvae.files.cache_dir`) or a failed write gives a warning and the computed table.
    """
    if not cache:
        return build()
    try:
        path = _cache_path(prefix, key)
        lock = build_lock(path)
        lock.acquire()
    except (CacheDirError, OSError) as exc:
        warn_cache_unusable(exc)
        return build()
    try:
        if path.exists():
            try:
                return load_columns(path, key=key)
            except CacheError as exc:
                log.warning("rebuilding the materials table: %s", exc)
        columns = build()
        try:
            save_columns(columns, path, key=key)
        except OSError as exc:
            warn_cache_unusable(OSError(f"cannot write {path.name}: {exc.strerror or exc}"))
        return columns
    finally:
        lock.release()


def snapshot_columns(elements: tuple[str, ...] | None = None, *, show_progress: bool | None = None) -> MaterialColumns:
    """Read the embedded snapshot and compute its hull decompositions (the uncached work)."""
    started = time.perf_counter()
    raw = snapshot.read_snapshot()
    counts = snapshot.parse_cell_formulas(raw["formula"])
    rows = np.arange(len(raw))
    if elements is not None:
        allowed = np.zeros(len(ELEMENTS), dtype=bool)
        allowed[[ELEMENT_INDEX[s] for s in elements]] = True
        keep = ~(counts[:, ~allowed] > 0).any(axis=1)
        counts, rows = counts[keep], rows[keep]
        if not len(rows):
            raise ValueError(f"no snapshot material is made only of {', '.join(elements)}")
    target = raw["target"].to_numpy()[rows]
    n_atoms = counts.sum(axis=1)
    # pymatgen's PDEntry stores total energy and divides by the atom count; do the same arithmetic so that
    # exact ties between polymorphs break the same way.
    energy_per_atom = (target * n_atoms) / n_atoms
    hull = compute_decompositions(counts, energy_per_atom, show_progress=show_progress)
    n = len(rows)
    integer = counts.astype(np.int64)
    reduced = integer // np.gcd.reduce(integer, axis=1)[:, None]

    component_row = hull.component_index.copy()
    reference = component_row >= n
    used_elements = np.unique(component_row[reference] - n)
    external_slot = {int(e): j for j, e in enumerate(used_elements)}
    component_row[reference] = [-2 - external_slot[int(e)] for e in component_row[reference] - n]
    external_formula = [reduced_formula(np.eye(len(ELEMENTS), dtype=np.int64)[e]) for e in used_elements]
    log.info("snapshot table: %d materials in %.1f s", n, time.perf_counter() - started)
    return MaterialColumns(
        material_id=np.array([f"snapshot-{r + 1:06d}" for r in rows]),
        counts=reduced,
        formation_energy_per_atom=target,
        energy_above_hull=hull.energy_above_hull,
        is_stable=hull.is_stable,
        component_row=component_row,
        component_amount=hull.component_amount,
        external_id=np.array([""] * len(used_elements), dtype=str),
        external_formula=np.array(external_formula, dtype=str),
    )
