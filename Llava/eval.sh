#!/usr/bin/env bash
# lm_eval scores of one LLaVA checkpoint: text and image tasks (thin wrapper; the logic is
# `python -m mop.llava evaluate` in mop/llava.py).
#
#   Llava/eval.sh MODEL_DIR OUT_DIR [TASKS]
#   Llava/eval.sh Llava/results_llava/run_seed_1/prune_iteration_7_ft_2ep \
#                 Llava/results_llava/run_seed_1/prune_iteration_7_ft_2ep_eval
#   EVAL_LIMIT=20 Llava/eval.sh tiny-llava /tmp/dense_eval mop_mini,mop_shapes   # quick CPU check
#
# One lm_eval `hf-multimodal` model scores both kinds of task, zero-shot:
# - text tasks (loglikelihood: piqa, hellaswag, ... or the shipped mop_mini) without a chat
#   template -- hf-multimodal hands requests without images to the `hf` model's own code;
# - image tasks (generate_until: the shipped mop_shapes, lm_eval's mmmu_val and chartqa) with
#   the processor's chat template. lm_eval 0.4.13 ships no ScienceQA / VizWiz / MM-Vet /
#   LLaVA-Bench tasks (those live in lmms-eval); mmmu_val is its closest multimodal benchmark.
# TASKS: comma list (default below). Knobs: EVAL_BATCH_SIZE (integer; hf-multimodal has no
# `auto`), EVAL_DEVICE, EVAL_DTYPE, EVAL_LIMIT, PYTHON. Scoring runs on one GPU (NUM_GPUS is
# ignored). An OUT_DIR that already holds mop_eval.json is skipped (exit 0); a missing
# MODEL_DIR or an unknown task exits 2.
set -euo pipefail

DEFAULT_TASKS=paper,mmmu_val  # the paper's five text tasks + lm_eval's image benchmark

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 MODEL_DIR OUT_DIR [TASKS]" >&2
    exit 2
fi
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/python_env.sh" "$(dirname "${BASH_SOURCE[0]}")/.."
exec "$PYTHON" -m mop.llava evaluate "$1" "$2" --tasks "${3:-$DEFAULT_TASKS}"
