#!/usr/bin/env bash
# Issue 13's comparisons over seeds (not run by its author): each recipe runs once per seed beside its no-teacher
# twin (`--control`: the recipe's student, gold labels only, the epochs of its stages on the task summed; see
# docs/methods.md#comparisons-over-seeds), and `kdnlp report` prints mean ± sd and the paired difference ± SE.
#   SST-2 and STS-B, MiniLM-L6 teacher (experiments/sst2.sh's and stsb.sh's, made here if missing):
#   - the 3-layer students: hinton and pkd-skip from the teacher's first layers (the start that measured best);
#   - the narrow 4x312 student: tinybert-narrow (general distillation on the WMT en-de sample's English side);
#   - transfer-set distillation: Hinton soft targets on that same text, then hinton on the task.
# TinyBERT's augmentation over seeds: experiments/augment.sh.
# Budget: 1 epoch per stage on the task (tinybert-narrow: 1 + 1 on the task, so its twin trains 2 epochs), length 64
# for SST-2.
# Usage: experiments/seeds.sh [DATA_DIR] [OUT] [SEEDS]
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs}
SEEDS=${3:-1,2,3}
export HF_HUB_OFFLINE=1
K=".venv/bin/kdnlp"
TEXT="$DATA/seq2seq/opennmt_wmt_en_de_sample/src-train.txt"
EPOCH=(--set training.num_train_epochs=1 --set training.save_strategy=no --set training.logging_steps=50)
NARROW_STAGES=(--set stages.general.training.num_train_epochs=1 --set stages.intermediate.training.num_train_epochs=1
  --set stages.prediction.training.num_train_epochs=1)

for task in sst2 stsb; do
  D="$OUT/$task"
  LEN=(); [ $task = sst2 ] && LEN=(--set max_length=64)
  C=(--task $task --data-dir "$DATA/glue" "${LEN[@]}" --seeds "$SEEDS" --control)
  [ -d "$D/teacher" ] || $K finetune --model minilm-l6 --task $task --data-dir "$DATA/glue" "${LEN[@]}" \
    --set training.num_train_epochs=1 --set training.save_strategy=no -o "$D/teacher"
  T=(--teacher "$D/teacher")
  [ -d "$D/seeds-hinton-first" ] || $K distill --recipe hinton "${T[@]}" "${C[@]}" "${EPOCH[@]}" \
    --set student.strategy=first -o "$D/seeds-hinton-first"
  [ -d "$D/seeds-pkd-skip" ] || $K distill --recipe pkd-skip "${T[@]}" "${C[@]}" "${EPOCH[@]}" -o "$D/seeds-pkd-skip"
  [ -d "$D/seeds-tinybert-narrow" ] || $K distill --recipe tinybert-narrow "${T[@]}" "${C[@]}" --text "$TEXT" \
    --set training.save_strategy=no "${NARROW_STAGES[@]}" -o "$D/seeds-tinybert-narrow"
  [ -d "$D/seeds-transfer" ] || $K distill --recipe transfer "${T[@]}" "${C[@]}" --text "$TEXT" \
    --set training.save_strategy=no --set stages.transfer.training.num_train_epochs=1 \
    --set stages.distill.training.num_train_epochs=1 -o "$D/seeds-transfer"
  $K report "$D"/seeds-hinton-first "$D"/seeds-pkd-skip "$D"/seeds-tinybert-narrow "$D"/seeds-transfer \
    --teacher "$D/teacher" --data-dir "$DATA/glue" -o "$D/report-seeds" --overwrite
done

