#!/usr/bin/env bash
# MoP on your own model (any supported family, mop/families/): the three seed paths of the paper, 18 iterations each, every iteration recovered and scored; width mode and LoRA from the family.
#
#   bash Custom/run_mop_custom.sh                # the paper's setting (GPU with 24 GB, hub access)
#   EMBEDDED=1 bash Custom/run_mop_custom.sh     # embedded SmolLM2-135M on CPU, minutes
# Every setting below can also be given in the environment; the settings all drivers share
# (TASKS, FT_ARGS, NUM_GPUS, EVAL_UNRECOVERED, EXECUTOR, ...) are listed in scripts/pipeline.sh;
# EXECUTOR=gpus GPUS=0,1,2,3 or EXECUTOR=slurm run independent stages at the same time.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../scripts/pipeline.sh"

MODEL_NAME=${MODEL_NAME:-Qwen/Qwen3-8B}  # any supported checkpoint (hub id or folder)
NUM_ITERATIONS=${NUM_ITERATIONS:-18}
read -r -a FT_ITERATIONS <<<"${FT_ITERATIONS:-all}"  # iterations to recover and score ("all" = every one)
NUM_EPOCHS=${NUM_EPOCHS:-2}
RUN_NAMES=(run_seed_1 run_seed_2 run_seed_3)
RUN_SEEDS=(1 2 3)
RUN_SEQUENCES=(LGGLLLGGLLGLGLLGGL GGLLGGGLGGGLLLGGLL LGLGGLLGLLGLGLGLGG)
PRUNE_ARGS=${PRUNE_ARGS:-}  # empty: the family's width mode (MLP only for grouped-query models)
DEPTH_RULE=${DEPTH_RULE:-third_to_last}  # L steps: third_to_last (the paper) or block_influence; "third_to_last block_influence": each path under both
RESULTS_DIR=${RESULTS_DIR:-$HERE/results_custom}
EMBEDDED_MODEL=smollm2-135m  # the CPU stand-in used when EMBEDDED=1

mop_pipeline "$HERE"
