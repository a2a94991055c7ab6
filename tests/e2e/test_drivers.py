"""The bash drivers: shared stage logic (scripts/pipeline.sh: skip complete stages, stop on failure)
and the published paths, seeds and settings each driver runs."""

import re
import subprocess

import pytest
from conftest import REPO

PIPELINE = REPO / "scripts" / "pipeline.sh"


def run_bash(script: str, tmp_path):
    prelude = f'source "{PIPELINE}"; LOG_DIR="{tmp_path}/logs"; mkdir -p "$LOG_DIR"; '
    return subprocess.run(["bash", "-c", prelude + script], capture_output=True, text=True, timeout=60)


def test_complete_stage_is_skipped_and_not_rerun(tmp_path):
    done = tmp_path / "final"
    done.mkdir()
    proc = run_bash(f'mop_stage s1 "{done}" touch "{tmp_path}/ran"; echo after', tmp_path)
    assert proc.returncode == 0 and "[skip] s1 (complete)" in proc.stdout and "after" in proc.stdout
    assert not (tmp_path / "ran").exists()


def test_incomplete_stage_runs_and_logs(tmp_path):
    proc = run_bash(f'mop_stage s2 "{tmp_path}/final" bash -c "echo hello; mkdir {tmp_path}/final"', tmp_path)
    assert proc.returncode == 0 and "[done] s2" in proc.stdout
    assert (tmp_path / "final").is_dir() and (tmp_path / "logs" / "s2.log").read_text().strip() == "hello"


def test_failing_stage_stops_the_driver_with_its_log(tmp_path):
    script = f'mop_stage bad "{tmp_path}/never" bash -c "echo boom >&2; exit 3"; echo not-reached'
    proc = run_bash(script, tmp_path)
    assert proc.returncode == 1 and "not-reached" not in proc.stdout
    assert "[FAIL] bad" in proc.stderr and "boom" in proc.stderr and "completed stages are skipped" in proc.stderr


def test_a_half_written_checkpoint_is_not_taken_for_complete(tmp_path):
    # Interrupted stages leave only `.tmp-<name>` / `.work-<name>` folders beside the final name.
    (tmp_path / ".tmp-prune_iteration_3_ft_2ep").mkdir()
    proc = run_bash(f'mop_stage ft "{tmp_path}/prune_iteration_3_ft_2ep" true', tmp_path)
    assert "[run ] ft" in proc.stdout and "[skip]" not in proc.stdout


def test_embedded_switch_selects_the_cpu_settings(tmp_path):
    script = ('RESULTS_DIR=/x/results_llama3; EMBEDDED_MODEL=smollm2-135m; MODEL_NAME=meta-llama/Meta-Llama-3-8B; '
              'EMBEDDED=1 mop_common_settings; echo "$MODEL_NAME|$TASKS|$RESULTS_DIR|$EVAL_UNRECOVERED"')
    proc = run_bash(script, tmp_path)
    assert proc.stdout.strip().splitlines()[-1] == "smollm2-135m|mop_mini,mop_heldout_ppl|/x/results_llama3_embedded|1"
    proc = run_bash(script.replace("EMBEDDED=1", "EMBEDDED=0"), tmp_path)
    assert proc.stdout.strip().splitlines()[-1] == (
        "meta-llama/Meta-Llama-3-8B|paper|/x/results_llama3|0")


def test_runs_are_every_path_under_every_depth_rule_and_names_carry_the_rule(tmp_path):
    script = ('RUN_NAMES=(run_seed_1 run_depth_only); RUN_SEEDS=(1 1); RUN_SEQUENCES=(LG L); '
              'DEPTH_RULE="third_to_last block_influence"; mop_runs; '
              'for r in run_seed_1 run_seed_1_block_influence run_depth_only_block_influence; do mop_depth_rule_of $r; done')
    lines = run_bash(script, tmp_path).stdout.strip().splitlines()
    assert lines == ["run_seed_1 1 LG", "run_depth_only 1 L", "run_seed_1_block_influence 1 LG",
                     "run_depth_only_block_influence 1 L", "third_to_last", "block_influence", "block_influence"]


