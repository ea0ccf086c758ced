#!/usr/bin/env bash
# The SST-2 result of docs/results.md: teacher MiniLM-L6 fine-tuned on the full SST-2 train set, then 3-layer
# students initialised from its layers 1, 4, 6: (b) no teacher, (c) hinton, (d) distilbert, tinybert; from its
# layers 1, 2, 3: pkd-skip and, from the same start, no teacher, hinton and tinybert. One epoch each (tinybert:
# half an epoch per stage). A narrow 4-layer student (hidden 312, 12 heads, FFN 1200, truncated teacher
# weights) without a teacher and with tinybert-narrow (general distillation on the English side of the WMT
# en-de sample, then half an epoch of task intermediate and half of prediction-layer distillation); then eval.
# The "first-layer" students share baseline's architecture; their accuracy is in their runs' metrics.json.
# Usage: experiments/sst2.sh [DATA_DIR] [OUT]     (about 7 h on 2 CPU cores)
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs/sst2}
export HF_HUB_OFFLINE=1
K=".venv/bin/kdnlp"
COMMON=(--task sst2 --data-dir "$DATA/glue" --set training.num_train_epochs=1 --set max_length=64
        --set training.logging_steps=100 --set training.save_strategy=no)
HALF=(--set stages.intermediate.training.num_train_epochs=0.5 --set stages.prediction.training.num_train_epochs=0.5)
NARROW=(--set student.layers=4 --set student.hidden_size=312 --set student.num_attention_heads=12
        --set student.intermediate_size=1200 --set student.init=truncate)
TEXT="$DATA/seq2seq/opennmt_wmt_en_de_sample"
# the recipes now start from layers 1, 2, 3 (`first`); these rows are the ones made from 1, 4, 6 (and the narrow 1, 3, 4, 6)
SPREAD=(--set student.strategy=spread)
[ -d "$OUT/teacher" ] || $K finetune --model minilm-l6 "${COMMON[@]}" -o "$OUT/teacher"
[ -d "$OUT/tinybert" ] || $K distill --recipe tinybert --teacher "$OUT/teacher" "${COMMON[@]}" "${HALF[@]}" "${SPREAD[@]}" -o "$OUT/tinybert"
for recipe in hinton distilbert baseline; do
  [ -d "$OUT/$recipe" ] || $K distill --recipe $recipe --teacher "$OUT/teacher" "${COMMON[@]}" "${SPREAD[@]}" -o "$OUT/$recipe"
done
[ -d "$OUT/pkd-skip" ] || $K distill --recipe pkd-skip --teacher "$OUT/teacher" "${COMMON[@]}" -o "$OUT/pkd-skip"
[ -d "$OUT/narrow-baseline" ] || $K distill --recipe baseline --teacher "$OUT/teacher" "${COMMON[@]}" "${NARROW[@]}" \
  "${SPREAD[@]}" -o "$OUT/narrow-baseline"
[ -d "$OUT/tinybert-narrow" ] || $K distill --recipe tinybert-narrow --teacher "$OUT/teacher" "${COMMON[@]}" "${HALF[@]}" \
  --text "$TEXT/src-train.txt" --text "$TEXT/src-val.txt" -o "$OUT/tinybert-narrow"
# control for pkd-skip, which starts from the teacher's first layers: the no-teacher student from the same layers
[ -d "$OUT/baseline-first" ] || $K distill --recipe baseline --teacher "$OUT/teacher" "${COMMON[@]}" \
  --set student.strategy=first -o "$OUT/baseline-first"
# hinton and tinybert from the same first layers as pkd-skip, so the four methods compare from one start
[ -d "$OUT/hinton-first" ] || $K distill --recipe hinton --teacher "$OUT/teacher" "${COMMON[@]}" \
  --set student.strategy=first -o "$OUT/hinton-first"
[ -d "$OUT/tinybert-first" ] || $K distill --recipe tinybert --teacher "$OUT/teacher" "${COMMON[@]}" "${HALF[@]}" \
  --set student.strategy=first -o "$OUT/tinybert-first"
$K eval "$OUT/teacher" "$OUT/baseline" "$OUT/hinton" "$OUT/distilbert" "$OUT/pkd-skip" "$OUT/tinybert" \
  "$OUT/narrow-baseline" "$OUT/tinybert-narrow" --task sst2 --data-dir "$DATA/glue" --speed --json-out "$OUT/results.json"
