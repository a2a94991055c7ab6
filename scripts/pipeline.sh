# Shared stages of the MoP bash drivers (source it; do not run it).
#
# A driver sets its hyperparameters, then calls `mop_setup`, the stage functions below and
# `mop_finish`. The stage functions only *describe* stages (name, artifact, command, the stages
# they need); `mop_finish` hands the graph to the executor chosen by EXECUTOR (mop/stages.py):
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
MOP_PLAN=""       # the stage plan being written (mop_setup opens it, mop_finish runs it)
MOP_STAGES=()     # names of the stages declared so far

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

mop_memory_budget_flag() {
    # finetune.py's --max_memory_gb: MAX_MEMORY_GB, by default 24 (the paper's card, whatever the
    # GPU holds); `device` passes none, so finetune.py plans for the GPU's own memory. Embedded
    # runs pass none either: they run on CPU, where recovery makes no plan.
    if [[ "${EMBEDDED:-0}" != 1 && "${MAX_MEMORY_GB:-24}" != device ]]; then
        echo --max_memory_gb "${MAX_MEMORY_GB:-24}"
    fi
}

MOP_EXECUTORS=(local gpus slurm)  # mop/stages.py EXECUTORS
MOP_KEEP_CHECKPOINTS=(used all)   # mop_kept_iterations: only what is recovered, or every checkpoint

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
    # they name are there (mop/driver_check.py): found now, not when the first stage starts.
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
        echo "error: PYTHON=$PYTHON is not an interpreter that can be run; set PYTHON to one with the project installed" >&2
        exit 2
    fi
    local dry=()
    [[ "${DRY_RUN:-0}" == 1 ]] && dry=(--dry_run)
    "$PYTHON" -m mop.driver_check --python_name "$PYTHON" --executor "${EXECUTOR:-local}" ${dry[@]+"${dry[@]}"} \
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

MOP_DEPTH_RULES=(third_to_last block_influence)  # prune.py --depth_rule; the first is the paper's

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

MOP_OBJECTIVES=(sft kd kd+sft)  # finetune.py --objective; the first is the paper's

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

mop_objectives_of() {
    # Usage: mop_objectives_of RUN_NAME -- the recovery objectives FT_OBJECTIVE gives this run, one a line.
    local entry rule
    rule=$(mop_depth_rule_of "$1")
    for entry in ${FT_OBJECTIVE:-sft}; do
        if [[ "$entry" != *:* ]]; then echo "$entry"; elif [[ "${entry%%:*}" == "$rule" ]]; then echo "${entry#*:}"; fi
    done | awk '!seen[$0]++'
}

mop_objective_suffix() {
    # The recovered folder's suffix for an objective (mop/layout.py OBJECTIVE_SUFFIX): none for sft.
    case $1 in sft) echo "" ;; kd) echo "_kd" ;; kd+sft) echo "_kd_sft" ;; esac
}

mop_run_name() {
    # Usage: mop_run_name PATH_NAME RULE -- the paper's rule keeps the path's name (run_seed_1), any
    # other rule is appended (run_seed_1_block_influence), so both sit side by side in one table.
    if [[ "$2" == "${MOP_DEPTH_RULES[0]}" ]]; then echo "$1"; else echo "$1_$2"; fi
}

mop_depth_rule_of() {
    # Usage: mop_depth_rule_of RUN_NAME -- the depth rule a run folder's name stands for.
    local rule
    for rule in "${MOP_DEPTH_RULES[@]:1}"; do
        [[ "$1" == *"_$rule" ]] && { echo "$rule"; return; }
    done
    echo "${MOP_DEPTH_RULES[0]}"
}

