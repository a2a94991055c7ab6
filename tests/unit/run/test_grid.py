"""The drivers' grid in Python (mop/run/grid.py): its expansion, its plan records read back by the
executors, and the settings' choices the drivers check with (scripts/grid_facts.sh)."""

import subprocess
import sys

from conftest import REPO

from mop.core.layout import DEPTH_RULES, OBJECTIVE_SUFFIX, OBJECTIVES
from mop.recover.distill import OBJECTIVES as DISTILL_OBJECTIVES
from mop.run import grid
from mop.run.stages import EXECUTORS, check_plan, read_plan


def small_grid(tmp_path, **settings):
    base = dict(model_folder="/m", model_name="model", results_dir=str(tmp_path / "r"), log_dir=str(tmp_path / "logs"),
                python="py", paths=(grid.PrunePath("run_seed_1", "1", "LGGL"), grid.PrunePath("run_seed_2", "2", "GLLG")),
                num_iterations=4, ft_iterations="2 4", num_epochs="2")
    return grid.Grid(**{**base, **settings})


def test_the_facts_file_is_current_and_names_the_owners_choices():
    assert (REPO / "scripts" / "grid_facts.sh").read_text() == grid.facts()
    text = subprocess.run(["bash", "-c", f'source "{REPO}/scripts/grid_facts.sh"; echo "${{MOP_DEPTH_RULES[*]}}|'
                           '${MOP_OBJECTIVES[*]}|${MOP_EXECUTORS[*]}|${MOP_KEEP_CHECKPOINTS[*]}"'],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert text.split("|") == [" ".join(DEPTH_RULES), " ".join(OBJECTIVES), " ".join(EXECUTORS),
                               " ".join(grid.KEEP_CHECKPOINTS)]
    assert DISTILL_OBJECTIVES is OBJECTIVES and set(OBJECTIVE_SUFFIX) == set(OBJECTIVES)


def test_stage_count_is_the_grid_formula(tmp_path):
    """dense + per run (prune + per iteration (unrecovered score + per objective (recovery + score))) + tables."""
    g = small_grid(tmp_path, depth_rules=DEPTH_RULES, objectives="sft block_influence:kd", eval_unrecovered=True)
    stages = grid.grid_stages(g)
    runs = grid.runs(g.paths, g.depth_rules)
    per_run = [1 + 2 * (1 + 2 * len(grid.objectives_of(r.name, g.objectives))) for r in runs]
    assert len(stages) == 1 + sum(per_run) + 1 == 1 + (7 + 11) * 2 + 1
    assert [s.name for s in stages[:2]] == ["dense_eval", "run_seed_1_prune"] and stages[-1].name == "tables"
    assert set(stages[-1].after) == {s.name for s in stages[:-1]} and not stages[-1].gpu
    assert check_plan(stages) == stages  # names unique, needs declared first


def test_plan_records_read_back_unchanged(tmp_path):
    g = small_grid(tmp_path, objectives="kd sft", prune_args="--mlp_only  --align 32", ft_args="--learning_rate 2e-4",
                   prune_extra=("--calibration_images", "a file.jsonl"), check_module="mop.plugins.llava")
    plan = tmp_path / "plan"
    plan.write_bytes(grid.plan_records(grid.grid_stages(g)))
    assert read_plan(plan) == grid.grid_stages(g)
    prune = read_plan(plan)[1]
    assert prune.command[-5:] == ("--mlp_only", "--align", "32", "--calibration_images", "a file.jsonl")
    finetunes = [s for s in read_plan(plan) if s.name.endswith("_finetune")]
    # kd first: the sft recovery declared after it in the same iteration gets the teacher cache too
    assert [s.name for s in finetunes[:2]] == ["run_seed_1_it2_kd_finetune", "run_seed_1_it2_finetune"]
    assert all("--teacher_cache_dir" in s.command for s in finetunes[:2])
    assert finetunes[0].command[-4:] == ("--max_memory_gb", "24", "--learning_rate", "2e-4")
    checks = [s for s in read_plan(plan) if s.name.endswith("_check")]
    assert checks[0].command[:4] == ("py", "-m", "mop.plugins.llava", "check") and checks[0].after == (
        "run_seed_1_prune",) and str(tmp_path / "r/run_seed_1/prune_iteration_4") in checks[0].command


def test_runs_rules_and_objectives(tmp_path):
    paths = (grid.PrunePath("run_seed_1", "1", "LG"),)
    assert [r.name for r in grid.runs(paths, DEPTH_RULES)] == ["run_seed_1", "run_seed_1_block_influence"]
    assert grid.objectives_of("run_seed_1_block_influence", "sft block_influence:kd kd") == ["sft", "kd"]
    assert grid.objectives_of("run_seed_1", "block_influence:kd") == []
    g = small_grid(tmp_path, embedded=True)
    assert "--max_memory_gb" not in " ".join(grid.grid_stages(g)[2].command)  # CPU runs make no memory plan
    g = small_grid(tmp_path, max_memory_gb="device")
    assert "--max_memory_gb" not in " ".join(grid.grid_stages(g)[2].command)


def test_a_resumed_run_is_pruned_with_resume(tmp_path):
    g = small_grid(tmp_path)
    assert "--resume" not in grid.prune_stage(g, g.paths[0]).command
    (tmp_path / "r" / "run_seed_1").mkdir(parents=True)
    (tmp_path / "r" / "run_seed_1" / "run_config.json").write_text("{}")
    assert "--resume" in grid.prune_stage(g, g.paths[0]).command


def test_command_line_appends_to_the_plan_and_refuses_uneven_paths(tmp_path):
    plan = tmp_path / "plan"
    plan.write_bytes(b"")
    common = ["plan", str(plan), "--model_folder", "/m", "--model_name", "m", "--results_dir", str(tmp_path / "r"),
              "--log_dir", str(tmp_path), "--python", "py", "--num_iterations", "2", "--ft_iterations", "2",
              "--prune_args=--mlp_only"]
    ok = subprocess.run([sys.executable, "-m", "mop.run.grid", *common, "--run_names", "run_seed_1", "--seeds", "1",
                         "--sequences", "LG", "--", "--calibration_images", "x.jsonl"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    stages = read_plan(plan)
    assert [s.name for s in stages] == ["dense_eval", "run_seed_1_prune", "run_seed_1_it2_finetune",
                                        "run_seed_1_it2_ft_eval", "tables"]
    assert stages[1].command[-3:] == ("--mlp_only", "--calibration_images", "x.jsonl")
    bad = subprocess.run([sys.executable, "-m", "mop.run.grid", *common, "--run_names", "a b", "--seeds", "1",
                          "--sequences", "LG"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: RUN_NAMES") and len(
        bad.stderr.strip().splitlines()) == 1
