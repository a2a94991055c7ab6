# Settings for driver runs on the embedded SmolLM2-135M (CPU, minutes): sourced by a driver
# (after scripts/pipeline.sh) when EMBEDDED=1. They replace the driver's own values; each is set
# through its EMBEDDED_* variable (EMBEDDED_ITERATIONS, EMBEDDED_FT_ITERATIONS, EMBEDDED_NUM_EPOCHS,
# EMBEDDED_TASKS, EMBEDDED_FT_ARGS, EMBEDDED_EVAL_UNRECOVERED, EMBEDDED_TABLE_ARGS), EVAL_LIMIT by
# itself. The replaced variables themselves (NUM_ITERATIONS, ..., and MODEL_NAME, MAX_MEMORY_GB),
# given in the environment, are refused first: one line naming the EMBEDDED_* variable to set.
mop_refuse_embedded_overrides
NUM_ITERATIONS=${EMBEDDED_ITERATIONS:-8}
FT_ITERATIONS=(${EMBEDDED_FT_ITERATIONS:-4 8})
NUM_EPOCHS=${EMBEDDED_NUM_EPOCHS:-1}
TASKS=${EMBEDDED_TASKS:-mop_mini,mop_heldout_ppl}  # three multiple-choice tasks + held-out perplexity
FT_ARGS=${EMBEDDED_FT_ARGS:---max_steps 24 --save_steps 12 --num_samples 400 --batch_size 8 --grad_accum 2 --max_length 256}
EVAL_UNRECOVERED=${EMBEDDED_EVAL_UNRECOVERED:-1}  # score before and after recovery
export EVAL_LIMIT=${EVAL_LIMIT:-100}  # first 100 items of each local task, to keep CPU runs short (EVAL_LIMIT=1000 scores all)
TABLE_ARGS=${EMBEDDED_TABLE_ARGS:---targets 0.1,0.2}  # short embedded paths reach ~10-20%, not the paper's 20/30/40%
