#!/usr/bin/env bash
# MoP on LLaMA-3-8B: the three seed paths of the paper, 18 iterations each, every iteration recovered with LoRA and scored (MLP neurons only in width steps, as published).
#
#   bash Llama3/run_mop_llama3.sh                # the paper's setting (GPU with 24 GB, hub access)
#   EMBEDDED=1 bash Llama3/run_mop_llama3.sh     # embedded SmolLM2-135M on CPU, minutes
# Every setting below can also be given in the environment; the settings all drivers share
# (TASKS, FT_ARGS, NUM_GPUS, EVAL_UNRECOVERED, EXECUTOR, ...) are listed in scripts/pipeline.sh;
# EXECUTOR=gpus GPUS=0,1,2,3 or EXECUTOR=slurm run independent stages at the same time.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../scripts/pipeline.sh"

MODEL_NAME=${MODEL_NAME:-meta-llama/Meta-Llama-3-8B}
NUM_ITERATIONS=${NUM_ITERATIONS:-18}
read -r -a FT_ITERATIONS <<<"${FT_ITERATIONS:-all}"  # iterations to recover and score ("all" = every one)
NUM_EPOCHS=${NUM_EPOCHS:-2}
RUN_NAMES=(run_seed_1 run_seed_2 run_seed_3)
RUN_SEEDS=(1 2 3)
RUN_SEQUENCES=(LGGLLLGGLLGLGLLGGL GGLLGGGLGGGLLLGGLL LGLGGLLGLLGLGLGLGG)
PRUNE_ARGS=${PRUNE_ARGS:---mlp_only}
DEPTH_RULE=${DEPTH_RULE:-third_to_last}  # L steps: third_to_last (the paper) or block_influence; "third_to_last block_influence": each path under both
RESULTS_DIR=${RESULTS_DIR:-$HERE/results_llama3}
EMBEDDED_MODEL=smollm2-135m  # the CPU stand-in used when EMBEDDED=1

mop_pipeline "$HERE"
