# The two commands that do everything on a fresh machine (each creates .venv on first use):
#   make book   execute every notebook on the embedded snapshot and build the HTML book (_build/html)
#   make test   unit tests and the nbval notebook regression tests
# Options: SCALE=cpu|paper|tiny (make book), BACKEND=local|ray (make book: where the sweeps and design runs go;
# ray: the cluster of RAY_ADDRESS, else a local Ray), PYTHON=python3.11, TORCH_SPEC="torch==2.13.0".

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_SPEC ?= torch==2.13.0
SCALE ?= cpu
BACKEND ?=
PYTEST_ARGS ?=
# matplotlib's config and font cache in the environment, not the user's home: another checkout's half-built cache
# there (an install stopped midway) would otherwise break this one's figures
export MPLCONFIGDIR ?= $(abspath $(VENV))/matplotlib

.PHONY: book notebooks html test test-portable references benchmark readme clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] in ((3, 11), (3, 12)), "matvae needs Python 3.11 or 3.12; run make PYTHON=python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

book: notebooks html

notebooks: $(STAMP)
	$(BIN)/python -m matvae.book --scale $(SCALE) $(if $(BACKEND),-p backend $(BACKEND))

html: $(STAMP)
	$(BIN)/jupyter-book build . --builder html --warningiserror --nitpick --keep-going

test: $(STAMP)
	$(BIN)/python -m pytest --nbval --nbval-current-env --nbval-sanitize-with tests/notebooks/sanitize.cfg $(PYTEST_ARGS)

# The nbval references again, with every kernel forced onto another code path: torch's ATen kernels on their
# portable (non-SIMD) variants, numpy's dispatch narrowed to its baseline, MKL and OpenBLAS on older
# instruction sets, one thread. A reference that holds floating-point noise of one CPU fails here first.
NUMPY_DISPATCH = $$($(BIN)/python -c 'from numpy._core import _multiarray_umath as m; print(",".join(m.__cpu_dispatch__))')
test-portable: $(STAMP)
	NPY_DISABLE_CPU_FEATURES="$(NUMPY_DISPATCH)" ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 \
	OPENBLAS_CORETYPE=Prescott OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MATVAE_EXPECT_PORTABLE=1 \
	$(BIN)/python -m pytest --nbval --nbval-current-env --nbval-sanitize-with tests/notebooks/sanitize.cfg \
		tests/test_portable.py tests/notebooks $(PYTEST_ARGS)

references: $(STAMP)
	rm -rf tests/notebooks/artifacts tests/notebooks/figures
	MATVAE_PROGRESS=0 $(BIN)/python -m matvae.book --scale tiny --output tests/notebooks

benchmark: $(STAMP)
	$(BIN)/python -m matvae.benchmark --stacked --compile --json _build/benchmark.json $(if $(README),--readme $(README))

readme: $(STAMP)
	$(BIN)/python -m matvae.report --results book/artifacts/results --readme README.md

clean:
	rm -rf _build .pytest_cache
