import multiprocessing
import os
import time

import numpy as np
import pytest

from matvae.files import (
    CacheDirError,
    DamagedFileError,
    atomic_path,
    atomic_write,
    cache_dir,
    check_file_path,
    file_lock,
    read_checked,
    sha256_file,
    write_checked,
)


def visible(folder) -> list[str]:
    """The files a user sees (lock files are hidden: ``.NAME.lock``)."""
    return sorted(name for name in os.listdir(folder) if not name.endswith(".lock"))


def test_atomic_write_replaces_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_write(target, mode="w") as handle:
        handle.write("new")
    assert target.read_text() == "new"
    assert visible(tmp_path) == ["out.txt"]


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, mode="w") as handle:
            handle.write("half of the new")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert visible(tmp_path) == ["out.txt"]


def test_atomic_path_keeps_the_suffix_for_format_sniffing_writers(tmp_path):
    target = tmp_path / "arrays.npz"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".npz" and tmp.parent == tmp_path
        np.savez(tmp, a=np.arange(3))
    assert np.load(target)["a"].tolist() == [0, 1, 2]
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise KeyboardInterrupt
    assert np.load(target)["a"].tolist() == [0, 1, 2]
    assert visible(tmp_path) == ["arrays.npz"]


@pytest.mark.parametrize("name", ["data.bin", "data", "data.npz.bak"])
def test_a_writer_that_renames_its_file_still_fills_the_target(tmp_path, name):
    """np.savez appends .npz to a name without it; the target must still end up holding the data."""
    target = tmp_path / name
    with atomic_path(target) as tmp:
        np.savez(tmp, a=np.arange(4))
    assert target.stat().st_size > 0
    assert np.load(target)["a"].tolist() == [0, 1, 2, 3]
    assert visible(tmp_path) == [name]


def test_written_files_get_ordinary_permissions(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_write(target) as handle:
        handle.write(b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_cache_dir_and_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("MATVAE_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_file(tmp_path / "f") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_leftovers_of_a_killed_writer_are_removed_by_the_next_write_of_the_same_target(tmp_path):
    target = tmp_path / "model.pt"
    (tmp_path / ".model.pt.abc123de.tmp.pt").write_bytes(b"half")  # as a SIGKILL mid-write leaves it
    (tmp_path / ".other.pt.xyz123ab.tmp.pt").write_bytes(b"another target's")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert visible(tmp_path) == [".other.pt.xyz123ab.tmp.pt", "model.pt"]
    (tmp_path / ".notes.txt.q1q1q1q1.tmp.txt").write_bytes(b"half")
    with atomic_write(tmp_path / "notes.txt") as handle:
        handle.write(b"ok")
    assert not (tmp_path / ".notes.txt.q1q1q1q1.tmp.txt").exists()


@pytest.mark.parametrize(
    ("written", "bystander"),
    [("a.pt", "a.b.pt"), ("a.b.pt", "a.pt"), ("kl_weight-0.pt", "kl_weight-0.03.pt"), ("m[1].pt", "m1.pt"), ("m1.pt", "m[1].pt")],
)
def test_writes_never_touch_temporaries_of_targets_whose_names_share_a_prefix(tmp_path, written, bystander):
    """A temporary of a write in progress to ``bystander`` survives a finished write of ``written``."""
    with atomic_path(tmp_path / bystander) as in_progress:
        in_progress.write_bytes(b"being written")
        with atomic_path(tmp_path / written) as tmp:
            tmp.write_bytes(b"done")
        assert in_progress.exists(), f"writing {written} deleted the temporary file of {bystander}"
    assert (tmp_path / bystander).read_bytes() == b"being written"
    assert (tmp_path / written).read_bytes() == b"done"


def _write_many(target: str, tag: int, n: int) -> None:
    for i in range(n):
        with atomic_write(target) as handle:
            handle.write(f"{tag}:{i}:".encode() + bytes(20_000))


def test_concurrent_writers_of_one_target_all_succeed(tmp_path):
    target = tmp_path / "shared.bin"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(str(target), tag, 15)) for tag in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert target.read_bytes().split(b":")[1] == b"14"  # a whole file from some writer's last write
    assert visible(tmp_path) == ["shared.bin"]


def test_a_write_waits_for_the_lock_of_its_target(tmp_path):
    target = tmp_path / "x.txt"
    with file_lock(target):
        started = time.perf_counter()
        with pytest.raises(Exception, match="x.txt"):
            with file_lock(target, timeout=0.2):
                pass
        assert time.perf_counter() - started >= 0.2


def test_checked_files_round_trip_and_refuse_every_single_byte_change(tmp_path):
    path = tmp_path / "c.bin"
    payload = bytes(range(256)) * 3
    write_checked(path, payload, kind="cache")
    assert read_checked(path, kind="cache") == payload
    whole = path.read_bytes()
    rng = np.random.default_rng(0)
    for position in range(len(whole)):  # every byte, header included
        damaged = bytearray(whole)
        damaged[position] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(damaged))
        with pytest.raises(DamagedFileError, match="c.bin"):
            read_checked(path, kind="cache")
    path.write_bytes(whole[:-1])
    with pytest.raises(DamagedFileError, match="truncated"):
        read_checked(path, kind="cache")
    path.write_bytes(whole)
    with pytest.raises(DamagedFileError, match="not a checkpoint"):
        read_checked(path, kind="checkpoint")


@pytest.mark.parametrize("bad", [12, 3.5, None, b"bytes", ["a"], "", "   "])
def test_file_paths_of_the_wrong_type_are_refused_by_name(bad):
    with pytest.raises(ValueError, match="path"):
        check_file_path(bad, what="checkpoint")


def test_folders_and_text_files_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="folder"):
        read_checked(tmp_path, kind="data")
    text = tmp_path / "notes.txt"
    text.write_text("just text\n")
    with pytest.raises(DamagedFileError, match="notes.txt"):
        read_checked(text, kind="data")


@pytest.mark.parametrize(
    ("value", "match"),
    [("", "blank"), ("   ", "blank"), ("~/cache", "~"), (" /tmp/x ", "spaces"), ("FILE", "is a file")],
)
def test_unusable_cache_folders_are_named(tmp_path, monkeypatch, value, match):
    if value == "FILE":
        value = str(tmp_path / "a-file")
        (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("MATVAE_CACHE_DIR", value)
    with pytest.raises(CacheDirError, match=f"MATVAE_CACHE_DIR.*{match}"):
        cache_dir()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_cache_folder_is_named(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    monkeypatch.setenv("MATVAE_CACHE_DIR", str(folder))
    with pytest.raises(CacheDirError, match="not writable"):
        cache_dir()
