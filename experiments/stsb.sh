#!/usr/bin/env bash
# The STS-B result of docs/results.md (issue 3): teacher MiniLM-L6 fine-tuned on STS-B; 3-layer students from
# its layers (no teacher, hinton, pkd-skip, tinybert); a narrow 4-layer student (hidden 312, 12 heads, FFN 1200,
# truncated teacher weights) without a teacher and with tinybert-narrow (general distillation on the English
# side of the WMT en-de sample, then task intermediate and prediction-layer distillation); then eval.
# Usage: experiments/stsb.sh [DATA_DIR] [OUT]
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs/stsb}
export HF_HUB_OFFLINE=1
K=".venv/bin/kdnlp"
COMMON=(--task stsb --data-dir "$DATA/glue" --set training.logging_steps=50 --set training.save_strategy=no)
NARROW=(--set student.layers=4 --set student.hidden_size=312 --set student.num_attention_heads=12
        --set student.intermediate_size=1200 --set student.init=truncate)
TEXT="$DATA/seq2seq/opennmt_wmt_en_de_sample"
# the recipes now start from layers 1, 2, 3 (`first`); these rows are the ones made from 1, 4, 6 (and the narrow 1, 3, 4, 6)
SPREAD=(--set student.strategy=spread)
[ -d "$OUT/teacher" ] || $K finetune --model minilm-l6 "${COMMON[@]}" -o "$OUT/teacher"
for recipe in baseline hinton; do
  [ -d "$OUT/$recipe" ] || $K distill --recipe $recipe --teacher "$OUT/teacher" "${COMMON[@]}" "${SPREAD[@]}" -o "$OUT/$recipe"
done
[ -d "$OUT/pkd-skip" ] || $K distill --recipe pkd-skip --teacher "$OUT/teacher" "${COMMON[@]}" -o "$OUT/pkd-skip"
# control for pkd-skip, which starts from the teacher's first layers: the no-teacher student from the same layers
[ -d "$OUT/baseline-first" ] || $K distill --recipe baseline --teacher "$OUT/teacher" "${COMMON[@]}" \
  --set student.strategy=first -o "$OUT/baseline-first"
[ -d "$OUT/tinybert" ] || $K distill --recipe tinybert --teacher "$OUT/teacher" "${COMMON[@]}" "${SPREAD[@]}" -o "$OUT/tinybert" \
  --set stages.intermediate.training.num_train_epochs=2 --set stages.prediction.training.num_train_epochs=2
[ -d "$OUT/narrow-baseline" ] || $K distill --recipe baseline --teacher "$OUT/teacher" "${COMMON[@]}" "${NARROW[@]}" \
  "${SPREAD[@]}" -o "$OUT/narrow-baseline"
[ -d "$OUT/tinybert-narrow" ] || $K distill --recipe tinybert-narrow --teacher "$OUT/teacher" "${COMMON[@]}" \
  --text "$TEXT/src-train.txt" --text "$TEXT/src-val.txt" --set stages.general.training.num_train_epochs=1 \
  --set stages.intermediate.training.num_train_epochs=2 --set stages.prediction.training.num_train_epochs=2 \
  -o "$OUT/tinybert-narrow"
# stage 2 again, from tinybert-narrow's stage-1 student, at lr 1e-4 for 3 epochs; and its no-teacher twin at that lr
[ -d "$OUT/tinybert-narrow-pred" ] || $K distill --recipe hinton --student "$OUT/tinybert-narrow/stages/intermediate/model" \
  --teacher "$OUT/teacher" "${COMMON[@]}" --set 'losses=[{loss: tinybert_prediction}]' --set training.learning_rate=1e-4 \
  -o "$OUT/tinybert-narrow-pred"
[ -d "$OUT/narrow-baseline-lr1e-4" ] || $K distill --recipe baseline --teacher "$OUT/teacher" "${COMMON[@]}" "${NARROW[@]}" \
  "${SPREAD[@]}" --set training.learning_rate=1e-4 -o "$OUT/narrow-baseline-lr1e-4"
$K eval "$OUT/teacher" "$OUT/baseline" "$OUT/hinton" "$OUT/pkd-skip" "$OUT/tinybert" "$OUT/narrow-baseline" \
  "$OUT/tinybert-narrow" "$OUT/tinybert-narrow-pred" "$OUT/narrow-baseline-lr1e-4" --task stsb --data-dir "$DATA/glue" --speed --json-out "$OUT/results.json"
