import gzip
import shutil

import numpy as np
import pytest

from matvae.composition import encode
from matvae.data.snapshot import SNAPSHOT_PATH, SNAPSHOT_ROWS, SnapshotError, parse_cell_formulas, read_snapshot


def test_snapshot_reads_and_matches_its_provenance(snapshot_raw):
    formulas, energies, counts = snapshot_raw
    assert len(formulas) == SNAPSHOT_ROWS == 132_752
    assert counts.shape == (SNAPSHOT_ROWS, 89)
    assert np.isfinite(energies).all()
    assert (counts > 0).any(axis=0).sum() == 84  # the noble gases are absent
    n_elements = (counts > 0).sum(axis=1)
    assert np.bincount(n_elements)[1:].tolist() == [687, 19735, 61629, 37291, 11268, 1909, 212, 19, 2]
    assert (SNAPSHOT_PATH.parent / "PROVENANCE.md").is_file()


def test_fast_parser_agrees_with_encode(snapshot_raw, rng):
    formulas, _, counts = snapshot_raw
    for row in rng.choice(len(formulas), size=300, replace=False):
        reduced = counts[row] / np.gcd.reduce(counts[row].astype(np.int64))
        assert np.array_equal(reduced, encode(formulas[row]))


def test_altered_snapshot_fails_its_checksum(tmp_path):
    copy = tmp_path / "snapshot.csv.gz"
    shutil.copy(SNAPSHOT_PATH, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="fails its checksum"):
        read_snapshot(copy)


def test_truncated_or_missing_snapshot(tmp_path):
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(SNAPSHOT_PATH.read_bytes()[:5000])
    with pytest.raises(SnapshotError, match="fails its checksum"):
        read_snapshot(truncated)
    with pytest.raises(SnapshotError, match="cannot read"):
        read_snapshot(truncated, sha256=None)
    with pytest.raises(SnapshotError, match="not found"):
        read_snapshot(tmp_path / "absent.csv.gz")


def test_wrong_columns(tmp_path):
    other = tmp_path / "other.csv.gz"
    with gzip.open(other, "wt") as handle:
        handle.write("composition,energy\nNa1Cl1,-2.0\n")
    with pytest.raises(SnapshotError, match="expected"):
        read_snapshot(other, sha256=None)


@pytest.mark.parametrize("bad", ["NaCl", "Na1Cl", "Po1O2", "", "na1cl1"])
def test_parse_cell_formulas_rejects_other_formats(bad):
    with pytest.raises(SnapshotError):
        parse_cell_formulas([bad])
