#!/usr/bin/env bash
# Issue 13's 3-layer target on SST-2 with transfer-set distillation (Bucilă et al.; Hinton et al.): the `transfer`
# recipe's student learns the teacher's soft targets on in-domain unlabeled text, then Hinton + gold labels on the
# whole SST-2 train split, over SEEDS beside its no-teacher twin (which trains on SST-2 alone: it has no use for
# unlabeled text). The text is the 30,144 sentences that experiments/augment.sh makes from 4,000 SST-2 examples with
# TinyBERT's augmentation (its labels dropped), built here the same way if missing. Budget as experiments/headline.sh
# (1 epoch of SST-2 at length 64, bf16 autocast; PRECISION=fp32 for full precision) plus 1 epoch of the text (942
# steps); students start from the teacher's first layers, as there. Ends with `kdnlp report` beside headline.sh's
# `hinton` folder when it exists (fp32 scores, mean ± sd, paired difference ± SE, % of the teacher).
# Run so far (docs/results.md): experiments/transfer.sh ../shared/data runs 1,2,3, 1 h 11 min on 2 cores, with the
# teacher, masked LM and augmented text already made by experiments/augment.sh.
# Usage: experiments/transfer.sh [DATA_DIR] [OUT] [SEEDS]     (defaults: ../shared/data runs 1,2,3)
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs}
SEEDS=${3:-1,2,3}
PRECISION=${PRECISION:-bf16}
export HF_HUB_OFFLINE=1
K=".venv/bin/kdnlp"
D="$OUT/sst2"
COMMON=(--task sst2 --data-dir "$DATA/glue" --set max_length=64 --set training.logging_steps=100
        --set training.save_strategy=no)
[ "$PRECISION" = bf16 ] && COMMON+=(--set training.bf16=true)
[ -d "$D/teacher" ] || $K finetune --model minilm-l6 "${COMMON[@]}" --set training.num_train_epochs=1 -o "$D/teacher"
[ -d "$D/mlm" ] || $K train-mlm --teacher "$D/teacher" --task sst2 --data-dir "$DATA/glue" --max-length 64 \
  --max-steps 600 -o "$D/mlm"
[ -d "$D/sst2-4000-aug" ] || $K augment --task sst2 --model "$D/mlm" --data-dir "$DATA/glue" --max-samples 4000 \
  --n 8 -o "$D/sst2-4000-aug"
TEXT="$D/sst2-4000-aug/text.txt"
[ -f "$TEXT" ] || tail -n +2 "$D/sst2-4000-aug/SST-2/train.tsv" | cut -f1 > "$TEXT"
$K distill --recipe transfer --teacher "$D/teacher" "${COMMON[@]}" --text "$TEXT" --set student.strategy=first \
  --set stages.transfer.training.num_train_epochs=1 --set stages.distill.training.num_train_epochs=1 \
  --seeds "$SEEDS" --control -o "$D/seeds-transfer"
FOLDERS=("$D/seeds-transfer")
[ -f "$OUT/sst2-bf16/seeds-hinton/summary.json" ] && FOLDERS+=("$OUT/sst2-bf16/seeds-hinton")
$K report "${FOLDERS[@]}" --teacher "$D/teacher" --data-dir "$DATA/glue" -o "$D/report-transfer" --overwrite
