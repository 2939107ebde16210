# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv and install everything when needed (idempotent: a stamp file records the
# requirement files' state, so a second run installs nothing).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgegan-installed
REQS := requirements/base.txt requirements/executorch.txt requirements/ray.txt edgegan/requirements/nodeps.txt requirements/test.txt requirements/test-nodeps.txt pyproject.toml
PIP := $(PY) -m pip --disable-pip-version-check -q
PYTEST_ARGS ?=

.PHONY: install host-packages browser-packages web-packages android-build-tools android-demo demo test unit-test test-torchfree test-pip device-test test-slow bench clean

$(STAMP): $(REQS)
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "edgegan needs Python 3.11 (the local torch 2.13.0 CPU wheel); set PYTHON=python3.11"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) (first time: ~2 min, ~3.3 GB)"
	# step 1: normal dependencies, exact pins
	$(PIP) install -r requirements/base.txt -r requirements/test.txt 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -c "import torch, onnxruntime, tensorflow, ai_edge_litert" 2>/dev/null || (echo "step 1 of the install failed"; exit 1)
	$(PIP) install --no-deps -r requirements/test-nodeps.txt 2>&1 | grep -v "^WARNING: Location" || true
	# step 1b: the [executorch] extra (out of [all], in the dev venv so demo and tests have it); after
	# step 1 so torch 2.13.0 is in place, which the check below makes sure it stays
	$(PIP) install -r requirements/executorch.txt 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -c "import torch, executorch.version; assert torch.__version__.startswith('2.13.0'), torch.__version__" \
		|| (echo "step 1b (executorch) of the install failed or replaced torch"; exit 1)
	# step 1c: the [ray] extra (edgegan sweep; out of [all]), so the tests run sweeps on a real local Ray
	$(PIP) install -r requirements/ray.txt 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -c "import ray, yaml, torch; assert torch.__version__.startswith('2.13.0'), torch.__version__" \
		|| (echo "step 1c (ray) of the install failed or replaced torch"; exit 1)
	# step 2: edgegan itself (editable), then the onnx2tf set, whose metadata pins old TF/numpy/onnx,
	# with --no-deps by the same command a pip user runs (list: edgegan/requirements/nodeps.txt)
	$(PIP) install --no-deps --no-build-isolation -e . 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m edgegan setup tflite
	@$(PY) -c "import onnx2tf, onnxsim, edgegan.converters" || (echo "step 2 of the install failed"; exit 1)
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m edgegan export dcgan-digits --out bundles/dcgan-digits --force

# system packages for the loopback sshd and the emulated aarch64 board (root; idempotent)
host-packages:
	@bash device_tests/board/install_host_packages.sh

# Debian's chromium for the HTML-report browser test (root; idempotent)
browser-packages:
	@bash tests/install_browser_packages.sh

# the in-browser runtimes (onnxruntime-web, tfjs-tflite) from the npm registry, exactly as
# web/package-lock.json pins them; served from web/node_modules at run time (no CDN)
WEB_STAMP := web/node_modules/.edgegan-installed
$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $(WEB_STAMP)

web-packages: $(WEB_STAMP)

# Debian's aapt, zipalign, apksigner, smali, android-framework-res (+ a JDK's keytool) for the
# phone demo's WebView APK (root; idempotent; waits for the apt lock)
android-build-tools:
	@bash demos/android/install_build_tools.sh

# the phone demo as an APK: make android-demo [BUNDLE=bundles/dcgan-digits] [APK=edgegan-demo.apk]
BUNDLE ?= bundles/dcgan-digits
APK ?= edgegan-demo.apk
android-demo: install web-packages android-build-tools
	@if [ "$(BUNDLE)" = bundles/dcgan-digits ] && [ ! -f $(BUNDLE)/bundle.json ]; then $(MAKE) demo; fi
	$(PY) -m edgegan demo phone $(BUNDLE) --apk $(APK) --force

# unit + integration tests, the torch-free tests on newer Pythons, the pip route (test-pip), then
# the device suite on the emulated aarch64 board
test: unit-test test-torchfree test-pip device-test

unit-test: install host-packages browser-packages web-packages android-build-tools
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The torch-free tests (runner, power probes, results, bundle, numpy-only metrics, packaging) on the
# newer Pythons the package supports: the full stack is pinned to 3.11 by the local torch wheel,
# not by edgegan's code. Each Python gets a small venv (.venv-py<version>) with only numpy, onnx,
# onnxruntime, pillow, rich, threadpoolctl and pytest (versions from requirements/base.txt; ~250 MB, ~1 min the
# first time). A Python missing under $(PYENV_VERSIONS) is skipped with a message.
TORCHFREE_PYTHONS ?= 3.12.1 3.13.0
PYENV_VERSIONS ?= $(HOME)/.pyenv/versions
TORCHFREE_PACKAGES := numpy|onnx|onnxruntime|pillow|rich|threadpoolctl|pytest
TORCHFREE_TESTS := tests/test_bundle.py tests/test_errors.py tests/test_util.py tests/test_results.py \
	tests/test_power_probes.py tests/test_metrics_lsh.py tests/test_metrics_paired.py tests/test_runner_job.py \
	tests/test_verify_host.py tests/test_architecture.py tests/test_package.py

test-torchfree:
	@set -e; for v in $(TORCHFREE_PYTHONS); do \
	  py=$(PYENV_VERSIONS)/$$v/bin/python$$(echo $$v | cut -d. -f1,2); \
	  if [ ! -x "$$py" ]; then echo "test-torchfree: Python $$v not found ($$py); skipped"; continue; fi; \
	  venv=.venv-py$$v; stamp=$$venv/.edgegan-installed; \
	  if [ ! -f $$stamp ] || [ requirements/base.txt -nt $$stamp ] || [ pyproject.toml -nt $$stamp ]; then \
	    echo "test-torchfree: creating $$venv"; rm -rf $$venv; $$py -m venv $$venv; \
	    grep -E '^($(TORCHFREE_PACKAGES))(==.*)?$$' requirements/base.txt > $$venv/requirements.txt; \
	    $$venv/bin/python -m pip --disable-pip-version-check -q install -r $$venv/requirements.txt setuptools wheel; \
	    $$venv/bin/python -m pip --disable-pip-version-check -q install --no-deps --no-build-isolation -e .; \
	    touch $$stamp; \
	  fi; \
	  echo "test-torchfree: Python $$v"; \
	  $$venv/bin/python -m pytest -q -p no:cacheprovider $(TORCHFREE_TESTS) $(PYTEST_ARGS); \
	done

# The pip route, as a user without the Makefile takes it: build the wheel, install
# 'edgegan-*.whl[all]' into a fresh Python 3.11 venv ($(PIP_VENV), network to the package index),
# run `edgegan setup tflite`, export dcgan-digits and check that all six formats are ok. The venv
# is kept and reused while the wheel's requirement set (its Requires-Dist, the --no-deps list and
# the Python version) is unchanged; then only the wheel itself is reinstalled.
PIP_VENV ?= .venv-pip
test-pip:
	@PYTHON=$(PYTHON) PIP_VENV=$(PIP_VENV) bash tests/pip_install_route.sh

device-test: install host-packages browser-packages
	$(PY) -m pytest -q device_tests -m device $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/export_fidelity.py

clean:
	rm -rf bundles .pytest_cache .venv-py* $(PIP_VENV)
