# Shared stages of the MoP bash drivers (source it; do not run it).
#
# A driver sets its hyperparameters, then calls `mop_setup` and the stage functions below.
# Every stage is skipped when its final artifact exists (artifacts are written atomically, so
# an existing one is complete) and the driver stops with a clear message when a stage fails;
# the stage's full output is in $LOG_DIR/<stage>.log.

set -euo pipefail

mop_check_positive_int() {
    # Usage: mop_check_positive_int NAME VALUE -- a setting that must be a whole number >= 1
    if ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
        echo "error: $1 must be a positive integer, got '$2'" >&2
        exit 2
    fi
}

mop_setup() {
    # Args: model folder (absolute path). Sets REPO, PYTHON, RESULTS_DIR, LOG_DIR.
    # Settings are checked before anything is created.
    MODEL_FOLDER=$1
    mop_check_positive_int NUM_GPUS "${NUM_GPUS:-1}"
    mop_check_positive_int NUM_ITERATIONS "${NUM_ITERATIONS:-1}"
    source "$(dirname "${BASH_SOURCE[0]}")/python_env.sh" "$MODEL_FOLDER/.."
    mkdir -p "$RESULTS_DIR" "$LOG_DIR"
    echo "MoP driver: results in $RESULTS_DIR, logs in $LOG_DIR"
}

mop_stage() {
    # Usage: mop_stage NAME DONE_PATH CMD...   (skips when DONE_PATH exists)
    local name=$1 done_path=$2
    shift 2
    if [[ -e "$done_path" ]]; then
        echo "[skip] $name (complete)"
        return 0
    fi
    local log="$LOG_DIR/$name.log"
    echo "[run ] $name  (log: $log)"
    local start=$SECONDS
    if ! "$@" >"$log" 2>&1; then
        echo "[FAIL] $name failed; last lines of $log:" >&2
        tail -n 15 "$log" >&2
        echo "Stopping. Fix the problem and run the driver again: completed stages are skipped." >&2
        exit 1
    fi
    echo "[done] $name ($((SECONDS - start)) s)"
}

mop_resolve_model() {
    # Embedded names (smollm2-135m, ...) become their cached checkpoint folder.
    "$PYTHON" -c "import sys; from mop.models import resolve_model_name; print(resolve_model_name(sys.argv[1]))" "$1"
}

mop_finetune_cmd() {
    # Fine-tuning command, on several GPUs through accelerate when NUM_GPUS > 1.
    if [[ "${NUM_GPUS:-1}" -gt 1 ]]; then
        echo accelerate launch --num_processes "$NUM_GPUS" "$MODEL_FOLDER/finetune.py"
    else
        echo "$PYTHON" "$MODEL_FOLDER/finetune.py"
    fi
}

mop_eval() {
    # Usage: mop_eval NAME MODEL_DIR OUT_DIR
    mop_stage "$1" "$3/mop_eval.json" env NUM_GPUS="${NUM_GPUS:-1}" PYTHON="$PYTHON" \
        bash "$MODEL_FOLDER/eval.sh" "$2" "$3" "$TASKS"
}

mop_dense_eval() {
    local dense
    dense=$(mop_resolve_model "$MODEL_NAME")
    mop_eval dense_eval "$dense" "$RESULTS_DIR/dense_eval"
}

mop_recovered_iterations() {
    # The iterations a driver recovers and scores (FT_ITERATIONS; "all" = 1..NUM_ITERATIONS), one a line.
    if [[ "${FT_ITERATIONS[*]}" == all ]]; then seq 1 "$NUM_ITERATIONS"; else printf '%s\n' "${FT_ITERATIONS[@]}"; fi
}

mop_kept_iterations() {
    # --keep_iterations for the pruning runs: only what is recovered and scored (prune.py adds the
    # last iteration); KEEP_CHECKPOINTS=all keeps every checkpoint (e.g. for latency over a whole path).
    if [[ "${KEEP_CHECKPOINTS:-used}" == all || "${FT_ITERATIONS[*]}" == all ]]; then echo all; return; fi
    mop_recovered_iterations | paste -sd, -
}

