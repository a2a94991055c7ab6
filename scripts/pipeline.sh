# Shared stages of the MoP bash drivers (source it; do not run it).
#
# A driver sets its hyperparameters, then calls `mop_setup`, the stage functions below and
# `mop_finish`. The stage functions only *describe* stages (name, artifact, command, the stages
# they need); `mop_finish` hands the graph to the executor chosen by EXECUTOR (mop/run/stages.py):
#   local (default)  one stage at a time in the order declared; the first failure stops the driver
#   gpus             GPUS=0,1,2,3: independent stages at once, one per GPU (NUM_GPUS per stage),
#                    a failure stops only the stages that need it; all failures listed at the end
#   slurm            one sbatch job per stage (arrays for alike stages) with afterok dependencies;
#                    SLURM_PARTITION, SLURM_ACCOUNT, SLURM_TIME, SLURM_GPUS_PER_JOB, SLURM_EXTRA
#                    (extra sbatch options, ';'-separated); DRY_RUN=1 prints the job scripts
# Every stage is skipped when its final artifact exists (artifacts are written atomically, so
# an existing one is complete); the stage's full output is in $LOG_DIR/<stage>.log.

set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/python_env.sh" "$(dirname "${BASH_SOURCE[0]}")/.."
source "$(dirname "${BASH_SOURCE[0]}")/grid_facts.sh"  # the settings' choices, from the Python that owns them
MOP_PLAN=""       # the stage plan being written (mop_setup opens it, mop_finish runs it)
MOP_STAGES=()     # names of the stages declared so far
MOP_CHECK_MODULE=""  # a plugin that checks each checkpoint (Llava/run_mop_llava.sh: mop.plugins.llava)

# Settings EMBEDDED=1 replaces with its own (scripts/embedded.sh; MODEL_NAME becomes the embedded
# stand-in) or ignores (MAX_MEMORY_GB: CPU runs make no memory plan).
MOP_EMBEDDED_REPLACES=(MODEL_NAME NUM_ITERATIONS FT_ITERATIONS NUM_EPOCHS TASKS FT_ARGS EVAL_UNRECOVERED TABLE_ARGS
                       MAX_MEMORY_GB)

mop_record_user_settings() {
    # Sets MOP_USER_SET to "NAME=value" for each of MOP_EMBEDDED_REPLACES the caller's environment
    # gives (non-empty: the drivers read an empty value as their default). Run here, when a driver
    # sources this file at its top: once its `NAME=${NAME:-default}` lines have run, a value the
    # user gave can no longer be told from the driver's default.
    local name
    MOP_USER_SET=()
    for name in "${MOP_EMBEDDED_REPLACES[@]}"; do
        if [[ -n "${!name:-}" && "${!name@a}" == *x* ]]; then MOP_USER_SET+=("$name=${!name}"); fi
    done
}
mop_record_user_settings

mop_embedded_instead() {
    # Usage: mop_embedded_instead NAME -- what EMBEDDED=1 does with the setting, and what to set instead.
    case $1 in
        MODEL_NAME) echo "is replaced by EMBEDDED=1 (the driver runs its embedded stand-in model); unset MODEL_NAME" ;;
        MAX_MEMORY_GB) echo "is ignored under EMBEDDED=1 (embedded runs are on CPU, where recovery makes no memory plan); unset MAX_MEMORY_GB" ;;
        NUM_ITERATIONS) echo "is replaced by EMBEDDED=1 (its settings come from scripts/embedded.sh); set EMBEDDED_ITERATIONS instead" ;;
        *) echo "is replaced by EMBEDDED=1 (its settings come from scripts/embedded.sh); set EMBEDDED_$1 instead" ;;
    esac
}

