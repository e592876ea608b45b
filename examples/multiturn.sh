#!/usr/bin/env bash
# Multi-turn preference tuning on CPU: SmolLM2-135M-Instruct answers the last user turn of 48 chat
# histories (system prompt + 2-3 user turns, builtin:chatterbot_multiturn), VADER scores the replies,
# best-vs-worst pairs (TRL's conversational format) train DPO on the final assistant turn only, and the
# 16 held-out conversations are sampled before and after (reward-kl).
# Usage: bash examples/multiturn.sh [RUN_DIR]   (rerun to resume; every stage is a resumable artifact)
set -euo pipefail
RUN=${1:-runs/multiturn}
prefkit sample builtin:chatterbot_multiturn --out "$RUN/candidates" --model smollm2 --backend transformers \
  -n 4 --max-new-tokens 48 --seed 0
prefkit label "$RUN/candidates" --out "$RUN/preferences" --labeler vader
prefkit train "$RUN/preferences" --out "$RUN/checkpoint" --policy smollm2 --beta 0.1 --lr 5e-5 \
  --epochs 2 --batch-size 4
prefkit eval before=smollm2 after="$RUN/checkpoint" --out "$RUN/eval" -e reward-kl \
  -O prompts=builtin:chatterbot_multiturn_heldout -O reference=smollm2 -O n=4 -O max_new_tokens=48 -O seed=1
cat "$RUN/eval/leaderboard.md"