mop_runs() {
    # One line per pruning run, "NAME SEED SEQUENCE": every path of RUN_NAMES / RUN_SEEDS /
    # RUN_SEQUENCES under every rule of DEPTH_RULE.
    local rule k
    for rule in ${DEPTH_RULE:-third_to_last}; do
        for k in "${!RUN_NAMES[@]}"; do
            echo "$(mop_run_name "${RUN_NAMES[$k]}" "$rule") ${RUN_SEEDS[$k]} ${RUN_SEQUENCES[$k]}"
        done
    done
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
    "$PYTHON" -m mop.stages "$plan" --log_dir "$LOG_DIR" --executor "${EXECUTOR:-local}" \
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

mop_resolve_model() {
    # Embedded names (smollm2-135m, ...) become their cached checkpoint folder.
    "$PYTHON" -c "import sys; from mop.models.loading import resolve_model_name; print(resolve_model_name(sys.argv[1]))" "$1"
}

mop_finetune_cmd() {
    # Fine-tuning command, on several GPUs through accelerate when NUM_GPUS > 1 (port 0: a free
    # port, so that several such stages can run side by side); ACCELERATE_CONFIG (e.g.
    # configs/fsdp.yaml) selects accelerate's distributed setup (FSDP shards the model).
    if [[ "${NUM_GPUS:-1}" -gt 1 || -n "${ACCELERATE_CONFIG:-}" ]]; then
        echo "$PYTHON" -m accelerate.commands.launch ${ACCELERATE_CONFIG:+--config_file "$ACCELERATE_CONFIG"} \
            --num_processes "${NUM_GPUS:-1}" --main_process_port 0 "$MODEL_FOLDER/finetune.py"
    else
        echo "$PYTHON" "$MODEL_FOLDER/finetune.py"
    fi
}

mop_eval() {
    # Usage: mop_eval [mop_stage options] NAME MODEL_DIR OUT_DIR
    local opts=()
    while [[ "${1:-}" == --* ]]; do
        if [[ "$1" == --cpu ]]; then opts+=("$1"); shift; else opts+=("$1" "$2"); shift 2; fi
    done
    mop_stage ${opts[@]+"${opts[@]}"} "$1" "$3/mop_eval.json" env NUM_GPUS="${NUM_GPUS:-1}" PYTHON="$PYTHON" \
        bash "$MODEL_FOLDER/eval.sh" "$2" "$3" "$TASKS"
}

mop_dense_eval() {
    # The model name as given: eval.sh resolves embedded names itself when the stage runs, so that
    # declaring stages runs no Python (and a dry run builds nothing).
    mop_eval dense_eval "$MODEL_NAME" "$RESULTS_DIR/dense_eval"
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
    # The depth rule comes from the run's name (mop_run_name).
    local run=$1 seed=$2 sequence=$3 iterations=$4
    shift 4
    local dir="$RESULTS_DIR/$run" resume=()
    [[ -f "$dir/run_config.json" ]] && resume=(--resume)
    mop_stage "${run}_prune" "$dir/prune_iteration_${iterations}/mop_prune.json" \
        "$PYTHON" "$MODEL_FOLDER/prune.py" --model_name "$MODEL_NAME" --save_dir "$dir" \
        --num_iterations "$iterations" --decision_sequence "$sequence" --seed "$seed" \
        --depth_rule "$(mop_depth_rule_of "$run")" --keep_iterations "$(mop_kept_iterations)" --recovered_checkpoints "$(mop_recovered_iterations | wc -l)" \
        ${resume[@]+"${resume[@]}"} ${PRUNE_ARGS:-} "$@"
}

mop_recover_and_score() {
    # Usage: mop_recover_and_score RUN_NAME ITERATION
    # Scores the pruned checkpoint first when EVAL_UNRECOVERED=1, then recovers and scores it once
    # per objective FT_OBJECTIVE gives the run (sft keeps the paper's names; kd appends _kd).
    local run=$1 i=$2 objective sfx
    local dir="$RESULTS_DIR/$run"
    local pruned="$dir/prune_iteration_${i}" tuned
    # Scoring needs the pruned checkpoint, recovery its path's pruning, the recovered score its
    # recovery; the pruned scores and the recoveries of one path are alike (Slurm job arrays).
    if [[ "${EVAL_UNRECOVERED:-0}" == 1 ]]; then
        mop_eval --after "${run}_prune" --array "${run}_it%a_eval" "${run}_it${i}_eval" "$pruned" "${pruned}_eval"
    fi
    local teacher_cache=()
    for objective in $(mop_objectives_of "$run"); do
        sfx=$(mop_objective_suffix "$objective")
        tuned="$dir/prune_iteration_${i}_ft_${NUM_EPOCHS}ep${sfx}"
        # Distillation: one teacher cache for the whole grid (used when the memory plan picks it).
        [[ "$objective" == sft ]] || teacher_cache=(--teacher_cache_dir "$RESULTS_DIR/teacher_cache")
        # shellcheck disable=SC2046
        mop_stage --after "${run}_prune" --array "${run}_it%a${sfx}_finetune" "${run}_it${i}${sfx}_finetune" "$tuned" \
            $(mop_finetune_cmd) --pruned_model_dir "$pruned" --tuned_model_dir "$tuned" --num_epochs "$NUM_EPOCHS" \
            --objective "$objective" ${teacher_cache[@]+"${teacher_cache[@]}"} --resume $(mop_memory_budget_flag) ${FT_ARGS:-}
        mop_eval --after "${run}_it${i}${sfx}_finetune" "${run}_it${i}${sfx}_ft_eval" "$tuned" "${tuned}_eval"
    done
}

mop_tables() {
    # The result tables, after every stage declared so far; always made anew.
    mop_stage --cpu --after "${MOP_STAGES[*]}" tables "" "$PYTHON" -m mop.evaluate.tables "$RESULTS_DIR" ${TABLE_ARGS:-}
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
    # The whole driver: dense score, then for each path (RUN_NAMES[k], RUN_SEEDS[k],
    # RUN_SEQUENCES[k]) and each depth rule of DEPTH_RULE prune NUM_ITERATIONS iterations and
    # recover + score each iteration in FT_ITERATIONS ("all" = every iteration); finally the
    # result tables. The stages then run with the executor chosen by EXECUTOR.
    mop_common_settings
    mop_setup "$1"
    mop_dense_eval
    local runs line run seed sequence i
    mapfile -t runs < <(mop_runs)
    for line in "${runs[@]}"; do
        read -r run seed sequence <<<"$line"
        mop_prune_run "$run" "$seed" "$sequence" "$NUM_ITERATIONS"
        for i in $(mop_recovered_iterations); do
            mop_recover_and_score "$run" "$i"
        done
    done
    mop_tables
    mop_finish
}
