"""Files the project writes: atomic replacement, locks, checksummed containers and the cache folder.

Every file the package writes goes through :func:`atomic_write` or :func:`atomic_path`, so a crash leaves
either the old file or the new one, never a half-written file that a later run would trust.

Concurrency: writers of the same target take that target's file lock (``.NAME.lock`` beside it, the
``filelock`` package) for the length of the write, so they queue instead of interleaving. A process killed
mid-write (SIGKILL) leaves a hidden temporary file ``.NAME.XXXXXXXX.tmpSUFFIX``; the next write of the *same*
target removes it while holding the target's lock, which proves that its writer is gone (a live writer holds
that lock). Temporary files of other targets, even targets whose names share a prefix, are never touched.

Damage: caches, checkpoints and data files are written as a checked container (:func:`write_checked`): a
one-line header with the SHA-256 and length of the payload, then the payload. :func:`read_checked` refuses a
file whose header, length or digest does not match, so a flipped byte anywhere is detected, never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

CACHE_ENV = "MATVAE_CACHE_DIR"
"""Environment variable that overrides the cache folder."""

CHECKED_MAGIC = b"MATVAE-CHECKED"
CHECKED_VERSION = 1
_HEADER_LIMIT = 256  # bytes: the header line is far shorter
_SUFFIXES_ADDED_BY_WRITERS = (".npz", ".npy")  # numpy appends these to names that lack them


class DamagedFileError(ValueError):
    """A checked file is missing its header, is truncated or fails its SHA-256 check."""


def _file_mode() -> int:
    """The mode an ordinary new file gets (0o666 minus the umask); mkstemp alone would give 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file that guards writes of ``path``: ``.NAME.lock`` in the same folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def file_lock(path: str | os.PathLike, *, timeout: float = -1) -> FileLock:
    """The inter-process lock of ``path`` (``timeout=-1`` waits for ever, ``0`` fails at once)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(lock_path(path), timeout=timeout)


def build_lock(path: str | os.PathLike, *, timeout: float = -1) -> FileLock:
    """The lock held while ``path`` is being *computed* (``.NAME.build.lock``), so that processes that want
    the same expensive file build it once: the first builds, the others wait and read it. Separate from
    :func:`file_lock`, which :func:`atomic_path` takes for the write itself."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path.with_name(f".{path.name}.build.lock"), timeout=timeout)


def _temporary_pattern(path: Path, suffix: str) -> re.Pattern:
    """Exactly the temporary names :func:`atomic_path` makes for ``path`` (mkstemp adds 8 characters)."""
    return re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}" + re.escape(f".tmp{suffix}") + r"(\.npz|\.npy)?")


def _remove_stale_temporaries(path: Path, suffix: str, keep: Path) -> None:
    """Delete temporary files of earlier writes of exactly ``path``; the caller holds ``path``'s lock."""
    pattern = _temporary_pattern(path, suffix)
    with contextlib.suppress(OSError), os.scandir(path.parent) as entries:
        for entry in entries:
            if pattern.fullmatch(entry.name) and entry.name != keep.name:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that wants a file name (savefig, np.savez).

    The temporary file keeps ``path``'s suffix (or ``suffix``) so that writers which infer the format from
    the name still work; it replaces ``path`` only if the block finishes, and is removed otherwise. A writer
    that appends ``.npz``/``.npy`` to the name it was given is followed: the file it wrote becomes ``path``.
    Writers of the same target wait for each other (the target's file lock).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    with file_lock(path):
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{suffix}")
        os.close(fd)
        tmp = Path(name)
        os.chmod(tmp, _file_mode())
        renamed = [tmp.with_name(tmp.name + extra) for extra in _SUFFIXES_ADDED_BY_WRITERS]
        try:
            yield tmp
            for written in renamed:  # np.save(z) wrote NAME.npz instead of NAME
                if written.exists():
                    os.replace(written, tmp)
            os.replace(tmp, path)
        except BaseException:
            for leftover in (tmp, *renamed):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)
            raise
        _remove_stale_temporaries(path, suffix, keep=tmp)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, *, mode: str = "wb") -> Iterator:
    """Open a temporary file beside ``path`` for writing; on success fsync it and rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def write_checked(path: str | os.PathLike, payload: bytes, *, kind: str) -> None:
    """Write ``payload`` atomically behind a header that carries its kind, length and SHA-256.

    ``kind`` is a short word without spaces (``checkpoint``, ``cache``, ``data``) checked on reading.
    """
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", kind):
        raise ValueError(f"kind must be a short lower-case word, got {kind!r}")
    digest = hashlib.sha256(payload).hexdigest()
    header = b"%s %d %s %d %s\n" % (CHECKED_MAGIC, CHECKED_VERSION, kind.encode(), len(payload), digest.encode())
    with atomic_write(path) as handle:
        handle.write(header)
        handle.write(payload)


def is_checked(path: str | os.PathLike) -> bool:
    """Whether ``path`` starts like a file written by :func:`write_checked` (header not verified)."""
    with open(path, "rb") as handle:
        return handle.read(len(CHECKED_MAGIC)) == CHECKED_MAGIC


def check_file_path(path, *, what: str) -> Path:
    """``path`` as a :class:`Path` to an existing regular file; ``ValueError`` naming it otherwise."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{what} path must be a str or os.PathLike, got {path!r} ({type(path).__name__})")
    if isinstance(path, str) and not path.strip():
        raise ValueError(f"{what} path is blank: {path!r}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path.name!r} is a folder, not a file")
    if not path.is_file():
        raise ValueError(f"{what} {path.name!r} not found")
    return path


