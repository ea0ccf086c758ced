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

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

demo: install
	@test -d "$(GLUE_DIR)/SST-2" || { echo "make demo: no GLUE data in '$(GLUE_DIR)' (expected $(GLUE_DIR)/SST-2/train.tsv); run: make demo GLUE_DIR=/path/to/glue"; exit 2; }
	HF_HUB_OFFLINE=1 $(BIN)/kdnlp finetune --model minilm-l6 --task sst2 --data-dir $(GLUE_DIR) \
	  --max-train-samples $(DEMO_TRAIN) --set training.num_train_epochs=1 --set max_length=64 \
	  --output-dir $(DEMO)/teacher --overwrite
	HF_HUB_OFFLINE=1 $(BIN)/kdnlp distill --recipe hinton --teacher $(DEMO)/teacher --task sst2 --data-dir $(GLUE_DIR) \
	  --max-train-samples $(DEMO_TRAIN) --set training.num_train_epochs=2 --set max_length=64 \
	  --output-dir $(DEMO)/student-hinton --overwrite
	HF_HUB_OFFLINE=1 $(BIN)/kdnlp eval $(DEMO)/teacher $(DEMO)/student-hinton --task sst2 --data-dir $(GLUE_DIR) \
	  --speed --json-out $(DEMO)/results.json

clean:
	rm -rf $(VENV) runs
