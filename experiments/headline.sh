#!/usr/bin/env bash
# Issue 13's headline comparison on SST-2, sized for one 3-hour session on 2 CPU cores: MiniLM-L6 fine-tuned on the
# whole train split (1 epoch, length 64), then 3-layer students from its layers 1, 2, 3 (`first`), one epoch each,
# over SEEDS beside their no-teacher twins (`--control`), and `kdnlp report` (mean ± sd, paired difference ± SE,
# % of the teacher). Everything in bf16 autocast (PRECISION=fp32 for full precision): on this CPU it trains about
# 1.5x faster at the same accuracy (docs/benchmarks.md, hinton-cache-bf16). The teacher's logits are cached once and
# shared by the seeds. RECIPES (environment) lists the distilled recipes, run in that order; a rerun skips what
# finished and goes on with a seeds folder that stopped part-way. EPOCHS (default 1) trains the students (and their
# twins) longer, into seeds-<recipe>-<EPOCHS>ep, and the report (report-<EPOCHS>ep) sets each beside its one-epoch
# folder where that has run; the teacher keeps its one epoch.
# Usage: experiments/headline.sh [DATA_DIR] [OUT] [SEEDS]     (defaults: ../shared/data runs/sst2-bf16 1,2,3)
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs/sst2-bf16}
SEEDS=${3:-1,2,3}
RECIPES=${RECIPES:-"hinton pkd-skip"}
PRECISION=${PRECISION:-bf16}
EPOCHS=${EPOCHS:-1}
SUFFIX=""
[ "$EPOCHS" = 1 ] || SUFFIX="-${EPOCHS}ep"
export HF_HUB_OFFLINE=1
K=".venv/bin/kdnlp"
COMMON=(--task sst2 --data-dir "$DATA/glue" --set training.num_train_epochs=1 --set max_length=64
        --set training.logging_steps=100 --set training.save_strategy=no)
[ "$PRECISION" = bf16 ] && COMMON+=(--set training.bf16=true)
[ -d "$OUT/teacher" ] || $K finetune --model minilm-l6 "${COMMON[@]}" -o "$OUT/teacher"
FOLDERS=()
for recipe in $RECIPES; do
  $K distill --recipe "$recipe" --teacher "$OUT/teacher" "${COMMON[@]}" --set student.strategy=first \
    --set training.num_train_epochs="$EPOCHS" --seeds "$SEEDS" --control -o "$OUT/seeds-$recipe$SUFFIX"
  [ -n "$SUFFIX" ] && [ -d "$OUT/seeds-$recipe" ] && FOLDERS+=("$OUT/seeds-$recipe")
  FOLDERS+=("$OUT/seeds-$recipe$SUFFIX")
  $K report "${FOLDERS[@]}" --teacher "$OUT/teacher" --data-dir "$DATA/glue" -o "$OUT/report$SUFFIX" --overwrite
done
