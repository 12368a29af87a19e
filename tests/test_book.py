"""The notebooks follow the house rules, and the runner passes parameters correctly."""

import ast
import sys
from pathlib import Path

import jupytext
import pytest

from matvae.book import NOTEBOOKS, available_notebooks, declared_parameters, load_scales, parameters_for

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"


def test_every_notebook_is_thin_and_has_one_parameters_cell():
    names = available_notebooks(NOTEBOOK_DIR)
    assert names and names[0] == "01_data"
    for name in names:
        notebook = jupytext.read(NOTEBOOK_DIR / f"{name}.py")
        tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{name} needs exactly one cell tagged parameters"
        code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
        tree = ast.parse(code)
        defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]
        assert not defs, f"{name} defines functions: move them into matvae"
        assert "sys.path" not in code


def test_papermill_reads_every_parameter():
    """Papermill must parse each line of the parameters cell (an '=' in a comment breaks its parser)."""
    for name in available_notebooks(NOTEBOOK_DIR):
        notebook = jupytext.read(NOTEBOOK_DIR / f"{name}.py")
        cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
        assigned = {t.id for node in ast.parse(cell.source).body for t in getattr(node, "targets", [])}
        assert declared_parameters(NOTEBOOK_DIR, name) == assigned, name


def test_scales_only_set_declared_parameters():
    scales = load_scales(NOTEBOOK_DIR / "scales.yaml")
    assert {"tiny", "cpu", "paper"} <= set(scales)
    for scale in scales.values():
        for name, preset in scale.items():
            assert name in NOTEBOOKS
            if (NOTEBOOK_DIR / f"{name}.py").exists():
                parameters_for(name, declared_parameters(NOTEBOOK_DIR, name), preset or {}, {})


def test_parameters_for_rejects_unknown_names_and_filters_overrides():
    declared = {"epochs", "seed"}
    assert parameters_for("02_model", declared, {"epochs": 5}, {"seed": 1, "threshold": 0.1}) == {"epochs": 5, "seed": 1}
    with pytest.raises(ValueError, match="does not declare"):
        parameters_for("02_model", declared, {"epoch": 5}, {})


def test_executed_notebooks_fold_parameter_cells_and_keep_relative_paths(tmp_path):
    import nbformat

    from matvae.book import _relative_metadata

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("a = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("a = 2", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("print(a)"),
    ]
    notebook.metadata["papermill"] = {"input_path": "/somewhere/private/x.py", "output_path": "/somewhere/private/x.ipynb"}
    path = tmp_path / "x.ipynb"
    nbformat.write(notebook, path)
    _relative_metadata(path, source=Path("notebooks/x.py"), target=Path("book/x.ipynb"))
    result = nbformat.read(path, 4)
    assert [c.metadata.get("tags", []) for c in result.cells] == [["parameters", "hide-input"], ["injected-parameters", "hide-input"], []]
    assert result.metadata["papermill"] == {"input_path": "notebooks/x.py", "output_path": "book/x.ipynb"}


def test_executed_notebooks_keep_no_machine_paths_in_their_outputs(tmp_path):
    import nbformat

    from matvae.book import _relative_metadata, machine_paths

    project = Path(__file__).resolve().parent.parent
    warning = f"W1127 [0/8] function: 'loss_and_gradients' ({project / 'matvae' / 'fused.py'}:70)\n"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("stream", name="stderr", text=warning),
        nbformat.v4.new_output("error", ename="E", evalue="e", traceback=[f"File {sys.prefix}/lib/x.py, line 1"]),
        nbformat.v4.new_output("execute_result", data={"text/plain": f"'{Path.home() / 'data.npz'}'"}, execution_count=1),
        nbformat.v4.new_output("display_data", data={"text/html": f"<td>{project / 'book' / 'a.pt'}</td>",
                                                     "image/png": "aGVsbG8="}),
    ])]
    path = tmp_path / "x.ipynb"
    nbformat.write(notebook, path)
    _relative_metadata(path, source=Path("notebooks/x.py"), target=Path("book/x.ipynb"))
    outputs = nbformat.read(path, 4).cells[0].outputs
    assert outputs[0].text == "W1127 [0/8] function: 'loss_and_gradients' (matvae/fused.py:70)\n"
    assert outputs[1].traceback == ["File <python>/lib/x.py, line 1"]
    assert outputs[2].data["text/plain"] == "'~/data.npz'"
    assert outputs[3].data["text/html"] == "<td>book/a.pt</td>" and outputs[3].data["image/png"] == "aGVsbG8="
    written = path.read_text()
    assert all(folder not in written for folder, _ in machine_paths())


def test_a_machine_folder_that_is_the_file_systems_root_is_not_stripped(monkeypatch):
    from matvae import book

    monkeypatch.setattr(book.Path, "home", classmethod(lambda cls: Path("/")))
    pairs = book.machine_paths()
    assert "/" not in dict(pairs) and "//" not in dict(pairs)
    assert book._without_machine_paths("/usr/lib/x.py", pairs) == "/usr/lib/x.py"
    assert book._without_machine_paths([f"{sys.prefix}/a", "b"], pairs) == ["<python>/a", "b"]
