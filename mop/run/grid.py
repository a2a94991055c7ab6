"""The drivers' grid: every pruning run x depth rule x recovered iteration x objective as stages.

    python -m mop.run.grid plan PLAN --model_folder DIR --model_name NAME --results_dir DIR ...
    python -m mop.run.grid runs --run_names "run_seed_1 run_seed_2" --seeds "1 2" --sequences "LG GL" \\
        --depth_rules "third_to_last block_influence"
    python -m mop.run.grid rule_of RUN | objectives_of RUN --objectives "sft block_influence:kd" | suffix OBJECTIVE
    python -m mop.run.grid facts > scripts/grid_facts.sh

A driver (scripts/pipeline.sh, `mop_pipeline`) reads its settings from the environment, checks
them, then calls `plan`, which appends the whole grid to the driver's stage plan (the format
mop.run.stages reads): the dense score; per path and depth rule the pruning run; per recovered
iteration the unrecovered score (EVAL_UNRECOVERED=1), then per objective the recovery and its
score; the checkpoint checks of a plugin (CHECK_MODULE, LLaVA's); last the result tables. The
names of folders and stages come from mop.core.layout, the choices of each setting from the
modules that own them; `facts` writes those choices for the drivers' checks, which run before
any Python does (scripts/grid_facts.sh, kept current by tests/unit/run/test_grid.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

from ..core.args import OneLineParser
from ..core.io import UsageError, exit_on_usage_error
from ..core.layout import (DEPTH_RULES, EVAL_META, OBJECTIVE_SUFFIX, OBJECTIVES, PRUNE_META, RUN_CONFIG,
                           depth_rule_of_run, run_folder_name)
from .stages import EXECUTORS, Stage, plan_records

KEEP_CHECKPOINTS = ("used", "all")  # only what is recovered, or every checkpoint


@dataclass(frozen=True)
class PrunePath:
    """One pruning path of a driver: RUN_NAMES[k], RUN_SEEDS[k], RUN_SEQUENCES[k]."""

    name: str
    seed: str
    sequence: str


@dataclass(frozen=True)
class Grid:
    """A driver's settings, as the drivers name them."""

    model_folder: str
    model_name: str
    results_dir: str
    log_dir: str
    python: str
    paths: tuple[PrunePath, ...]
    depth_rules: tuple[str, ...] = (DEPTH_RULES[0],)
    objectives: str = "sft"  # FT_OBJECTIVE: OBJECTIVE or RULE:OBJECTIVE entries, space-separated
    num_iterations: int = 1
    ft_iterations: str = "all"  # "all" or iterations separated by spaces, in the order given
    num_epochs: str = "1"
    keep_checkpoints: str = "used"
    eval_unrecovered: bool = False
    tasks: str = "paper"
    prune_args: str = ""
    ft_args: str = ""
    table_args: str = ""
    num_gpus: str = "1"
    accelerate_config: str = ""
    max_memory_gb: str = "24"
    embedded: bool = False
    check_module: str = ""  # a plugin whose `check` subcommand verifies checkpoints (LLaVA's)
    prune_extra: tuple[str, ...] = ()  # flags after PRUNE_ARGS (Llava: --calibration_images FILE)


# ----------------------------------------------------------------------------- the expansion


def runs(paths: tuple[PrunePath, ...], depth_rules: tuple[str, ...]) -> list[PrunePath]:
    """Every path under every depth rule, rule by rule; the run is named for its rule."""
    return [PrunePath(run_folder_name(p.name, rule), p.seed, p.sequence) for rule in depth_rules for p in paths]


def objectives_of(run: str, spec: str) -> list[str]:
    """The objectives FT_OBJECTIVE gives a run, in order, each once: OBJECTIVE entries apply to
    every run, RULE:OBJECTIVE ones to the runs of that depth rule."""
    rule, found = depth_rule_of_run(run), []
    for entry in spec.split():
        entry_rule, _, objective = entry.rpartition(":")
        if entry_rule in ("", rule) and objective not in found:
            found.append(objective)
    return found


