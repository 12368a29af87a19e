"""matvae.data.mp against a fake Materials Project served by ``responses`` (never the network).

The fake server answers ``/heartbeat`` and ``/materials/thermo/`` the way the real API answers mp-api
0.46.5: it filters by ``chemsys``, ``thermo_types`` and ``nelements_min/max``, projects ``_fields``, pages
with ``_skip``/``_limit`` and wraps each page as ``{"data": [...], "meta": {"total_doc": N, ...}}``.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import math
import secrets
import string
import traceback
import warnings
import zipfile
from fractions import Fraction
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import requests
import responses
from emmet.core.types.enums import ThermoType
from mp_api.client import MPRester
from mp_api.client.core.client import _Rester
from mp_api.client.routes.materials.thermo import ThermoRester

import matvae
from matvae.composition import encode, reduced_formula
from matvae.data import mp
from matvae.data.table import TABLE_COLUMNS
from matvae.elements import ELEMENT_INDEX

KEY = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
HEARTBEAT_URL = mp.MP_ENDPOINT + "heartbeat"
THERMO_URL = mp.MP_ENDPOINT + "materials/thermo/"
HEARTBEAT = {
    "status": "OK",
    "message": "Materials Project API",
    "version": "0.87.3",
    "db_version": "2025.09.25",
    "access_controlled_batch_ids": [],
}


def thermo_doc(material_id, composition, e_form, e_hull, decomposes_to=None, *, thermo_type="GGA_GGA+U", pretty=None):
    """A thermo document as the API sends it (with more fields than requested, as the server stores them)."""
    symbols = sorted(composition)
    return {
        "material_id": material_id,
        "thermo_id": f"{material_id}_{thermo_type}",
        "thermo_type": thermo_type,
        "formula_pretty": pretty or reduced_formula(encode("".join(f"{s}{int(a)}" for s, a in composition.items()))),
        "composition_reduced": {s: float(a) for s, a in composition.items()},
        "chemsys": "-".join(symbols),
        "nelements": len(symbols),
        "elements": symbols,
        "formation_energy_per_atom": e_form,
        "energy_above_hull": e_hull,
        "is_stable": e_hull == 0 and decomposes_to is None,
        "decomposes_to": decomposes_to,
        "energy_per_atom": -5.0 + e_form,
    }


def part(material_id, formula, amount):
    return {"material_id": material_id, "formula": formula, "amount": amount}


# Fixtures: the ids follow the Materials Project's (Ga(MoS2)4 is mp-559694), but the energies are made up,
# plausible numbers. Ga(MoS2)4 -> 1/43 Ga31Mo6 + 166/43 MoS2 + 12/43 GaS per formula unit, i.e. atomic
# fractions 37/559, 498/559, 24/559. Ga31Mo6's own document is left out of the fake database on purpose,
# so that it becomes an external phase.
GA_MO_S = [
    thermo_doc("mp-142", {"Ga": 1}, 0.0, 0.0),
    thermo_doc("mp-129", {"Mo": 1}, 0.0, 0.0),
    thermo_doc("mp-77", {"S": 1}, 0.0, 0.0),
    thermo_doc("mp-96", {"S": 1}, 0.0123, 0.0123, [part("mp-77", "S", 1.0)]),
    thermo_doc("mp-2815", {"Mo": 1, "S": 2}, -0.9270, 0.0),
    thermo_doc("mp-1434", {"Mo": 1, "S": 2}, -0.9253, 0.0017, [part("mp-2815", "MoS2", 1.0)]),
    thermo_doc("mp-2507", {"Ga": 1, "S": 1}, -0.7907, 0.0),
    thermo_doc("mp-539", {"Ga": 2, "S": 3}, -0.8680, 0.0),
    thermo_doc("mp-1500", {"Ga": 1, "Mo": 3}, -0.2510, 0.0),
    thermo_doc(
        "mp-559694",
        {"Ga": 1, "Mo": 4, "S": 8},
        -0.8500,
        0.0290,
        [part("mp-1079378", "Ga31Mo6", 37 / 559), part("mp-2815", "MoS2", 498 / 559), part("mp-2507", "GaS", 24 / 559)],
        pretty="Ga(MoS2)4",
    ),
]
OTHERS = [
    thermo_doc("mp-886", {"Ga": 2, "O": 3}, -1.8721, 0.0),
    thermo_doc("mp-611517", {"Xe": 1}, 0.0, 0.0),
    thermo_doc("mp-2507", {"Ga": 1, "S": 1}, -0.7610, 0.0, thermo_type="R2SCAN"),
]
DATABASE = GA_MO_S + OTHERS


class FakeMP:
    """The Materials Project's thermo route over a list of documents, with injectable failures."""

    def __init__(self, rsps: responses.RequestsMock, documents: list[dict], *, filtered: bool = True):
        self.documents = documents
        self.filtered = filtered  # False: every document, whatever the query
        self.requests: list[requests.PreparedRequest] = []
        self.failures: list = []  # consumed one per thermo request: a status, (status, headers) or an exception
        self.fail_from: int | None = None  # every thermo request from this index on gets HTTP 500
        rsps.add(responses.GET, HEARTBEAT_URL, json=HEARTBEAT)
        rsps.add_callback(responses.GET, THERMO_URL, callback=self.thermo)

    @property
    def params(self) -> list[dict[str, str]]:
        return [{k: v[0] for k, v in parse_qs(urlsplit(r.url).query).items()} for r in self.requests]

    def thermo(self, request):
        self.requests.append(request)
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            status, headers = failure if isinstance(failure, tuple) else (failure, {})
            return status, headers, json.dumps({"detail": "fake failure"})
        if self.fail_from is not None and len(self.requests) > self.fail_from:
            return 500, {}, json.dumps({"detail": "Internal Server Error"})
        params = self.params[-1]
        docs = self.documents
        if not self.filtered:
            params = {k: v for k, v in params.items() if k.startswith("_")}
        if "thermo_types" in params:
            wanted = {t.upper() for t in params["thermo_types"].split(",")}
            docs = [d for d in docs if d["thermo_type"].upper() in wanted]
        if "chemsys" in params:
            systems = set(params["chemsys"].split(","))
            docs = [d for d in docs if d["chemsys"] in systems]
        if "nelements_min" in params:
            low, high = int(params["nelements_min"]), int(params["nelements_max"])
            docs = [d for d in docs if low <= d["nelements"] <= high]
        skip, limit = int(params.get("_skip", 0)), int(params.get("_limit", 1000))
        fields = params["_fields"].split(",")
        page = [{f: d[f] for f in fields if f in d} for d in docs[skip : skip + limit]]
        meta = {"api_version": "0.87.3", "time_stamp": "2025-10-01T00:00:00", "total_doc": len(docs), "max_limit": 1000}
        return 200, {"Content-Type": "application/json"}, json.dumps({"data": page, "meta": meta})


