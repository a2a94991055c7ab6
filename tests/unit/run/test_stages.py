"""Stage graphs and their executors (mop/run/stages.py, scripts/pipeline.sh): local, gpus, slurm.

The stage commands here are cheap fakes; the real drivers are exercised in the slow test at the
end and in the report of issue 13.
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

from mop.core.io import UsageError
from mop.run.stages import (Stage, check_plan, dependants, gpu_slots, job_dependencies, plan_jobs, read_plan, run_gpus,
                            run_local)

sys.path.insert(0, str(REPO / "tests" / "fake_slurm"))
from run_recorded import recorded_jobs, run_recorded  # noqa: E402

PIPELINE = REPO / "scripts" / "pipeline.sh"
FAKE_SLURM = REPO / "tests" / "fake_slurm"


def bash(script: str, env=None, timeout=120):
    full_env = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=timeout, env=full_env)


# ----------------------------------------------------------------------------- the plan


def test_plan_written_by_bash_reads_back_every_argument_unchanged(tmp_path):
    odd = ["two words", "it's \"quoted\"", "line\nbreak", "", "$HOME", "*", "--after"]
    script = (f'source "{PIPELINE}"; mop_plan_open; '
              f'mop_stage --after "" first "{tmp_path}/a" true; '
              f'mop_stage --after "first" --array "it%a_ft" --cpu it12_ft "" printf "%s|" "${{ODD[@]}}"; '
              f'cp "$MOP_PLAN" "{tmp_path}/plan"')
    proc = bash("ODD=(" + " ".join(f"$'{a.encode('unicode_escape').decode().replace(chr(39), chr(92) + chr(39))}'"
                                   for a in odd) + "); " + script)
    assert proc.returncode == 0, proc.stderr
    first, second = read_plan(tmp_path / "plan")
    assert first == Stage("first", f"{tmp_path}/a", ("true",), (), "", True)
    assert second.command == ("printf", "%s|", *odd)
    assert (second.after, second.array, second.index, second.gpu, second.done) == (("first",), "it%a_ft", 12, False, "")


def test_plan_checks_reject_what_no_executor_could_run():
    ok = Stage("a", "", ("true",))
    with pytest.raises(UsageError, match="declared twice"):
        check_plan([ok, ok])
    with pytest.raises(UsageError, match="must be declared before"):
        check_plan([Stage("b", "", ("true",), after=("a",)), ok])
    with pytest.raises(UsageError, match="array template"):
        check_plan([Stage("run_it4_ft", "", ("true",), array="run_it%a_eval")])
    with pytest.raises(UsageError, match="no command"):
        check_plan([Stage("c", "", ())])


def test_dependants_are_transitive_and_nothing_else():
    stages = [Stage("p1", "", ("t",)), Stage("f1", "", ("t",), ("p1",)), Stage("e1", "", ("t",), ("f1",)),
              Stage("p2", "", ("t",)), Stage("f2", "", ("t",), ("p2",)), Stage("tab", "", ("t",), ("e1", "f2"))]
    assert dependants(stages, "p1") == {"f1", "e1", "tab"}
    assert dependants(stages, "f2") == {"tab"}


def test_gpu_slots():
    assert gpu_slots("0,1,2,3", 1) == ["0", "1", "2", "3"]
    assert gpu_slots("4, 5,6,7", 2) == ["4,5", "6,7"]
    for bad, per in (("", 1), ("0,1,2", 2)):
        with pytest.raises(UsageError):
            gpu_slots(bad, per)


# ----------------------------------------------------------------------------- local and gpus


def recorder(tmp_path, name, seconds=0.0, code=0, creates=True):
    """A stage command that records when it ran and with which GPUs, then exits with `code`."""
    done = tmp_path / "out" / name
    script = textwrap.dedent(f"""
        import json, os, sys, time
        start = time.time(); time.sleep({seconds})
        rec = {{"start": start, "end": time.time(), "gpus": os.environ.get("CUDA_VISIBLE_DEVICES")}}
        open({str(tmp_path / 'out' / (name + '.json'))!r}, "w").write(json.dumps(rec))
        print("hello from {name}")
        if {code}: sys.exit({code})
        if {creates}: os.makedirs({str(done)!r})
    """)
    return str(done), (sys.executable, "-c", script)


def stage(tmp_path, name, after=(), seconds=0.0, code=0, gpu=True):
    done, command = recorder(tmp_path, name, seconds, code)
    return Stage(name, done, command, tuple(after), gpu=gpu)


def ran(tmp_path, name):
    path = tmp_path / "out" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


@pytest.fixture
def out_dir(tmp_path):
    (tmp_path / "out").mkdir()
    return tmp_path


def test_gpus_runs_independent_stages_side_by_side_one_per_gpu(out_dir, capsys):
    tmp = out_dir
    stages = [stage(tmp, "prune_a", seconds=0.6), stage(tmp, "prune_b", seconds=0.6),
              stage(tmp, "ft_a", ("prune_a",), 0.6), stage(tmp, "ft_b", ("prune_b",), 0.6),
              stage(tmp, "tables", ("ft_a", "ft_b"), gpu=False)]
    assert run_gpus(stages, tmp / "logs", ["0", "1"]) == 0
    records = {s.name: ran(tmp, s.name) for s in stages}
    # Dependencies respected: each starts after what it needs has ended.
    for s in stages:
        for d in s.after:
            assert records[s.name]["start"] >= records[d]["end"]
    # Two at a time, never more, each on its own GPU; the table needs no GPU.
    events = sorted([(r["start"], 1) for n, r in records.items() if n != "tables"]
                    + [(r["end"], -1) for n, r in records.items() if n != "tables"])
    level, peak = 0, 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    assert peak == 2
    assert {records["prune_a"]["gpus"], records["prune_b"]["gpus"]} == {"0", "1"}
    assert records["tables"]["gpus"] == ""
    assert (tmp / "logs" / "ft_a.log").read_text().strip() == "hello from ft_a"


def test_gpus_failure_stops_only_its_dependants_and_is_reported_at_the_end(out_dir, capsys):
    tmp = out_dir
    stages = [stage(tmp, "prune_a", code=3), stage(tmp, "prune_b"), stage(tmp, "ft_a", ("prune_a",)),
              stage(tmp, "ft_b", ("prune_b",)), stage(tmp, "eval_a", ("ft_a",)), stage(tmp, "eval_b", ("ft_b",)),
              stage(tmp, "bad_b", ("prune_b",), code=4), stage(tmp, "tables", ("eval_a", "eval_b"), gpu=False)]
    assert run_gpus(stages, tmp / "logs", ["0", "1"]) == 1
    assert [s.name for s in stages if ran(tmp, s.name)] == ["prune_a", "prune_b", "ft_b", "eval_b", "bad_b"]
    err = capsys.readouterr().err
    assert "2 stage(s) failed" in err and "[FAIL] prune_a failed (exit status 3)" in err
    assert "[FAIL] bad_b failed (exit status 4)" in err and "hello from bad_b" in err
    assert "Not run because a stage they need failed: ft_a, eval_a, tables" in err


def test_executors_skip_complete_stages(out_dir, capsys):
    tmp = out_dir
    stages = [stage(tmp, "a"), stage(tmp, "b", ("a",))]
    os.makedirs(stages[0].done)
    assert run_gpus(stages, tmp / "logs", ["0"]) == 0
    assert ran(tmp, "a") is None and ran(tmp, "b")
    assert "[skip] a (complete)" in capsys.readouterr().out
    assert run_local(stages, tmp / "logs") == 0  # both complete now
    assert capsys.readouterr().out.count("[skip]") == 2


def test_local_stops_at_the_first_failure_in_declared_order(out_dir, capsys):
    tmp = out_dir
    stages = [stage(tmp, "a"), stage(tmp, "b", code=2), stage(tmp, "c")]
    assert run_local(stages, tmp / "logs") == 1
    assert ran(tmp, "a") and ran(tmp, "b") and ran(tmp, "c") is None
    assert "Stopping." in capsys.readouterr().err


def test_gpus_executor_through_the_bash_functions(tmp_path):
    script = (f'source "{PIPELINE}"; LOG_DIR="{tmp_path}/logs"; RESULTS_DIR="{tmp_path}"; mkdir -p "$LOG_DIR"; '
              'mop_plan_open; '
              f'mop_stage s1 "{tmp_path}/d1" bash -c "echo \\$CUDA_VISIBLE_DEVICES > {tmp_path}/g1; mkdir {tmp_path}/d1"; '
              f'mop_stage --after s1 s2 "{tmp_path}/d2" bash -c "exit 5"; '
              f'mop_stage s3 "{tmp_path}/d3" bash -c "echo \\$CUDA_VISIBLE_DEVICES > {tmp_path}/g3; mkdir {tmp_path}/d3"; '
              f'mop_stage --after s2 s4 "{tmp_path}/d4" touch "{tmp_path}/ran4"; '
              'mop_run_stages; echo not-reached')
    proc = bash(script, {"EXECUTOR": "gpus", "GPUS": "3,5", "NUM_GPUS": "1"})
    assert proc.returncode == 1 and "not-reached" not in proc.stdout
    assert (tmp_path / "d1").is_dir() and (tmp_path / "d3").is_dir() and not (tmp_path / "ran4").exists()
    assert {(tmp_path / "g1").read_text().strip(), (tmp_path / "g3").read_text().strip()} == {"3", "5"}
    assert "[FAIL] s2" in proc.stderr and "s4" in proc.stderr
    proc = bash(script, {"EXECUTOR": "gpus", "GPUS": ""})
    assert proc.returncode == 2 and "needs the GPU ids" in proc.stderr


# ----------------------------------------------------------------------------- slurm


def test_jobs_group_alike_stages_into_arrays():
    t = ("true",)
    stages = [Stage("p", "x", t), Stage("r_it4_ft", "x", t, ("p",), "r_it%a_ft"),
              Stage("r_it4_ev", "x", t, ("r_it4_ft",), "r_it%a_ev"),
              Stage("r_it8_ft", "x", t, ("p",), "r_it%a_ft"), Stage("r_it8_ev", "x", t, ("r_it8_ft",), "r_it%a_ev")]
    jobs = plan_jobs(stages)
    # Alike recoveries form one array; scores need different recoveries, so stay single jobs.
    assert [j.label for j in jobs] == ["p", "r_it[4,8]_ft", "r_it[4]_ev", "r_it[8]_ev"]
    job_of = {"p": "7", "r_it4_ft": "8_4", "r_it8_ft": "8_8"}
    assert job_dependencies(["r_it4_ft"], job_of, {"8": {"r_it4_ft", "r_it8_ft"}}) == ["8_4"]
    assert job_dependencies(["p", "r_it4_ft", "r_it8_ft"], job_of, {"8": {"r_it4_ft", "r_it8_ft"}}) == ["7", "8"]


FAKE_PRUNE = """
import argparse, json, os
p = argparse.ArgumentParser()
for flag in ("--model_name", "--save_dir", "--num_iterations", "--decision_sequence", "--seed", "--depth_rule", "--keep_iterations",
             "--recovered_checkpoints"):
    p.add_argument(flag)
