#!/usr/bin/env bash
# The MT-DNN result of docs/results.md (issue 10): on SST-2 (a seeded 8,000-example subset of train), MRPC, RTE,
# CoLA (capped the same way: 8,000 of 8,551) and STS-B, per task an ensemble of 2 MiniLM-L6 teachers (finetune
# --seeds 1,2); then (a) per task a single-task student distilled from its ensemble and (b) one multi-task student
# distilled from all five ensembles; all students have 3 layers taken from the first teacher of their (first)
# task, recipe mtdnn (0.5 hinton at T=1 on the mean of the teachers' probabilities + 0.5 gold, proportional task
# sampling). Each run's metrics.json holds the student's, the ensemble's (ensemble/...) and each teacher's
# (teacher1/..., teacher2/...) dev metrics per task, and their averages; `kdnlp glue` tabulates the students.
# Usage: experiments/mtdnn.sh [DATA_DIR] [OUT]
# Budget from the environment: SAMPLES (train examples per task, default 8000), TEACHER_EPOCHS (default 3, as
# recipes/finetune.yaml), EPOCHS (the students', default 3, as recipes/mtdnn.yaml); length 128 throughout.
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs/mtdnn}
SAMPLES=${SAMPLES:-8000}
export HF_HUB_OFFLINE=1
K=".venv/bin/kdnlp"
TASKS=(sst2 mrpc rte cola stsb)
COMMON=(--data-dir "$DATA/glue" --max-train-samples "$SAMPLES" --set training.logging_steps=50 --set training.save_strategy=no)
TEACHERS=()
for t in "${TASKS[@]}"; do
  [ -d "$OUT/teachers/$t/seed-1" ] && [ -d "$OUT/teachers/$t/seed-2" ] || \
    $K finetune --model minilm-l6 --task "$t" --seeds 1,2 "${COMMON[@]}" \
      --set training.num_train_epochs="${TEACHER_EPOCHS:-3}" -o "$OUT/teachers/$t" --overwrite
  TEACHERS+=(--teachers "$t=$OUT/teachers/$t/seed-1,$OUT/teachers/$t/seed-2")
done
# (a) single-task students, one per ensemble
for i in "${!TASKS[@]}"; do
  t=${TASKS[$i]}
  [ -d "$OUT/single/$t" ] || $K distill --recipe mtdnn --tasks "$t" "${TEACHERS[@]:$((2 * i)):2}" "${COMMON[@]}" \
    --set training.num_train_epochs="${EPOCHS:-3}" -o "$OUT/single/$t"
done
# (b) one multi-task student from all five ensembles
[ -d "$OUT/multi" ] || $K distill --recipe mtdnn --tasks "$(IFS=,; echo "${TASKS[*]}")" "${TEACHERS[@]}" "${COMMON[@]}" \
  --set training.num_train_epochs="${EPOCHS:-3}" -o "$OUT/multi"
for t in "${TASKS[@]}"; do
  $K glue --model "$OUT/single/$t" --tasks "$t" --data-dir "$DATA/glue" -o "$OUT/glue/single-$t" --overwrite
done
$K glue --model "$OUT/multi" --tasks "$(IFS=,; echo "${TASKS[*]}")" --data-dir "$DATA/glue" -o "$OUT/glue/multi" --overwrite
