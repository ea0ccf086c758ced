#!/usr/bin/env bash
# Issue 13, part 5: every shipped GLUE distillation recipe at a small budget on each TASK,
# beside its no-teacher twin (`distill --seeds --control`: the recipe's student, gold labels only, the steps of its
# stages on the task summed), then `kdnlp check` flags any student at or below the dev set's majority-class score
# or more than THRESHOLD points below its control. The table goes to OUT/recipe-check.md (for docs/results.md).
# Budget: every stage STEPS optimizer steps at batch 32 (`training.max_steps`, so a two-stage recipe's twin trains
# 2 x STEPS), the recipes' own learning rates; SST-2 on a seeded 8,000-example subset at length 64, other tasks on
# their whole train split at length 128; full dev sets. Stages on unlabeled text read the WMT en-de sample's
# English side. Teachers: OUT/<task>/teacher (experiments/sst2.sh's layout), fine-tuned here if absent.
# Not checked, and why:
#   baseline            it is the control itself (its twin would be the same run);
#   finetune            no teacher: it is how teachers are trained;
#   seqkd, seqkd-word, seqkd-inter, seq2seq-baseline   seq2seq recipes (translation/summarization), not GLUE
#                       classification (experiments/multi30k.sh);
#   data-free, data-free-dafl, data-free-nodiv   never read the train split: a twin trained on it is not their
#                       comparison, and a generator needs thousands of steps (experiments/data-free.sh);
#   mtdnn               one student for several tasks from per-task teacher ensembles (--tasks/--teachers), no
#                       single-task twin (experiments/mtdnn.sh).
# ta-chain runs without --control (its student starts from the assistant, so no twin starts where it does): it is
# checked against the majority class only.
# Run so far (docs/results.md): PRECISION=bf16 experiments/recipe-check.sh ../shared/data runs/check sst2 200 1 5
#   (1 h 6 min on 2 cores), then the same with TASKS "sst2 stsb", which reuses the SST-2 runs and adds STS-B (its
#   teacher, runs/check/stsb/teacher, linked to experiments/narrow.sh's: the same command), 1 h 38 min over two
#   sessions. A rerun goes on where the last one stopped: each recipe's seeds folder skips the seeds that finished.
# Usage: experiments/recipe-check.sh [DATA_DIR] [OUT] [TASKS] [STEPS] [SEEDS] [THRESHOLD]
#   defaults: ../shared/data runs "sst2 mrpc" 300 1 5; RECIPES="hinton tinybert" (environment) checks only those;
#   PRECISION=bf16 (environment) trains everything under bf16 autocast (about 1.5x faster on a recent CPU).
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs}
TASKS=${3:-"sst2 mrpc"}
STEPS=${4:-300}
SEEDS=${5:-1}
THRESHOLD=${6:-5}
export HF_HUB_OFFLINE=1
K=${KDNLP:-.venv/bin/kdnlp}
BF16=(); [ "${PRECISION:-fp32}" = bf16 ] && BF16=(--set training.bf16=true)
TEXT="$DATA/seq2seq/opennmt_wmt_en_de_sample/src-train.txt"
SKIP=" baseline finetune seqkd seqkd-word seqkd-inter seq2seq-baseline data-free data-free-dafl data-free-nodiv mtdnn "
FOLDERS=()
for task in $TASKS; do
  case $task in
    sst2) SIZE=(--max-train-samples 8000 --set max_length=64) ;;
    *) SIZE=(--set max_length=128) ;;
  esac
  [ -d "$OUT/$task/teacher" ] || $K finetune --model minilm-l6 --task "$task" --data-dir "$DATA/glue" "${SIZE[@]}" \
    "${BF16[@]}" --set training.save_strategy=no -o "$OUT/$task/teacher"
  C=(--teacher "$OUT/$task/teacher" --task "$task" --data-dir "$DATA/glue" "${SIZE[@]}" "${BF16[@]}" --seeds "$SEEDS"
     --set training.max_steps="$STEPS" --set training.save_strategy=no --set training.logging_steps=25)
  for file in recipes/*.yaml; do
    recipe=$(basename "$file" .yaml)
    [[ $SKIP == *" $recipe "* ]] && continue
    [ -z "${RECIPES:-}" ] || [[ " $RECIPES " == *" $recipe "* ]] || continue
    EXTRA=()
    grep -q "data: text" "$file" && EXTRA+=(--text "$TEXT")
    [ "$recipe" = ta-chain ] || EXTRA+=(--control)
    D="$OUT/$task/check-$STEPS/$recipe"
    $K distill --recipe "$recipe" "${C[@]}" "${EXTRA[@]}" -o "$D"   # a rerun skips the seeds that finished
    FOLDERS+=("$D")
  done
done
$K check "${FOLDERS[@]}" --threshold "$THRESHOLD" | tee "$OUT/recipe-check.md"
