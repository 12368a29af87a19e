"""The materials table from the live Materials Project (``load_materials(source="mp")``).

Source
    The Materials Project's thermo documents (``/materials/thermo/``), fetched with mp-api's ``MPRester``
    as ``mpr.materials.thermo.search(...)``: one thermo type (default ``"GGA_GGA+U"``, the mixed GGA/GGA+U
    hull; mp-api's own default is the GGA/GGA+U/r2SCAN hull), only the fields in :data:`FIELDS`, raw
    dictionaries (``use_document_model=False``) that this module validates itself, pages of ``chunk_size``
    documents. The requests, in mp-api 0.46.5:

    * constructing ``MPRester`` GETs ``<endpoint>heartbeat`` twice (the server's emmet version and the
      database version), through plain ``requests.get`` without the key; mp-api caches both per process;
    * each search GETs ``<endpoint>materials/thermo/?chemsys=...&thermo_types=GGA_GGA%2BU&_fields=...
      &_limit=<chunk_size>``, then the same with ``&_skip=...`` until ``meta.total_doc`` documents arrived.

Element filter
    "Made only of these elements" is a closed chemical space: every material whose chemical system is a
    subsystem of the given elements. The thermo route of mp-api 0.46.5 has no ``elements`` /
    ``exclude_elements`` filter, only ``chemsys`` (one system or a list of them). Up to
    :data:`MAX_CHEMSYS_ELEMENTS` elements the query lists all 2**n - 1 subsystems (Ga, Mo, S, Ga-Mo, Ga-S,
    Mo-S, Ga-Mo-S), split into requests whose ``chemsys`` parameter stays under :data:`MAX_CHEMSYS_CHARS`
    characters (mp-api's own ``get_entries_in_chemsys`` stops at 511 subsystems in one URL). For more
    elements, and without a filter, it fetches the thermo type slice by slice of ``num_elements`` and keeps
    the documents made only of the given elements.

API key
    Read from the ``MP_API_KEY`` environment variable only (never pymatgen's settings file, never an
    argument), stripped of surrounding whitespace, and sent only as the ``x-api-key`` header of the data
    requests. A key holding a control character (a newline or a tab inside it) or a character outside ASCII
    is refused without being quoted. The key is never put in a message, a log line, a warning or a file:
    every text this module raises, logs or re-emits (mp-api's warnings, the server's error messages) is
    scrubbed of every form of it (as set, stripped, ``repr``-escaped, JSON-escaped and URL-encoded), and an
    unexpected exception that mentions it anywhere in its chain is replaced by a scrubbed one.

Retries
    mp-api mounts a urllib3 ``Retry`` (3 retries of 429/502/504, 0.1 s backoff) on the session it creates.
    This module gives ``MPRester`` its own session instead, whose adapter retries every request that gets
    HTTP 429 or 5xx, a connection error or a timeout, up to ``max_retries`` times, waiting
    ``BACKOFF_S * 2**attempt`` seconds (longer if the server's ``Retry-After`` says so; at most
    :data:`BACKOFF_MAX_S`). Constructing ``MPRester`` (the heartbeat) is retried the same way. When the
    retries are spent: :class:`MPRequestError`. A refused key (HTTP 401/403): :class:`MPKeyError`, at once.

Table
    One row per ``material_id``, in the order the server sent them; a repeated ``material_id`` keeps its
    first document. Counts come from ``composition_reduced`` (integers with GCD 1), formulas from the
    counts (as for the snapshot). ``decomposes_to`` gives the components (atomic-fraction amounts as the
    Materials Project states them); a stable material has none. A component whose ``material_id`` is not a
    row becomes an external phase (``external_id``, ``external_formula``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from importlib.metadata import version
from itertools import combinations
from typing import Any
from urllib.parse import quote, quote_plus

import requests
from requests.adapters import HTTPAdapter

from matvae.elements import check_elements
from matvae.data.mp_documents import MPDataError, columns_from_documents
from matvae.data.table import MaterialColumns
from matvae.elements import N_ELEMENTS
from matvae.progress import progress_bar

log = logging.getLogger(__name__)

MP_TABLE_VERSION: int = 1
"""Bumped whenever the table built from the same documents could change; part of every cache key."""

MP_ENDPOINT: str = "https://api.materialsproject.org/"
API_KEY_ENV: str = "MP_API_KEY"
API_KEY_LENGTH: int = 32
"""Materials Project API keys have 32 characters (mp-api refuses others)."""

THERMO_TYPES: tuple[str, ...] = ("GGA_GGA+U", "GGA_GGA+U_R2SCAN", "R2SCAN")
MAX_CHUNK_SIZE: int = 1000
"""The API's largest page (``_limit``)."""