mop_refuse_embedded_overrides() {
    # EMBEDDED=1 (scripts/embedded.sh calls this first): a setting the user gave that the embedded
    # run would replace or ignore is refused -- dropping it silently would run something other than
    # what was asked for. One line, exit status 2, before anything is created.
    local entry
    for entry in ${MOP_USER_SET[@]+"${MOP_USER_SET[@]}"}; do
        entry=${entry//$'\n'/ }
        echo "error: $entry $(mop_embedded_instead "${entry%%=*}"), or run without EMBEDDED=1" >&2
        exit 2
    done
}

mop_check_positive_int() {
    # Usage: mop_check_positive_int NAME VALUE -- a setting that must be a whole number >= 1
    if ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
        echo "error: $1 must be a positive integer, got '$2'" >&2
        exit 2
    fi
}

mop_check_choice() {
    # Usage: mop_check_choice NAME VALUE ALLOWED... -- a setting that must be one of a few words
    local allowed
    for allowed in "${@:3}"; do
        [[ "$2" == "$allowed" ]] && return 0
    done
    echo "error: $1 must be one of: ${*:3} (got '$2')" >&2
    exit 2
}

mop_check_memory_budget() {
    # MAX_MEMORY_GB: recovery's memory budget, a number of GB (0: no plan) or `device`.
    if ! [[ "${MAX_MEMORY_GB:-24}" =~ ^(device|[0-9]+(\.[0-9]+)?)$ ]]; then
        echo "error: MAX_MEMORY_GB must be a number of GB (24: the paper's card, 0: no plan) or 'device', got '${MAX_MEMORY_GB}'" >&2
        exit 2
    fi
}

mop_check_ft_iterations() {
    # FT_ITERATIONS: "all", or distinct whole numbers in 1..NUM_ITERATIONS separated by spaces.
    local i seen=" " list="${FT_ITERATIONS[*]-}" last=${NUM_ITERATIONS:-1}
    [[ "$list" == all ]] && return 0
    for i in $list; do
        if ! [[ "$i" =~ ^[1-9][0-9]*$ ]] || (( i > last )) || [[ "$seen" == *" $i "* ]]; then
            echo "error: FT_ITERATIONS must be 'all' or distinct iterations in 1..$last separated by spaces (got '$list')" >&2
            exit 2
        fi
        seen+="$i "
    done
    [[ -n "${list// /}" ]] || { echo "error: FT_ITERATIONS is empty; give 'all' or iterations in 1..$last" >&2; exit 2; }
}

mop_check_gpus() {
    # EXECUTOR=gpus: GPUS is a comma list of distinct GPU ids that splits into groups of NUM_GPUS.
    [[ "${EXECUTOR:-local}" == gpus ]] || return 0
    local ids
    if ! [[ "${GPUS:-}" =~ ^[0-9]+(,[0-9]+)*$ ]]; then
        echo "error: EXECUTOR=gpus needs GPUS, a comma list of GPU ids such as 0,1,2,3 (got '${GPUS:-}')" >&2
        exit 2
    fi
    IFS=, read -r -a ids <<<"$GPUS"
    if (( $(printf '%s\n' "${ids[@]}" | sort -u | wc -l) != ${#ids[@]} || ${#ids[@]} % ${NUM_GPUS:-1} != 0 )); then
        echo "error: GPUS=$GPUS must list distinct ids, a multiple of NUM_GPUS=${NUM_GPUS:-1} of them" >&2
        exit 2
    fi
}

mop_check_python() {
    # PYTHON runs and has the project's dependencies, EXECUTOR=slurm's settings parse and sbatch is
    # there, lm_eval knows every task in TASKS, MODEL_NAME names a model (dry runs too: no weights
    # needed), PRUNE_ARGS / FT_ARGS / TABLE_ARGS parse with the scripts they go to and the data files
    # they name are there (mop/run/driver_check.py): found now, not when the first stage starts.
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
        echo "error: PYTHON=$PYTHON is not an interpreter that can be run; set PYTHON to one with the project installed" >&2
        exit 2
    fi
    local dry=()
    [[ "${DRY_RUN:-0}" == 1 ]] && dry=(--dry_run)
    "$PYTHON" -m mop.run.driver_check --python_name "$PYTHON" --executor "${EXECUTOR:-local}" ${dry[@]+"${dry[@]}"} \
        ${TASKS+--tasks "$TASKS"} ${MODEL_NAME+--model_name="$MODEL_NAME"} --model_folder "$MODEL_FOLDER" \
        --prune_args="${PRUNE_ARGS:-}" --ft_args="${FT_ARGS:-}" --table_args="${TABLE_ARGS:-}" || exit 2
}

mop_check_settings() {
    # Every driver setting, before anything is created or any stage declared: one line and exit
    # status 2 naming the setting and what it allows.
    mop_check_positive_int NUM_GPUS "${NUM_GPUS:-1}"
    mop_check_memory_budget
    mop_check_positive_int NUM_ITERATIONS "${NUM_ITERATIONS:-1}"
    # Whole epochs only: the recovered folder is <pruned>_ft_<e>ep, which mop/layout.py reads as \d+.
    mop_check_positive_int NUM_EPOCHS "${NUM_EPOCHS:-1}"
    mop_check_ft_iterations
    mop_check_choice KEEP_CHECKPOINTS "${KEEP_CHECKPOINTS:-used}" "${MOP_KEEP_CHECKPOINTS[@]}"
    mop_check_choice EXECUTOR "${EXECUTOR:-local}" "${MOP_EXECUTORS[@]}"
    mop_check_gpus
    mop_check_choice EVAL_UNRECOVERED "${EVAL_UNRECOVERED:-0}" 0 1
    mop_check_choice DRY_RUN "${DRY_RUN:-0}" 0 1
    mop_check_depth_rules
    mop_check_objectives
    mop_check_python
}

mop_check_depth_rules() {
    # DEPTH_RULE: one or more (space-separated) of MOP_DEPTH_RULES, each at most once.
    local rule seen=" "
    for rule in ${DEPTH_RULE:-third_to_last}; do
        if [[ " ${MOP_DEPTH_RULES[*]} " != *" $rule "* || "$seen" == *" $rule "* ]]; then
            echo "error: DEPTH_RULE must list distinct rules of: ${MOP_DEPTH_RULES[*]} (got '${DEPTH_RULE}')" >&2
            exit 2
        fi
        seen+="$rule "
    done
    [[ -n "${DEPTH_RULE// /}" ]] || { echo "error: DEPTH_RULE is empty; choose from: ${MOP_DEPTH_RULES[*]}" >&2; exit 2; }
}

mop_check_objectives() {
    # FT_OBJECTIVE: space-separated entries OBJECTIVE (every run) or RULE:OBJECTIVE (the runs of
    # that depth rule only), e.g. "sft block_influence:kd".
    local entry rule objective
    for entry in ${FT_OBJECTIVE:-sft}; do
        rule=${entry%%:*} objective=${entry#*:}
        [[ "$entry" == *:* ]] || rule=${MOP_DEPTH_RULES[0]}
        if [[ " ${MOP_OBJECTIVES[*]} " != *" $objective "* || " ${MOP_DEPTH_RULES[*]} " != *" $rule "* ]]; then
            echo "error: FT_OBJECTIVE entries must be OBJECTIVE or RULE:OBJECTIVE with objectives ${MOP_OBJECTIVES[*]} and rules ${MOP_DEPTH_RULES[*]} (got '${FT_OBJECTIVE}')" >&2
            exit 2
        fi
    done
}

# The grid's names, computed by mop/run/grid.py (also what mop_grid uses):
mop_objectives_of() {
    # Usage: mop_objectives_of RUN_NAME -- the recovery objectives FT_OBJECTIVE gives this run, one a line.
    "$PYTHON" -m mop.run.grid objectives_of "$1" --objectives "${FT_OBJECTIVE:-sft}"
}

mop_objective_suffix() {
    # Usage: mop_objective_suffix OBJECTIVE -- the recovered folder's suffix (mop.core.layout OBJECTIVE_SUFFIX).
    "$PYTHON" -m mop.run.grid suffix "$1"
}

mop_depth_rule_of() {
    # Usage: mop_depth_rule_of RUN_NAME -- the depth rule a run folder's name stands for.
    "$PYTHON" -m mop.run.grid rule_of "$1"
}

mop_runs() {
    # One line per pruning run, "NAME SEED SEQUENCE": every path of RUN_NAMES / RUN_SEEDS /
    # RUN_SEQUENCES under every rule of DEPTH_RULE.
    "$PYTHON" -m mop.run.grid runs --run_names "${RUN_NAMES[*]}" --seeds "${RUN_SEEDS[*]}" \
        --sequences "${RUN_SEQUENCES[*]}" --depth_rules "${DEPTH_RULE:-third_to_last}"
}

mop_setup() {
    # Args: model folder (absolute path). Sets MODEL_FOLDER, creates RESULTS_DIR and LOG_DIR
    # (not for DRY_RUN=1, which creates nothing), and opens the stage plan. Settings are checked
    # before anything is created.
    MODEL_FOLDER=$1
    mop_check_settings
    [[ "${DRY_RUN:-0}" == 1 ]] || mkdir -p "$RESULTS_DIR" "$LOG_DIR"
    echo "MoP driver: results in $RESULTS_DIR, logs in $LOG_DIR (executor: ${EXECUTOR:-local})"
    mop_plan_open
}

mop_plan_open() {
    MOP_PLAN=$(mktemp "${TMPDIR:-/tmp}/mop-stages.XXXXXX")
    MOP_STAGES=()
}

mop_stage() {
    # Usage: mop_stage [--after "STAGE..."] [--array TEMPLATE] [--cpu] NAME DONE_PATH CMD...
    # Declares a stage: complete when DONE_PATH exists (empty: always run); --after: stages it
    # needs; --array: a name template with %a for the index, shared by alike stages (Slurm job
    # arrays); --cpu: needs no GPU. Outside a plan (no mop_setup), the stage runs at once.
    local after="" array="" gpu=1
    while [[ "${1:-}" == --* ]]; do
        case $1 in
            --after) after=$2; shift 2 ;;
            --array) array=$2; shift 2 ;;
            --cpu) gpu=0; shift ;;
            *) echo "mop_stage: unknown option $1" >&2; return 2 ;;
        esac
    done
    local name=$1 done_path=$2
    shift 2
    local standalone=0
    if [[ -z "$MOP_PLAN" ]]; then
        standalone=1
        mop_plan_open
    fi
    printf '%s\0' stage "$name" "$done_path" "$after" "$array" "$gpu" "$#" "$@" >>"$MOP_PLAN"
    MOP_STAGES+=("$name")
    if (( standalone )); then
        EXECUTOR=local mop_run_stages
    fi
}

mop_run_stages() {
    # Runs (or submits) the declared stages with the executor; exits 1 if a stage failed.
    local plan=$MOP_PLAN status=0 dry=()
    MOP_PLAN=""
    [[ "${DRY_RUN:-0}" == 1 ]] && dry=(--dry_run)
    "$PYTHON" -m mop.run.stages "$plan" --log_dir "$LOG_DIR" --executor "${EXECUTOR:-local}" \
        --gpus "${GPUS:-}" --gpus_per_stage "${NUM_GPUS:-1}" ${dry[@]+"${dry[@]}"} || status=$?
    rm -f "$plan"
    (( status == 0 )) || exit "$status"
}

mop_finish() {
    # The end of every driver: run the graph, then show the result table (when it was made here).
    mop_run_stages
    if [[ "${DRY_RUN:-0}" == 1 ]]; then
        echo "MoP driver: dry run, nothing was run or submitted"
    elif [[ "${EXECUTOR:-local}" == slurm ]]; then
        echo "MoP driver: stages submitted to Slurm; results will appear in $RESULTS_DIR"
    else
        cat "$LOG_DIR/tables.log"
        echo "MoP driver finished: $RESULTS_DIR"
    fi
}

mop_grid() {
    # Usage: mop_grid [flags added to every pruning run...]
    # Appends the grid to the plan (mop/run/grid.py): the dense score; per path of RUN_NAMES /
    # RUN_SEEDS / RUN_SEQUENCES and rule of DEPTH_RULE the pruning run; per iteration of
    # FT_ITERATIONS the unrecovered score (EVAL_UNRECOVERED=1), the recoveries (FT_OBJECTIVE) and
    # their scores; MOP_CHECK_MODULE's checkpoint checks; the result tables after everything.
    "$PYTHON" -m mop.run.grid plan "$MOP_PLAN" --model_folder "$MODEL_FOLDER" --model_name "$MODEL_NAME" \
        --results_dir "$RESULTS_DIR" --log_dir "$LOG_DIR" --python "$PYTHON" --run_names "${RUN_NAMES[*]}" \
        --seeds "${RUN_SEEDS[*]}" --sequences "${RUN_SEQUENCES[*]}" --depth_rules "${DEPTH_RULE:-third_to_last}" \
        --objectives "${FT_OBJECTIVE:-sft}" --num_iterations "$NUM_ITERATIONS" --ft_iterations "${FT_ITERATIONS[*]}" \
        --num_epochs "$NUM_EPOCHS" --keep_checkpoints "${KEEP_CHECKPOINTS:-used}" \
        --eval_unrecovered "${EVAL_UNRECOVERED:-0}" --tasks "$TASKS" --prune_args="${PRUNE_ARGS:-}" \
        --ft_args="${FT_ARGS:-}" --table_args="${TABLE_ARGS:-}" --num_gpus "${NUM_GPUS:-1}" \
        --accelerate_config="${ACCELERATE_CONFIG:-}" --max_memory_gb "${MAX_MEMORY_GB:-24}" \
        --embedded "${EMBEDDED:-0}" --check_module="$MOP_CHECK_MODULE" -- "$@" || exit 2
}

mop_common_settings() {
    # Settings every Llama driver shares; each can be given in the environment.
    TASKS=${TASKS:-paper}  # lm_eval tasks, zero-shot; paper = the five of mop/evaluate/harness.py PAPER_TASKS
    FT_ARGS=${FT_ARGS:-}                       # extra finetune.py flags
    NUM_GPUS=${NUM_GPUS:-1}                    # > 1: fine-tuning and scoring through accelerate (GPUs per stage)
    MAX_MEMORY_GB=${MAX_MEMORY_GB:-24}         # recovery's memory plan: 24 GB (paper's card) | GB | 0 (none) | device
    EXECUTOR=${EXECUTOR:-local}                # local | gpus (GPUS=0,1,...) | slurm (see the top of this file)
    ACCELERATE_CONFIG=${ACCELERATE_CONFIG:-}   # e.g. configs/fsdp.yaml: recovery through accelerate with it
    EVAL_UNRECOVERED=${EVAL_UNRECOVERED:-0}    # 1: also score each checkpoint before recovery
    DEPTH_RULE=${DEPTH_RULE:-third_to_last}    # L steps: third_to_last (paper) | block_influence; both: each path twice
    FT_OBJECTIVE=${FT_OBJECTIVE:-sft}          # recovery: sft (paper) | kd | kd+sft; RULE:OBJECTIVE for one rule's runs
    mop_check_choice EMBEDDED "${EMBEDDED:-0}" 0 1
    if [[ "${EMBEDDED:-0}" == 1 ]]; then       # CPU run on the embedded model, data and tasks
        if [[ -z "${EMBEDDED_MODEL:-}" ]]; then
            echo "error: EMBEDDED=1 needs EMBEDDED_MODEL, the embedded model this driver stands in with (e.g. smollm2-135m); set it in the driver" >&2
            exit 2
        fi
        source "$(dirname "${BASH_SOURCE[0]}")/embedded.sh"  # refuses first what it replaces, if the user set it
        MODEL_NAME=$EMBEDDED_MODEL
        RESULTS_DIR=${RESULTS_DIR}_embedded
    fi
    LOG_DIR=$RESULTS_DIR/logs
}

mop_pipeline() {
    # The whole driver: the settings, checked; the grid (mop_grid); the stages run with the
    # executor chosen by EXECUTOR, then the result table.
    mop_common_settings
    mop_setup "$1"
    mop_grid
    mop_finish
}
