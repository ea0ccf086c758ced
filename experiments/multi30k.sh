#!/usr/bin/env bash
# The Multi30k en->de result of docs/results.md (issue 9, sequence-level KD, Kim & Rush 2016).
# A Marian-style teacher trained here from scratch (3+3 layers, d_model 256, byte-level BPE of 8k tokens learned on
# the train split); students with the teacher's 3 encoder layers and its top decoder layer (3+1), trained
# (a) on the gold targets, (b) on the teacher's best beam (seqkd), (c) seqkd plus word-level KD, (d) Seq-Inter;
# then test-2016 BLEU/chrF with greedy and beam-5 decoding, parameters and decoding speed.
# Every step is skipped when its output exists; an interrupted training step continues with --resume.
# Usage: experiments/multi30k.sh [DATA_DIR] [OUT]
set -euo pipefail
DATA=${1:-../shared/data}
OUT=${2:-runs/m30k}
export HF_HUB_OFFLINE=1
K=".venv/bin/kdnlp"
M30K="$DATA/seq2seq/multi30k_en_de"
TASK=(--task translation --data-dir "$M30K" --source en --target de)
TRAIN=(--set max_length=64 --set training.logging_steps=50 --set training.save_strategy=steps --set training.save_steps=300)
resume() { [ -d "$1.partial" ] && echo --resume || true; }

[ -d "$OUT/init" ] || $K new-model --data-dir "$M30K" --source en --target de --arch marian --vocab-size 8000 \
  --d-model 256 --encoder-layers 3 --decoder-layers 3 --heads 4 --ffn-dim 1024 -o "$OUT/init"
[ -d "$OUT/teacher" ] || $K finetune --model "$OUT/init" "${TASK[@]}" "${TRAIN[@]}" --set training.num_train_epochs=3 \
  --set training.learning_rate=1e-3 --set training.per_device_train_batch_size=96 --set training.warmup_steps=0.05 \
  -o "$OUT/teacher" $(resume "$OUT/teacher")
# the teacher's beam-5 outputs for the train sources, written out (the recipes read the same cached generation)
[ -d "$OUT/generated" ] || $K generate --teacher "$OUT/teacher" --data-dir "$M30K" --source en --target de \
  --num-beams 5 --k 5 --max-new-tokens 128 --max-source-length 64 -o "$OUT/generated"
for recipe in seq2seq-baseline seqkd seqkd-word seqkd-inter; do
  [ -d "$OUT/$recipe" ] || $K distill --recipe $recipe --teacher "$OUT/teacher" "${TASK[@]}" "${TRAIN[@]}" \
    -o "$OUT/$recipe" $(resume "$OUT/$recipe")
done
MODELS=("$OUT/teacher" "$OUT/seq2seq-baseline" "$OUT/seqkd" "$OUT/seqkd-word" "$OUT/seqkd-inter")
for beams in 1 5; do
  $K eval "${MODELS[@]}" "${TASK[@]}" --split test --num-beams $beams --speed --json-out "$OUT/test-beam$beams.json"
done
