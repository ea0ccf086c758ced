# Two commands for a new user: `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
GLUE_DIR ?= ../shared/data/glue
DEMO := runs/demo
# Demo size: a seeded SST-2 subset keeps it well under 15 minutes on 2 CPU cores.
DEMO_TRAIN ?= 6000

.PHONY: demo test install clean

install: $(VENV)/.installed

# torch 2.13.0 first: a bare torch requirement would pull the CUDA build and its gigabytes of packages.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# One pytest-xdist worker a CPU; each test module runs whole on one worker, so a module's fixtures are built once.
WORKERS ?= auto

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n $(WORKERS) --dist loadscope

# Without a local GLUE folder the demo reads SST-2 from the Hub (nyu-mll/glue), and MiniLM from its package or the
# Hub (sentence-transformers/all-MiniLM-L6-v2); offline with neither, kdnlp stops with one line saying what to pass.
LOCAL_GLUE := $(wildcard $(GLUE_DIR)/SST-2/train.tsv)
DEMO_DATA := $(if $(LOCAL_GLUE),--data-dir $(GLUE_DIR),)
DEMO_ENV := $(if $(LOCAL_GLUE),HF_HUB_OFFLINE=1,GLUE_DIR=)

demo: install
	@$(if $(LOCAL_GLUE),true,echo "make demo: no GLUE data in '$(GLUE_DIR)': using the Hub (nyu-mll/glue, sentence-transformers/all-MiniLM-L6-v2); for local data run: make demo GLUE_DIR=/path/to/glue")
	$(DEMO_ENV) $(BIN)/kdnlp finetune --model minilm-l6 --task sst2 $(DEMO_DATA) \
	  --max-train-samples $(DEMO_TRAIN) --set training.num_train_epochs=1 --set max_length=64 \
	  --output-dir $(DEMO)/teacher --overwrite
	$(DEMO_ENV) $(BIN)/kdnlp distill --recipe hinton --teacher $(DEMO)/teacher --task sst2 $(DEMO_DATA) \
	  --max-train-samples $(DEMO_TRAIN) --set training.num_train_epochs=2 --set max_length=64 \
	  --output-dir $(DEMO)/student-hinton --overwrite
	$(DEMO_ENV) $(BIN)/kdnlp eval $(DEMO)/teacher $(DEMO)/student-hinton --task sst2 $(DEMO_DATA) \
	  --speed --json-out $(DEMO)/results.json

clean:
	rm -rf $(VENV) runs
