#!/usr/bin/env bash
# The SST-2 result of docs/results.md: teacher MiniLM-L6 fine-tuned on the full SST-2 train set, then
# 3-layer students initialised from its layers: (b) no teacher, (c) hinton, (d) distilbert, pkd-skip, and
# tinybert with the same budget of one epoch (half an epoch per stage); then eval.
# Usage: experiments/sst2.sh [GLUE_DIR] [OUT]     (about 4 h on 2 CPU cores)
set -euo pipefail
GLUE_DIR=${1:-../shared/data/glue}
OUT=${2:-runs/sst2}
export HF_HUB_OFFLINE=1
K=".venv/bin/kdnlp"
COMMON=(--task sst2 --data-dir "$GLUE_DIR" --set training.num_train_epochs=1 --set max_length=64
        --set training.logging_steps=100 --set training.save_strategy=no)
[ -d "$OUT/teacher" ] || $K finetune --model minilm-l6 "${COMMON[@]}" -o "$OUT/teacher"
[ -d "$OUT/tinybert" ] || $K distill --recipe tinybert --teacher "$OUT/teacher" "${COMMON[@]}" -o "$OUT/tinybert" \
  --set stages.intermediate.training.num_train_epochs=0.5 --set stages.prediction.training.num_train_epochs=0.5
for recipe in hinton distilbert baseline pkd-skip; do
  [ -d "$OUT/$recipe" ] || $K distill --recipe $recipe --teacher "$OUT/teacher" "${COMMON[@]}" -o "$OUT/$recipe"
done
$K eval "$OUT/teacher" "$OUT/baseline" "$OUT/hinton" "$OUT/distilbert" "$OUT/pkd-skip" "$OUT/tinybert" --task sst2 --data-dir "$GLUE_DIR" \
  --speed --json-out "$OUT/results.json"
