#!/usr/bin/env bash
# The DPO paper's reward-vs-KL frontier in miniature, on the embedded default (CPU, about 20 minutes):
# a beta sweep, Preferred-FT (SFT on chosen) and Best-of-N, all from the pairs `prefkit demo` wrote.
# Usage: bash examples/frontier.sh [RUN_DIR]   (needs runs/demo from `prefkit demo`; rerun to resume)
set -euo pipefail
RUN=${1:-runs/frontier}
PAIRS=runs/demo/preferences
TRAIN=(--policy smollm2 --lr 5e-5 --epochs 2 --batch-size 4)
prefkit train "$PAIRS" --out "$RUN/sweep" --beta 0.05,0.5 "${TRAIN[@]}"
prefkit train "$PAIRS" --out "$RUN/preferred-ft" --loss sft "${TRAIN[@]}"
prefkit eval reference=smollm2 dpo-beta-0.1=runs/demo/checkpoint \
  dpo-beta-0.05="$RUN/sweep/beta-0.05" dpo-beta-0.5="$RUN/sweep/beta-0.5" preferred-ft="$RUN/preferred-ft" \
  --out "$RUN/eval" -e reward-kl -O prompts=builtin:sentiment_heldout -O reference=smollm2 \
  -O n=8 -O best_of=4 -O max_new_tokens=40 -O seed=1
cat "$RUN/eval/leaderboard.md"