def recovered_iterations(grid: Grid) -> list[int]:
    """FT_ITERATIONS: "all" is 1..NUM_ITERATIONS; otherwise the iterations in the order given."""
    if grid.ft_iterations.strip() == "all":
        return list(range(1, grid.num_iterations + 1))
    return [int(i) for i in grid.ft_iterations.split()]


def kept_iterations(grid: Grid) -> str:
    """prune.py --keep_iterations: only what is recovered (prune.py adds the last iteration), or
    every checkpoint (KEEP_CHECKPOINTS=all, e.g. for latency over a whole path)."""
    if grid.keep_checkpoints == "all" or grid.ft_iterations.strip() == "all":
        return "all"
    return ",".join(str(i) for i in recovered_iterations(grid))


def memory_flag(grid: Grid) -> list[str]:
    """finetune.py --max_memory_gb: the paper's 24 GB card by default; `device` passes none (the
    GPU's own memory), nor do embedded runs (on CPU recovery makes no memory plan)."""
    return [] if grid.embedded or grid.max_memory_gb == "device" else ["--max_memory_gb", grid.max_memory_gb]


def finetune_command(grid: Grid) -> list[str]:
    """Through accelerate when NUM_GPUS > 1 or ACCELERATE_CONFIG is set (port 0: a free port, so
    that several such stages run side by side; e.g. configs/fsdp.yaml shards the model)."""
    script = f"{grid.model_folder}/finetune.py"
    if int(grid.num_gpus) > 1 or grid.accelerate_config:
        config = ["--config_file", grid.accelerate_config] if grid.accelerate_config else []
        return [grid.python, "-m", "accelerate.commands.launch", *config, "--num_processes", grid.num_gpus,
                "--main_process_port", "0", script]
    return [grid.python, script]


def eval_stage(grid: Grid, name: str, model: str, out_dir: str, after: tuple[str, ...] = (), array: str = "") -> Stage:
    """A score by the model folder's eval.sh (it resolves embedded names itself when it runs)."""
    command = ("env", f"NUM_GPUS={grid.num_gpus}", f"PYTHON={grid.python}", "bash", f"{grid.model_folder}/eval.sh",
               model, out_dir, grid.tasks)
    return Stage(name, f"{out_dir}/{EVAL_META}", command, after, array)


def check_stage(grid: Grid, name: str, after: str, folders: list[str]) -> list[Stage]:
    """The plugin's checkpoint check (reload, answer, vision unchanged), when CHECK_MODULE is set."""
    if not grid.check_module:
        return []
    out = f"{grid.log_dir}/checks/{name}.json"
    command = (grid.python, "-m", grid.check_module, "check", *folders, "--reference", grid.model_name, "--out", out)
    return [Stage(name, out, command, (after,))]


def prune_stage(grid: Grid, run: PrunePath) -> Stage:
    """One path's pruning run, resumed when its folder holds a run (prune.py --resume)."""
    folder = f"{grid.results_dir}/{run.name}"
    resume = ["--resume"] if os.path.isfile(f"{folder}/{RUN_CONFIG}") else []
    command = (grid.python, f"{grid.model_folder}/prune.py", "--model_name", grid.model_name, "--save_dir", folder,
               "--num_iterations", str(grid.num_iterations), "--decision_sequence", run.sequence, "--seed", run.seed,
               "--depth_rule", depth_rule_of_run(run.name), "--keep_iterations", kept_iterations(grid),
               "--recovered_checkpoints", str(len(recovered_iterations(grid))), *resume, *grid.prune_args.split(),
               *grid.prune_extra)
    return Stage(f"{run.name}_prune", f"{folder}/prune_iteration_{grid.num_iterations}/{PRUNE_META}", command)


