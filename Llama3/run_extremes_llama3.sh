#!/usr/bin/env bash
# Extremes (baselines) on LLaMA-3-8B: depth-only and width-only (MLP-only) paths, 18 iterations, every iteration recovered and scored.
#
#   bash Llama3/run_extremes_llama3.sh                # the paper's setting (GPU with 24 GB, hub access)
#   EMBEDDED=1 bash Llama3/run_extremes_llama3.sh     # embedded SmolLM2-135M on CPU, minutes
# Every setting below can also be given in the environment.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../scripts/pipeline.sh"

MODEL_NAME=${MODEL_NAME:-meta-llama/Meta-Llama-3-8B}
NUM_ITERATIONS=${NUM_ITERATIONS:-18}
read -r -a FT_ITERATIONS <<<"${FT_ITERATIONS:-all}"  # iterations to recover and score ("all" = every one)
NUM_EPOCHS=${NUM_EPOCHS:-2}
RUN_NAMES=(run_depth_only run_width_only)
RUN_SEEDS=(1 1)
RUN_SEQUENCES=(LLLLLLLLLLLLLLLLLL GGGGGGGGGGGGGGGGGG)
TASKS=${TASKS:-piqa,hellaswag,winogrande,arc_easy,arc_challenge}
PRUNE_ARGS=${PRUNE_ARGS:---mlp_only}
FT_ARGS=${FT_ARGS:-}
NUM_GPUS=${NUM_GPUS:-1}  # > 1: fine-tuning and scoring through accelerate
EVAL_UNRECOVERED=${EVAL_UNRECOVERED:-0}  # 1: also score each checkpoint before recovery
RESULTS_DIR=${RESULTS_DIR:-$HERE/results_llama3}

if [[ "${EMBEDDED:-0}" == 1 ]]; then  # CPU run on the embedded model, data and tasks
    source "$HERE/../scripts/embedded.sh"
    MODEL_NAME=smollm2-135m
    RESULTS_DIR=$HERE/results_llama3_embedded
fi
LOG_DIR=$RESULTS_DIR/logs
mop_pipeline "$HERE"
