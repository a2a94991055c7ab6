#!/usr/bin/env bash
# MoP on LLaVA-1.5-7B: the three seed paths of the paper, 17 iterations each, pruning only the
# language model (heads + neurons in width steps); chosen iterations are recovered with text-only
# LoRA (r=8, alpha=16) and scored on text and image tasks. After each pruning run and each
# recovery, every new checkpoint is reloaded with plain transformers, must answer an image
# question, and must have a vision tower and projector bit-identical to the dense model's.
#
#   bash Llava/run_mop_llava.sh                # the paper's setting (GPU, hub access)
#   EMBEDDED=1 bash Llava/run_mop_llava.sh     # embedded tiny-llava on CPU, minutes
#   CALIBRATION_IMAGES=mop/plugins/llava/tasks_vision/data/shapes.jsonl EMBEDDED=1 bash Llava/run_mop_llava.sh
#                                              # calibrate on image + question prompts instead
# Every setting below written NAME=${NAME:-default} can also be given in the environment (the run
# lists RUN_NAMES / RUN_SEEDS / RUN_SEQUENCES cannot; EMBEDDED=1 sets its own, see the block
# below, and reads EMBEDDED_* variables instead). Stages already complete are
# skipped; a failing stage stops the driver with the end of its log (all logs in $RESULTS_DIR/logs).
# EXECUTOR=gpus GPUS=0,1,... or EXECUTOR=slurm run the stages concurrently (scripts/pipeline.sh).
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../scripts/pipeline.sh"

MODEL_NAME=${MODEL_NAME:-llava-hf/llava-1.5-7b-hf}
NUM_ITERATIONS=${NUM_ITERATIONS:-17}
read -r -a FT_ITERATIONS <<<"${FT_ITERATIONS:-7 11 16}"  # ~19% (5.70B, the paper's LLaVA point), ~29%, ~41%; "all" = every one
NUM_EPOCHS=${NUM_EPOCHS:-2}
RUN_NAMES=(run_seed_1 run_seed_2 run_seed_3)
RUN_SEEDS=(1 2 3)
RUN_SEQUENCES=(LGGLLLGGLLGLGLLGGL GGLLGGGLGGGLLLGGLL LGLGGLLGLLGLGLGLGG)
TASKS=${TASKS:-paper,mmmu_val}  # the paper's five text tasks (mop/evaluate/harness.py) + lm_eval's image benchmark
LMMS_TASKS=${LMMS_TASKS-lmms_paper}  # lmms-eval's visual benchmarks (mop/plugins/llava/lmms.py), added when it is installed; empty: none
CALIBRATION_IMAGES=${CALIBRATION_IMAGES:-}  # empty: Alpaca text prompts (published); or a JSON/JSONL of {image, question}
PRUNE_ARGS=${PRUNE_ARGS:-}  # Llava/prune.py prunes in float16, the hub checkpoint's dtype (vision stays bit-identical)
DEPTH_RULE=${DEPTH_RULE:-third_to_last}  # L steps: third_to_last (the paper) or block_influence; "third_to_last block_influence": each path under both
FT_ARGS=${FT_ARGS:-}
NUM_GPUS=${NUM_GPUS:-1}  # > 1: fine-tuning through accelerate (scoring stays on one GPU)
MAX_MEMORY_GB=${MAX_MEMORY_GB:-24}  # recovery's memory plan: 24 GB (paper's card) | GB | 0 (none) | device (the GPU's own)
EVAL_UNRECOVERED=${EVAL_UNRECOVERED:-0}  # 1: also score each checkpoint before recovery
CHECK_CHECKPOINTS=${CHECK_CHECKPOINTS:-1}  # 1: reload + answer + vision check after each stage
RESULTS_DIR=${RESULTS_DIR:-$HERE/results_llava}

if [[ "${EMBEDDED:-0}" == 1 ]]; then  # CPU run on the embedded tiny-llava, data and tasks
    export EVAL_LIMIT=${EVAL_LIMIT:-24}
    source "$HERE/../scripts/embedded.sh"
    MODEL_NAME=tiny-llava
    NUM_ITERATIONS=${EMBEDDED_ITERATIONS:-3}
    read -r -a FT_ITERATIONS <<<"${EMBEDDED_FT_ITERATIONS:-3}"
    RUN_NAMES=(run_seed_1) RUN_SEEDS=(1) RUN_SEQUENCES=(LGGLLLGGLLGLGLLGGL)
    TASKS=${EMBEDDED_TASKS:-mop_mini,mop_heldout_ppl,mop_shapes}
    LMMS_TASKS=${EMBEDDED_LMMS_TASKS-mop_shapes_lmms}  # the same shapes, scored offline by lmms-eval
    PRUNE_ARGS="--dtype float32 --num_calibration_prompts 32 --calibration_batch_size 8 ${PRUNE_ARGS}"
    FT_ARGS=${EMBEDDED_FT_ARGS:---max_steps 3 --num_samples 48 --batch_size 4 --grad_accum 1 --max_length 128}
    TABLE_ARGS=${TABLE_ARGS:---targets 0.08}  # 3 iterations reach ~8%, not the paper's 20/30/40%
    RESULTS_DIR=${EMBEDDED_RESULTS_DIR:-$HERE/results_llava_embedded}
fi
LOG_DIR=$RESULTS_DIR/logs

# CHECK_CHECKPOINTS=1: after each pruning run and recovery, reload its checkpoints with plain
# transformers, answer an image question and compare the vision half with the dense model
# (`python -m mop.plugins.llava check`; reports in logs/checks/).
if [[ "$CHECK_CHECKPOINTS" == 1 ]]; then MOP_CHECK_MODULE=mop.plugins.llava; fi

mop_setup "$HERE"
if [[ -n "$LMMS_TASKS" ]]; then  # lmms-eval lives in its own environment (make install-lmms)
    if "$PYTHON" -m mop.plugins.llava.lmms available >/dev/null; then TASKS=$TASKS,$LMMS_TASKS
    else echo "MoP driver: lmms-eval is not installed, so $LMMS_TASKS are not scored (install: make install-lmms)"; fi
fi
calibration=()
[[ -n "$CALIBRATION_IMAGES" ]] && calibration=(--calibration_images "$CALIBRATION_IMAGES")
mop_grid ${calibration[@]+"${calibration[@]}"}  # every path under every DEPTH_RULE, with the checks
mop_finish
