"""Nothing in the package or the notebooks unpickles, evaluates strings, or loads torch files unsafely."""

import ast
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
