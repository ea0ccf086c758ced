#!/usr/bin/env bash
# Issue 14's MiniLM and teacher-assistant runs on SST-2, beside experiments/sst2.sh's rows (same teacher, same
# budget): a 3-layer student from the teacher's layers 0, 3, 5 with `minilm` (half an epoch per stage, as tinybert
# there) and with MiniLMv2's relations; a 2-layer student directly from the 6-layer teacher (`hinton`,
# student.layers=2) and through a 4-layer assistant (`ta-chain`: one epoch per link, so the chain's 2-layer student
# trains as long as the direct one), each with seeds 42 and 43; then eval.
# Usage: experiments/minilm-ta.sh [DATA_DIR] [OUT]    (OUT/teacher: experiments/sst2.sh's teacher, made if absent)
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs/sst2}
export HF_HUB_OFFLINE=1
K=".venv/bin/kdnlp"
COMMON=(--task sst2 --data-dir "$DATA/glue" --set training.num_train_epochs=1 --set max_length=64
        --set training.logging_steps=100 --set training.save_strategy=no)
HALF=(--set stages.attention.training.num_train_epochs=0.5 --set stages.prediction.training.num_train_epochs=0.5)
[ -d "$OUT/teacher" ] || $K finetune --model minilm-l6 "${COMMON[@]}" -o "$OUT/teacher"
[ -d "$OUT/minilm" ] || $K distill --recipe minilm --teacher "$OUT/teacher" "${COMMON[@]}" "${HALF[@]}" -o "$OUT/minilm"
[ -d "$OUT/minilm-v2" ] || $K distill --recipe minilm --teacher "$OUT/teacher" "${COMMON[@]}" "${HALF[@]}" \
  --set stages.attention.losses.minilm.version=v2 -o "$OUT/minilm-v2"
for seed in 42 43; do
  [ -d "$OUT/hinton-l2-s$seed" ] || $K distill --recipe hinton --teacher "$OUT/teacher" "${COMMON[@]}" \
    --set student.layers=2 --set training.seed=$seed -o "$OUT/hinton-l2-s$seed"
  [ -d "$OUT/ta-chain-s$seed" ] || $K distill --recipe ta-chain --teacher "$OUT/teacher" "${COMMON[@]}" \
    --set training.seed=$seed -o "$OUT/ta-chain-s$seed"
done
$K eval "$OUT/teacher" "$OUT/minilm" "$OUT/minilm-v2" "$OUT"/hinton-l2-s* "$OUT"/ta-chain-s* "$OUT"/ta-chain-s42/stages/assistant/model \
  --task sst2 --data-dir "$DATA/glue" --speed --json-out "$OUT/results-minilm-ta.json"
