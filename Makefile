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

.PHONY: install demo demo-ablations test report clean-demo gpu-smoke

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

# after the demo: Appendix A.3's ablations at toy scale (configs/demo.yaml's sweep), and the report with them
demo-ablations: demo
	$(RUN) $(BIN)/snakemake -c$(CORES) ablations --configfile configs/demo.yaml --set-threads pretrain=1 sample=1
	$(RUN) $(BIN)/snakemake -c$(CORES) --report results/demo/report.html all ablations --configfile configs/demo.yaml

test: install
	$(RUN) $(BIN)/python -m pytest

clean-demo:
	rm -rf results/demo

# The GPU smoke study (README, "GPU smoke study"): all 13 models on one GPU in minutes, on a GPU
# node with the study's install (no venv made here). GPU_JOBS: GPU jobs sharing the GPU at once.
GPU_JOBS ?= 8
SMOKE := --configfile configs/gpu-smoke.yaml
gpu-smoke:
	snakemake --profile workstation all $(SMOKE) --resources gpu_jobs=$(GPU_JOBS) \
		--set-threads pretrain=2 sample=2 probe=2 vote=4 --scheduler greedy
	snakemake --report results/gpu-smoke/report.html $(SMOKE)
	@echo "GPU smoke study done: results/gpu-smoke/ (tables/, figures/, report.html)"

