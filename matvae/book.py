"""Execute the Jupytext notebooks with papermill, at a named scale, into the book (or the test references).

    python -m matvae.book --scale cpu                 # every notebook into book/
    python -m matvae.book --scale tiny --output tests/notebooks   # the nbval references
    python -m matvae.book --scale paper --only 02_model -p device cuda

Scales are parameter presets in ``notebooks/scales.yaml``; ``-p name value`` overrides one parameter of every
notebook run (values are parsed as YAML, as papermill does). Each executed notebook is written atomically:
a failed run leaves the previous notebook in place and the partial one beside it as ``NAME.failed.ipynb``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jupytext
import papermill
import yaml

from matvae.files import atomic_path

NOTEBOOKS: tuple[str, ...] = ("01_data", "02_model", "03_tuning", "04_sampling", "05_decomposition", "06_report", "07_beyond", "08_properties",
                             "09_design")


def load_scales(path: str | Path) -> dict[str, dict[str, dict]]:
    """``{scale: {notebook: {parameter: value}}}`` from the scales file."""
    with open(path) as handle:
        scales = yaml.safe_load(handle)
    if not isinstance(scales, dict) or not scales:
        raise ValueError(f"{Path(path).name} must map scale names to per-notebook parameters")
    return scales


def available_notebooks(notebook_dir: Path) -> list[str]:
    """The notebooks of :data:`NOTEBOOKS` that exist as ``notebook_dir/NAME.py``, in order."""
    return [name for name in NOTEBOOKS if (notebook_dir / f"{name}.py").is_file()]


def declared_parameters(notebook_dir: Path, name: str) -> set[str]:
    """Names in the notebook's cell tagged ``parameters``."""
    return set(papermill.inspect_notebook(jupytext.read(notebook_dir / f"{name}.py")))


def parameters_for(name: str, declared: set[str], preset: dict, overrides: dict) -> dict:
    """The scale preset of one notebook plus the overrides it declares; unknown preset names are errors."""
    unknown = sorted(set(preset) - declared)
    if unknown:
        raise ValueError(f"scales file gives {name} the parameters {unknown}, which it does not declare ({sorted(declared)})")
    return {**preset, **{k: v for k, v in overrides.items() if k in declared}}


def execute(
    name: str,
    *,
    notebook_dir: Path,
    output_dir: Path,
    parameters: dict,
    kernel_name: str = "python3",
) -> float:
    """Execute ``notebook_dir/NAME.py`` into ``output_dir/NAME.ipynb`` with its working directory set to
    ``output_dir``; returns the wall time in seconds."""
    source = notebook_dir / f"{name}.py"
    notebook = jupytext.read(source)
    target = output_dir / f"{name}.ipynb"
    started = time.perf_counter()
    with atomic_path(target) as tmp:
        try:
            papermill.execute_notebook(
                notebook,
                str(tmp),
                parameters=parameters,
                kernel_name=kernel_name,
                cwd=str(output_dir),
                progress_bar=False,
            )
        except BaseException:
            if tmp.exists():
                os.replace(tmp, output_dir / f"{name}.failed.ipynb")
            raise
        _relative_metadata(tmp, source=source, target=target)
    return time.perf_counter() - started


def machine_paths() -> list[tuple[str, str]]:
    """(folder of this machine, what the book writes instead), longest first: the project (relative paths), the
    Python installation and the home folder. Warnings and tracebacks name source files by absolute path."""
    folders = [(Path(__file__).resolve().parent.parent, ""), (Path(sys.prefix), "<python>/"),
               (Path(sys.base_prefix), "<python>/"), (Path.home(), "~/")]
    pairs = {f"{folder}{os.sep}": replacement for folder, replacement in folders
             if folder != Path(folder.anchor)}  # a folder that is the file system's root would strip every path's root
    return sorted(pairs.items(), key=lambda pair: -len(pair[0]))


def _without_machine_paths(text: str | list[str], pairs: list[tuple[str, str]]) -> str | list[str]:
    """``text`` (one string, or a notebook's list of lines) with each folder of ``pairs`` replaced."""
    if isinstance(text, list):
        return [_without_machine_paths(line, pairs) for line in text]
    for folder, replacement in pairs:
        text = text.replace(folder, replacement)
    return text


def _relative_metadata(path: Path, *, source: Path, target: Path) -> None:
    """Papermill records its input and output paths; keep them relative (no machine paths in the book), and so
    are the paths in the outputs' text (warnings, tracebacks, plain-text, HTML and markdown results:
    :func:`machine_paths`). The parameter cells (the
    notebook's own and papermill's injected one) are folded away in the book."""
    notebook = jupytext.read(path, fmt="ipynb")
    pairs = machine_paths()
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = _without_machine_paths(output["text"], pairs)
            if "traceback" in output:
                output["traceback"] = _without_machine_paths(output["traceback"], pairs)
            for mime, value in output.get("data", {}).items():  # plain text, HTML tables, markdown: not images
                if mime.startswith("text/") and isinstance(value, (str, list)):
                    output["data"][mime] = _without_machine_paths(value, pairs)
        tags = cell.metadata.get("tags", [])
        if ("parameters" in tags or "injected-parameters" in tags) and "hide-input" not in tags:
            cell.metadata["tags"] = [*tags, "hide-input"]
    meta = notebook.metadata.setdefault("papermill", {})
    meta["input_path"] = source.as_posix()
    meta["output_path"] = target.as_posix()
    jupytext.write(notebook, path, fmt="ipynb")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="cpu", help="parameter preset from the scales file (default: cpu)")
    parser.add_argument("--scales-file", default="notebooks/scales.yaml")
    parser.add_argument("--notebooks", default="notebooks", help="folder of the Jupytext .py notebooks")
    parser.add_argument("--output", default="book", help="folder the executed .ipynb files go to")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these notebooks (e.g. 02_model)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    args = parser.parse_args(argv)

    notebook_dir, output_dir = Path(args.notebooks), Path(args.output)
    scales = load_scales(args.scales_file)
    if args.scale not in scales:
        parser.error(f"--scale must be one of {sorted(scales)}, got {args.scale!r}")
    names = available_notebooks(notebook_dir)
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            parser.error(f"--only got {unknown}; the notebooks are {names}")
        names = [n for n in names if n in args.only]
    overrides = {name: yaml.safe_load(value) for name, value in args.parameter}
    declared = {name: declared_parameters(notebook_dir, name) for name in names}
    unused = sorted(set(overrides) - set().union(*declared.values()))
    if unused:
        parser.error(f"no selected notebook declares the parameters {unused}")
    plan = {name: parameters_for(name, declared[name], scales[args.scale].get(name) or {}, overrides) for name in names}
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, parameters in plan.items():
        print(f"[{args.scale}] {name} {parameters}", file=sys.stderr, flush=True)
        seconds = execute(name, notebook_dir=notebook_dir, output_dir=output_dir, parameters=parameters)
        print(f"[{args.scale}] {name} done in {seconds:.0f} s", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
