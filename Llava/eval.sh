#!/usr/bin/env bash
# Scores of one LLaVA checkpoint: text and image tasks with lm_eval, the paper's visual
# benchmarks with lmms-eval (thin wrapper; the logic is `python -m mop.plugins.llava.lmms evaluate` in
# mop/plugins/llava/lmms.py, which hands lm_eval tasks to `mop.plugins.llava.plugin evaluate`'s backend).
#
#   Llava/eval.sh MODEL_DIR OUT_DIR [TASKS]
#   Llava/eval.sh Llava/results_llava/run_seed_1/prune_iteration_7_ft_2ep \
#                 Llava/results_llava/run_seed_1/prune_iteration_7_ft_2ep_eval
#   EVAL_LIMIT=20 Llava/eval.sh tiny-llava /tmp/dense_eval mop_mini,mop_shapes   # quick CPU check
#   SCORER=lmms Llava/eval.sh MODEL_DIR OUT_DIR     # lmms-eval: ScienceQA-IMG, POPE, MME, VizWiz-VQA, TextVQA
#   Llava/eval.sh tiny-llava /tmp/lmms_eval mop_mini,mop_shapes_lmms              # both scorers, offline
#
# One lm_eval `hf-multimodal` model scores both kinds of task, zero-shot:
# - text tasks (loglikelihood: piqa, hellaswag, ... or the shipped mop_mini) without a chat
#   template -- hf-multimodal hands requests without images to the `hf` model's own code;
# - image tasks (generate_until: the shipped mop_shapes, lm_eval's mmmu_val and chartqa) with
#   the processor's chat template. lm_eval 0.4.13 ships no ScienceQA / VizWiz / MM-Vet /
#   LLaVA-Bench tasks (those live in lmms-eval); mmmu_val is its closest multimodal benchmark.
# lmms-eval (`make install-lmms`; its own environment, .cache/lmms-venv or LMMS_PYTHON) scores the
# tasks named lmms_paper (scienceqa_img,pope,mme,vizwiz_vqa_val,textvqa_val), mmvet and
# llava_in_the_wild (GPT judge: only with OPENAI_API_KEY), mop_shapes_lmms (offline) and
# lmms:<any lmms-eval task>; every other name is an lm_eval task. SCORER=lmms makes lmms_paper the
# default; without lmms-eval, asking for it is a one-line error naming the install command (exit 2).
# TASKS: comma list (default below). Knobs: EVAL_BATCH_SIZE (integer; hf-multimodal has no
# `auto`), EVAL_DEVICE, EVAL_DTYPE, EVAL_LIMIT, PYTHON. Scoring runs on one GPU (NUM_GPUS is
# ignored). An OUT_DIR that already holds mop_eval.json is skipped (exit 0); a missing
# MODEL_DIR or an unknown task exits 2.
set -euo pipefail

# Default tasks: paper,mmmu_val (the paper's five text tasks + lm_eval's image benchmark);
# with SCORER=lmms: lmms_paper.

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 MODEL_DIR OUT_DIR [TASKS]" >&2
    exit 2
fi
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/python_env.sh" "$(dirname "${BASH_SOURCE[0]}")/.."
exec "$PYTHON" -m mop.plugins.llava.lmms evaluate "$1" "$2" ${3:+--tasks "$3"}
