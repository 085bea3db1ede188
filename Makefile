# Everything runs from the project venv; `make venv` builds it on a fresh machine.

PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV        := .venv
PY          := $(VENV)/bin/python
# Kept inside the venv so that deleting the venv also forgets it was installed.
STAMP       := $(VENV)/.mtdsl-install.stamp

# The pinned builds lie on these machines' local disk; a torch already in the
# venv (any version pyproject admits) is kept as it is.
TORCH_PINS  := torch==2.14.1 torchvision==0.29.1

MTDSL_DATA  ?= ../shared/data
export MTDSL_DATA

.PHONY: venv demo test fuzz check bench reproduce-cpu clean distclean

venv: $(STAMP)

$(PY):
	$(PYTHON_BOOT) -m venv $(VENV)

$(STAMP): pyproject.toml scripts/install-learn2learn.sh | $(PY)
	$(PY) -c 'import torch, torchvision' 2>/dev/null || \
		{ bash scripts/need-disk.sh 8 $(VENV) && $(PY) -m pip install $(TORCH_PINS); }
	$(PY) -m pip install --quiet -e '.[test,lsp,trackers,cluster]'
	bash scripts/install-learn2learn.sh $(PY)
	touch $@

demo: venv
	$(VENV)/bin/mtdsl run specs/sinusoid_ticket.mt --seed 1 --set outer.iterations=5000

# Every pytest failure fails the target, "no tests collected" (exit 5) included: a suite
# that runs nothing must not pass.
test: venv
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Spec fuzzing at scale: mutants of the shipped specs and grammar-generated specs, in
# process, as `mtdsl check` runs them; prints the counts. `make test` runs a small,
# fixed-seed share of it (tests/test_fuzz_specs.py).
FUZZ_CASES ?= 10000
fuzz: venv
	$(PY) tests/fuzz_specs.py --cases $(FUZZ_CASES)

check: venv
	$(VENV)/bin/mtdsl check specs/*.mt

# Each benchmark times two or more implementations interleaved in one process and writes
# its JSON to benchmarks/results/ (docs/performance.md). BENCH_ITERATIONS: the whole-run case.
BENCH_ITERATIONS ?= 1000
bench: venv
	$(PY) benchmarks/bench_floor.py
	$(PY) benchmarks/bench_vs_learn2learn.py
	$(PY) benchmarks/bench_vs_learn2learn.py --threads 2
	$(PY) benchmarks/bench_floor.py --quick --threads 2
	$(PY) benchmarks/bench_fixed_cost.py
	$(PY) benchmarks/bench_fixed_cost.py --threads 2
	$(PY) benchmarks/bench_stacked_vs_eager.py
	$(PY) benchmarks/bench_allocator.py
	$(PY) benchmarks/bench_growth.py
	$(PY) benchmarks/bench_whole_run.py --iterations $(BENCH_ITERATIONS)

# Every run behind docs/results.md at the paper's schedules, two at a time: days on 2 CPU
# cores. Stop it any time; running it again skips finished runs and resumes the others.
reproduce-cpu: venv
	JOBS=$${JOBS:-2} bash scripts/reproduce-cpu.sh

clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis $(STAMP)
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
