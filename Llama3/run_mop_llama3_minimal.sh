#!/usr/bin/env bash
# MoP on LLaMA-3-8B, minimal run: the seed-1 path for 12 iterations, recovering and scoring
# only iterations 8 and 12 (about 20% and 30% compression). Width steps prune MLP neurons only,
# as published. Every setting below can also be given in the environment.
#
#   bash Llama3/run_mop_llama3_minimal.sh              # the paper's setting (GPU, hub access)
#   EMBEDDED=1 bash Llama3/run_mop_llama3_minimal.sh   # embedded SmolLM2-135M on CPU, minutes
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../scripts/pipeline.sh"

MODEL_NAME=${MODEL_NAME:-meta-llama/Meta-Llama-3-8B}
NUM_ITERATIONS=${NUM_ITERATIONS:-12}
read -r -a FT_ITERATIONS <<<"${FT_ITERATIONS:-8 12}"  # iterations to recover and score
NUM_EPOCHS=${NUM_EPOCHS:-2}
RUN_NAMES=(run_seed_1) RUN_SEEDS=(1) RUN_SEQUENCES=(LGGLLLGGLLGLGLLGGL)
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
