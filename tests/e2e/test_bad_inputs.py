"""Issue 22: every bad setting is caught before work starts (one line on stderr naming the flag
or variable, exit status 2, nothing created or changed), and every metadata file is read through
one validating reader.

The Python entry points are called in process (their flags are checked before anything heavy,
so each case takes milliseconds); the bash drivers run as subprocesses with RESULTS_DIR and
TMPDIR inside the test's folder, so "nothing created" is checked on everything they could make.
"""

import hashlib
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, make_tokenizer, save_checkpoint, tiny_model

from mop.core.io import UsageError, read_metadata, write_json
from mop.core.layout import EVAL_META, FINETUNE_META, PRUNE_META, RUN_CONFIG, RUN_STATE, WORK_SETTINGS
from mop.evaluate import harness as evaluate
from mop.recover import memory
from mop.recover.settings import RecoverySettings
from mop.run import stages
from mop.run.cli import finetune_main, prune_main

MINIMAL = REPO / "Llama3" / "run_mop_llama3_minimal.sh"  # NUM_ITERATIONS 12, FT_ITERATIONS "8 12"


def tree(root: Path) -> dict[str, str]:
    """Every path under `root` with its content's sha256 ('dir' for folders): what a failed
    command must leave exactly as it was."""
    out = {}
    for path in sorted(root.rglob("*")):
        out[str(path.relative_to(root))] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def assert_one_line_exit_2(code, err: str, *fragments: str) -> str:
    """Exit status 2 and exactly one stderr line, `error: ...`, holding every fragment."""
    lines = err.strip().splitlines()
    assert code == 2, f"exit {code}, stderr:\n{err[-3000:]}"
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err[-3000:]}"
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def call_main(main, capsys) -> tuple[int, str]:
    """Run an entry point in process: (exit status, stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


# ----------------------------------------------------------------------------- Python entry points


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny saved checkpoint (with a good mop_prune.json) and an Alpaca file."""
    root = tmp_path_factory.mktemp("bad_inputs")
    make_tokenizer(root / "tok")
    base = save_checkpoint(tiny_model(2, 4), root / "tok", root / "base")
    data = root / "alpaca.json"
    data.write_text(json.dumps([{"instruction": f"say {i} .", "input": "", "output": "the sun ."} for i in range(8)]))
    return {"base": base, "data": data}


def copy_checkpoint(checkpoint, tmp_path, prune_meta: str | None = None) -> Path:
    import shutil

    pruned = tmp_path / "prune_iteration_1"
    shutil.copytree(checkpoint["base"], pruned)
    if prune_meta is not None:
        (pruned / PRUNE_META).write_text(prune_meta)
    return pruned


