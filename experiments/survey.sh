#!/usr/bin/env bash
# Issue 14's result: each survey method against baseline, hinton and pkd-skip at one budget, from the same
# student start (3 layers copied from the teacher's layers 1, 2, 3), then the 2-layer student directly from the
# teacher and through a 4-layer assistant. Budget, one epoch at batch 32 for every student:
# - sst2: a seeded random subset of SAMPLES (default 4,000) train sentences, drawn per seed (every method sees
#   the same subset within a seed), length 64 (125 steps); OUT/teacher, if absent, is fine-tuned here on the
#   subset drawn with the default seed (3 epochs, as recipes/finetune.yaml);
# - stsb: the whole train split (5,749 pairs), or with SAMPLES a seeded subset per seed, length 128; OUT/teacher,
#   if absent, is fine-tuned here on the whole split (3 epochs);
# - mrpc: as stsb (3,668 pairs). At this budget even `baseline` and `hinton` end at the majority class on MRPC
#   (68.38 accuracy, 81.22 F1): it takes longer than one epoch there to leave it, so use stsb as the second task.
# Learning rate 1e-4 for every student and stage (at the recipes' 5e-5 the no-teacher baseline was still near
# chance after 125 steps). Two-stage recipes (fitnets, minilm) get half an epoch per stage. On sst2 only, the
# 2-layer rows: hinton directly from the teacher, and the chain, one epoch per link (its 2-layer student trains as
# long as the direct one), and `sp` at ten times its weight. Dev metrics on the full dev set, in each run's
# metrics.json.
# Usage: [SAMPLES=N] experiments/survey.sh [DATA_DIR] [OUT] [SEEDS] [TASK]   (OUT defaults to runs/survey-TASK; for
# sst2 keep it apart from experiments/sst2.sh's runs/sst2, whose teacher is trained on the whole split and is the
# one the other scripts and docs/benchmarks.md read; for stsb, stsb.sh's runs/stsb/teacher is the same teacher)
# (sst2: about 45 min per seed on one of 2 CPU cores beside another job; stsb: about 100 min per seed with three
# jobs on the 2 cores, one thread each)
set -euo pipefail
DATA=${1:-../shared/data}
TASK=${4:-sst2}
OUT=${2:-runs/survey-$TASK}
SEEDS=${3:-"42 43"}
export HF_HUB_OFFLINE=1
K=".venv/bin/kdnlp"
case $TASK in
  sst2) SIZE=(--set max_length=64); SAMPLES=${SAMPLES:-4000}; TEACH=(--max-train-samples "$SAMPLES") ;;
  mrpc|stsb) SIZE=(--set max_length=128); TEACH=() ;;
  *) echo "survey.sh: TASK must be sst2, stsb or mrpc, got '$TASK'" >&2; exit 2 ;;
esac
C=(--task "$TASK" --data-dir "$DATA/glue" "${SIZE[@]}" --set training.num_train_epochs=1 --set training.learning_rate=1e-4
   --set training.logging_steps=25 --set training.save_strategy=no --set student.strategy=first)
[ -d "$OUT/teacher" ] || $K finetune --model minilm-l6 --task "$TASK" --data-dir "$DATA/glue" "${SIZE[@]}" "${TEACH[@]}" \
  --set training.save_strategy=no -o "$OUT/teacher"
for seed in $SEEDS; do
  D="$OUT/survey-s$seed"
  S=(--teacher "$OUT/teacher" "${C[@]}" ${SAMPLES:+--max-train-samples "$SAMPLES"} --set training.seed=$seed)
  for recipe in baseline hinton pkd-skip rkd sp crd vid; do
    [ -d "$D/$recipe" ] || $K distill --recipe $recipe "${S[@]}" -o "$D/$recipe"
  done
  [ -d "$D/fitnets" ] || $K distill --recipe fitnets "${S[@]}" --set stages.hint.training.num_train_epochs=0.5 \
    --set stages.kd.training.num_train_epochs=0.5 -o "$D/fitnets"
  for v in v1 v2; do
    [ -d "$D/minilm-$v" ] || $K distill --recipe minilm "${S[@]}" --set stages.attention.training.num_train_epochs=0.5 \
      --set stages.prediction.training.num_train_epochs=0.5 --set stages.attention.losses.minilm.version=$v \
      --set stages.attention.training.learning_rate=1e-4 --set stages.prediction.training.learning_rate=1e-4 -o "$D/minilm-$v"
  done
  [ "$TASK" = sst2 ] || continue
  # sensitivity: sp at 40, the weight calibrated at the start, ten times the recipe's (its students end at the majority class)
  [ -d "$D/sp-w40" ] || $K distill --recipe sp "${S[@]}" --set losses.sp.weight=40 -o "$D/sp-w40"
  [ -d "$D/hinton-l2" ] || $K distill --recipe hinton "${S[@]}" --set student.layers=2 --set student.strategy=spread -o "$D/hinton-l2"
  [ -d "$D/ta-chain" ] || $K distill --recipe ta-chain "${S[@]}" --set student.strategy=spread -o "$D/ta-chain"
done
