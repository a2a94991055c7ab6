"""Names of the folders and metadata files a run writes, stated once.

Every stage finds the others' results through these names: a pruning run folder holds
`prune_iteration_<i>/` checkpoints (each with `mop_prune.json`), a recovered checkpoint sits
beside its source as `<pruned>_ft_<e>ep/` (with `mop_finetune.json`), and a scored checkpoint
has an `<checkpoint>_eval/` folder with `mop_eval.json`. A folder with its final name is always
complete (see `mop.core.io.atomic_directory`).
"""

from __future__ import annotations

import re
from pathlib import Path

# A pruning run folder (--save_dir)
RUN_CONFIG = "run_config.json"  # settings, source model, versions, the schedule
RUN_STATE = "run_state.json"  # last complete iteration and its accumulator
SUMMARY_JSON = "pruning_summary.json"
SUMMARY_CSV = "pruning_summary.csv"
REFERENCE_FILE = "path_reference.safetensors"  # metric paths: the unpruned model's outputs
DECISIONS_FILE = "path_decisions.json"  # the decision string taken and its replay flags
CALIBRATION_RECORD = "calibration_images.json"  # LLaVA: which image questions calibrated the run
RECORDS_DIR = "iteration_records"  # iteration_<i>.json: each iteration's mop_prune.json, kept or not
ITERATION_DIR = "prune_iteration_{}"
CHECKPOINT_DIR = re.compile(r"^prune_iteration_(\d+)$")

# Inside a checkpoint folder
PRUNE_META = "mop_prune.json"  # how the pruned checkpoint was made
FINETUNE_META = "mop_finetune.json"  # how the recovered checkpoint was made
LOSS_LOG = "loss_log.csv"
WORK_SETTINGS = "mop_finetune_settings.json"  # in a recovery work folder: what a resume must match
TRAINER_STATE = "trainer_state.json"  # the Trainer's, in each checkpoint-<step>/ of a work folder
TEACHER_KEY = "key.json"  # in a teacher cache: what its targets depend on
TEACHER_COMPLETE = "complete.json"  # in a teacher cache, written last: its shard count and size

# Inside a scoring folder
EVAL_META = "mop_eval.json"
RAW_RESULTS = "lm_eval_results.json"
EVAL_DIR = re.compile(r"^prune_iteration_(\d+)(?:_ft_(\d+)ep(?:_(kd|kd_sft))?)?_eval$")
# The names folder names are built from. Recovery objectives (finetune.py --objective; the first is
# the paper's) and depth rules (prune.py --depth_rule; the first is the paper's): mop.recover.distill
# and mop.prune.steps implement them, the drivers' grid (mop.run.grid) and the tables read them here.
OBJECTIVES = ("sft", "kd", "kd+sft")
THIRD_TO_LAST, BLOCK_INFLUENCE = "third_to_last", "block_influence"
DEPTH_RULES = (THIRD_TO_LAST, BLOCK_INFLUENCE)
# A recovered folder's name says its objective when it is not the paper's (finetune.py --objective).
OBJECTIVE_SUFFIX = {"sft": "", "kd": "_kd", "kd+sft": "_kd_sft"}


def run_folder_name(path_name: str, depth_rule: str) -> str:
    """A driver's run folder: the paper's rule keeps the path's name (run_seed_1), another rule is
    appended (run_seed_1_block_influence), so that both sit side by side in one table."""
    return path_name if depth_rule == DEPTH_RULES[0] else f"{path_name}_{depth_rule}"


def depth_rule_of_run(run: str) -> str:
    """The depth rule a run folder's name stands for (the inverse of run_folder_name)."""
    return next((rule for rule in DEPTH_RULES[1:] if run.endswith(f"_{rule}")), DEPTH_RULES[0])


def objective_of_suffix(suffix: str | None) -> str:
    """The objective an EVAL_DIR match's third group names (None: sft)."""
    return {v.lstrip("_"): k for k, v in OBJECTIVE_SUFFIX.items()}[suffix or ""]


# The JSON types of each metadata file's keys, checked whenever the file is read back
# (mop.core.io.read_metadata; the reader also names the keys it needs). A file of another shape -- a
# JSON list, `"settings": null`, a number written as text -- is then one line naming the file and
# the key, never an AttributeError or KeyError in the code that uses it.
NUMBER = (int, float)
METADATA_TYPES = {
    PRUNE_META: {"iteration": int, "decision": str, "accumulator_after": NUMBER, "neuron_debt_after": NUMBER,
                 "layers": int, "query_heads": int, "kv_heads": int, "intermediate_size": int, "params": int,
                 "compression": NUMBER, "settings": dict, "details": dict, "decisions_so_far": str},
    RUN_CONFIG: {"settings": dict, "schedule": list},
    RUN_STATE: {"last_iteration": int, "accumulator": NUMBER},
    FINETUNE_META: {"settings": dict},
    EVAL_META: {"tasks": dict},
    WORK_SETTINGS: {"settings": dict, "pruned_model_dir": str, "data": str, "num_samples": (int, type(None))},
    TRAINER_STATE: {"global_step": int, "num_input_tokens_seen": int},
    CALIBRATION_RECORD: {"questions": str, "num_prompts": int, "content": str},
    TEACHER_KEY: {"teacher": str, "tokenizer": str, "data": str, "max_length": int, "top_k": int, "temperature": NUMBER,
                  "dtype": str},
    TEACHER_COMPLETE: {"shards": int, "examples": int, "positions": int, "bytes": int},
}


def iteration_dir(save_dir: Path, i: int) -> Path:
    return Path(save_dir) / ITERATION_DIR.format(i)


def record_path(save_dir: Path, i: int) -> Path:
    return Path(save_dir) / RECORDS_DIR / f"iteration_{i}.json"


def iteration_meta_path(save_dir: Path, i: int) -> Path | None:
    """Where iteration i's metadata is: in its checkpoint folder, else (deleted by
    --keep_iterations) in the run's records; None if the iteration is not complete."""
    for path in (iteration_dir(save_dir, i) / PRUNE_META, record_path(save_dir, i)):
        if path.exists():
            return path
    return None


def completed_iterations(save_dir: Path) -> int:
    """Number of consecutive complete iterations 1..k (a folder's final name means complete;
    a deleted iteration counts through its record)."""
    k = 0
    while iteration_meta_path(save_dir, k + 1) is not None:
        k += 1
    return k


def default_tuned_dir(pruned_dir: str, num_epochs: float, objective: str = "sft") -> str:
    """`<pruned>_ft_<e>ep` (`_kd`, `_kd_sft` appended for those objectives), the results layout's
    name for a recovered checkpoint."""
    return f"{str(pruned_dir).rstrip('/')}_ft_{num_epochs:g}ep{OBJECTIVE_SUFFIX.get(objective, '')}"


def work_dir_for(final_dir: Path) -> Path:
    """Resumable intermediate state lives in a hidden sibling (like atomic_directory's `.tmp-`),
    so that globs over a run folder's `prune_iteration_*` never see a half-done result."""
    return final_dir.parent / f".work-{final_dir.name}"


# What a pruning run writes directly inside its folder: temporaries of these names left by a
# killed run are removed when the next run on the folder takes its lock.
RUN_TEMPORARIES = "|".join([r"prune_iteration_\d+"] + [re.escape(name) for name in (
    RUN_CONFIG, RUN_STATE, SUMMARY_JSON, SUMMARY_CSV, REFERENCE_FILE, DECISIONS_FILE, CALIBRATION_RECORD)])