@pytest.mark.parametrize("flags,fragments", [
    (["--learning_rate", "nan"], ["--learning_rate", "finite number"]),
    (["--learning_rate", "-0.0001"], ["--learning_rate must be a finite number above 0"]),
    (["--num_epochs", "inf"], ["--num_epochs", "finite number"]),
    (["--num_epochs", "0", "--max_steps", "0"], ["--num_epochs must be a finite number above 0"]),
    (["--lora_dropout", "nan"], ["--lora_dropout", "finite number"]),
    (["--lora_dropout", "1"], ["--lora_dropout must be in [0, 1)"]),
    (["--max_memory_gb", "nan"], ["--max_memory_gb", "finite number"]),
    (["--max_memory_gb", "-2"], ["--max_memory_gb must be a positive number"]),
    (["--lora_alpha", "0"], ["--lora_alpha must be a finite number above 0"]),
    (["--seed", "-1"], ["--seed must be a whole number in 0..4294967295"]),
    (["--batch_size", "0"], ["--batch_size must be at least 1"]),
    (["--num_samples", "0"], ["--num_samples must be at least 1"]),
    (["--precision", "fp8"], ["--precision", "auto", "bf16", "fp32"]),
])
def test_finetune_bad_numbers_stop_before_anything_is_made(flags, fragments, checkpoint, tmp_path, capsys):
    pruned = copy_checkpoint(checkpoint, tmp_path)
    before = tree(tmp_path)
    argv = ["--pruned_model_dir", str(pruned), "--data", str(checkpoint["data"]), "--max_steps", "1", *flags]
    code, err = call_main(lambda: finetune_main({"pruned_model_dir": str(pruned)}, "test", argv), capsys)
    assert_one_line_exit_2(code, err, *fragments)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("meta,fragments", [
    ("[1, 2]", ["mop_prune.json does not hold a JSON object"]),
    ('{"settings": null}', ["'settings' must be an object, found null"]),
    ('{"settings": {"model_name": 7}}', ["settings.model_name must be text, found a whole number"]),
    ('{"iteration": "2", "settings": {}}', ["'iteration' must be a whole number, found text"]),
])
def test_finetune_reads_a_wrong_shaped_mop_prune_json_as_one_line(meta, fragments, checkpoint, tmp_path, capsys):
    pruned = copy_checkpoint(checkpoint, tmp_path, meta)  # --data auto reads its settings
    before = tree(tmp_path)
    argv = ["--pruned_model_dir", str(pruned), "--max_steps", "1"]
    code, err = call_main(lambda: finetune_main({"pruned_model_dir": str(pruned)}, "test", argv), capsys)
    assert_one_line_exit_2(code, err, *fragments)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("flags,fragments", [
    (["--seed", "-1"], ["--seed must be a whole number in 0..4294967295"]),
    (["--seed", str(2**32)], ["--seed must be a whole number"]),
    (["--recovered_checkpoints", "-1"], ["--recovered_checkpoints must be 0 or more"]),
    (["--max_calibration_length", "0"], ["--max_calibration_length must be at least 1"]),
    (["--depth_rule", "shortgpt"], ["--depth_rule", "third_to_last", "block_influence"]),
    (["--keep_iterations", "0"], ["--keep_iterations names iterations outside 1..2"]),
])
def test_prune_bad_numbers_stop_before_anything_is_made(flags, fragments, checkpoint, tmp_path, capsys):
    before = tree(tmp_path)
    argv = ["--model_name", str(checkpoint["base"]), "--save_dir", str(tmp_path / "run"), "--num_iterations", "2",
            "--decision_sequence", "LG", "--calibration_data", str(checkpoint["data"]),
            "--num_calibration_prompts", "4", *flags]
    code, err = call_main(lambda: prune_main({"model_name": "x", "save_dir": "y"}, "test", argv), capsys)
    assert_one_line_exit_2(code, err, *fragments)
    assert tree(tmp_path) == before


@pytest.fixture
def gpt2_config(tmp_path):
    folder = tmp_path / "gpt2"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 2}))
    return folder


@pytest.mark.parametrize("flags,fragments", [
    (["--batch_size", "-4", "--grad_accum", "-4"], ["--batch_size must be at least 1, got -4"]),
    (["--grad_accum", "0"], ["--grad_accum must be at least 1"]),
    (["--max_length", "0"], ["--max_length must be at least 1"]),
    (["--lora_r", "0"], ["--lora_r must be at least 1"]),
    (["--max_memory_gb", "inf"], ["--max_memory_gb", "finite number"]),
    (["--max_memory_gb", "0"], ["--max_memory_gb must be a finite number of GB above 0"]),
    (["--lora_dropout", "nan"], ["--lora_dropout", "finite number"]),
    (["--lora_dropout", "1.5"], ["--lora_dropout must be in [0, 1)"]),
    (["--config", "{gpt2}"], ["--config: a gpt2 config lacks intermediate_size", "the estimate covers the decoders"]),
])
def test_memory_planner_bad_flags(flags, fragments, gpt2_config, tmp_path, capsys):
    argv = ["--config", "smollm2-135m"] + [f.replace("{gpt2}", str(gpt2_config)) for f in flags]
    before = tree(tmp_path)
    code, err = call_main(lambda: memory.main(argv), capsys)
    assert_one_line_exit_2(code, err, *fragments)
    assert tree(tmp_path) == before


def test_memory_planner_still_plans_the_published_setting(capsys):
    plan = memory.main(["--config", "meta-llama/Llama-2-7b-hf", "--json"])
    assert plan.micro_batch * plan.grad_accum == 16  # the effective batch is kept


