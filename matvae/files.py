"""Files the project writes: atomic replacement, checksums and the cache folder.

Every file the package writes goes through :func:`atomic_write` or :func:`atomic_path`, so a crash leaves
either the old file or the new one, never a half-written file that a later run would trust. A process
killed mid-write (SIGKILL) leaves only a hidden temporary file, which the next successful write of the same
target removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

CACHE_ENV = "MATVAE_CACHE_DIR"
"""Environment variable that overrides the cache folder."""


def _file_mode() -> int:
    """The mode an ordinary new file gets (0o666 minus the umask); mkstemp alone would give 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _remove_leftovers(pattern: str, directory: Path, keep: Path) -> None:
    """Delete temporary files of earlier writes to the same target that a killed process left behind."""
    for leftover in directory.glob(pattern):
        if leftover != keep:
            with contextlib.suppress(OSError):
                leftover.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that wants a file name (savefig, np.savez).

    The temporary file keeps ``path``'s suffix (or ``suffix``) so that writers which infer the format from
    the name still work; it replaces ``path`` only if the block finishes, and is removed otherwise.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{suffix}")
    os.close(fd)
    os.chmod(tmp, _file_mode())
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _remove_leftovers(f".{path.stem}.*.tmp{suffix}", path.parent, Path(tmp))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, *, mode: str = "wb") -> Iterator:
    """Open a temporary file beside ``path`` for writing; on success fsync it and rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    """The folder for derived data: ``$MATVAE_CACHE_DIR``, else ``$XDG_CACHE_HOME/matvae``, else
    ``~/.cache/matvae``. Created on first use."""
    root = os.environ.get(CACHE_ENV)
    if root:
        path = Path(root)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path = Path(base) / "matvae"
    path.mkdir(parents=True, exist_ok=True)
    return path
