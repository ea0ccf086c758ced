#!/usr/bin/env bash
# Issue 13's TinyBERT augmentation, run for real. Per task: a masked LM made from the teacher (kdnlp train-mlm: its
# backbone with an MLM head tied to its word embeddings, a few hundred steps of batch 32 on the task's own training
# text); a seeded subset of the training set with up to 8 new first-sentence texts per example (kdnlp augment, p 0.4,
# m 15); then tinybert over seeds on that subset with and without its augmentation, each beside its no-teacher twin
# (the twin of the augmented run trains on the augmented rows with their original labels). `kdnlp report` scores all
# on the real dev set. Budget: 1 + 1 epochs (intermediate + prediction; the twin 2 epochs), so the augmented runs
# take 7.5 (SST-2) to 8.5 (STS-B) times the steps of the plain ones, as TinyBERT's do.
# Teachers: OUT/<task>/teacher, shared with experiments/narrow.sh and fine-tuned here as it does if missing.
# Environment: TASKS, task:subset:masked-LM-steps triples (default "sst2:4000:600 stsb:1000:300"); PRECISION=fp32
# for full precision (default bf16 autocast, as experiments/headline.sh).
# Usage: experiments/augment.sh [DATA_DIR] [OUT] [SEEDS]
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs}
SEEDS=${3:-1,2,3}
TASKS=${TASKS:-"sst2:4000:600 stsb:1000:300"}
PRECISION=${PRECISION:-bf16}
export HF_HUB_OFFLINE=1
K=".venv/bin/kdnlp"
BF16=(); [ "$PRECISION" = bf16 ] && BF16=(--set training.bf16=true)

for item in $TASKS; do
  IFS=: read -r task size steps <<< "$item"
  D="$OUT/$task"
  LEN=(); TEACH=(); MLM_LEN=128
  [ $task = sst2 ] && LEN=(--set max_length=64) && TEACH=(--set training.num_train_epochs=1) && MLM_LEN=64
  [ -d "$D/teacher" ] || $K finetune --model minilm-l6 --task $task --data-dir "$DATA/glue" "${LEN[@]}" "${TEACH[@]}" \
    "${BF16[@]}" --set training.save_strategy=no --set training.logging_steps=50 -o "$D/teacher"
  [ -d "$D/mlm" ] || $K train-mlm --teacher "$D/teacher" --task $task --data-dir "$DATA/glue" --max-length $MLM_LEN \
    --max-steps $steps -o "$D/mlm"
  [ -d "$D/$task-$size-aug" ] || $K augment --task $task --model "$D/mlm" --data-dir "$DATA/glue" --max-samples $size \
    --n 8 -o "$D/$task-$size-aug"
  # the same examples alone (p = 0 replaces no word, so no new text is kept)
  [ -d "$D/$task-$size" ] || $K augment --task $task --model "$D/mlm" --data-dir "$DATA/glue" --max-samples $size \
    --p 0 -o "$D/$task-$size"
  A=(--recipe tinybert --teacher "$D/teacher" --task $task "${LEN[@]}" "${BF16[@]}" --seeds "$SEEDS" --control
     --set training.save_strategy=no --set stages.intermediate.training.num_train_epochs=1
     --set stages.prediction.training.num_train_epochs=1)
  $K distill "${A[@]}" --data-dir "$D/$task-$size" -o "$D/seeds-tinybert-$size"
  $K distill "${A[@]}" --data-dir "$D/$task-$size-aug" -o "$D/seeds-tinybert-$size-aug"
  # the dev set is the same file in both folders: score both on the real one
  $K report "$D/seeds-tinybert-$size" "$D/seeds-tinybert-$size-aug" --teacher "$D/teacher" --data-dir "$DATA/glue" \
    -o "$D/report-augment" --overwrite
done