def test_objectives_per_run_and_their_folder_suffixes(tmp_path):
    script = ('FT_OBJECTIVE="sft block_influence:kd block_influence:kd+sft"; '
              'for r in run_seed_1 run_seed_1_block_influence; do echo "$r: $(mop_objectives_of $r | paste -sd, -)"; done; '
              'for o in sft kd kd+sft; do echo "[$(mop_objective_suffix $o)]"; done')
    lines = run_bash(script, tmp_path).stdout.strip().splitlines()
    assert lines == ["run_seed_1: sft", "run_seed_1_block_influence: sft,kd,kd+sft", "[]", "[_kd]", "[_kd_sft]"]
    from mop.core.layout import OBJECTIVE_SUFFIX, default_tuned_dir

    assert [default_tuned_dir("/r/prune_iteration_8", 1, o) for o in ("sft", "kd", "kd+sft")] == [
        f"/r/prune_iteration_8_ft_1ep{OBJECTIVE_SUFFIX[o]}" for o in ("sft", "kd", "kd+sft")]


@pytest.mark.parametrize("value", ["distil", "block_influence:sft:kd", "shortgpt:kd", "sft,kd"])
def test_a_bad_objective_stops_the_driver_before_anything_is_made(value, tmp_path):
    import os
    import sys

    results = tmp_path / "results"
    env = {**os.environ, "FT_OBJECTIVE": value, "RESULTS_DIR": str(results), "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(REPO / "Llama3" / "run_mop_llama3_minimal.sh")], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: FT_OBJECTIVE"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not results.exists()


@pytest.mark.parametrize("value", ["shortgpt", "block_influence block_influence", "third_to_last,block_influence", " "])
def test_a_bad_depth_rule_stops_the_driver_before_anything_is_made(value, tmp_path):
    results = tmp_path / "results"
    proc = subprocess.run(["bash", str(REPO / "Llama3" / "run_mop_llama3_minimal.sh")], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "DEPTH_RULE": value, "RESULTS_DIR": str(results),
                                           "PYTHON": "/bin/false"})
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: DEPTH_RULE") and len(
        proc.stderr.strip().splitlines()) == 1
    assert not results.exists()


def test_the_demo_prunes_the_seed_1_path_under_both_rules_and_recovers_iteration_8(tmp_path):
    """Both rules recovered with the paper's sft; block_influence also with kd (distillation)."""
    import os
    import sys

    env = {**os.environ, "EMBEDDED": "1", "DRY_RUN": "1", "RESULTS_DIR": str(tmp_path / "r"), "PYTHON": sys.executable}
    for name in ("DEPTH_RULE", "EMBEDDED_FT_ITERATIONS", "FT_ITERATIONS", "EMBEDDED_ITERATIONS", "FT_OBJECTIVE"):
        env.pop(name, None)
    proc = subprocess.run(["bash", str(REPO / "Llama3" / "run_mop_llama3_minimal.sh")], capture_output=True, text=True,
                          timeout=300, env=env)
    stages = re.findall(r"^\s+(\S+)\s+to run", proc.stdout, re.M)
    sft = ("prune", "it8_eval", "it8_finetune", "it8_ft_eval")
    assert stages == (["dense_eval"] + [f"run_seed_1_{s}" for s in sft]
                      + [f"run_seed_1_block_influence_{s}" for s in sft + ("it8_kd_finetune", "it8_kd_ft_eval")]
                      + ["tables"]), proc.stdout


# ----------------------------------------------------------------------------- the drivers' published paths

# The paper's pre-generated random paths and the two extremes (shared/MOP_FACTS.md), written out.
SEED_PATHS = {"1": "LGGLLLGGLLGLGLLGGL", "2": "GGLLGGGLGGGLLLGGLL", "3": "LGLGGLLGLLGLGLGLGG"}
EXTREMES = {"run_depth_only": "L" * 18, "run_width_only": "G" * 18}


