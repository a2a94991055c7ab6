#!/usr/bin/env bash
# MoP on LLaMA-3-8B, minimal run: the seed-1 path for 12 iterations, recovering and scoring only iterations 8 and 12 (about 20% and 30% compression); MLP-only width steps, as published. With EMBEDDED=1 (make demo): 8 iterations under both depth rules (the paper's third_to_last and block_influence), iteration 8 scored before and after recovery (sft under both rules, and kd -- distillation from the dense model -- under block_influence), held-out perplexity beside the accuracies.
#
#   bash Llama3/run_mop_llama3_minimal.sh                # the paper's setting (GPU with 24 GB, hub access)
#   EMBEDDED=1 bash Llama3/run_mop_llama3_minimal.sh     # embedded SmolLM2-135M on CPU, minutes
# Every setting below can also be given in the environment; the settings all drivers share
# (TASKS, FT_ARGS, NUM_GPUS, EVAL_UNRECOVERED, EXECUTOR, ...) are listed in scripts/pipeline.sh;
# EXECUTOR=gpus GPUS=0,1,2,3 or EXECUTOR=slurm run independent stages at the same time.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../scripts/pipeline.sh"

MODEL_NAME=${MODEL_NAME:-meta-llama/Meta-Llama-3-8B}
NUM_ITERATIONS=${NUM_ITERATIONS:-12}
read -r -a FT_ITERATIONS <<<"${FT_ITERATIONS:-8 12}"  # iterations to recover and score ("all" = every one)
NUM_EPOCHS=${NUM_EPOCHS:-2}
RUN_NAMES=(run_seed_1)
RUN_SEEDS=(1)
RUN_SEQUENCES=(LGGLLLGGLLGLGLLGGL)
PRUNE_ARGS=${PRUNE_ARGS:---mlp_only}
if [[ "${EMBEDDED:-0}" == 1 ]]; then  # make demo: both depth rules side by side at iteration 8 (~20%),
    DEPTH_RULE=${DEPTH_RULE:-third_to_last block_influence}  # both recovered with sft, block_influence also with kd
    FT_OBJECTIVE=${FT_OBJECTIVE:-sft block_influence:kd}
    EMBEDDED_FT_ITERATIONS=${EMBEDDED_FT_ITERATIONS:-8}
fi
DEPTH_RULE=${DEPTH_RULE:-third_to_last}  # L steps: third_to_last (the paper) or block_influence; "third_to_last block_influence": each path under both
RESULTS_DIR=${RESULTS_DIR:-$HERE/results_llama3}
EMBEDDED_MODEL=smollm2-135m  # the CPU stand-in used when EMBEDDED=1

mop_pipeline "$HERE"
