"""Bad notebook parameters given through papermill stop the first code cell with a clear message."""

from pathlib import Path

import jupytext
import papermill
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

CASES = [
    ("01_data", {"test_fraction": 1.5}, r"test_fraction must lie in \(0.0, 1.0\), got 1.5"),
    ("01_data", {"elements": "Ga,Qq"}, "not among the 89"),
    ("02_model", {"epochs": -5}, "epochs must be >= 1, got -5"),
    ("02_model", {"device": "tpu"}, "device must be"),
    ("03_tuning", {"widths": "50,abc"}, "widths must be a comma-separated list of integers"),
    ("04_sampling", {"threshold": 2}, r"threshold must lie in \(0.0, 1.0\), got 2.0"),
    ("04_sampling", {"n_samples": 0}, "n_samples must be >= 1, got 0"),
    ("04_sampling", {"n_samples": 10**12}, "n_samples must be <= 10000000, got 1000000000000"),
    ("02_model", {"epochs": 5.0}, r"epochs must be an integer >= 1 and <= 1000000, got 5.0 \(float\)"),
    ("05_decomposition", {"threshold": -0.1}, "threshold must lie in"),
    ("08_properties", {"energy_epochs": 2.5}, r"energy_epochs must be an integer"),
    ("07_beyond", {"n_spread_seeds": 0}, "n_spread_seeds must be >= 1, got 0"),
    ("09_design", {"budgets": "0,10"}, "budgets"),
    ("09_design", {"backend": "slurm"}, r"backend must be one of \('local', 'ray'\), got 'slurm'"),
]


@pytest.mark.parametrize(("name", "parameters", "message"), CASES, ids=[f"{n}-{next(iter(p))}" for n, p, _ in CASES])
def test_bad_parameter_stops_in_the_first_code_cell(tmp_path, name, parameters, message):
    notebook = jupytext.read(NOTEBOOKS / f"{name}.py")
    with pytest.raises(papermill.PapermillExecutionError, match=message) as error:
        papermill.execute_notebook(notebook, str(tmp_path / "out.ipynb"), parameters=parameters, cwd=str(tmp_path),
                                   kernel_name="python3", progress_bar=False)
    assert error.value.ename == "ValueError"
    executed = jupytext.read(tmp_path / "out.ipynb", fmt="ipynb")
    code = [c for c in executed.cells if c.cell_type == "code"]
    injected = next(i for i, c in enumerate(code) if "injected-parameters" in c.metadata.get("tags", []))
    failed = next(i for i, c in enumerate(code) if any(o.get("output_type") == "error" for o in c.get("outputs", [])))
    assert failed == injected + 1, "the error must come from the validation cell right after the parameters"
