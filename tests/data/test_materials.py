import logging

import pytest

from matvae.data import materials
from matvae.data.materials import load_materials
from matvae.data.table import TABLE_COLUMNS

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
