"""ruff over the package, the tests and the notebooks: no unused imports, undefined names or syntax errors."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_no_errors():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.fail("ruff is not installed; make test installs it with the test extra")
    result = subprocess.run(
        [ruff, "check", "--select", "F,E9", "--output-format", "concise", "matvae", "tests", "notebooks"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
