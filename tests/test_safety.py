"""Nothing in the package or the notebooks unpickles, evaluates strings, or loads torch files unsafely."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "matvae").rglob("*.py")) + sorted((ROOT / "notebooks").glob("*.py"))


def calls(path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_no_unsafe_deserialisation_or_eval(path):
    for node, name in calls(path):
        assert name not in ("eval", "exec", "pickle.load", "pickle.loads", "yaml.load", "np.load.__call__"), f"{path.name}: {name}"
        if name == "torch.load":
            keywords = {k.arg: k.value for k in node.keywords}
            assert "weights_only" in keywords and ast.literal_eval(keywords["weights_only"]) is True, (
                f"{path.name}:{node.lineno}: torch.load without weights_only=True"
            )
        if name in ("np.load", "numpy.load"):
            keywords = {k.arg: k.value for k in node.keywords}
            assert keywords.get("allow_pickle") is not None and ast.literal_eval(keywords["allow_pickle"]) is False, (
                f"{path.name}:{node.lineno}: np.load must pass allow_pickle=False"
            )


def test_the_scan_sees_the_package():
    names = {name for path in SOURCES for _, name in calls(path)}
    assert "torch.load" in names and "np.load" in names


NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb")) + sorted((ROOT / "tests" / "notebooks").glob("*.ipynb"))
MACHINE_PATH = re.compile(r"(?<![\w.:/])(/home/|/Users/|/tmp/|/opt/|/mnt/|[A-Z]:\\\\Users)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_executed_notebooks_show_no_machine_paths_or_keys(path):
    text = path.read_text()
    for place in (ROOT.parent, Path.home()):  # where this checkout lives, and the user's home
        if len(place.parts) > 1:
            assert str(place) + "/" not in text, f"{path.name} shows an absolute path of this machine"
    hit = MACHINE_PATH.search(text)
    assert hit is None, f"{path.name} shows a path of the machine it ran on: ...{text[max(0, hit.start() - 60):hit.end() + 40]}..."
    assert re.search(r"MP_API_KEY\W{1,6}[A-Za-z0-9]{20,}", text) is None, f"{path.name} shows something like an API key"


def test_the_path_scan_would_see_a_leak(tmp_path):
    assert MACHINE_PATH.search('"output_path": "/home/ann/matvae/book/02_model.ipynb"')
    assert MACHINE_PATH.search("File /tmp/ipykernel_1234/567.py:3")
    assert not MACHINE_PATH.search('"output_path": "book/02_model.ipynb", "url": "https://example.org/home/x"')