@functools.cache
def _available_fields() -> list[str]:
    return list(ThermoRester.document_model.model_json_schema()["properties"])


@pytest.fixture(autouse=True)
def environment(monkeypatch, tmp_path):
    """A cache folder in tmp_path, the fake key, no progress bars, no real sleeping, fresh heartbeat caches.

    mp-api rebuilds ThermoDoc's JSON schema (~40 ms) once per requested field of every search to check the
    field names; the check stays, computed once.
    """
    monkeypatch.setattr(ThermoRester, "available_fields", property(lambda self: _available_fields()))
    monkeypatch.setenv("MATVAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MP_API_KEY", KEY)
    monkeypatch.setenv("MATVAE_PROGRESS", "0")
    sleeps: list[float] = []
    monkeypatch.setattr(mp, "_sleep", sleeps.append)
    MPRester.get_emmet_version.cache_clear()
    _Rester._get_heartbeat_info.cache_clear()
    return sleeps


@pytest.fixture
def sleeps(environment):
    return environment


@pytest.fixture(autouse=True)
def rsps():
    """Every test runs under responses: a request nothing registered fails with ConnectionError."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def server(rsps):
    return FakeMP(rsps, DATABASE)


def load(elements="Ga,Mo,S", **options):
    return matvae.load_materials(source="mp", elements=elements, cache=False, **options)


# --- the table --------------------------------------------------------------------------------------------------


def test_ga_mo_s_table_matches_the_documents(server):
    table = load()
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert table["material_id"].tolist() == [d["material_id"] for d in GA_MO_S]
    row = table.set_index("material_id").loc["mp-559694"]
    assert row["formula"] == "Ga(MoS2)4"
    assert row["composition_reduced"] == {"Ga": 1, "Mo": 4, "S": 8}
    assert (row["chemsys"], row["n_elements"], row["n_components"]) == ("Ga-Mo-S", 3, 3)
    assert row["formation_energy_per_atom"] == -0.85 and row["energy_above_hull"] == 0.029 and not row["is_stable"]
    assert row["decomposes_to"] == [
        {"material_id": "mp-1079378", "formula": "Ga31Mo6", "amount": 37 / 559},  # external: not in the table
        {"material_id": "mp-2815", "formula": "MoS2", "amount": 498 / 559},
        {"material_id": "mp-2507", "formula": "GaS", "amount": 24 / 559},
    ]
    amounts = [Fraction(p["amount"]).limit_denominator(1000) for p in row["decomposes_to"]]
    mix = sum(a * encode(p["formula"]) / encode(p["formula"]).sum() for a, p in zip(amounts, row["decomposes_to"]))
    assert np.allclose(mix.astype(float), encode("GaMo4S8") / 13)  # the fixture's amounts balance the composition
    stable = table[table["is_stable"]]
    assert set(stable["material_id"]) == {"mp-142", "mp-129", "mp-77", "mp-2815", "mp-2507", "mp-539", "mp-1500"}
    assert (stable["n_components"] == 0).all() and all(parts == [] for parts in stable["decomposes_to"])
    polymorph = table.set_index("material_id").loc["mp-1434"]
    assert polymorph["decomposes_to"] == [{"material_id": "mp-2815", "formula": "MoS2", "amount": 1.0}]
    # counts agree with pymatgen's parse of the server's formula_pretty
    for doc, composition in zip(GA_MO_S, table["composition_reduced"]):
        vector = encode(doc["formula_pretty"])
        assert composition == {s: int(vector[ELEMENT_INDEX[s]]) for s in composition}


def test_ga_mo_s_requests_name_the_closed_chemical_space(server):
    load()
    (params,) = server.params
    assert set(params["chemsys"].split(",")) == {"Ga", "Mo", "S", "Ga-Mo", "Ga-S", "Mo-S", "Ga-Mo-S"}
    assert params["thermo_types"] == "GGA_GGA+U"
    assert set(params["_fields"].split(",")) == set(mp.FIELDS)
    assert params["_limit"] == "1000"
    assert server.requests[0].headers["X-API-KEY"] == KEY


def test_mp_table_has_the_snapshot_tables_columns_and_types(server):
    table = load()
    snapshot = matvae.load_materials(source="snapshot", elements="Ga,Mo,S", cache=False)
    assert list(table.columns) == list(snapshot.columns)
    assert table.dtypes.to_dict() == snapshot.dtypes.to_dict()
    for column in ("composition_reduced", "decomposes_to"):
        assert type(table[column].iloc[0]) is type(snapshot[column].iloc[0])


def test_pages_of_chunk_size_give_the_same_table(server):
    whole = load()
    n_before = len(server.requests)
    paged = load(chunk_size=3)
    pages = server.params[n_before:]
    assert [p.get("_skip") for p in pages] == [None, "3", "6", "9"]
    assert all(p["_limit"] == "3" for p in pages[:3]) and pages[3]["_limit"] == "1"
    assert paged.equals(whole)


def test_noble_gas(server):
    table = load("Xe")
    assert table["material_id"].tolist() == ["mp-611517"]
    assert table["formula"].tolist() == ["Xe"] and table["is_stable"].tolist() == [True]
    assert server.params[0]["chemsys"] == "Xe"


def test_no_element_filter_pages_by_number_of_elements(server):
    table = load(None)
    assert sorted(table["material_id"]) == sorted(d["material_id"] for d in DATABASE if d["thermo_type"] == "GGA_GGA+U")
    slices = [(p["nelements_min"], p["nelements_max"]) for p in server.params]
    assert slices == [("1", "1"), ("2", "2"), ("3", "3"), ("4", "4"), ("5", "5"), ("6", "89")]
    assert all("chemsys" not in p for p in server.params)


def test_beyond_max_chemsys_elements_the_space_is_filtered_client_side(server, monkeypatch):
    monkeypatch.setattr(mp, "MAX_CHEMSYS_ELEMENTS", 2)
    whole = load()
    assert [(p["nelements_min"], p["nelements_max"]) for p in server.params] == [("1", "1"), ("2", "2"), ("3", "3")]
    assert all("chemsys" not in p for p in server.params)
    assert sorted(whole["material_id"]) == sorted(d["material_id"] for d in GA_MO_S)  # no Ga2O3, no Xe


def test_long_subsystem_lists_are_split_into_requests(server, monkeypatch):
    single = load()
    monkeypatch.setattr(mp, "MAX_CHEMSYS_CHARS", 20)
    split = load()
    batches = [p["chemsys"].split(",") for p in server.params[1:]]
    assert batches == [["Ga", "Mo", "S"], ["Ga-Mo", "Ga-S"], ["Mo-S", "Ga-Mo-S"]]
    assert sorted(split["material_id"]) == sorted(single["material_id"])


def test_twelve_elements_list_every_subsystem_within_the_url_budget():
    elements = tuple(sorted(["Ga", "Mo", "S", "Xe", "Ag", "Al", "Ar", "As", "Au", "B", "Ba", "Be"]))
    queries = mp._queries(elements)
    batches = [q["chemsys"] for q in queries]
    flat = [system for batch in batches for system in batch]
    expected = {"-".join(c) for n in range(1, 13) for c in itertools.combinations(elements, n)}
    assert len(flat) == len(expected) == 4095 and set(flat) == expected
    assert all(len(",".join(batch)) + 2 * (len(batch) - 1) <= mp.MAX_CHEMSYS_CHARS for batch in batches)
    assert len(mp._queries(elements + ("Zr",))) == 6  # 13 elements: by number of elements instead


def test_repeated_material_id_keeps_the_first_document(rsps):
    copy = dict(GA_MO_S[4], formation_energy_per_atom=-0.5)
    FakeMP(rsps, GA_MO_S + [copy])
    table = load()
    assert table["material_id"].tolist().count("mp-2815") == 1
    assert table.set_index("material_id").loc["mp-2815", "formation_energy_per_atom"] == -0.927


def test_nothing_in_the_space_is_a_data_error(rsps):
    FakeMP(rsps, OTHERS)
    with pytest.raises(mp.MPDataError, match="no GGA_GGA\\+U thermo documents of materials made of Ga, Mo, S"):
        load()


def test_fractional_reduced_composition_scales_to_whole_atoms():
    document = thermo_doc("mp-1", {"Ga": 1, "Mo": 4}, -0.1, 0.0)
    document["composition_reduced"] = {"Ga": 0.5, "Mo": 2.0}
    columns = mp.columns_from_documents([document])
    assert np.array_equal(columns.counts[0], encode("Ga0.5Mo2"))
    assert columns.formula.tolist() == ["GaMo4"]


# --- the key ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_key(monkeypatch, rsps, value):
    if value is None:
        monkeypatch.delenv("MP_API_KEY")
    else:
        monkeypatch.setenv("MP_API_KEY", value)
    with pytest.raises(mp.MPKeyError, match=r"MP_API_KEY.*materialsproject\.org/dashboard.*source=\"snapshot\""):
        load()
    assert not rsps.calls


def test_malformed_key_is_refused_without_quoting_it(monkeypatch, rsps):
    monkeypatch.setenv("MP_API_KEY", KEY[:20])
    with pytest.raises(mp.MPKeyError, match="20 characters.*32") as error:
        load()
    assert KEY[:20] not in str(error.value) and not rsps.calls


def test_key_refused_by_the_server_is_not_retried(server, sleeps):
    server.failures = [401]
    with pytest.raises(mp.MPKeyError, match="refused the API key.*HTTP 401"):
        load()
    assert len(server.requests) == 1 and sleeps == []


# --- retries ------------------------------------------------------------------------------------------------------


def test_rate_limit_and_connection_errors_are_retried(server, sleeps):
    server.failures = [
        (429, {"Retry-After": "3"}),
        requests.ConnectionError("connection reset"),
        requests.ReadTimeout("read timed out"),
        requests.exceptions.ChunkedEncodingError("connection broken"),
    ]
    table = load()  # max_retries=4: the fifth and last attempt succeeds
    assert len(table) == len(GA_MO_S)
    assert len(server.requests) == 5
    assert sleeps == [3.0, 2.0, 4.0, 8.0]  # Retry-After beats the 1 s backoff; then 2**attempt s


def test_persistent_server_error_raises_after_max_retries(server, sleeps):
    server.fail_from = 0
    with pytest.raises(mp.MPRequestError, match=r"GET .*materials/thermo/ failed 4 times \(last: HTTP 500\).*snapshot"):
        load(max_retries=3)
    assert len(server.requests) == 4
    assert sleeps == [1.0, 2.0, 4.0]


def test_zero_retries_means_one_attempt(server, sleeps):
    server.failures = [503]
    with pytest.raises(mp.MPRequestError, match="failed 1 times"):
        load(max_retries=0)
    assert len(server.requests) == 1 and sleeps == []


def test_heartbeat_failure_is_retried(rsps, sleeps):
    rsps.add(responses.GET, HEARTBEAT_URL, body=requests.ConnectionError("no route to host"))
    server = FakeMP(rsps, DATABASE)  # registers the working heartbeat second
    assert len(load()) == len(GA_MO_S)
    assert sleeps == [1.0] and len(server.requests) == 1


def test_unreachable_materials_project(rsps, sleeps):
    rsps.add(responses.GET, HEARTBEAT_URL, body=requests.ConnectionError("no route to host"))
    with pytest.raises(mp.MPRequestError, match="cannot connect to the Materials Project.*ConnectionError.*snapshot"):
        load(max_retries=2)
    assert sleeps == [1.0, 2.0]


def test_failure_on_a_later_page_caches_nothing(server, tmp_path):
    server.fail_from = 1  # the first page arrives, the second never does
    with pytest.raises(mp.MPRequestError):
        matvae.load_materials(source="mp", elements="Ga,Mo,S", cache=True, chunk_size=4, max_retries=1)
    assert [p.get("_skip") for p in server.params] == [None, "4", "4"]
    assert not [p for p in (tmp_path / "cache").glob("*") if not p.name.endswith(".lock")]

    server.fail_from = None
    table = matvae.load_materials(source="mp", elements="Ga,Mo,S", cache=True, chunk_size=4)
    assert len(list((tmp_path / "cache").glob("mp-*.npz"))) == 1
    n_requests = len(server.requests)
    assert matvae.load_materials(source="mp", elements="Ga,Mo,S", cache=True).equals(table)
    assert len(server.requests) == n_requests  # served from the cache


# --- bad documents ------------------------------------------------------------------------------------------------


def without(document, field):
    return {k: v for k, v in document.items() if k != field}


BAD_DOCUMENTS = {
    "missing field": (without(GA_MO_S[4], "formation_energy_per_atom"), r"mp-2815.*formation_energy_per_atom"),
    "polonium": (thermo_doc("mp-1000", {"Po": 1}, 0.0, 0.0, pretty="Po"), r"mp-1000.*'Po'.*not among the 89"),
    "oganesson": (thermo_doc("mp-1001", {"Og": 1}, 0.0, 0.0, pretty="Og"), r"mp-1001.*'Og'.*not among the 89"),
    "energy as text": (dict(GA_MO_S[4], energy_above_hull="NaN"), r"mp-2815.*energy_above_hull.*finite"),
    "wrong thermo type": (dict(GA_MO_S[4], thermo_type="R2SCAN"), r"mp-2815.*thermo_type.*R2SCAN"),
    "bad amount": (dict(GA_MO_S[3], decomposes_to=[part("mp-77", "S", -1.0)]), r"mp-96.*amount -1.0"),
}


@pytest.mark.parametrize("name", BAD_DOCUMENTS)
def test_bad_document_raises_and_caches_nothing(rsps, tmp_path, name):
    document, message = BAD_DOCUMENTS[name]
    FakeMP(rsps, GA_MO_S[:2] + [document], filtered=False)
    with pytest.raises(mp.MPDataError, match=message):
        matvae.load_materials(source="mp", elements="Ga,Mo,S", cache=True)
    assert not [p for p in (tmp_path / "cache").glob("*") if not p.name.endswith(".lock")]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_energy(value):
    document = dict(GA_MO_S[4], formation_energy_per_atom=value)
    with pytest.raises(mp.MPDataError, match="mp-2815: formation_energy_per_atom must be a finite number"):
        mp.columns_from_documents([document])


def test_non_finite_number_in_a_response_is_a_data_error(rsps):
    rsps.add(responses.GET, HEARTBEAT_URL, json=HEARTBEAT)
    body = '{"data": [{"material_id": "mp-142", "formation_energy_per_atom": NaN}], "meta": {"total_doc": 1}}'
    rsps.add(responses.GET, THERMO_URL, body=body, content_type="application/json")
    with pytest.raises(mp.MPDataError, match="not valid JSON"):
        load()


# --- options and cache key ----------------------------------------------------------------------------------------


def test_cache_key_depends_on_the_data_only():
    key = mp.cache_key(("Ga", "Mo", "S"))
    assert len(key) == 64 and int(key, 16) >= 0
    assert mp.cache_key("S,Ga,Mo", chunk_size=10, max_retries=0) == key
    assert mp.cache_key(("Ga", "Mo", "S"), thermo_type="R2SCAN") != key
    assert mp.cache_key(("Ga", "Mo")) != key and mp.cache_key(None) != key


@pytest.mark.parametrize(
    "options, message",
    [
        ({"thermo_type": "PBE"}, "thermo_type must be one of"),
        ({"chunk_size": 0}, "chunk_size must be an integer from 1 to 1000, got 0"),
        ({"chunk_size": 1001}, "got 1001"),
        ({"chunk_size": True}, "got True"),
        ({"max_retries": -1}, "max_retries must be an integer >= 0, got -1"),
        ({"max_retries": 1.5}, "got 1.5"),
    ],
)
def test_bad_options(rsps, options, message):
    with pytest.raises(ValueError, match=message):
        mp.cache_key(None, **options)
    with pytest.raises(ValueError, match=message):
        mp.fetch_thermo_columns(None, **options)
    with pytest.raises(ValueError, match=message):
        load(**options)
    assert not rsps.calls


def test_thermo_types_are_mp_api_thermo_types():
    assert set(mp.THERMO_TYPES) <= {t.value for t in ThermoType}


# --- the key never leaks ------------------------------------------------------------------------------------------


def file_texts(root: Path):
    """Every file under root as bytes; the members of zip (npz) archives decompressed."""
    for path in root.rglob("*"):
        if path.is_file():
            yield path.read_bytes()
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as archive:
                    for name in archive.namelist():
                        yield archive.read(name)


def test_the_key_is_sent_but_never_written_logged_or_raised(server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    texts = []
    server.failures = [429]
    matvae.load_materials(source="mp", elements="Ga,Mo,S", cache=True)
    for failures, error in (([500] * 3, mp.MPRequestError), ([403], mp.MPKeyError)):
        server.failures = list(failures)
        with pytest.raises(error) as raised:
            matvae.load_materials(source="mp", elements="Ga,Mo", cache=True, max_retries=2)
        texts.append("".join(traceback.format_exception(raised.value)))
    assert list((tmp_path / "cache").glob("mp-*.npz"))
    assert all(r.headers["X-API-KEY"] == KEY for r in server.requests)
    texts += [record.getMessage() for record in caplog.records] + [caplog.text]
    assert any("retry 1 of" in text for text in texts)  # the logs were captured
    assert not any(KEY in text for text in texts)
    assert not any(KEY.encode() in blob for blob in file_texts(tmp_path))


# --- the key in any form ------------------------------------------------------------------------------------------

METACHARACTER_KEY = (r"^(.*)+?[a-z]{3,}|\d\s$\\" + "'\"%&=#!<>@~`;:,/")[:32]
assert len(METACHARACTER_KEY) == 32


def key_forms(raw: str) -> set[str]:
    """Every way a message could show the key: as set, stripped, and as repr() escapes them."""
    return {form for key in (raw, raw.strip()) for form in (key, repr(key)[1:-1]) if form.strip()}


def assert_never_shown(raw: str, texts) -> None:
    for text in texts:
        for form in key_forms(raw):
            assert form not in text, f"the key ({form!r}) shows in {text[:300]!r}"


def exception_texts(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc)), *map(repr, exc.args)]


@pytest.mark.parametrize(
    ("raw", "position"),
    [
        (KEY[:12] + "\n" + KEY[12:31], 13),
        (KEY[:5] + "\t" + KEY[5:31], 6),
        ("  " + KEY[:20] + "\r\n" + KEY[20:31] + " \n", 21),  # surrounding whitespace is stripped first
        (KEY[:31] + "\x7f", 32),
        (KEY[:10] + "\x1b" + KEY[10:31], 11),
    ],
    ids=["newline", "tab", "crlf-inside-spaces", "delete", "escape"],
)
def test_a_key_with_control_characters_is_refused_without_quoting_it(monkeypatch, rsps, caplog, raw, position):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MP_API_KEY", raw)
    message = rf"MP_API_KEY holds a control character .* at position {position} of"
    with pytest.raises(mp.MPKeyError, match=message) as error:
        load()
    assert isinstance(error.value, ValueError)
    assert_never_shown(raw, exception_texts(error.value) + [caplog.text])
    assert not rsps.calls


@pytest.mark.parametrize("raw", [KEY[:31] + "é", KEY[:16] + "€" + KEY[16:31]], ids=["latin-1", "euro"])
def test_a_key_outside_ascii_is_refused_without_quoting_it(monkeypatch, rsps, raw):
    monkeypatch.setenv("MP_API_KEY", raw)
    with pytest.raises(mp.MPKeyError, match="character outside ASCII at position") as error:
        load()
    assert_never_shown(raw, exception_texts(error.value))
    assert not rsps.calls


KEYS = {
    "plain": KEY,
    "surrounding spaces": "  \t" + KEY + " \n",
    "metacharacters": METACHARACTER_KEY,
    "metacharacters with spaces": " " + METACHARACTER_KEY + "\t",
}


@pytest.mark.parametrize("name", KEYS)
def test_a_usable_key_is_sent_stripped_and_never_shown(monkeypatch, server, caplog, name):
    raw = KEYS[name]
    monkeypatch.setenv("MP_API_KEY", raw)
    caplog.set_level(logging.DEBUG)
    server.failures = [429, 500]
    assert len(load()) == len(GA_MO_S)
    assert {r.headers["X-API-KEY"] for r in server.requests} == {raw.strip()}
    texts = [caplog.text, *(record.getMessage() for record in caplog.records)]
    for failures, kind in (([500] * 2, mp.MPRequestError), ([401], mp.MPKeyError)):
        server.failures = list(failures)
        with pytest.raises(kind) as error:
            load(max_retries=1)
        texts += exception_texts(error.value)
    assert "retry 1 of" in caplog.text
    assert_never_shown(raw, texts)


def echo(raw: str) -> str:
    """A server message quoting the key in every way a server or a library might."""
    key = raw.strip()
    return f"unknown key {raw} / {key} / {key!r} / {json.dumps(key)} / {json.dumps(raw)}"


@pytest.mark.parametrize("name", KEYS)
def test_server_messages_quoting_the_key_are_scrubbed(monkeypatch, rsps, caplog, sleeps, name):
    raw = KEYS[name]
    monkeypatch.setenv("MP_API_KEY", raw)
    caplog.set_level(logging.DEBUG)
    rsps.add(responses.GET, HEARTBEAT_URL, body=requests.ConnectionError(echo(raw)))  # the first heartbeat fails
    rsps.add(responses.GET, HEARTBEAT_URL, json=HEARTBEAT)
    rsps.add(responses.GET, THERMO_URL, status=404, json={"detail": echo(raw)})
    with pytest.raises(mp.MPRequestError, match=r"(?s)thermo query failed: .*unknown key \*\*\*") as error:
        load()
    assert "connecting to the Materials Project failed (ConnectionError: unknown key ***" in caplog.text
    assert sleeps == [1.0]
    assert_never_shown(raw, exception_texts(error.value) + [caplog.text] + [r.getMessage() for r in caplog.records])


@pytest.mark.parametrize("name", KEYS)
def test_an_unexpected_error_quoting_the_key_is_replaced(monkeypatch, rsps, name):
    raw = KEYS[name]
    monkeypatch.setenv("MP_API_KEY", raw)
    rsps.add(responses.GET, HEARTBEAT_URL, json=HEARTBEAT)

    def explode(request):
        raise RuntimeError(echo(raw))  # not a requests error: nothing on the way catches it

    rsps.add_callback(responses.GET, THERMO_URL, callback=explode)
    message = r"a Materials Project request failed \(RuntimeError: unknown key \*\*\*"
    with pytest.raises(mp.MPRequestError, match=message) as error:
        load()
    assert error.value.__cause__ is None and error.value.__context__ is None  # no chain leads back to the original
    assert_never_shown(raw, exception_texts(error.value))


def test_warnings_issued_while_fetching_are_scrubbed(monkeypatch, server):
    raw = KEYS["metacharacters with spaces"]
    monkeypatch.setenv("MP_API_KEY", raw)
    opened = mp._open_thermo

    def open_and_warn(*args, **kwargs):
        warnings.warn(f"something about {echo(raw)}", UserWarning, stacklevel=1)
        return opened(*args, **kwargs)

    monkeypatch.setattr(mp, "_open_thermo", open_and_warn)
    with pytest.warns(UserWarning, match=r"something about unknown key \*\*\*") as caught:
        assert len(load()) == len(GA_MO_S)
    assert_never_shown(raw, [str(w.message) for w in caught])


def test_redaction_takes_every_form_and_no_regex():
    raw = " a.b\tc*d(e)\n"
    secret = mp._Secret(raw)
    text = f"{raw}|{raw.strip()}|{raw.strip()!r}|{json.dumps(raw.strip())}|aXb c*d(e)"
    assert secret.redact(text) == "***|***|'***'|\"***\"|aXb c*d(e)"  # '.' and '*' are no wildcards
    assert mp._Secret("").redact("text") == "text" and mp._Secret("   ").redact("a   b") == "a   b"
