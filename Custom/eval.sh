#!/usr/bin/env bash
# Zero-shot lm_eval scores of one checkpoint of your own model (thin wrapper; the logic is mop/evaluate/harness.py).
#
#   Custom/eval.sh MODEL_DIR OUT_DIR [TASKS]
#   Custom/eval.sh Custom/results_custom/run_seed_1/prune_iteration_8_ft_2ep \
#                  Custom/results_custom/run_seed_1/prune_iteration_8_ft_2ep_eval
#   EVAL_LIMIT=20 Custom/eval.sh smollm2-135m /tmp/dense_eval mop_mini     # quick CPU check
#
# TASKS: comma list (default: the paper's five). Knobs: EVAL_BATCH_SIZE, EVAL_DEVICE, EVAL_DTYPE,
# EVAL_LIMIT, NUM_GPUS (>1: accelerate launch -m lm_eval, data-parallel), PYTHON (interpreter).
# An OUT_DIR that already holds mop_eval.json is skipped (exit 0); a missing MODEL_DIR exits 2.
set -euo pipefail

DEFAULT_TASKS=paper  # the paper's five zero-shot tasks (mop/evaluate/harness.py PAPER_TASKS)

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 MODEL_DIR OUT_DIR [TASKS]" >&2
    exit 2
fi
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/python_env.sh" "$(dirname "${BASH_SOURCE[0]}")/.."
exec "$PYTHON" -m mop.evaluate "$1" "$2" --tasks "${3:-$DEFAULT_TASKS}"
