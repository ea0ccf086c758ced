#!/usr/bin/env bash
# The data-free result (issue 15): on SST-2 and MRPC, a MiniLM-L6 teacher fine-tuned on the task, and students of
# 3 teacher layers (spread) and narrow ones (4 layers, hidden 312, 12 heads, FFN 1200, truncated teacher weights).
# Rows per task and student: the student as built (no training), data-free with RDSKD's generator loss
# (data-free), with DAFL's fixed weights (data-free-dafl), RDSKD without the diversity term (data-free-nodiv), and
# the same student loss, hinton at T = 20 alone, on the real train split for the same number of steps (hinton-real).
# The data-free runs get a GLUE folder holding only the dev split, so they cannot read train.tsv.
# SST-2's teacher is runs/sst2/teacher (experiments/sst2.sh); MRPC's is fine-tuned here (3 epochs).
# Usage: experiments/data-free.sh [DATA_DIR] [OUT]   with TASKS ("sst2 mrpc"), SHAPES ("layers3 narrow"),
# RECIPES ("data-free data-free-dafl data-free-nodiv"), SST2_TEACHER and MRPC_TEACHER (runs/sst2/teacher,
# runs/mrpc/teacher), STEPS (600), VOCAB (10000: generator.vocab_size, the generator writes the first 10000 usable
# tokens by id, 87% of SST-2's dev tokens; 0 for all 29523) and SEQ (32: generator.seq_length). The recipes'
# generator is Gumbel-softmax (generator.gumbel); docs/results.md also has the plain-softmax generator's rows.
# Cost: a data-free step at batch 32 on MiniLM-L6 with a 3-layer student takes 1.6 s of CPU time on one thread at
# VOCAB=10000, SEQ=32 (2.9 s at VOCAB=0; 3.4 s before the generator's waste was removed), median of 5 steps on the
# real SST-2 teacher with bench/datafree_step.py, so 600 steps are about 16 min of CPU a data-free run plus the dev
# evaluation: 18-33 min each as measured with two jobs on the 2 cores (12 such runs).
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs/data-free}
STEPS=${STEPS:-600}
VOCAB=${VOCAB:-10000}
SEQ=${SEQ:-32}
TASKS=${TASKS:-"sst2 mrpc"}
SHAPES=${SHAPES:-"layers3 narrow"}
RECIPES=${RECIPES:-"data-free data-free-dafl data-free-nodiv"}
SST2_TEACHER=${SST2_TEACHER:-runs/sst2/teacher}
MRPC_TEACHER=${MRPC_TEACHER:-runs/mrpc/teacher}
export HF_HUB_OFFLINE=1
K=".venv/bin/kdnlp"
NARROW=(--set student.layers=4 --set student.hidden_size=312 --set student.num_attention_heads=12
        --set student.intermediate_size=1200 --set student.init=truncate)
RUN=(--set training.max_steps=$STEPS --set training.save_strategy=no --set training.eval_strategy=no
     --set training.logging_steps=50)
GEN=(--set stages.distill.generator.vocab_size=$VOCAB --set stages.distill.generator.seq_length=$SEQ)
[[ " $TASKS " != *" mrpc "* ]] || [ -d "$MRPC_TEACHER" ] || $K finetune --model minilm-l6 --task mrpc \
  --data-dir "$DATA/glue" --set training.num_train_epochs=3 --set training.save_strategy=no -o "$MRPC_TEACHER"
for task in $TASKS; do
  case $task in sst2) teacher=$SST2_TEACHER;; mrpc) teacher=$MRPC_TEACHER;;
    *) echo "data-free.sh: TASKS takes sst2 and mrpc, got '$task'" >&2; exit 2;; esac
  folder=$(case $task in sst2) echo SST-2;; mrpc) echo MRPC;; esac)
  dev="$OUT/$task/glue-dev-only"   # a GLUE folder without the train split: data-free runs never need it
  mkdir -p "$dev/$folder" && ln -sf "$(realpath "$DATA/glue/$folder/dev.tsv")" "$dev/$folder/dev.tsv"
  for shape in $SHAPES; do
    extra=(); [ $shape = narrow ] && extra=("${NARROW[@]}")
    o="$OUT/$task/$shape"
    if [ ! -d "$o/init" ]; then   # the student as built, before any training
      if [ $shape = narrow ]; then
        $K init-student --teacher "$teacher" --layers 4 --init truncate --hidden-size 312 --heads 12 \
          --intermediate-size 1200 -o "$o/init"
      else
        $K init-student --teacher "$teacher" --layers 3 --strategy spread -o "$o/init"
      fi
    fi
    for recipe in $RECIPES; do
      [ -d "$o/$recipe" ] || $K distill --recipe $recipe --teacher "$teacher" --task $task --data-dir "$dev" \
        "${RUN[@]}" "${GEN[@]}" "${extra[@]}" -o "$o/$recipe"
    done
    # a seeded subset of STEPS x 32 train examples (at most the split): SST-2's STEPS steps are one epoch over it,
    # and the teacher cache holds only those, not all 67,349
    [ -d "$o/hinton-real" ] || $K distill --recipe hinton --teacher "$teacher" --task $task --data-dir "$DATA/glue" \
      --max-train-samples $((STEPS * 32)) --set 'losses=[{loss: hinton, temperature: 20}]' --set student.strategy=spread \
      "${RUN[@]}" "${extra[@]}" -o "$o/hinton-real"
    rows=(); for recipe in $RECIPES; do rows+=("$o/$recipe"); done
    $K eval "$teacher" "$o/init" "${rows[@]}" "$o/hinton-real" \
      --task $task --data-dir "$DATA/glue" --json-out "$o/results.json"
  done
done
