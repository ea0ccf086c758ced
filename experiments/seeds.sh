#!/usr/bin/env bash
# Issue 13's comparisons over seeds (not run by its author): each recipe runs once per seed beside its no-teacher
# twin (`--control`: the recipe's student, gold labels only, the epochs of its stages on the task summed; see
# docs/methods.md#comparisons-over-seeds), and `kdnlp report` prints mean ± sd and the paired difference ± SE.
#   SST-2 and STS-B, MiniLM-L6 teacher (experiments/sst2.sh's and stsb.sh's, made here if missing):
#   - the 3-layer students: hinton and pkd-skip from the teacher's first layers (the start that measured best);
#   - the narrow 4x312 student: tinybert-narrow (general distillation on the WMT en-de sample's English side);
#   - transfer-set distillation: Hinton soft targets on that same text, then hinton on the task;
#   - SST-2 augmented as TinyBERT does, with a masked LM made from the teacher (kdnlp train-mlm): tinybert on a
#     4,000-example subset with and without its augmentation, each beside its twin (the twin of the augmented run
#     trains on the augmented rows with their original labels).
# Budget: 1 epoch per stage on the task (tinybert: 1 + 1, so its twin trains 2 epochs), length 64 for SST-2.
# Usage: experiments/seeds.sh [DATA_DIR] [OUT] [SEEDS]
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs}
SEEDS=${3:-1,2,3}
export HF_HUB_OFFLINE=1
K=".venv/bin/kdnlp"
TEXT="$DATA/seq2seq/opennmt_wmt_en_de_sample/src-train.txt"
EPOCH=(--set training.num_train_epochs=1 --set training.save_strategy=no --set training.logging_steps=50)
TWO_STAGE=(--set stages.intermediate.training.num_train_epochs=1 --set stages.prediction.training.num_train_epochs=1)
NARROW_STAGES=(--set stages.general.training.num_train_epochs=1 "${TWO_STAGE[@]}")

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

# TinyBERT's augmentation on SST-2: a masked LM from the teacher, the same 4,000 examples with up to 8 new texts each.
D="$OUT/sst2"
[ -d "$D/mlm" ] || $K train-mlm --teacher "$D/teacher" --task sst2 --data-dir "$DATA/glue" --max-length 64 --epochs 1 -o "$D/mlm"
[ -d "$D/sst2-aug" ] || $K augment --task sst2 --model "$D/mlm" --data-dir "$DATA/glue" --max-samples 4000 --n 8 \
  -o "$D/sst2-aug"
# the same 4,000 examples alone (p = 0 replaces no word, so no new text is kept)
[ -d "$D/sst2-4k" ] || $K augment --task sst2 --model "$D/mlm" --data-dir "$DATA/glue" --max-samples 4000 --p 0 \
  -o "$D/sst2-4k"
python bench/augment_speed.py --model "$D/mlm" --task sst2 --data-dir "$DATA/glue" --samples 512 --n 8 \
  --json-out "$D/augment-speed.json"
A=(--teacher "$D/teacher" --task sst2 --set max_length=64 --seeds "$SEEDS" --control --set training.save_strategy=no
   "${TWO_STAGE[@]}")
[ -d "$D/seeds-tinybert-4k" ] || $K distill --recipe tinybert "${A[@]}" --data-dir "$D/sst2-4k" -o "$D/seeds-tinybert-4k"
[ -d "$D/seeds-tinybert-4k-aug" ] || $K distill --recipe tinybert "${A[@]}" --data-dir "$D/sst2-aug" \
  -o "$D/seeds-tinybert-4k-aug"
# the dev set is the same file in both folders: score both on the real one
$K report "$D"/seeds-tinybert-4k "$D"/seeds-tinybert-4k-aug --teacher "$D/teacher" --data-dir "$DATA/glue" \
  -o "$D/report-augment" --overwrite