def read_checked(path: str | os.PathLike, *, kind: str) -> bytes:
    """The payload of a file written by :func:`write_checked` with the same ``kind``.

    ``DamagedFileError`` (a ``ValueError``) naming the file if the header is not one, the kind differs, or
    the length or SHA-256 of the payload does not match the header.
    """
    path = check_file_path(path, what=f"{kind} file")
    data = path.read_bytes()
    end = data.find(b"\n", 0, _HEADER_LIMIT)
    parts = data[:end].split(b" ") if end > 0 else []
    if len(parts) != 5 or parts[0] != CHECKED_MAGIC:
        raise DamagedFileError(f"{kind} file {path.name!r} is not a checked matvae file (damaged, or another format)")
    _, version, found_kind, length, digest = parts
    if version != str(CHECKED_VERSION).encode():
        raise DamagedFileError(f"{kind} file {path.name!r} has container version {version!r}, expected {CHECKED_VERSION}")
    if found_kind != kind.encode():
        raise DamagedFileError(f"file {path.name!r} holds {found_kind.decode(errors='replace')!r}, not a {kind}")
    payload = data[end + 1 :]
    if not length.isdigit() or int(length) != len(payload):
        raise DamagedFileError(f"{kind} file {path.name!r} is truncated or damaged: {len(payload)} bytes, header says {length!r}")
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise DamagedFileError(f"{kind} file {path.name!r} fails its SHA-256 check: the file is damaged")
    return payload


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class CacheDirError(ValueError):
    """The cache folder cannot be used (the message names ``MATVAE_CACHE_DIR`` where it came from there)."""


def cache_dir() -> Path:
    """The folder for derived data: ``$MATVAE_CACHE_DIR``, else ``$XDG_CACHE_HOME/matvae``, else
    ``~/.cache/matvae``. Created on first use.

    ``CacheDirError`` (a ``ValueError``) when the folder cannot be used: ``MATVAE_CACHE_DIR`` set to a blank
    string, a path with an unexpanded ``~``, a relative path, an existing file, or a folder that cannot be
    created or written. Callers that only *cache* catch it, warn and compute without the cache.
    """
    root = os.environ.get(CACHE_ENV)
    if root is not None:
        source = f"{CACHE_ENV}={root!r}"
        if not root.strip():
            raise CacheDirError(f"{source} is blank; unset it or set it to a writable folder")
        if root.strip() != root:
            raise CacheDirError(f"{source} has surrounding spaces; set it to a folder path without them")
        if root.startswith("~"):
            raise CacheDirError(f"{source} starts with '~', which is not expanded here; give the full path")
        path = Path(root)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "matvae"
        source = "the cache folder (from XDG_CACHE_HOME or ~/.cache)"
    if path.exists() and not path.is_dir():
        raise CacheDirError(f"{source}: {path.name!r} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheDirError(f"{source}: cannot create the folder ({exc.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CacheDirError(f"{source}: the folder is not writable")
    return path


def warn_cache_unusable(exc: BaseException) -> None:
    """The one warning shown when a cache cannot be read or written; the result is computed anyway."""
    warnings.warn(f"matvae cache not used ({exc}); the result is computed without it", RuntimeWarning, stacklevel=3)