p.add_argument("--resume", action="store_true")
a = p.parse_args()
os.makedirs(a.save_dir, exist_ok=True)
open(os.path.join(a.save_dir, "run_config.json"), "w").write("{}")
for i in range(1, int(a.num_iterations) + 1):
    d = os.path.join(a.save_dir, f"prune_iteration_{i}")
    os.makedirs(d, exist_ok=True)
    json.dump({"iteration": i, "params": 1000 - 100 * i, "compression": i / 10}, open(os.path.join(d, "mop_prune.json"), "w"))
"""
FAKE_FINETUNE = """
import argparse, os, shutil, sys
p = argparse.ArgumentParser()
for flag in ("--pruned_model_dir", "--tuned_model_dir", "--num_epochs", "--objective", "--max_memory_gb"):
    p.add_argument(flag)
p.add_argument("--resume", action="store_true")
a = p.parse_args()
if not os.path.exists(os.path.join(a.pruned_model_dir, "mop_prune.json")):
    sys.exit(f"no pruned checkpoint {a.pruned_model_dir}")
shutil.copytree(a.pruned_model_dir, a.tuned_model_dir)
open(os.path.join(a.tuned_model_dir, "mop_finetune.json"), "w").write("{}")
"""
FAKE_EVAL = """#!/usr/bin/env bash
set -euo pipefail
[[ -d "$1" ]] || { echo "no checkpoint $1" >&2; exit 2; }
mkdir -p "$2"
echo "{\\"model\\": \\"$1\\", \\"tasks\\": {\\"fake_task\\": {\\"acc\\": 0.5}}}" > "$2/mop_eval.json"
"""


@pytest.fixture
def fake_driver(tmp_path):
    """A driver with the real pipeline.sh but cheap fake prune.py / finetune.py / eval.sh."""
    folder = tmp_path / "Fake"
    folder.mkdir()
    (tmp_path / "fake-model").mkdir()
    (tmp_path / "fake-model" / "config.json").write_text('{"model_type": "llama"}')  # the setup check resolves it
    (folder / "prune.py").write_text(FAKE_PRUNE)
    (folder / "finetune.py").write_text(FAKE_FINETUNE)
    (folder / "eval.sh").write_text(FAKE_EVAL)
    driver = folder / "run_fake.sh"
    driver.write_text(textwrap.dedent(f"""\
        HERE=$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)
        source "{PIPELINE}"
        MODEL_NAME="{tmp_path}/fake-model"
        NUM_ITERATIONS=3
        FT_ITERATIONS=(2 3)
        NUM_EPOCHS=1
        RUN_NAMES=(run_seed_1 run_seed_2)
        RUN_SEEDS=(1 2)
        RUN_SEQUENCES=(LGL GGL)
        RESULTS_DIR="{tmp_path}/results"
        mop_pipeline "$HERE"
    """))
    return driver


def slurm_env(tmp_path, **extra):
    return {"PATH": f"{FAKE_SLURM}:{os.environ['PATH']}", "FAKE_SLURM_DIR": str(tmp_path / "slurm"),
            "EXECUTOR": "slurm", "EVAL_UNRECOVERED": "1", "TASKS": "mop_arc", "SLURM_PARTITION": "gpu",
            "SLURM_ACCOUNT": "lab", "SLURM_TIME": "04:00:00", "SLURM_EXTRA": "--mem=64G; #SBATCH --cpus-per-task=8",
            **extra}


def stages_of(job, prefix_len):
    """Stage names a recorded job runs: its name, or its template with each array index."""
    name = job.name[prefix_len:]
    return [name.replace("[]", str(i)) for i in job.array] if job.array else [name]


def recorded_graph(fake_dir):
    jobs = recorded_jobs(fake_dir)
    prefix_len = jobs[0].name.index(".") + 1
    task_stage = {}
    for job in jobs:
        for task, name in zip(job.task_ids(), stages_of(job, prefix_len)):
            task_stage[task] = name
    graph = {}
    for job in jobs:
        needs = set()
        for d in job.dependencies:
            needs |= {name for task, name in task_stage.items() if task == d or task.startswith(d + "_")}
        for name in stages_of(job, prefix_len):
            graph[name] = needs
    return jobs, graph


@pytest.mark.slow  # 6-17 s: make test-slow (CI) runs it
def test_slurm_jobs_dependencies_and_running_them_by_hand(tmp_path, fake_driver):
    proc = bash(f'bash "{fake_driver}"', slurm_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    jobs, graph = recorded_graph(tmp_path / "slurm")
    for run in ("run_seed_1", "run_seed_2"):
        assert graph[f"{run}_prune"] == set()
        for i in (2, 3):
            assert graph[f"{run}_it{i}_eval"] == {f"{run}_prune"}
            assert graph[f"{run}_it{i}_finetune"] == {f"{run}_prune"}
            assert graph[f"{run}_it{i}_ft_eval"] == {f"{run}_it{i}_finetune"}
    assert graph["dense_eval"] == set()
    assert graph["tables"] == set(graph) - {"tables"}
    # Alike stages went into arrays, with the stage's own log as --output.
    finetune = next(j for j in jobs if j.name.endswith("run_seed_1_it[]_finetune"))
    assert finetune.array == [2, 3] and finetune.output == f"{tmp_path}/results/logs/run_seed_1_it%a_finetune.log"
    text = finetune.path.read_text()
    for line in ("--partition=gpu", "--account=lab", "--time=04:00:00", "--gres=gpu:1", "--mem=64G",
                 "--cpus-per-task=8", "--kill-on-invalid-dep=yes"):
        assert f"#SBATCH {line}\n" in text
    assert "--gres" not in next(j for j in jobs if j.name.endswith(".tables")).path.read_text()
    assert not (tmp_path / "results" / "run_seed_1").exists()  # nothing ran at submission
    # Running the recorded scripts in dependency order gives the complete results folder.
    status = run_recorded(tmp_path / "slurm", {**os.environ, "PYTHON": sys.executable})
    assert status and all(code == 0 for code in status.values()), status
    results = tmp_path / "results"
    for run in ("run_seed_1", "run_seed_2"):
        for i in (2, 3):
            assert (results / run / f"prune_iteration_{i}_eval" / "mop_eval.json").exists()
            assert (results / run / f"prune_iteration_{i}_ft_1ep_eval" / "mop_eval.json").exists()
    assert (results / "dense_eval" / "mop_eval.json").exists() and (results / "results_table.md").exists()
    assert "hello" not in (results / "logs" / "run_seed_2_it3_finetune.log").read_text()
    # Rerunning the driver submits only the always-made table.
    proc = bash(f'bash "{fake_driver}"', slurm_env(tmp_path))
    assert proc.returncode == 0 and proc.stdout.count("[skip]") == len(graph) - 1
    assert len(recorded_jobs(tmp_path / "slurm")) == len(jobs) + 1


def test_slurm_rerun_keeps_queued_jobs_and_resubmits_the_rest(tmp_path, fake_driver):
    env = slurm_env(tmp_path, SLURM_JOB_PREFIX="t")
    # Everything of run_seed_2 is already complete; seed 1's recovery of iteration 3 is queued.
    (tmp_path / "slurm").mkdir()
    (tmp_path / "slurm" / "queue").write_text("555_3|t.run_seed_1_it[]_finetune\n556|t.run_seed_1_prune\n")
    results = tmp_path / "results" / "run_seed_2"
    for i in (1, 2, 3):
        for sub in (f"prune_iteration_{i}", f"prune_iteration_{i}_eval", f"prune_iteration_{i}_ft_1ep",
                    f"prune_iteration_{i}_ft_1ep_eval"):
            (results / sub).mkdir(parents=True)
        for sub in (f"prune_iteration_{i}/mop_prune.json", f"prune_iteration_{i}_eval/mop_eval.json",
                    f"prune_iteration_{i}_ft_1ep_eval/mop_eval.json"):
            (results / sub).write_text("{}")
    proc = bash(f'bash "{fake_driver}"', env)
    assert proc.returncode == 0, proc.stderr
    assert "already queued as job 556" in proc.stdout and "already queued as job 555_3" in proc.stdout
    jobs = recorded_jobs(tmp_path / "slurm")
    by_name = {j.name: j for j in jobs}
    assert not any("run_seed_2" in name for name in by_name)
    assert "t.run_seed_1_prune" not in by_name
    assert by_name["t.run_seed_1_it[]_finetune"].array == [2]
    assert by_name["t.run_seed_1_it[]_finetune"].dependencies == ["556"]
    assert by_name["t.run_seed_1_it3_ft_eval"].dependencies == ["555_3"]
    ft = by_name["t.run_seed_1_it[]_finetune"].job_id
    assert by_name["t.run_seed_1_it2_ft_eval"].dependencies == [ft]  # the whole (one-task) array


def test_slurm_dry_run_prints_scripts_and_graph_and_submits_nothing(tmp_path, fake_driver):
    env = slurm_env(tmp_path, DRY_RUN="1", PATH=os.environ["PATH"])  # no sbatch needed
    proc = bash(f'bash "{fake_driver}"', env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("#!/bin/bash") == 12  # 2 x (prune, eval array, finetune array, 2 scores) + dense + tables
    assert re.search(r"<run_seed_1_it\[2,3\]_finetune>\s+run_seed_1_it\[2,3\]_finetune\s+<- run_seed_1_prune", proc.stdout)
    assert "#SBATCH --dependency=afterok:<run_seed_2_it[2,3]_finetune>_3" in proc.stdout
    assert not (tmp_path / "slurm").exists() and not (tmp_path / "results" / "logs" / "slurm").exists()


# ----------------------------------------------------------------------------- the real driver


def checkpoint_digests(results):
    import hashlib

    return {str(p.relative_to(results)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(results.rglob("model.safetensors"))}


@pytest.mark.slow  # two short runs of the embedded extremes driver: several minutes on 2 cores
def test_gpus_executor_gives_the_same_results_as_local(tmp_path):
    env = {"EMBEDDED": "1", "EMBEDDED_ITERATIONS": "2", "EMBEDDED_FT_ITERATIONS": "2", "EVAL_LIMIT": "10",
           "OMP_NUM_THREADS": "1", "EMBEDDED_FT_ARGS": "--max_steps 2 --save_steps 2 --num_samples 32 --batch_size 4 "
                                                     "--grad_accum 1 --max_length 128"}
    driver = REPO / "Llama3" / "run_extremes_llama3.sh"
    for executor in ("local", "gpus"):
        proc = bash(f'bash "{driver}"', {**env, "EXECUTOR": executor, "GPUS": "0,1",
                                         "RESULTS_DIR": str(tmp_path / executor)}, timeout=1800)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    local, gpus = tmp_path / "local_embedded", tmp_path / "gpus_embedded"
    assert len(checkpoint_digests(local)) == 4  # 2 paths x (the kept pruned iteration 2 + its recovery)
    assert checkpoint_digests(local) == checkpoint_digests(gpus)
    assert (local / "results_table.csv").read_text() == (gpus / "results_table.csv").read_text()