MAX_CHEMSYS_ELEMENTS: int = 12
"""Largest element filter queried by listing its subsystems (4095 of them for 12 elements)."""

MAX_CHEMSYS_CHARS: int = 4000
"""Budget of one request's ``chemsys`` parameter, counting each URL-encoded comma as 3 characters."""

NUM_ELEMENTS_SLICES: int = 5
"""Without a chemsys list, one query each for 1..5 elements, then one for 6 or more."""

FIELDS: tuple[str, ...] = (
    "material_id",
    "formula_pretty",
    "composition_reduced",
    "formation_energy_per_atom",
    "energy_above_hull",
    "is_stable",
    "decomposes_to",
    "thermo_type",
)
"""Fields requested from the thermo route."""

__all__ = ["MPDataError", "MPKeyError", "MPRequestError", "cache_key", "columns_from_documents", "fetch_thermo_columns"]


BACKOFF_S: float = 1.0
BACKOFF_MAX_S: float = 60.0

_SNAPSHOT_HINT = 'or use load_materials(source="snapshot") for the embedded snapshot'


class MPKeyError(ValueError):
    """No usable Materials Project API key (``MP_API_KEY`` unset, malformed or refused)."""


class MPRequestError(RuntimeError):
    """A request to the Materials Project failed, after retries where a retry could help."""