@pytest.mark.parametrize("limit", ["nan", "inf", "-inf", "0", "-3", "ten"])
def test_eval_limit_must_be_a_finite_positive_number(limit, checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EVAL_LIMIT", limit)
    argv = [str(checkpoint["base"]), str(tmp_path / "out"), "--tasks", "mop_arc"]
    before = tree(tmp_path)
    code, err = call_main(lambda: evaluate.main(argv), capsys)
    assert_one_line_exit_2(code, err, "--limit")
    assert tree(tmp_path) == before


def test_eval_limit_keeps_counts_and_shares():
    assert evaluate.parse_limit("20") == 20 and isinstance(evaluate.parse_limit("20"), int)
    assert evaluate.parse_limit("0.5") == 0.5 and evaluate.parse_limit(None) is None


@pytest.mark.parametrize("content", [None, b"\xff\xfe\x00", b"stage\0a\0"])
def test_stage_plan_missing_undecodable_or_cut_is_one_line(content, tmp_path, capsys):
    plan = tmp_path / "plan"
    if content is not None:
        plan.write_bytes(content)
    before = tree(tmp_path)
    code, err = call_main(lambda: sys.exit(stages.main([str(plan), "--log_dir", str(tmp_path / "logs")])), capsys)
    assert_one_line_exit_2(code, err, "stage plan", str(plan))
    assert tree(tmp_path) == before


def test_recovery_settings_reject_every_non_finite_real():
    for field in ("learning_rate", "num_epochs", "lora_dropout", "max_memory_gb"):
        for value in (float("nan"), float("inf"), float("-inf")):
            with pytest.raises(UsageError, match=f"--{field}"):
                RecoverySettings(**{field: value}).check()
    RecoverySettings().check()  # the published defaults pass
    RecoverySettings(num_epochs=0, max_steps=5).check()  # --max_steps replaces the epochs


# ----------------------------------------------------------------------------- the metadata reader


@pytest.mark.parametrize("name,content,needs,fragment", [
    (PRUNE_META, "[]", (), "does not hold a JSON object"),
    (PRUNE_META, '{"decision": "L"}', ("iteration",), "lacks iteration"),
    (PRUNE_META, '{"iteration": true}', (), "'iteration' must be a whole number, found true/false"),
    (PRUNE_META, '{"compression": "0.2"}', (), "'compression' must be a whole number or a number, found text"),
    (RUN_CONFIG, '{"settings": []}', ("settings",), "'settings' must be an object, found a list"),
    (RUN_STATE, '{"last_iteration": 1.5, "accumulator": 0}', (), "'last_iteration' must be a whole number"),
    (FINETUNE_META, '{"settings": "x"}', (), "'settings' must be an object, found text"),
    (EVAL_META, '{"tasks": null}', (), "'tasks' must be an object, found null"),
    (WORK_SETTINGS, '{"settings": {}, "pruned_model_dir": "p", "data": "d", "num_samples": "4"}', (),
     "'num_samples' must be a whole number or null, found text"),
    (PRUNE_META, "{", (), "is not valid JSON"),
])
def test_metadata_reader_names_the_file_and_key(name, content, needs, fragment, tmp_path):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UsageError) as err:
        read_metadata(path, needs)
    assert fragment in str(err.value) and str(path) in str(err.value)


def test_metadata_reader_returns_a_well_formed_file_unchanged(tmp_path):
    content = {"iteration": 3, "decision": "G", "compression": 0.25, "params": 10, "settings": {"a": 1},
               "extra": [1, 2]}
    write_json(tmp_path / PRUNE_META, content)
    assert read_metadata(tmp_path / PRUNE_META, ("iteration", "decision")) == content
    write_json(tmp_path / "iteration_3.json", {"iteration": "3"})  # a record: the kind is given
    with pytest.raises(UsageError, match="'iteration' must be a whole number"):
        read_metadata(tmp_path / "iteration_3.json", kind=PRUNE_META)


# ----------------------------------------------------------------------------- the bash drivers


