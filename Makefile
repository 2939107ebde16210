# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv and install everything when needed (idempotent: a stamp file records the
# requirement files' state, so a second run installs nothing).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgegan-installed
REQS := requirements/base.txt requirements/nodeps.txt requirements/test.txt pyproject.toml
PIP := $(PY) -m pip --disable-pip-version-check -q
PYTEST_ARGS ?=

.PHONY: install host-packages demo test unit-test device-test test-slow bench clean

$(STAMP): $(REQS)
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "edgegan needs Python 3.11 (the local torch 2.13.0 CPU wheel); set PYTHON=python3.11"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) (first time: ~1-2 min, ~2.7 GB)"
	# step 1: normal dependencies, exact pins
	$(PIP) install -r requirements/base.txt -r requirements/test.txt 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -c "import torch, onnxruntime, tensorflow, ai_edge_litert" 2>/dev/null || (echo "step 1 of the install failed"; exit 1)
	# step 2: the onnx2tf set, whose metadata pins old TF/numpy/onnx: --no-deps
	$(PIP) install --no-deps -r requirements/nodeps.txt 2>&1 | grep -v "^WARNING: Location" || true
	$(PIP) install --no-deps --no-build-isolation -e . 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -c "import onnx2tf, onnxsim, edgegan.converters" || (echo "step 2 of the install failed"; exit 1)
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m edgegan export dcgan-digits --out bundles/dcgan-digits --force

# system packages for the loopback sshd and the emulated aarch64 board (root; idempotent)
host-packages:
	@bash device_tests/board/install_host_packages.sh

# unit + integration tests, then the device suite on the emulated aarch64 board
test: unit-test device-test

unit-test: install host-packages
	$(PY) -m pytest -q $(PYTEST_ARGS)

device-test: install host-packages
	$(PY) -m pytest -q device_tests -m device $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/export_fidelity.py

clean:
	rm -rf bundles .pytest_cache
