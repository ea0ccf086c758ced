#!/usr/bin/env bash
# How strongly each loss term pushes the student at its start: for each term alone at weight 1, the gradient norm
# (the Trainer's `grad_norm`, before clipping, the term's own learnable parts included) on the first 8 batches of
# 32, at a learning rate too small to move the weights, averaged. The survey recipes (rkd, sp, crd, vid) weight
# their term so that it pushes about as hard as the task loss 0.5 ce + 0.5 hinton(T=2) does (docs/results.md).
# Usage: experiments/calibrate.sh [DATA_DIR] [TEACHER] [TASK] [OUT]
set -euo pipefail
DATA=${1:-../shared/data}
TEACHER=${2:-runs/sst2/teacher}
TASK=${3:-sst2}
OUT=${4:-runs/calibrate}
export HF_HUB_OFFLINE=1
K=".venv/bin/kdnlp"
mkdir -p "$OUT"
TERMS=(
  "ce:{loss: ce}"
  "hinton:{loss: hinton, temperature: 2.0}"
  "rkd-distance:{loss: rkd, pooling: cls, distance_weight: 1.0, angle_weight: 0.0}"
  "rkd-angle:{loss: rkd, pooling: cls, distance_weight: 0.0, angle_weight: 1.0}"
  "sp:{loss: sp, layers: uniform, pooling: mean}"
  "crd:{loss: crd, feature_dim: 128, temperature: 0.07}"
  "vid:{loss: vid, layers: uniform, init_variance: 5.0}"
)
for t in "${TERMS[@]}"; do
  name=${t%%:*}
  cat > "$OUT/$name.yaml" <<EOF
name: calibrate-$name
description: One term at weight 1, weights held still, to read its gradient norm.
student: {layers: 3, strategy: first}
max_length: 64
training: {max_steps: 8, learning_rate: 1.0e-12, per_device_train_batch_size: 32, logging_steps: 1}
losses:
  - ${t#*:}
EOF
  $K distill --recipe "$OUT/$name.yaml" --teacher "$TEACHER" --task "$TASK" --data-dir "$DATA/glue" \
    --max-train-samples 256 --max-eval-samples 32 --set training.save_strategy=no --set training.eval_strategy=no \
    -o "$OUT/$name" --overwrite > "$OUT/$name.log" 2>&1
  grep -o "'grad_norm': '[0-9.e+-]*'" "$OUT/$name.log" | tr -d "'" |
    awk -v n="$name" '{s += $2; k++} END {printf "%-13s mean grad norm %.4g over %d batches\n", n, s / k, k}'
done
