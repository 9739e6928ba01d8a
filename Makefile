# rnnflow developer entry points. `make run` and `make test` create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rnnflow-installed
OUTPUT_DIR ?= runs/sentiment

IMAGE ?= rnnflow:latest
CONTAINER_TOOL ?= $(shell command -v docker || command -v podman)

.PHONY: setup run test lock image clean

setup: $(STAMP)

# The lock is compiled for Python 3.10 (TFX 1.16's declared ceiling) and installed
# without dependency resolution on 3.11, where every native wheel exists.
$(STAMP): requirements/lock.txt setup.py
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "rnnflow needs Python 3.11, got " + sys.version' 
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the locked stack into $(VENV) (first time: a few minutes)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --ignore-requires-python \
		--require-hashes -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

run: setup
	$(BIN)/rnnflow run --config sentiment --output-dir $(OUTPUT_DIR)

# Two workers on a 2-core machine; tests/conftest.py marks each test's group (the shared run it
# reads), which --dist loadgroup keeps on one worker.
TEST_WORKERS ?= 2

test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

# Recompile the lock after editing requirements/requirements.in (needs `uv`).
lock:
	uv pip compile --python-version 3.10 --python-platform x86_64-manylinux_2_31 --generate-hashes \
		--override requirements/overrides.txt \
		requirements/requirements.in -o requirements/lock.txt

# The pipeline image for Kubeflow / Vertex (see Dockerfile); push it with `docker push $(IMAGE)`.
image:
	@test -n "$(CONTAINER_TOOL)" || { echo "make image needs docker or podman on PATH"; exit 2; }
	$(CONTAINER_TOOL) build -t $(IMAGE) .

clean:
	rm -rf $(VENV) runs *.egg-info