def run_driver(tmp_path, env: dict, driver: Path = MINIMAL, timeout: int = 120) -> subprocess.CompletedProcess:
    """The driver with its results and temporary files inside tmp_path/work, the settings under test
    on top of a clean environment (no inherited driver settings)."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    full = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(tmp_path)), "PYTHON": sys.executable,
            "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "RESULTS_DIR": str(work / "results"),
            "TMPDIR": str(work), "DRY_RUN": "1", **env}
    return subprocess.run(["bash", str(driver)], capture_output=True, text=True, env=full, timeout=timeout)


BAD_DRIVER_SETTINGS = [
    ({"NUM_EPOCHS": "two"}, "NUM_EPOCHS must be a positive integer"),
    ({"NUM_EPOCHS": "2.0"}, "NUM_EPOCHS must be a positive integer, got '2.0'"),
    ({"NUM_EPOCHS": "0"}, "NUM_EPOCHS must be a positive integer"),
    ({"NUM_ITERATIONS": "-3"}, "NUM_ITERATIONS must be a positive integer"),
    ({"FT_ITERATIONS": "4,8"}, "FT_ITERATIONS must be 'all' or distinct iterations in 1..12"),
    ({"FT_ITERATIONS": "13"}, "FT_ITERATIONS must be 'all' or distinct iterations in 1..12"),
    ({"FT_ITERATIONS": "0 8"}, "FT_ITERATIONS must be"),
    ({"FT_ITERATIONS": "8 8"}, "FT_ITERATIONS must be"),
    ({"FT_ITERATIONS": "all 8"}, "FT_ITERATIONS must be"),
    ({"NUM_ITERATIONS": "6"}, "FT_ITERATIONS must be 'all' or distinct iterations in 1..6 separated by spaces (got '8 12')"),
    ({"KEEP_CHECKPOINTS": "some"}, "KEEP_CHECKPOINTS must be one of: used all (got 'some')"),
    ({"EXECUTOR": "cluster"}, "EXECUTOR must be one of: local gpus slurm (got 'cluster')"),
    ({"EXECUTOR": "gpus"}, "EXECUTOR=gpus needs GPUS"),
    ({"EXECUTOR": "gpus", "GPUS": "0;1"}, "EXECUTOR=gpus needs GPUS"),
    ({"EXECUTOR": "gpus", "GPUS": "0,0"}, "GPUS=0,0 must list distinct ids"),
    ({"EXECUTOR": "gpus", "GPUS": "0,1,2", "NUM_GPUS": "2"}, "a multiple of NUM_GPUS=2"),
    ({"EVAL_UNRECOVERED": "yes"}, "EVAL_UNRECOVERED must be one of: 0 1"),
    ({"DRY_RUN": "true"}, "DRY_RUN must be one of: 0 1"),
    ({"EMBEDDED": "yes"}, "EMBEDDED must be one of: 0 1"),
    ({"NUM_GPUS": "1.5"}, "NUM_GPUS must be a positive integer"),
    ({"DEPTH_RULE": "shortgpt"}, "DEPTH_RULE must list distinct rules of: third_to_last block_influence"),
    ({"PYTHON": "/nonexistent/python"}, "PYTHON=/nonexistent/python is not an interpreter"),
    ({"EXECUTOR": "slurm", "PATH": "/usr/bin:/bin"}, "EXECUTOR=slurm needs sbatch on PATH"),
    ({"EXECUTOR": "slurm", "DRY_RUN": "1", "SLURM_GPUS_PER_JOB": "two"}, "SLURM_GPUS_PER_JOB must be a whole number"),
    ({"EXECUTOR": "slurm", "DRY_RUN": "1", "SLURM_EXTRA": "mem=64G"}, "SLURM_EXTRA holds sbatch options"),
]


@pytest.mark.parametrize("env,fragment", BAD_DRIVER_SETTINGS, ids=[" ".join(f"{k}={v}" for k, v in e.items())
                                                                    for e, _ in BAD_DRIVER_SETTINGS])
def test_bad_driver_setting_stops_before_anything_is_made(env, fragment, tmp_path):
    proc = run_driver(tmp_path, {"DRY_RUN": "0", **env})  # a real run (unless the case says): nothing may start
    assert_one_line_exit_2(proc.returncode, proc.stderr, fragment)
    assert tree(tmp_path / "work") == {}


@pytest.mark.parametrize("env,fragment", [
    ({"FT_ARGS": "--learning_rate nan"}, "FT_ARGS: argument --learning_rate: must be a finite number, not 'nan'"),
    ({"PRUNE_ARGS": "--bogus"}, "PRUNE_ARGS: unrecognized arguments: --bogus"),
    ({"TABLE_ARGS": "--metric f1"}, "TABLE_ARGS: argument --metric: invalid choice"),
    pytest.param({"FT_ARGS": "--batch_size 0"}, "FT_ARGS: --batch_size must be at least 1", marks=pytest.mark.slow),
    pytest.param({"PRUNE_ARGS": "--align x"}, "PRUNE_ARGS: argument --align: invalid int value", marks=pytest.mark.slow),
    pytest.param({"EMBEDDED": "1", "EMBEDDED_FT_ARGS": "--max_steps"}, "FT_ARGS: argument --max_steps: expected one argument",
                 marks=pytest.mark.slow),
], ids=["FT_ARGS", "PRUNE_ARGS", "TABLE_ARGS", "FT_ARGS-range", "PRUNE_ARGS-type", "EMBEDDED_FT_ARGS"])
def test_bad_flags_for_a_stage_stop_the_driver_before_anything_is_made(env, fragment, tmp_path):
    """PRUNE_ARGS / FT_ARGS / TABLE_ARGS are parsed by the scripts they go to at setup, not when
    the stage that takes them starts (hours later)."""
    proc = run_driver(tmp_path, {"DRY_RUN": "0", **env})
    assert_one_line_exit_2(proc.returncode, proc.stderr, fragment)
    assert tree(tmp_path / "work") == {}


@pytest.mark.slow  # 6-17 s: make test-slow (CI) runs it
def test_unknown_task_stops_the_driver_before_the_dense_stage(tmp_path):
    proc = run_driver(tmp_path, {"DRY_RUN": "0", "TASKS": "mop_mini,no_such_task"})
    assert_one_line_exit_2(proc.returncode, proc.stderr, "TASKS: unknown lm_eval task(s) no_such_task")
    assert tree(tmp_path / "work") == {}


def test_embedded_run_without_embedded_model_is_one_line(tmp_path):
    driver = tmp_path / "run_custom.sh"
    driver.write_text(textwrap.dedent(f"""\
        source "{REPO}/scripts/pipeline.sh"
        MODEL_NAME=some/model NUM_ITERATIONS=2 NUM_EPOCHS=1 FT_ITERATIONS=(2)
        RUN_NAMES=(a) RUN_SEEDS=(1) RUN_SEQUENCES=(LG)
        mop_pipeline "{REPO}/Llama3"
    """))
    proc = run_driver(tmp_path, {"EMBEDDED": "1"}, driver)
    assert_one_line_exit_2(proc.returncode, proc.stderr, "EMBEDDED=1 needs EMBEDDED_MODEL")
    assert tree(tmp_path / "work") == {}


def bare_python(tmp_path) -> Path:
    """An interpreter without the project's dependencies: this one with site-packages switched off."""
    wrapper = tmp_path / "bare-python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return wrapper


