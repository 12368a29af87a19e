import errno
import hashlib
import logging
import multiprocessing
import warnings

import numpy as np
import pytest

from matvae.data import materials
from matvae.data.materials import load_materials
from matvae.data.table import TABLE_COLUMNS, CacheError, load_columns

SPACE = "Ga,Mo,S"


@pytest.fixture(scope="module")
def table():
    return load_materials(elements=SPACE, cache=False)


def test_table_schema_and_invariants(table):
    assert tuple(table.columns) == TABLE_COLUMNS
    assert len(table) > 50
    assert table["material_id"].is_unique
    assert set("-".join(sorted(c)) for c in table["composition_reduced"]) == set(table["chemsys"])
    assert (table["n_components"] == table["decomposes_to"].map(len)).all()
    assert (table["is_stable"] == (table["n_components"] == 0)).all()
    assert (table.loc[table["is_stable"], "energy_above_hull"] == 0).all()
    assert (table["energy_above_hull"] >= -1e-9).all()
    ids = set(table["material_id"])
    for parts in table["decomposes_to"]:
        if parts:
            assert sum(p["amount"] for p in parts) == pytest.approx(1.0)
            assert all(p["material_id"] in ids for p in parts)
    # every component is itself stable
    stable_ids = set(table.loc[table["is_stable"], "material_id"])
    assert all(p["material_id"] in stable_ids for parts in table["decomposes_to"] for p in parts)


def test_worked_example(table):
    rows = table[table["formula"] == "Ga(MoS2)4"].sort_values("energy_above_hull")
    example = rows.iloc[0]
    parts = {p["formula"]: p["amount"] for p in example["decomposes_to"]}
    assert parts == pytest.approx({"Ga31Mo6": 0.0662, "MoS2": 0.8909, "GaS": 0.0429}, abs=5e-5)
    assert example["energy_above_hull"] == pytest.approx(0.040, abs=1e-3)
    assert example["formation_energy_per_atom"] == pytest.approx(-1.174, abs=1e-3)


def test_cache_is_written_reused_and_rebuilt_when_damaged(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MATVAE_CACHE_DIR", str(tmp_path))
    first = load_materials(elements=SPACE)
    files = list(tmp_path.glob("snapshot-*.npz"))
    assert len(files) == 1
    assert materials.is_cached(elements=SPACE)

    def fail(*args, **kwargs):
        raise AssertionError("rebuilt although a good cache exists")

    monkeypatch.setattr(materials, "snapshot_columns", fail)
    second = load_materials(elements=SPACE)
    assert first.drop(columns=["decomposes_to", "composition_reduced"]).equals(
        second.drop(columns=["decomposes_to", "composition_reduced"])
    )
    assert first["decomposes_to"].tolist() == second["decomposes_to"].tolist()
    monkeypatch.undo()
    monkeypatch.setenv("MATVAE_CACHE_DIR", str(tmp_path))

    files[0].write_bytes(files[0].read_bytes()[:1000])  # a crash mid-copy, a full disk...
    with caplog.at_level(logging.WARNING):
        third = load_materials(elements=SPACE)
    assert "rebuilding the materials table" in caplog.text
    assert third["energy_above_hull"].equals(first["energy_above_hull"])
    assert not list(tmp_path.glob(".*tmp*")), "a temporary file was left behind"


def test_cache_key_depends_on_the_element_filter(tmp_path, monkeypatch):
    monkeypatch.setenv("MATVAE_CACHE_DIR", str(tmp_path))
    load_materials(elements="Mg,Si")
    assert not materials.is_cached(elements=SPACE)
    assert materials.is_cached(elements="Si, Mg")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"source": "icsd"}, "source must be one of"),
        ({"elements": "Ga,Xx"}, "not among the 89"),
        ({"elements": ""}, "elements is empty"),
        ({"elements": "Xe"}, "no snapshot material is made only of Xe"),
        ({"thermo_type": "R2SCAN"}, "apply only to source='mp'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_materials(cache=False, **kwargs)


def _load_in_a_new_process(cache: str, builds: str, queue) -> None:
    """One of several processes that want the full snapshot table at once, on an empty cache folder."""
    import os

    os.environ["MATVAE_CACHE_DIR"] = cache
    from matvae.data import materials as module

    build = module.snapshot_columns

    def counted(*args, **kwargs):
        with open(builds, "a") as handle:
            handle.write("built\n")
        return build(*args, **kwargs)

    module.snapshot_columns = counted
    table = module.load_materials()
    digest = hashlib.sha256(table["energy_above_hull"].to_numpy().tobytes() + "".join(table["formula"]).encode())
    queue.put((len(table), digest.hexdigest()))


@pytest.mark.slow
def test_three_processes_building_the_full_snapshot_cache_at_once(tmp_path):
    """Three load_materials() calls started together on an empty cache folder: all succeed, the hulls are
    computed once (the others wait on the file lock and read the cache), nothing temporary is left."""
    cache, builds = tmp_path / "cache", tmp_path / "builds.txt"
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_load_in_a_new_process, args=(str(cache), str(builds), queue)) for _ in range(3)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert len(set(results)) == 1 and results[0][0] == 132_752
    assert builds.read_text().count("built") == 1
    names = sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock"))
    assert len(names) == 1 and names[0].startswith("snapshot-") and names[0].endswith(".npz")


def test_random_damage_anywhere_in_a_cache_file_is_detected_and_rebuilt(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MATVAE_CACHE_DIR", str(tmp_path))
    first = load_materials(elements=SPACE)
    (path,) = tmp_path.glob("snapshot-*.npz")
    key = materials._snapshot_key(materials.check_elements(SPACE))
    whole = path.read_bytes()
    rng = np.random.default_rng(1)
    positions = np.unique(np.concatenate([np.arange(100), rng.integers(0, len(whole), 300), np.arange(len(whole) - 100, len(whole))]))
    assert len(positions) >= 400
    for position in positions:
        damaged = bytearray(whole)
        damaged[position] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(damaged))
        with pytest.raises(CacheError, match=path.name):
            load_columns(path, key=key)
    damaged = bytearray(whole)
    damaged[len(whole) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with caplog.at_level(logging.WARNING):
        again = load_materials(elements=SPACE)  # rebuilt, and the file repaired for the next call
    assert "rebuilding the materials table" in caplog.text
    assert again["energy_above_hull"].equals(first["energy_above_hull"])
    assert path.read_bytes() == whole


@pytest.mark.parametrize("value", ["", "   ", "~/matvae-cache", "A-FILE"])
def test_an_unusable_cache_folder_warns_and_still_returns_the_table(tmp_path, monkeypatch, value):
    if value == "A-FILE":
        value = str(tmp_path / "a-file")
        (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("MATVAE_CACHE_DIR", value)
    with pytest.warns(RuntimeWarning, match="MATVAE_CACHE_DIR"):
        table = load_materials(elements=SPACE)
    assert len(table) > 50
    assert not materials.is_cached(elements=SPACE)


def test_a_full_disk_while_writing_the_cache_warns_and_still_returns_the_table(tmp_path, monkeypatch):
    monkeypatch.setenv("MATVAE_CACHE_DIR", str(tmp_path))

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(materials, "save_columns", disk_full)
    with pytest.warns(RuntimeWarning, match="No space left"):
        table = load_materials(elements=SPACE)
    assert len(table) > 50
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monkeypatch.undo()
        monkeypatch.setenv("MATVAE_CACHE_DIR", str(tmp_path))
        assert len(load_materials(elements=SPACE)) == len(table)
