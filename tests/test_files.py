import os

import numpy as np
import pytest

from matvae.files import atomic_path, atomic_write, cache_dir, sha256_file


def test_atomic_write_replaces_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_write(target, mode="w") as handle:
        handle.write("new")
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, mode="w") as handle:
            handle.write("half of the new")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


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
    assert sorted(os.listdir(tmp_path)) == ["arrays.npz"]


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


def test_leftovers_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "model.pt"
    (tmp_path / ".model.abc123.tmp.pt").write_bytes(b"half")  # as a SIGKILL mid-write leaves it
    (tmp_path / ".other.xyz.tmp.pt").write_bytes(b"another target's")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.xyz.tmp.pt", "model.pt"]
    (tmp_path / ".notes.q1.tmp.txt").write_bytes(b"half")
    with atomic_write(tmp_path / "notes.txt") as handle:
        handle.write(b"ok")
    assert not (tmp_path / ".notes.q1.tmp.txt").exists()