def test_python_without_the_dependencies_is_one_line(tmp_path):
    python = bare_python(tmp_path)
    proc = run_driver(tmp_path, {"PYTHON": str(python)})
    assert_one_line_exit_2(proc.returncode, proc.stderr, f"PYTHON={python} lacks torch")
    assert tree(tmp_path / "work") == {}


def test_dry_run_creates_nothing_and_runs_only_the_checks(tmp_path):
    """DRY_RUN=1 prints the plan; declaring the stages runs no Python beyond the settings check,
    the grid (mop.run.grid, which imports no torch) and the plan printer: no model is resolved or built."""
    log = tmp_path / "calls.log"
    wrapper = tmp_path / "logging-python"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    proc = run_driver(tmp_path, {"PYTHON": str(wrapper), "EMBEDDED": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "dense_eval" in proc.stdout and "dry run, nothing was run or submitted" in proc.stdout
    assert tree(tmp_path / "work") == {}
    modules = [line.split()[1] for line in log.read_text().splitlines()]
    assert modules == ["mop.run.driver_check", "mop.run.grid", "mop.run.stages"], log.read_text()


@pytest.mark.parametrize("override,epochs", [({}, "1"), ({"EMBEDDED_NUM_EPOCHS": "3"}, "3"), ({"NUM_EPOCHS": "5"}, None)])
def test_embedded_epochs_come_from_embedded_num_epochs(override, epochs, tmp_path):
    """EMBEDDED=1 replaces the driver's NUM_EPOCHS (1 on CPU); EMBEDDED_NUM_EPOCHS overrides it, and
    a NUM_EPOCHS given with EMBEDDED=1 is refused rather than silently dropped (epochs None)."""
    script = (f'source "{REPO}/scripts/pipeline.sh"; RESULTS_DIR=/x; EMBEDDED_MODEL=smollm2-135m; '
              'NUM_EPOCHS=${NUM_EPOCHS:-2}; EMBEDDED=1 mop_common_settings; echo "$NUM_EPOCHS"')
    env = {"PATH": os.environ["PATH"], "PYTHON": sys.executable, **override}
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    if epochs is None:
        assert_one_line_exit_2(proc.returncode, proc.stderr, "NUM_EPOCHS=5 is replaced by EMBEDDED=1",
                               "set EMBEDDED_NUM_EPOCHS instead")
        assert proc.stdout == ""
    else:
        assert proc.stdout.split() == [epochs], proc.stderr


# A setting EMBEDDED=1 replaces (scripts/embedded.sh, MODEL_NAME) or ignores (MAX_MEMORY_GB), with
# a value that is valid by itself, and what the refusal says to do instead.
EMBEDDED_REPLACED = [
    ("NUM_ITERATIONS", "6", "set EMBEDDED_ITERATIONS instead"),
    ("FT_ITERATIONS", "4 8", "set EMBEDDED_FT_ITERATIONS instead"),
    ("NUM_EPOCHS", "two", "set EMBEDDED_NUM_EPOCHS instead"),
    ("TASKS", "mop_mini", "set EMBEDDED_TASKS instead"),
    ("FT_ARGS", "--max_steps 2", "set EMBEDDED_FT_ARGS instead"),
    ("EVAL_UNRECOVERED", "0", "set EMBEDDED_EVAL_UNRECOVERED instead"),
    ("TABLE_ARGS", "--targets 0.1", "set EMBEDDED_TABLE_ARGS instead"),
    ("MODEL_NAME", "meta-llama/Meta-Llama-3-8B", "unset MODEL_NAME"),
    ("MAX_MEMORY_GB", "80", "unset MAX_MEMORY_GB"),
]


@pytest.mark.parametrize("name,value,instead", EMBEDDED_REPLACED, ids=[name for name, _, _ in EMBEDDED_REPLACED])
def test_a_setting_embedded_replaces_is_refused_not_dropped(name, value, instead, tmp_path):
    """Given with EMBEDDED=1, a setting the embedded run replaces would be silently ignored: a real
    run is refused at once (PYTHON=/bin/false: the refusal comes before any Python runs; without it
    the driver would stop at its interpreter check with no message at all)."""
    proc = run_driver(tmp_path, {"DRY_RUN": "0", "EMBEDDED": "1", "PYTHON": "/bin/false", name: value})
    assert_one_line_exit_2(proc.returncode, proc.stderr, f"error: {name}={value} ", "EMBEDDED=1", instead)
    assert tree(tmp_path / "work") == {}


def test_the_llava_driver_refuses_a_setting_embedded_replaces(tmp_path):
    """Llava/run_mop_llava.sh sources scripts/embedded.sh itself (no mop_common_settings): same refusal."""
    proc = run_driver(tmp_path, {"DRY_RUN": "0", "EMBEDDED": "1", "PYTHON": "/bin/false", "TASKS": "mop_mini"},
                      REPO / "Llava" / "run_mop_llava.sh")
    assert_one_line_exit_2(proc.returncode, proc.stderr, "TASKS=mop_mini is replaced by EMBEDDED=1", "EMBEDDED_TASKS")
    assert tree(tmp_path / "work") == {}


def test_embedded_variables_still_set_the_embedded_run(tmp_path):
    """The EMBEDDED_* variables are the way to change an embedded run: each reaches the planned
    commands (EXECUTOR=slurm DRY_RUN=1 prints them), and the driver's own settings for EMBEDDED=1
    (Llama3 minimal: DEPTH_RULE, FT_OBJECTIVE) are not taken for the user's."""
    proc = run_driver(tmp_path, {"EMBEDDED": "1", "EXECUTOR": "slurm", "EMBEDDED_ITERATIONS": "4",
                                 "EMBEDDED_FT_ITERATIONS": "2 4", "EMBEDDED_NUM_EPOCHS": "3", "EMBEDDED_TASKS": "mop_mini",
                                 "EMBEDDED_FT_ARGS": "--max_steps 2", "EMBEDDED_EVAL_UNRECOVERED": "0",
                                 "EMBEDDED_TABLE_ARGS": "--targets 0.3"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "--model_name smollm2-135m" in out and "--num_iterations 4 " in out and "--keep_iterations 2,4 " in out
    assert "prune_iteration_2_ft_3ep " in out and "--num_epochs 3 " in out and "--max_steps 2 ;;" in out
    assert "dense_eval mop_mini\n" in out and "_it2_eval" not in out and "--targets 0.3\n" in out
    assert "--max_memory_gb" not in out and "results_embedded/run_seed_1_block_influence" in out
    assert tree(tmp_path / "work") == {}


@pytest.mark.parametrize("env,fragment", [
    ({"MODEL_NAME": "/no/such/folder"}, "MODEL_NAME=/no/such/folder: model folder not found"),
    ({"MODEL_NAME": "{tmp}/no_config"}, "MODEL_NAME={tmp}/no_config: {tmp}/no_config holds no config.json"),
    ({"MODEL_NAME": "nobody-mop/no-such-model"}, "MODEL_NAME=nobody-mop/no-such-model: cannot load the config"),
    ({"FT_ARGS": "--data {tmp}/missing.json"}, "FT_ARGS: --data {tmp}/missing.json: data file not found"),
    ({"FT_ARGS": "--data {tmp}"}, "FT_ARGS: --data {tmp} is not a readable file"),
    ({"PRUNE_ARGS": "--calibration_data ./no_such_prompts.jsonl"},
     "PRUNE_ARGS: --calibration_data ./no_such_prompts.jsonl: data file not found"),
], ids=["missing-folder", "folder-without-config", "unknown-hub-id-offline", "missing-data", "data-is-a-folder",
        "missing-calibration-data"])
def test_a_dry_run_refuses_a_model_or_data_file_that_is_not_there(env, fragment, tmp_path):
    """A dry run needs no weights, but what it can check without them it does: MODEL_NAME resolves
    (offline: a hub id only from the cache), and the data files PRUNE_ARGS / FT_ARGS name exist."""
    (tmp_path / "no_config").mkdir()
    proc = run_driver(tmp_path, {k: v.format(tmp=tmp_path) for k, v in env.items()})
    assert_one_line_exit_2(proc.returncode, proc.stderr, fragment.format(tmp=tmp_path))
    assert tree(tmp_path / "work") == {}


def test_a_real_run_refuses_a_missing_model_folder_before_anything_is_made(tmp_path):
    proc = run_driver(tmp_path, {"DRY_RUN": "0", "MODEL_NAME": str(tmp_path / "absent")})
    assert_one_line_exit_2(proc.returncode, proc.stderr, f"MODEL_NAME={tmp_path / 'absent'}: model folder not found")
    assert tree(tmp_path / "work") == {}


DRIVERS = sorted(REPO.glob("*/run_*.sh"))


@pytest.mark.parametrize("driver", DRIVERS, ids=[d.name for d in DRIVERS])
def test_every_drivers_default_model_resolves_offline_without_weights(driver, monkeypatch):
    """Each driver's default MODEL_NAME (a hub id with a shipped config) and embedded stand-in pass
    the check with the hub and the embedded builds out of reach: they are never consulted."""
    import re

    from mop.models import loading as models
    from mop.run import setup_checks

    def unreachable(*args, **kwargs):
        raise AssertionError("the model check loaded a config or built a checkpoint")

    for name in ("load_config", "resolve_model_name", "embedded_checkpoint", "tiny_llava_checkpoint"):
        monkeypatch.setattr(models, name, unreachable)
    text = driver.read_text()
    default = re.search(r"^MODEL_NAME=\$\{MODEL_NAME:-(\S+?)\}", text, re.M)
    stand_in = re.search(r"^(?:EMBEDDED_MODEL|    MODEL_NAME)=(\S+)", text, re.M)
    assert default and stand_in, driver
    setup_checks.check_model_name(default[1])
    setup_checks.check_model_name(stand_in[1])


def test_a_local_checkpoint_folder_passes_the_model_check(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    proc = run_driver(tmp_path, {"MODEL_NAME": str(tmp_path / "model")}, REPO / "Custom" / "run_mop_custom.sh")
    assert proc.returncode == 0, proc.stderr
    assert tree(tmp_path / "work") == {}


def test_custom_driver_checks_ft_args_with_the_lora_left_to_the_family(tmp_path):
    """Custom/finetune.py leaves LoRA r / alpha to the model's family (None until the stage runs):
    FT_ARGS are still checked, not taken for a broken installation."""
    custom = REPO / "Custom" / "run_mop_custom.sh"
    assert run_driver(tmp_path, {"FT_ARGS": "--max_steps 3"}, custom).returncode == 0
    proc = run_driver(tmp_path, {"FT_ARGS": "--lora_r 0"}, custom)
    assert_one_line_exit_2(proc.returncode, proc.stderr, "FT_ARGS: --lora_r must be at least 1, got 0")
