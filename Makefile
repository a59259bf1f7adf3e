# Two commands for a fresh machine:
#   make demo   installs everything into .venv and runs the offline demo study on the CPU
#   make test   installs everything into .venv and runs the test suite
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
CORES ?= 2
BIN := $(VENV)/bin
# rules call `python -m recall2reason.<stage>`: put the venv first on PATH
RUN := PATH="$(abspath $(BIN)):$$PATH"

.PHONY: install demo test report clean-demo

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

# tiny models train fastest one thread per job, one job per core
demo: install
	$(RUN) $(BIN)/snakemake -c$(CORES) all --configfile configs/demo.yaml --set-threads pretrain=1 sample=1 probe=1
	$(RUN) $(BIN)/snakemake -c$(CORES) --report results/demo/report.html --configfile configs/demo.yaml
	@echo "demo done: results/demo/ (tables/, figures/, report.html)"

test: install
	$(RUN) $(BIN)/python -m pytest

clean-demo:
	rm -rf results/demo
