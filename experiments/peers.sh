#!/usr/bin/env bash
# Issue 12: kdnlp against TextBrewer 0.2.1 and the plain transformers.Trainer on the same teacher (MiniLM-L6
# fine-tuned on SST-2), 3-layer student, data, batch 32, length 64 (docs/benchmarks.md). Run on a quiet machine
# (nothing else running): each measurement interleaves its modes, each mode in its own process, over 3 rounds.
# Needs the `bench` extra: .venv/bin/pip install textbrewer==0.2.1 (it leaves torch and transformers as they are).
# About 4 h on 2 CPU cores (1: ~85 min, 2: ~65 min, 3: ~100 min; estimated from issue 4's rates, not timed).
# Usage: experiments/peers.sh [GLUE_DIR] [TEACHER] [OUT]
set -euo pipefail
GLUE=${1:-../shared/data/glue}
TEACHER=${2:-runs/sst2/teacher}
OUT=${3:-docs/bench}
export HF_HUB_OFFLINE=1 PYTHONPATH=$PWD
PY=.venv/bin/python
mkdir -p "$OUT"
# 1. one epoch of 8,000 examples, soft targets only at T=4: every mode
$PY bench/distill_speed.py --teacher "$TEACHER" --data-dir "$GLUE" --samples 8000 --soft-targets 4 --repeats 3 \
  --modes plain,plain-eager,teacher,teacher-inter,hinton,hinton-cache,pkd-skip,tinybert-1,textbrewer-kd,textbrewer-kd-cache,textbrewer-tinybert-1 \
  --json-out "$OUT/peers-sst2-8000.json" | tee "$OUT/peers-sst2-8000.txt"
# 2. the target's setting: 3 epochs of soft targets, kdnlp's cache built in the run, against TextBrewer
$PY bench/distill_speed.py --teacher "$TEACHER" --data-dir "$GLUE" --samples 8000 --epochs 3 --soft-targets 4 \
  --repeats 3 --modes plain,hinton-cache,textbrewer-kd,textbrewer-kd-cache \
  --json-out "$OUT/peers-sst2-8000-3ep.json" | tee "$OUT/peers-sst2-8000-3ep.txt"
# 3. time and memory against training-set size (2k, 8k, 32k at length 64) and length (64, 128, 256 at 2k)
$PY bench/scaling.py run --teacher "$TEACHER" --data-dir "$GLUE" --json-out "$OUT/scaling-sst2.json"
$PY bench/scaling.py plot "$OUT/scaling-sst2.json" --png "$OUT/scaling-sst2.png"