def planned_commands(relative: str, tmp_path, script: str, **env) -> list[list[str]]:
    """What a driver would really run, not what its text says: the commands of `script` in its
    Slurm job scripts (EXECUTOR=slurm DRY_RUN=1 prints them and creates nothing)."""
    import os
    import shlex
    import sys

    env = {"PATH": os.environ["PATH"], "PYTHON": sys.executable, "EXECUTOR": "slurm", "DRY_RUN": "1",
           "RESULTS_DIR": str(tmp_path / "results"), "TMPDIR": str(tmp_path), "HF_HUB_OFFLINE": "1", **env}
    proc = subprocess.run(["bash", str(REPO / relative)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    return [shlex.split(line.split("exec ", 1)[1].removesuffix(" ;;")) for line in proc.stdout.splitlines()
            if "exec " in line and script in line]


def planned_prune_runs(relative: str, tmp_path) -> dict[str, dict]:
    """The prune.py commands a driver would run, by run folder."""
    runs = {}
    for argv in planned_commands(relative, tmp_path, "prune.py"):
        flags = {a: b for a, b in zip(argv, argv[1:]) if a.startswith("--")}
        runs[flags["--save_dir"].rsplit("/", 1)[1]] = {
            "seed": flags["--seed"], "sequence": flags["--decision_sequence"],
            "iterations": flags["--num_iterations"], "mlp_only": "--mlp_only" in argv}
    return runs


@pytest.mark.parametrize("driver,iterations,mlp_only", [
    ("Llama2/run_mop_llama2.sh", "18", False),
    ("Llama3/run_mop_llama3.sh", "18", True),
    ("Llava/run_mop_llava.sh", "17", False),
    ("Custom/run_mop_custom.sh", "18", False),  # no --mlp_only: the family decides (Custom/prune.py)
])
def test_seed_drivers_run_the_papers_three_seed_paths(driver, iterations, mlp_only, tmp_path):
    runs = planned_prune_runs(driver, tmp_path)
    assert runs == {f"run_seed_{seed}": {"seed": seed, "sequence": path, "iterations": iterations, "mlp_only": mlp_only}
                    for seed, path in SEED_PATHS.items()}


@pytest.mark.parametrize("driver,mlp_only", [
    ("Llama2/run_extremes_llama2.sh", False),
    ("Llama3/run_extremes_llama3.sh", True),
    ("Custom/run_extremes_custom.sh", False),
])
def test_extreme_drivers_run_depth_only_and_width_only(driver, mlp_only, tmp_path):
    runs = planned_prune_runs(driver, tmp_path)
    assert {run: r["sequence"] for run, r in runs.items()} == EXTREMES
    assert all(r["iterations"] == "18" and r["mlp_only"] == mlp_only for r in runs.values())


@pytest.mark.parametrize("driver,env,budget", [
    ("Llama2/run_mop_llama2.sh", {}, ["24"]),
    ("Llama3/run_extremes_llama3.sh", {}, ["24"]),
    ("Llava/run_mop_llava.sh", {}, ["24"]),
    ("Llama2/run_mop_llama2.sh", {"MAX_MEMORY_GB": "80"}, ["80"]),
    ("Llama3/run_mop_llama3.sh", {"MAX_MEMORY_GB": "device"}, []),
    ("Llama3/run_mop_llama3_minimal.sh", {"EMBEDDED": "1"}, []),
    ("Llava/run_mop_llava.sh", {"EMBEDDED": "1"}, []),
])
def test_drivers_pass_the_papers_24_gb_budget_to_recovery(driver, env, budget, tmp_path):
    """finetune.py alone plans for the GPU's own memory; the drivers keep the paper's card (24 GB)
    unless MAX_MEMORY_GB says otherwise (`device`: no flag), and embedded CPU runs make no plan."""
    # EMBEDDED=1 refuses FT_ITERATIONS (it replaces it) and reads EMBEDDED_FT_ITERATIONS instead.
    iterations = {"EMBEDDED_FT_ITERATIONS": "3"} if env.get("EMBEDDED") == "1" else {"FT_ITERATIONS": "3"}
    commands = planned_commands(driver, tmp_path, "finetune.py", **iterations, **env)
    assert commands
    for argv in commands:
        assert [b for a, b in zip(argv, argv[1:]) if a == "--max_memory_gb"] == budget, argv


@pytest.mark.parametrize("value", ["lots", "-1", "24GB"])
def test_a_bad_memory_budget_stops_the_driver_before_anything_is_made(value, tmp_path):
    results = tmp_path / "results"
    proc = subprocess.run(["bash", str(REPO / "Llama2" / "run_mop_llama2.sh")], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "MAX_MEMORY_GB": value, "RESULTS_DIR": str(results),
                                           "PYTHON": "/bin/false"})
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: MAX_MEMORY_GB") and len(
        proc.stderr.strip().splitlines()) == 1
    assert not results.exists()