mop_prune_run() {
    # Usage: mop_prune_run RUN_NAME SEED SEQUENCE NUM_ITERATIONS [extra prune.py flags...]
    local run=$1 seed=$2 sequence=$3 iterations=$4
    shift 4
    local dir="$RESULTS_DIR/$run" resume=()
    [[ -f "$dir/run_config.json" ]] && resume=(--resume)
    mop_stage "${run}_prune" "$dir/prune_iteration_${iterations}/mop_prune.json" \
        "$PYTHON" "$MODEL_FOLDER/prune.py" --model_name "$MODEL_NAME" --save_dir "$dir" \
        --num_iterations "$iterations" --decision_sequence "$sequence" --seed "$seed" \
        --keep_iterations "$(mop_kept_iterations)" --recovered_checkpoints "$(mop_recovered_iterations | wc -l)" \
        ${resume[@]+"${resume[@]}"} ${PRUNE_ARGS:-} "$@"
}

mop_recover_and_score() {
    # Usage: mop_recover_and_score RUN_NAME ITERATION
    # Scores the pruned checkpoint first when EVAL_UNRECOVERED=1, then recovers and scores it.
    local run=$1 i=$2
    local dir="$RESULTS_DIR/$run"
    local pruned="$dir/prune_iteration_${i}" tuned="$dir/prune_iteration_${i}_ft_${NUM_EPOCHS}ep"
    if [[ "${EVAL_UNRECOVERED:-0}" == 1 ]]; then
        mop_eval "${run}_it${i}_eval" "$pruned" "${pruned}_eval"
    fi
    # shellcheck disable=SC2046
    mop_stage "${run}_it${i}_finetune" "$tuned" $(mop_finetune_cmd) \
        --pruned_model_dir "$pruned" --tuned_model_dir "$tuned" --num_epochs "$NUM_EPOCHS" --resume ${FT_ARGS:-}
    mop_eval "${run}_it${i}_ft_eval" "$tuned" "${tuned}_eval"
}

mop_tables() {
    mop_stage tables "$RESULTS_DIR/.never" "$PYTHON" -m mop.tables "$RESULTS_DIR" ${TABLE_ARGS:-}
    cat "$LOG_DIR/tables.log"
}

mop_common_settings() {
    # Settings every Llama driver shares; each can be given in the environment.
    TASKS=${TASKS:-paper}  # lm_eval tasks, zero-shot; paper = the five of mop/evaluate.py PAPER_TASKS
    FT_ARGS=${FT_ARGS:-}                       # extra finetune.py flags
    NUM_GPUS=${NUM_GPUS:-1}                    # > 1: fine-tuning and scoring through accelerate
    EVAL_UNRECOVERED=${EVAL_UNRECOVERED:-0}    # 1: also score each checkpoint before recovery
    if [[ "${EMBEDDED:-0}" == 1 ]]; then       # CPU run on the embedded model, data and tasks
        source "$(dirname "${BASH_SOURCE[0]}")/embedded.sh"
        MODEL_NAME=$EMBEDDED_MODEL
        RESULTS_DIR=${RESULTS_DIR}_embedded
    fi
    LOG_DIR=$RESULTS_DIR/logs
}

mop_pipeline() {
    # The whole driver: dense score, then for each path (RUN_NAMES[k], RUN_SEEDS[k],
    # RUN_SEQUENCES[k]) prune NUM_ITERATIONS iterations and recover + score each iteration in
    # FT_ITERATIONS ("all" = every iteration); finally the result tables.
    mop_common_settings
    mop_setup "$1"
    mop_dense_eval
    local k i
    for k in "${!RUN_NAMES[@]}"; do
        mop_prune_run "${RUN_NAMES[$k]}" "${RUN_SEEDS[$k]}" "${RUN_SEQUENCES[$k]}" "$NUM_ITERATIONS"
        for i in $(mop_recovered_iterations); do
            mop_recover_and_score "${RUN_NAMES[$k]}" "$i"
        done
    done
    mop_tables
    echo "MoP driver finished: $RESULTS_DIR"
}
