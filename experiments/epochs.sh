#!/usr/bin/env bash
# Issue 13's next lever on SST-2: the headline comparison (experiments/headline.sh) with more epochs. `hinton` and its
# no-teacher twin train EPOCHS epochs over the whole train split from the same 3-layer start (`first`), bf16, over
# SEEDS, and `kdnlp report` sets them beside headline.sh's one-epoch folder. Needs headline.sh's teacher (made if
# missing, as there). A rerun skips finished seeds.
# Usage: experiments/epochs.sh [DATA_DIR] [OUT] [SEEDS] [EPOCHS]     (defaults: ../shared/data runs/sst2-bf16 1 3)
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs/sst2-bf16}
SEEDS=${3:-1}
EPOCHS=${4:-3}
export HF_HUB_OFFLINE=1
K=".venv/bin/kdnlp"
COMMON=(--task sst2 --data-dir "$DATA/glue" --set max_length=64 --set training.logging_steps=100
        --set training.save_strategy=no --set training.bf16=true)
[ -d "$OUT/teacher" ] || $K finetune --model minilm-l6 "${COMMON[@]}" --set training.num_train_epochs=1 -o "$OUT/teacher"
$K distill --recipe hinton --teacher "$OUT/teacher" "${COMMON[@]}" --set training.num_train_epochs="$EPOCHS" \
  --set student.strategy=first --seeds "$SEEDS" --control -o "$OUT/seeds-hinton-${EPOCHS}ep"
FOLDERS=("$OUT/seeds-hinton-${EPOCHS}ep")
[ -d "$OUT/seeds-hinton" ] && FOLDERS=("$OUT/seeds-hinton" "${FOLDERS[@]}")
$K report "${FOLDERS[@]}" --teacher "$OUT/teacher" --data-dir "$DATA/glue" -o "$OUT/report-epochs" --overwrite