def recovery_stages(grid: Grid, run: str, i: int) -> list[Stage]:
    """The unrecovered score (EVAL_UNRECOVERED=1), then per objective the recovery and its score.
    Alike stages share an array template (Slurm job arrays). Once a distilling objective is
    declared, the stages after it in the same iteration are given the grid's teacher cache too."""
    pruned = f"{grid.results_dir}/{run}/prune_iteration_{i}"
    stages, teacher_cache = [], []
    if grid.eval_unrecovered:
        stages.append(eval_stage(grid, f"{run}_it{i}_eval", pruned, f"{pruned}_eval", (f"{run}_prune",),
                                 f"{run}_it%a_eval"))
    for objective in objectives_of(run, grid.objectives):
        suffix = OBJECTIVE_SUFFIX[objective]
        tuned = f"{pruned}_ft_{grid.num_epochs}ep{suffix}"
        if objective != "sft":
            teacher_cache = ["--teacher_cache_dir", f"{grid.results_dir}/teacher_cache"]
        command = (*finetune_command(grid), "--pruned_model_dir", pruned, "--tuned_model_dir", tuned, "--num_epochs",
                   grid.num_epochs, "--objective", objective, *teacher_cache, "--resume", *memory_flag(grid),
                   *grid.ft_args.split())
        stages.append(Stage(f"{run}_it{i}{suffix}_finetune", tuned, command, (f"{run}_prune",),
                            f"{run}_it%a{suffix}_finetune"))
        stages.append(eval_stage(grid, f"{run}_it{i}{suffix}_ft_eval", tuned, f"{tuned}_eval",
                                 (f"{run}_it{i}{suffix}_finetune",)))
    return stages


def grid_stages(grid: Grid) -> list[Stage]:
    """The whole grid in the order the local executor runs it; the tables come last and need all."""
    stages = [eval_stage(grid, "dense_eval", grid.model_name, f"{grid.results_dir}/dense_eval")]
    iterations = recovered_iterations(grid)
    kept = sorted({*iterations, grid.num_iterations})
    for run in runs(grid.paths, grid.depth_rules):
        stages.append(prune_stage(grid, run))
        stages += check_stage(grid, f"{run.name}_prune_check", f"{run.name}_prune",
                              [f"{grid.results_dir}/{run.name}/prune_iteration_{k}" for k in kept])
        for i in iterations:
            stages += recovery_stages(grid, run.name, i)
            stages += check_stage(grid, f"{run.name}_it{i}_ft_check", f"{run.name}_it{i}_finetune",
                                  [f"{grid.results_dir}/{run.name}/prune_iteration_{i}_ft_{grid.num_epochs}ep"])
    tables = (grid.python, "-m", "mop.evaluate.tables", grid.results_dir, *grid.table_args.split())
    stages.append(Stage("tables", "", tables, tuple(s.name for s in stages), gpu=False))
    return stages


# ----------------------------------------------------------------------------- the drivers' checks


def facts() -> str:
    """scripts/grid_facts.sh: the choices of the drivers' settings, for checks that run before any
    Python (a driver refuses DEPTH_RULE=foo even when PYTHON is not yet an interpreter)."""
    return ("# Generated by `python -m mop.run.grid facts` (tests/unit/run/test_grid.py checks it is current): the choices\n"
            "# of the drivers' settings, owned by mop.core.layout (depth rules, objectives) and mop.run.stages.\n"
            f"MOP_DEPTH_RULES=({' '.join(DEPTH_RULES)})  # prune.py --depth_rule; the first is the paper's\n"
            f"MOP_OBJECTIVES=({' '.join(OBJECTIVES)})  # finetune.py --objective; the first is the paper's\n"
            f"MOP_EXECUTORS=({' '.join(EXECUTORS)})  # mop.run.stages\n"
            f"MOP_KEEP_CHECKPOINTS=({' '.join(KEEP_CHECKPOINTS)})  # only what is recovered, or every checkpoint\n")


# ----------------------------------------------------------------------------- command line


def parse_paths(names: str, seeds: str, sequences: str) -> tuple[PrunePath, ...]:
    names_, seeds_, sequences_ = names.split(), seeds.split(), sequences.split()
    if not len(names_) == len(seeds_) == len(sequences_):
        raise UsageError(f"RUN_NAMES, RUN_SEEDS and RUN_SEQUENCES must be as long as each other "
                         f"({len(names_)}, {len(seeds_)}, {len(sequences_)})")
    return tuple(PrunePath(*entry) for entry in zip(names_, seeds_, sequences_))