def cache_key(
    symbols: Iterable[str] | None,
    *,
    thermo_type: str = "GGA_GGA+U",
    chunk_size: int = MAX_CHUNK_SIZE,
    max_retries: int = 4,
) -> str:
    """SHA-256 hex of what decides the table: the element filter, the thermo type and
    :data:`MP_TABLE_VERSION`. ``chunk_size`` and ``max_retries`` are checked but do not change the data."""
    symbols = check_elements(symbols)
    _check_options(thermo_type=thermo_type, chunk_size=chunk_size, max_retries=max_retries)
    text = json.dumps(
        {
            "mp_table_version": MP_TABLE_VERSION,
            "symbols": list(symbols) if symbols else None,
            "thermo_type": thermo_type,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def fetch_thermo_columns(
    symbols: Iterable[str] | None,
    *,
    show_progress: bool | None = None,
    thermo_type: str = "GGA_GGA+U",
    chunk_size: int = MAX_CHUNK_SIZE,
    max_retries: int = 4,
) -> MaterialColumns:
    """Download the thermo documents of one thermo type and build the table (see the module docstring).

    Args:
        symbols: the closed chemical space ('Ga,Mo,S' or a sequence of symbols), or None for every material.
        show_progress: a progress bar over the queries (default: when stderr is a terminal).
        thermo_type: one of :data:`THERMO_TYPES`.
        chunk_size: documents per request, 1..1000.
        max_retries: retries of a failed request (so at most ``max_retries + 1`` attempts), >= 0.

    Raises:
        MPKeyError: ``MP_API_KEY`` is unset, empty, not 32 characters, holds a control or non-ASCII
            character, or is refused by the server (the message never quotes the key).
        MPRequestError: a request failed for good; nothing is returned (so nothing is cached).
        MPDataError: a document lacks a field, has an element outside the 89, a non-finite energy, ...
    """
    symbols = check_elements(symbols)
    _check_options(thermo_type=thermo_type, chunk_size=chunk_size, max_retries=max_retries)
    secret = _Secret(os.environ.get(API_KEY_ENV, ""))
    api_key = _read_api_key()
    queries = _queries(symbols)
    started = time.perf_counter()
    failure = None
    try:
        with secret.scrubbed_warnings():
            documents, db_version = _download(
                queries, api_key, secret, thermo_type=thermo_type, chunk_size=chunk_size, max_retries=max_retries,
                show_progress=show_progress,
            )  # fmt: skip
    except Exception as exc:
        if not secret.leaks(exc):
            raise
        failure = secret.scrubbed_error(exc)  # raised below, outside this handler, so it carries no trace of exc
    if failure is not None:
        raise failure
    columns = columns_from_documents(documents, symbols=symbols, thermo_type=thermo_type)
    log.info(
        "Materials Project table: %d materials (%s, database %s) from %d documents in %.1f s",
        len(columns), thermo_type, db_version or "unknown", len(documents), time.perf_counter() - started,
    )  # fmt: skip
    return columns


def _download(
    queries: list[dict[str, Any]], api_key: str, secret: _Secret, *, thermo_type: str, chunk_size: int,
    max_retries: int, show_progress: bool | None,
) -> tuple[list[dict], str]:
    """The documents of every query, in order, and the database version."""
    documents: list[dict] = []
    session = _session(api_key, max_retries=max_retries, secret=secret)
    try:
        thermo, db_version = _open_thermo(session, api_key, max_retries=max_retries, secret=secret)
        bar = progress_bar(queries, desc=f"Materials Project {thermo_type}", enabled=show_progress, unit="query")
        for query in bar:
            documents.extend(_search(thermo, query, thermo_type=thermo_type, chunk_size=chunk_size, secret=secret))
    finally:
        session.close()
    return documents, db_version


def _check_options(*, thermo_type: str, chunk_size: int, max_retries: int) -> None:
    if thermo_type not in THERMO_TYPES:
        raise ValueError(f"thermo_type must be one of {THERMO_TYPES}, got {thermo_type!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be an integer from 1 to {MAX_CHUNK_SIZE}, got {chunk_size!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")


def _read_api_key() -> str:
    """The key of ``MP_API_KEY``, stripped; :class:`MPKeyError` (never quoting it) when it cannot be one."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise MPKeyError(
            f"no Materials Project API key: set the {API_KEY_ENV} environment variable (get a key at "
            f"https://materialsproject.org/dashboard), {_SNAPSHOT_HINT}"
        )
    for position, character in enumerate(key):
        if ord(character) < 32 or ord(character) == 127:
            raise MPKeyError(
                f"{API_KEY_ENV} holds a control character (such as a newline or a tab) at position {position + 1} "
                f"of {len(key)}, so it cannot be a Materials Project API key; copy it again from "
                f"https://materialsproject.org/dashboard, {_SNAPSHOT_HINT}"
            )
        if ord(character) > 127:
            raise MPKeyError(
                f"{API_KEY_ENV} holds a character outside ASCII at position {position + 1} of {len(key)}, so it "
                f"cannot be a Materials Project API key; copy it again from https://materialsproject.org/dashboard, "
                f"{_SNAPSHOT_HINT}"
            )
    if len(key) != API_KEY_LENGTH:
        raise MPKeyError(
            f"{API_KEY_ENV} holds {len(key)} characters, but Materials Project API keys have {API_KEY_LENGTH}; "
            f"copy it again from https://materialsproject.org/dashboard, {_SNAPSHOT_HINT}"
        )
    return key


REDACTED: str = "***"


class _Secret:
    """Every form in which the API key could show up in a text, and the scrubbing of those texts."""

    def __init__(self, raw: str) -> None:
        forms: set[str] = set()
        for key in {raw, raw.strip()}:
            forms |= {
                key,
                repr(key)[1:-1],  # 'ab\tcd', as repr() and tracebacks show it
                json.dumps(key)[1:-1],  # as a JSON body echoes it
                json.dumps(key, ensure_ascii=False)[1:-1],
                quote(key, safe=""),  # as a URL would carry it
                quote_plus(key, safe=""),
            }
        self._forms = sorted((form for form in forms if form.strip()), key=len, reverse=True)  # longest first

    def redact(self, text: object) -> str:
        """``str(text)`` with every form of the key replaced by ``***`` (plain replacement, no regex)."""
        text = str(text)
        for form in self._forms:
            text = text.replace(form, REDACTED)
        return text

    def mentioned_in(self, text: str) -> bool:
        return any(form in text for form in self._forms)

    def leaks(self, exc: BaseException) -> bool:
        """Whether ``exc`` or any exception in its chain shows the key in its message, repr, args or notes."""
        seen: set[int] = set()
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            texts = [str(exc), repr(exc), *map(repr, exc.args), *map(str, getattr(exc, "__notes__", []))]
            if any(self.mentioned_in(text) for text in texts):
                return True
            exc = exc.__cause__ or exc.__context__
        return False

    def log_warning(self, message: str, *args: object) -> None:
        """``log.warning(message % args)``, scrubbed."""
        log.warning("%s", self.redact(message % args))

    def scrubbed_error(self, exc: Exception) -> Exception:
        """An exception of the same kind as ``exc`` (an unexpected kind becomes :class:`MPRequestError`) whose
        message is the scrubbed message of ``exc``."""
        message = self.redact(exc)
        if isinstance(exc, (MPKeyError, MPRequestError, MPDataError)):
            return type(exc)(message)
        return MPRequestError(f"a Materials Project request failed ({type(exc).__name__}: {message}); {_SNAPSHOT_HINT}")

    @contextlib.contextmanager
    def scrubbed_warnings(self) -> Iterator[None]:
        """Record the warnings issued inside (mp-api's) and issue them again, scrubbed, on the way out."""
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                yield
        finally:  # also when the download failed
            for warning in caught:
                _reemit(warning, self)


def _reemit(warning: warnings.WarningMessage, secret: _Secret) -> None:
    """Issue a recorded warning again, where it was first issued, with the key scrubbed from its text."""
    message: Warning | str = warning.message
    if secret.mentioned_in(str(message)):
        message = secret.redact(message)
    module = next(
        (name for name, mod in list(sys.modules.items()) if getattr(mod, "__file__", None) == warning.filename), None
    )
    registry = vars(sys.modules[module]).setdefault("__warningregistry__", {}) if module else None
    warnings.warn_explicit(
        message, warning.category, warning.filename, warning.lineno, module=module, registry=registry
    )


def _sleep(seconds: float) -> None:
    """Wait between retries (one place, so that tests can replace it)."""
    time.sleep(seconds)


def _backoff_s(attempt: int, retry_after: str | None = None) -> float:
    """Seconds to wait before retry ``attempt + 1``: exponential, or the server's Retry-After if longer."""
    delay = BACKOFF_S * 2**attempt
    try:
        delay = max(delay, float(retry_after)) if retry_after else delay
    except ValueError:  # an HTTP date: keep the exponential delay
        pass
    return min(delay, BACKOFF_MAX_S)


class _RetryingAdapter(HTTPAdapter):
    """Sends each request up to ``n_retries + 1`` times (urllib3's own retries off)."""

    def __init__(self, n_retries: int, secret: _Secret | None = None) -> None:
        super().__init__(max_retries=0)
        self.n_retries = n_retries
        self.secret = secret or _Secret("")

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        where = f"{request.method} {str(request.url).split('?')[0]}"
        problem = "no attempt"
        for attempt in range(self.n_retries + 1):
            retry_after = None
            try:
                response = super().send(request, **kwargs)
                if not kwargs.get("stream"):
                    response.content  # read the body here, so that a broken transfer is retried too
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                problem = type(exc).__name__
            else:
                if response.status_code in (401, 403):
                    raise MPKeyError(self.secret.redact(
                        f"the Materials Project refused the API key from {API_KEY_ENV} (HTTP {response.status_code} "
                        f"on {where}); check the key at https://materialsproject.org/dashboard, {_SNAPSHOT_HINT}"
                    ))
                if response.status_code != 429 and response.status_code < 500:
                    return response
                problem = f"HTTP {response.status_code}"
                retry_after = response.headers.get("Retry-After")
                response.close()
            if attempt < self.n_retries:
                delay = _backoff_s(attempt, retry_after)
                self.secret.log_warning(
                    "%s failed (%s); retry %d of %d in %.0f s", where, problem, attempt + 1, self.n_retries, delay
                )
                _sleep(delay)
        raise MPRequestError(self.secret.redact(
            f"{where} failed {self.n_retries + 1} times (last: {problem}); the Materials Project may be down or "
            f"rate-limiting: try again later, raise max_retries, {_SNAPSHOT_HINT}"
        ))


def _session(api_key: str, *, max_retries: int, secret: _Secret | None = None) -> requests.Session:
    """The session handed to MPRester: the key header, a user agent and the retrying adapter."""
    session = requests.Session()
    session.headers.update({"x-api-key": api_key, "user-agent": f"matvae (mp-api/{version('mp-api')})"})
    adapter = _RetryingAdapter(max_retries, secret or _Secret(api_key))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _open_thermo(
    session: requests.Session, api_key: str, *, max_retries: int, secret: _Secret | None = None
) -> tuple[Any, str]:
    """``MPRester(...).materials.thermo`` and the database version, retrying the heartbeat requests."""
    from mp_api.client import MPRester
    from mp_api.client.core.exceptions import MPRestError

    secret = secret or _Secret(api_key)
    problem = "no attempt"
    for attempt in range(max_retries + 1):
        try:
            rester = MPRester(
                api_key=api_key,
                endpoint=MP_ENDPOINT,
                session=session,
                include_user_agent=False,  # our session sets one
                use_document_model=False,  # raw dicts; validated here
                mute_progress_bars=True,  # our own bar counts queries
            )
            return rester.materials.thermo, rester.db_version
        except MPKeyError:
            raise
        except (requests.RequestException, MPRestError, KeyError, ValueError) as exc:
            # heartbeat: connection errors, non-JSON error pages, JSON without the expected keys
            problem = secret.redact(f"{type(exc).__name__}: {exc}")
        if attempt < max_retries:
            delay = _backoff_s(attempt)
            secret.log_warning(
                "connecting to the Materials Project failed (%s); retry %d of %d in %.0f s",
                problem, attempt + 1, max_retries, delay,
            )  # fmt: skip
            _sleep(delay)
    raise MPRequestError(secret.redact(
        f"cannot connect to the Materials Project at {MP_ENDPOINT} after {max_retries + 1} attempts (last: {problem}); "
        f"check the network, {_SNAPSHOT_HINT}"
    ))


def _queries(symbols: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """The searches (keyword arguments of ``thermo.search``) that cover the element filter."""
    if symbols is not None and len(symbols) <= MAX_CHEMSYS_ELEMENTS:
        systems = ["-".join(c) for n in range(1, len(symbols) + 1) for c in combinations(symbols, n)]
        batches: list[list[str]] = [[]]
        size = 0
        for system in systems:
            if batches[-1] and size + len(system) + 3 > MAX_CHEMSYS_CHARS:
                batches.append([])
                size = 0
            batches[-1].append(system)
            size += len(system) + 3
        return [{"chemsys": batch} for batch in batches]
    top = N_ELEMENTS if symbols is None else len(symbols)
    slices = [(k, k) for k in range(1, min(top, NUM_ELEMENTS_SLICES) + 1)]
    if top > NUM_ELEMENTS_SLICES:
        slices.append((NUM_ELEMENTS_SLICES + 1, top))
    return [{"num_elements": s} for s in slices]


def _search(thermo: Any, query: dict[str, Any], *, thermo_type: str, chunk_size: int, secret: _Secret) -> list[dict]:
    from mp_api.client.core.exceptions import MPRestError

    try:
        return thermo.search(
            **query, thermo_types=[thermo_type], fields=list(FIELDS), all_fields=False, chunk_size=chunk_size
        )
    except json.JSONDecodeError as exc:  # orjson's error subclasses it; NaN or Infinity in a response lands here
        raise MPDataError(secret.redact(
            f"the Materials Project sent thermo data that is not valid JSON ({exc}); non-finite numbers such as "
            "NaN are not JSON"
        )) from None
    except KeyError as exc:  # mp-api reads response["data"] without checking
        raise MPDataError(secret.redact(f"a Materials Project thermo response lacks the key {exc}")) from None
    except MPRestError as exc:
        message = secret.redact(exc)
        raise MPRequestError(f"Materials Project thermo query failed: {message}; {_SNAPSHOT_HINT}") from None
