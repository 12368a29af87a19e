"""The committed book builds with Jupyter Book (warnings as errors) and every chapter shows its figures."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [entry["file"] for entry in yaml.safe_load((ROOT / "_toc.yml").read_text())["chapters"]]
FIGURES = {"book/01_data": 3, "book/02_model": 2, "book/03_tuning": 3, "book/04_sampling": 2, "book/05_decomposition": 3}


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    missing = [c for c in CHAPTERS if not (ROOT / f"{c}.ipynb").exists()]
    if missing:
        pytest.fail(f"executed chapters missing from book/: {missing}; run make book")
    out = tmp_path_factory.mktemp("book")
    source = out / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "_build", "artifacts", "tests", "*.pt"))
    executable = Path(sys.executable).parent / "jupyter-book"
    command = [str(executable), "build", str(source), "--builder", "html", "--warningiserror", "--nitpick"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return source / "_build" / "html"


def test_every_page_exists_and_chapters_embed_their_figures(html):
    assert (html / "book" / "intro.html").is_file()
    for chapter in CHAPTERS:
        page = html / f"{chapter}.html"
        assert page.is_file(), chapter
        text = page.read_text()
        images = re.findall(r'<img[^>]+src="([^"]+\.png)"', text)
        assert len(images) >= FIGURES.get(chapter, 0), f"{chapter}: {len(images)} figures"
        for src in images:
            assert (page.parent / src).resolve().is_file(), f"{chapter}: broken image {src}"
        assert "Traceback" not in text, f"{chapter} shows an error"
