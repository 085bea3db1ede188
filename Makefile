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

.PHONY: venv demo test check bench clean distclean

venv: $(STAMP)

$(PY):
	$(PYTHON_BOOT) -m venv $(VENV)

$(STAMP): pyproject.toml scripts/install-learn2learn.sh | $(PY)
	$(PY) -c 'import torch, torchvision' 2>/dev/null || $(PY) -m pip install $(TORCH_PINS)
	$(PY) -m pip install --quiet -e '.[test,lsp,trackers]'
	bash scripts/install-learn2learn.sh $(PY)
	touch $@

demo: venv
	$(VENV)/bin/mtdsl run specs/sinusoid_ticket.mt --seed 1 --set outer.iterations=5000

# pytest exits 5 when it collects nothing; that is not a failure of the code.
test: venv
	$(PY) -m pytest -q $(PYTEST_ARGS) || [ $$? -eq 5 ]

check: venv
	$(VENV)/bin/mtdsl check specs/*.mt

bench: venv
	$(PY) benchmarks/bench_engine.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis $(STAMP)
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
