#!/usr/bin/env bash
# Issue 12: kdnlp against TextBrewer 0.2.1 and the plain transformers.Trainer on the same teacher (MiniLM-L6
# fine-tuned on SST-2), 3-layer student, data, batch 32, length 64 (docs/benchmarks.md). Run on a quiet machine
# (nothing else running): each measurement interleaves its modes, each mode in its own process, over REPEATS rounds.
# Needs the `bench` extra: .venv/bin/pip install textbrewer==0.2.1 (it leaves torch and transformers as they are).
# Timed on 2 CPU cores with REPEATS=2: 1. 54 min, 2. 8 min, 3. 8 min (REPEATS=1), 4. 60 min; 5. not timed yet (about
# 1.5-2 h estimated: 32,000 examples padded to 64 tokens, and 2,000 at 256, for three modes).
# Usage: [REPEATS=3] [PARTS="1 2 3 4 5"] experiments/peers.sh [GLUE_DIR] [TEACHER] [OUT] [MTDNN_TEACHERS]
set -euo pipefail
GLUE=${1:-../shared/data/glue}
TEACHER=${2:-runs/sst2/teacher}
OUT=${3:-docs/bench}
ENSEMBLE=${4:-runs/mtdnn/teachers/sst2/seed-1,runs/mtdnn/teachers/sst2/seed-2}  # experiments/mtdnn.sh's
REPEATS=${REPEATS:-3}
PARTS=${PARTS:-1 2 3 4 5}
export HF_HUB_OFFLINE=1 PYTHONPATH=$PWD
PY=.venv/bin/python
mkdir -p "$OUT"
for part in $PARTS; do
  case $part in
  1)  # one epoch of 8,000 examples, soft targets only at T=4: every mode
    $PY bench/distill_speed.py --teacher "$TEACHER" --data-dir "$GLUE" --samples 8000 --soft-targets 4 --repeats "$REPEATS" \
      --modes plain,plain-eager,teacher,teacher-inter,hinton,hinton-cache,pkd-skip,tinybert-1,textbrewer-kd,textbrewer-kd-cache,textbrewer-tinybert-1 \
      --json-out "$OUT/peers-sst2-8000.json" | tee "$OUT/peers-sst2-8000.txt" ;;
  2)  # where a teacher-running step's time goes, and torch.profiler's most expensive operators of tinybert-1
    for m in hinton pkd-skip tinybert-1; do
      $PY bench/profile_step.py --teacher "$TEACHER" --data-dir "$GLUE" --samples 8000 --soft-targets 4 --mode $m \
        --steps 30 --warmup 5 --json-out "$OUT/profile-$m.json"
    done
    $PY bench/profile_step.py --teacher "$TEACHER" --data-dir "$GLUE" --samples 8000 --soft-targets 4 --mode tinybert-1 \
      --steps 10 --warmup 3 --ops 15 > "$OUT/profile-tinybert-1-ops.txt"
    # the models' forward passes timed by hooks in kdnlp's and TextBrewer's loops
    $PY bench/distill_speed.py --teacher "$TEACHER" --data-dir "$GLUE" --samples 2000 --soft-targets 4 --forward-times \
      --repeats "$REPEATS" --modes tinybert-1,textbrewer-tinybert-1,hinton-cache,textbrewer-kd-cache \
      --json-out "$OUT/forwards-sst2-2000.json" ;;
  3)  # an ensemble of k = 1, 2 teachers (MT-DNN), with the teacher cache against without
    $PY bench/ensemble_speed.py --task sst2 --teachers "$ENSEMBLE" --data-dir "$GLUE" --ks 1,2 --samples 2000 --epochs 2 \
      --repeats "$REPEATS" --json-out "$OUT/ensemble-sst2-2000.json" | tee "$OUT/ensemble-sst2-2000.txt" ;;
  4)  # the target's setting: 3 epochs of soft targets, kdnlp's cache built in the run, against TextBrewer
    $PY bench/distill_speed.py --teacher "$TEACHER" --data-dir "$GLUE" --samples 8000 --epochs 3 --soft-targets 4 \
      --repeats "$REPEATS" --modes plain,hinton-cache,textbrewer-kd,textbrewer-kd-cache \
      --json-out "$OUT/peers-sst2-8000-3ep.json" | tee "$OUT/peers-sst2-8000-3ep.txt"
    $PY bench/distill_speed.py --teacher "$TEACHER" --data-dir "$GLUE" --samples 8000 --epochs 3 --soft-targets 4 \
      --repeats "$REPEATS" --modes hinton-cache-bf16 --json-out "$OUT/peers-sst2-8000-3ep-bf16.json" ;;
  5)  # time and memory against training-set size (2k, 8k, 32k at length 64) and length (64, 128, 256 at 2k)
    $PY bench/scaling.py run --teacher "$TEACHER" --data-dir "$GLUE" --json-out "$OUT/scaling-sst2.json"
    $PY bench/scaling.py plot "$OUT/scaling-sst2.json" --png "$OUT/scaling-sst2.png" ;;
  *) echo "unknown part '$part'; valid: 1 2 3 4 5" >&2; exit 2 ;;
  esac
done