def add_path_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run_names", default="", help="RUN_NAMES, space-separated")
    p.add_argument("--seeds", default="", help="RUN_SEEDS, space-separated")
    p.add_argument("--sequences", default="", help="RUN_SEQUENCES, space-separated")
    p.add_argument("--depth_rules", default=DEPTH_RULES[0], help="DEPTH_RULE, space-separated")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m mop.run.grid", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="append the driver's grid to a stage plan")
    plan.add_argument("plan", help="the stage plan file the driver opened (appended to)")
    add_path_arguments(plan)
    for flag in ("model_folder", "model_name", "results_dir", "log_dir", "python"):
        plan.add_argument(f"--{flag}", required=True)
    plan.add_argument("--num_iterations", type=int, required=True)
    for flag, default in (("objectives", "sft"), ("ft_iterations", "all"), ("num_epochs", "1"),
                          ("keep_checkpoints", "used"), ("tasks", "paper"), ("prune_args", ""), ("ft_args", ""),
                          ("table_args", ""), ("num_gpus", "1"), ("accelerate_config", ""), ("max_memory_gb", "24"),
                          ("check_module", "")):
        plan.add_argument(f"--{flag}", default=default)
    plan.add_argument("--eval_unrecovered", choices=("0", "1"), default="0")
    plan.add_argument("--embedded", choices=("0", "1"), default="0")
    runs_ = sub.add_parser("runs", help="one line per run: NAME SEED SEQUENCE")
    add_path_arguments(runs_)
    sub.add_parser("rule_of", help="the depth rule of a run folder").add_argument("run")
    objectives = sub.add_parser("objectives_of", help="the objectives FT_OBJECTIVE gives a run, one a line")
    objectives.add_argument("run")
    objectives.add_argument("--objectives", default="sft")
    sub.add_parser("suffix", help="a recovered folder's suffix for an objective").add_argument(
        "objective", choices=OBJECTIVES)
    sub.add_parser("facts", help="print scripts/grid_facts.sh")
    return p


def grid_from_args(args: argparse.Namespace, prune_extra: tuple[str, ...] = ()) -> Grid:
    return Grid(model_folder=args.model_folder, model_name=args.model_name, results_dir=args.results_dir,
                log_dir=args.log_dir, python=args.python,
                paths=parse_paths(args.run_names, args.seeds, args.sequences),
                depth_rules=tuple(args.depth_rules.split()), objectives=args.objectives,
                num_iterations=args.num_iterations, ft_iterations=args.ft_iterations, num_epochs=args.num_epochs,
                keep_checkpoints=args.keep_checkpoints, eval_unrecovered=args.eval_unrecovered == "1",
                tasks=args.tasks, prune_args=args.prune_args, ft_args=args.ft_args, table_args=args.table_args,
                num_gpus=args.num_gpus, accelerate_config=args.accelerate_config,
                max_memory_gb=args.max_memory_gb, embedded=args.embedded == "1", check_module=args.check_module,
                prune_extra=prune_extra)


def run_command(args: argparse.Namespace, prune_extra: tuple[str, ...]) -> None:
    if args.command == "plan":
        with open(args.plan, "ab") as plan:
            plan.write(plan_records(grid_stages(grid_from_args(args, prune_extra))))
    elif args.command == "runs":
        for run in runs(parse_paths(args.run_names, args.seeds, args.sequences), tuple(args.depth_rules.split())):
            print(run.name, run.seed, run.sequence)
    elif args.command == "rule_of":
        print(depth_rule_of_run(args.run))
    elif args.command == "objectives_of":
        for objective in objectives_of(args.run, args.objectives):
            print(objective)
    elif args.command == "suffix":
        print(OBJECTIVE_SUFFIX[args.objective])
    else:
        sys.stdout.write(facts())


def main(argv: list[str] | None = None) -> None:
    """Flags after `--` go to every pruning run unparsed (argparse would read them as its own)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    exit_on_usage_error(run_command)(build_parser().parse_args(argv[:cut]), tuple(argv[cut + 1:]))


if __name__ == "__main__":
    main()
