# cnnlab: `make reproduce` and `make test` set up everything they need (venv, packages, dataset).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= quick
# experiments run at once by `make reproduce`: one per core, at most 4 (a kernel peaks at up to about 3 GiB)
JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 4 ? n : 4 )))
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: setup data browser reproduce check-verdicts run report test test-backends test-cluster bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Fashion-MNIST from Debian's dataset-fashion-mnist, unless CNNLAB_DATA points elsewhere.
data:
	@if [ -n "$$CNNLAB_DATA" ] || [ -f $(FASHION_MNIST) ]; then \
		echo "Fashion-MNIST: found"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "Fashion-MNIST: installing Debian's dataset-fashion-mnist"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	else \
		echo "Fashion-MNIST: not installed; install Debian's dataset-fashion-mnist or set CNNLAB_DATA to a folder with the four IDX files"; \
	fi

# Debian's chromium, which the report's browser test drives (skipped, with the reason, where it is missing).
browser:
	@if command -v chromium >/dev/null || [ -n "$$CNNLAB_CHROMIUM" ]; then \
		echo "Chromium: found"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "Chromium: installing Debian's chromium"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
			|| echo "Chromium: not installed (apt-get failed); the browser test will be skipped"; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
		{ sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
			|| echo "Chromium: not installed (apt-get failed); the browser test will be skipped"; \
	else \
		echo "Chromium: not installed (no apt-get as root); the browser test will be skipped"; \
	fi

reproduce: setup data
	$(BIN)/cnnlab reproduce --profile $(PROFILE) --jobs $(JOBS)

# The same runs on another floating-point path (one thread, oneDNN off); where a claim's verdict differs
# between the two, the report gives the weaker (reproduced > partial > inconclusive; opposite sides: inconclusive).
check-verdicts: setup data
	$(BIN)/cnnlab reproduce --profile $(PROFILE) --check --jobs $(JOBS)

run: setup data
	@test -n "$(EXP)" || { echo "usage: make run EXP=01 [PROFILE=quick]"; exit 2; }
	$(BIN)/cnnlab run $(EXP) --profile $(PROFILE)

report: setup
	$(BIN)/cnnlab report --profile $(PROFILE)

# pytest workers (pytest-xdist): one more than JOBS, as a worker often waits on a kernel's start, a subprocess or
# another worker's smoke run (on 2 cores, 3 workers: 480 s against 506 s with 2); an experiment's tests share a
# worker (`xdist_group`), and each smoke notebook runs once, by the first worker to need it; the cluster's tests
# are `make test-cluster`'s
TEST_JOBS ?= $(shell echo $$(( $(JOBS) + 1 )))
test: setup data browser
	$(BIN)/pytest -q -n $(TEST_JOBS) --dist loadgroup --ignore=tests/test_cluster.py

# The unit tests and every notebook's smoke profile on the JAX and PyTorch backends (TensorFlow is `make test`).
BACKENDS ?= jax torch
test-backends: setup data
	$(BIN)/python -m pip install --quiet -e '.[test,$(shell echo $(BACKENDS) | tr ' ' ',')]'
	@for backend in $(BACKENDS); do \
		echo "== KERAS_BACKEND=$$backend"; \
		KERAS_BACKEND=$$backend $(BIN)/pytest -q -n $(JOBS) --dist loadgroup \
			$(filter-out tests/test_cluster.py,$(wildcard tests/test_*.py)) tests/models tests/experiments \
			tests/suite/test_notebooks.py || exit 1; \
	done

# Paired runs as Ray tasks on a cluster of two nodes started on this machine (installs the cluster extra; about 11
# minutes, so not part of `make test`)
test-cluster: setup data
	$(BIN)/python -m pip install --quiet -e '.[test,cluster]'
	$(BIN)/pytest -q tests/test_cluster.py

# Training throughput under each setting and the quick runs' per-cell costs, into results/bench/.
bench: setup
	$(BIN)/cnnlab bench

clean:
	rm -rf results/runs results/cache .pytest_cache
