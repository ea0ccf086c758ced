#!/usr/bin/env bash
# Why the 3-layer two-stage recipes (`tinybert`, `minilm`, `fitnets`) end far below their twins on STS-B in the
# recipe check (experiments/recipe-check.sh: 200 + 200 steps against a twin of 400 steps on gold scores). Each runs
# again at the check's settings (STS-B, length 128, seed 1, bf16 unless PRECISION=fp32, teacher OUT/stsb/teacher)
# in two variants beside its twin:
#   short   the same 400 steps split 50 + 350: the first stage shortened, the head trained longer;
#   lr      200 + 200 with the second stage's learning rate 1e-4 (the recipes: 3e-5 tinybert/minilm, 5e-5 fitnets);
#           the twin takes the last stage's settings, so it trains at 1e-4 too.
# Then each recipe's second stage alone (`second-only`), as a reference for `short`.
# `kdnlp check` writes the table to OUT/stsb/two-stage/check.md; each run's stages/<name>/done.json holds the dev
# score after each stage.
# Run so far (docs/results.md): the defaults, 55 min on 2 cores (the references in a second call, after the rest).
# Usage: experiments/two-stage.sh [DATA_DIR] [OUT]     (defaults: ../shared/data runs/check)
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs/check}
export HF_HUB_OFFLINE=1
K=".venv/bin/kdnlp"
BF16=(); [ "${PRECISION:-bf16}" = bf16 ] && BF16=(--set training.bf16=true)
T="$OUT/stsb/teacher"
[ -d "$T" ] || $K finetune --model minilm-l6 --task stsb --data-dir "$DATA/glue" --set max_length=128 "${BF16[@]}" \
  --set training.save_strategy=no -o "$T"
C=(--teacher "$T" --task stsb --data-dir "$DATA/glue" --set max_length=128 "${BF16[@]}" --seeds 1 --control
   --set training.save_strategy=no --set training.logging_steps=25)
FOLDERS=()
# recipe, its first stage, its second stage
for item in tinybert:intermediate:prediction minilm:attention:prediction fitnets:hint:kd; do
  IFS=: read -r recipe first second <<< "$item"
  D="$OUT/stsb/two-stage/$recipe"
  $K distill --recipe $recipe "${C[@]}" --set stages.$first.training.max_steps=50 \
    --set stages.$second.training.max_steps=350 -o "$D-short"
  $K distill --recipe $recipe "${C[@]}" --set training.max_steps=200 \
    --set stages.$second.training.learning_rate=1e-4 -o "$D-lr"
  FOLDERS+=("$D-short" "$D-lr")
done
# references: the second stage alone from the copied layers (no first stage), 350 steps at the recipes' 3e-5, beside
# a twin of the same 350 steps: tinybert's prediction loss (MSE to the teacher's score) and minilm's (hinton + ce)
for item in "tinybert:{loss: tinybert_prediction, weight: 1.0}" \
            "minilm:{loss: hinton, weight: 0.5, temperature: 2.0}, {loss: ce, weight: 0.5}"; do
  IFS=: read -r recipe losses <<< "$item"
  $K distill --recipe $recipe "${C[@]}" --set "stages=[{name: prediction, losses: [$losses],
    training: {max_steps: 350, learning_rate: 3.0e-5}}]" -o "$OUT/stsb/two-stage/$recipe-second-only"
  FOLDERS+=("$OUT/stsb/two-stage/$recipe-second-only")
done
$K check "${FOLDERS[@]}" --threshold 5 > "$OUT/stsb/two-stage/check.md"
cat "$OUT/stsb/two-stage/check.md"
