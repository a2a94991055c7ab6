"""Bad files and settings, and concurrent runs, through the real command lines.

Every failure class is run as a subprocess (as a user would run it) and must end with exit
status 2 and exactly one line on stderr (no warning in front of it), leaving every file that
existed before -- the run folder, the output's neighbours, the model cache -- byte for byte
unchanged. Tiny checkpoints keep each run to a few seconds (mostly interpreter start-up).
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, WORDS, make_tokenizer, save_checkpoint, tiny_model

from mop.core.io import LOCK_NAME, UsageError, exclusive_lock, locked_result, remove_stale_temporaries, sibling_lock
from mop.core.layout import PRUNE_META, RUN_CONFIG, WORK_SETTINGS, iteration_dir, work_dir_for
from mop.prune.pruner import PruneSettings, run_pruning

PRUNE = [sys.executable, str(REPO / "Llama2" / "prune.py")]
FINETUNE = [sys.executable, str(REPO / "Llama2" / "finetune.py")]
EVAL_SH = ["bash", str(REPO / "Llama2" / "eval.sh")]
TIMEOUT = 180
# One subprocess per failure class runs in `make test` (~5 s each, mostly importing torch); the
# further variants of a class run with `make test-all`.
SLOW = pytest.mark.slow


# ----------------------------------------------------------------------------- helpers


def digest(*roots: Path) -> dict[str, str]:
    """sha256 of every file (hidden ones included) under the given folders, by path."""
    out = {}
    for root in roots:
        if root.is_file():
            out[str(root)] = hashlib.sha256(root.read_bytes()).hexdigest()
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                out[str(path)] = "dir"
    return out


def run(cmd, cache: Path, extra_env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO), "MOP_CACHE": str(cache),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(extra_env or {})}
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=TIMEOUT, cwd=cwd)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == 2, f"exit {proc.returncode}, stderr:\n{proc.stderr[-3000:]}"
    assert len(err.splitlines()) == 1, f"expected one line on stderr, got:\n{proc.stderr[-3000:]}"
    assert err.startswith("error: ")
    for fragment in fragments:
        assert fragment in err, err
    return err


def truncate(path: Path, keep: int | None = None) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(keep if keep is not None else size - 1000)


def corrupt_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[8:40] = b"x" * 32
    path.write_bytes(bytes(data))


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A tiny checkpoint, an Alpaca file and a finished 2-iteration run folder (module-wide)."""
    root = tmp_path_factory.mktemp("assets")
    make_tokenizer(root / "tok")
    base = save_checkpoint(tiny_model(4, 6), root / "tok", root / "base")
    records = [{"instruction": f"explain {' '.join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(3 + i % 9))} .",
                "input": "", "output": "the sun is big ."} for i in range(24)]
    data = root / "alpaca.json"
    data.write_text(json.dumps(records))
    run_dir = root / "run"
    run_pruning(PruneSettings(model_name=str(base), save_dir=str(run_dir), num_iterations=2, decision_sequence="LG",
                              calibration_data=str(data), num_calibration_prompts=8), progress=False)
    return {"base": base, "data": data, "run": run_dir}


@pytest.fixture
def cache(tmp_path):
    """An empty model cache: no failure may build (or touch) anything there."""
    path = tmp_path / "cache"
    path.mkdir()
    (path / "keep.txt").write_text("pre-existing cache content\n")
    return path


def copy_run(assets, tmp_path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(assets["run"], dest)
    return dest


def prune_args(assets, save_dir: Path, *extra) -> list:
    return [*PRUNE, "--model_name", assets["base"], "--save_dir", save_dir, "--num_iterations", "2",
            "--decision_sequence", "LG", "--calibration_data", assets["data"], "--num_calibration_prompts", "8", *extra]


def unwritable_parent(tmp_path: Path) -> Path:
    """A folder nobody can create files in: /sys for root (permission bits do not stop root),
    a read-only folder otherwise."""
    if os.geteuid() == 0:
        return Path("/sys/mop-test-parent")
    locked = tmp_path / "read_only"
    locked.mkdir()
    locked.chmod(0o555)
    return locked / "sub"


# ----------------------------------------------------------------------------- prune.py


@pytest.mark.parametrize("damage,fragment", [
    ("truncated", "incomplete metadata"),
    pytest.param("corrupt", "invalid JSON in header", marks=SLOW),
])
def test_prune_damaged_source_weights(damage, fragment, assets, cache, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(assets["base"], model)
    (truncate if damage == "truncated" else corrupt_header)(model / "model.safetensors")
    before = digest(model, cache)
    proc = run([*prune_args(assets, tmp_path / "out"), "--model_name", model], cache)
    assert_one_line_error(proc, str(model / "model.safetensors"), fragment)
    assert digest(model, cache) == before and not (tmp_path / "out").exists()


@pytest.mark.parametrize("write,fragment", [
    (lambda p: p.write_bytes('[{"instruction": "caf\xe9"}]'.encode("latin-1")), "not UTF-8"),
    (lambda p: p.mkdir(), "is a folder"),
    pytest.param(lambda p: p.write_text('[{"instruction": "a"}, 3]'), "record 1", marks=SLOW),
    pytest.param(lambda p: p.write_text('[{"instruction": "a"'), "not valid JSON", marks=SLOW),
])
def test_prune_bad_calibration_file(write, fragment, assets, cache, tmp_path):
    data = tmp_path / "calibration.json"
    write(data)
    before = digest(cache)
    proc = run(prune_args(assets, tmp_path / "out", "--calibration_data", data), cache)
    assert_one_line_error(proc, str(data), fragment)
    assert not (tmp_path / "out").exists() and digest(cache) == before


@pytest.mark.parametrize("flags,fragment", [
    (["--max_calibration_length", "0"], "--max_calibration_length must be at least 1"),
    (["--device", "nonsense"], "unknown --device 'nonsense'"),
    pytest.param(["--calibration_batch_size", "0"], "--calibration_batch_size must be at least 1", marks=SLOW),
    pytest.param(["--num_iterations", "0"], "--num_iterations must be at least 1", marks=SLOW),
    pytest.param(["--device", "cuda:7"], "--device cuda:7", marks=SLOW),
    pytest.param(["--dtype", "float8"], "unknown --dtype", marks=SLOW),
])
def test_prune_bad_flags_write_nothing(flags, fragment, assets, cache, tmp_path):
    before = digest(cache)
    proc = run(prune_args(assets, tmp_path / "out", *flags), cache)
    assert_one_line_error(proc, fragment)
    assert not (tmp_path / "out").exists() and digest(cache) == before


def test_prune_save_dir_whose_parent_cannot_be_written(assets, cache, tmp_path):
    target = unwritable_parent(tmp_path) / "run"
    proc = run(prune_args(assets, target), cache)
    assert_one_line_error(proc, "--save_dir", "cannot write in")
    # A parent that is a file, not a folder.
    (tmp_path / "file").write_text("x")
    proc = run(prune_args(assets, tmp_path / "file" / "run"), cache)
    assert_one_line_error(proc, "is not a folder")
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.parametrize("damage,fragment", [
    (lambda run: (run / RUN_CONFIG).write_text('{"settings": {"model_na'), "run_config.json is not valid JSON"),
    pytest.param(lambda run: (run / RUN_CONFIG).write_text('[1, 2]'), "run_config.json does not hold a JSON object",
                 marks=SLOW),
    pytest.param(lambda run: (iteration_dir(run, 2) / PRUNE_META).write_bytes(b"\xff\xfe"),
                 "mop_prune.json is not UTF-8", marks=SLOW),
    pytest.param(lambda run: (iteration_dir(run, 2) / PRUNE_META).write_text('{"iteration": 2}'), "lacks decision",
                 marks=SLOW),
    pytest.param(lambda run: truncate(iteration_dir(run, 2) / "model.safetensors"),
                 "prune_iteration_2/model.safetensors", marks=SLOW),
])
def test_prune_resume_from_damaged_state(damage, fragment, assets, cache, tmp_path):
    run_dir = copy_run(assets, tmp_path)
    damage(run_dir)
    before = digest(run_dir, cache)
    proc = run([*prune_args(assets, run_dir, "--resume"), "--num_iterations", "3"], cache)
    assert_one_line_error(proc, fragment)
    assert digest(run_dir, cache) == before


def test_resume_accepts_the_decision_letters_in_any_case(assets, cache, tmp_path):
    """The run was made with LG; `lg` (and ` Lg `) continue it."""
    run_dir = copy_run(assets, tmp_path)
    proc = run([*prune_args(assets, run_dir, "--resume"), "--decision_sequence", " lg ", "--num_iterations", "3"], cache)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((iteration_dir(run_dir, 3) / PRUNE_META).read_text())["decisions_so_far"] == "LGL"
    assert json.loads((run_dir / RUN_CONFIG).read_text())["settings"]["decision_sequence"] == "LG"


def test_prune_refuses_a_locked_run_folder_naming_the_holder(assets, cache, tmp_path):
    run_dir = copy_run(assets, tmp_path)
    before = digest(run_dir)
    with exclusive_lock(run_dir / LOCK_NAME, "test"):
        proc = run([*prune_args(assets, run_dir, "--resume"), "--num_iterations", "3"], cache)
        assert_one_line_error(proc, f"is in use by process {os.getpid()}")
    assert digest(run_dir) == before  # the lock file is gone again; nothing else changed


# ----------------------------------------------------------------------------- finetune.py


def finetune_args(pruned: Path, tuned: Path, data: Path, *extra) -> list:
    return [*FINETUNE, "--pruned_model_dir", pruned, "--tuned_model_dir", tuned, "--data", data, "--max_steps", "2",
            "--save_steps", "1", "--batch_size", "2", "--grad_accum", "1", "--lora_r", "2", "--max_length", "32",
            "--num_samples", "8", "--precision", "fp32", *extra]


def test_finetune_truncated_weights(assets, cache, tmp_path):
    run_dir = copy_run(assets, tmp_path)
    truncate(iteration_dir(run_dir, 1) / "model.safetensors")
    before = digest(run_dir, cache)
    proc = run(finetune_args(iteration_dir(run_dir, 1), run_dir / "prune_iteration_1_ft_1ep", assets["data"]), cache)
    assert_one_line_error(proc, "prune_iteration_1/model.safetensors")
    assert digest(run_dir, cache) == before


@pytest.mark.parametrize("write,fragment", [
    (lambda p: p.write_bytes(b"\x80\x81 not text"), "not UTF-8"),
    pytest.param(lambda p: p.mkdir(), "is a folder", marks=SLOW),
    pytest.param(lambda p: p.write_text('{"instruction": "a"}\n{oops\n'), "line 2 is not valid JSON", marks=SLOW),
])
def test_finetune_bad_data_file(write, fragment, assets, cache, tmp_path):
    run_dir = copy_run(assets, tmp_path)
    data = tmp_path / "data.jsonl"
    write(data)
    before = digest(run_dir, cache)
    proc = run(finetune_args(iteration_dir(run_dir, 1), run_dir / "prune_iteration_1_ft_1ep", data), cache)
    assert_one_line_error(proc, str(data), fragment)
    assert digest(run_dir, cache) == before


def test_finetune_corrupt_resume_state(assets, cache, tmp_path):
    run_dir = copy_run(assets, tmp_path)
    tuned = run_dir / "prune_iteration_1_ft_1ep"
    work = work_dir_for(tuned)
    (work / "checkpoint-1").mkdir(parents=True)
    (work / WORK_SETTINGS).write_text('{"settings": ')
    before = digest(run_dir, cache)
    proc = run(finetune_args(iteration_dir(run_dir, 1), tuned, assets["data"], "--resume"), cache)
    assert_one_line_error(proc, str(work / WORK_SETTINGS), "not valid JSON")
    assert digest(run_dir, cache) == before


@SLOW
def test_finetune_output_whose_parent_cannot_be_written(assets, cache, tmp_path):
    run_dir = copy_run(assets, tmp_path)
    before = digest(run_dir, cache)
    proc = run(finetune_args(iteration_dir(run_dir, 1), unwritable_parent(tmp_path) / "ft", assets["data"]), cache)
    assert_one_line_error(proc, "--tuned_model_dir", "cannot write in")
    assert digest(run_dir, cache) == before


def test_finetune_refuses_a_locked_output(assets, cache, tmp_path):
    run_dir = copy_run(assets, tmp_path)
    tuned = run_dir / "prune_iteration_1_ft_1ep"
    with exclusive_lock(sibling_lock(tuned), "test"):
        before = digest(run_dir)
        proc = run(finetune_args(iteration_dir(run_dir, 1), tuned, assets["data"]), cache)
        assert_one_line_error(proc, f"is in use by process {os.getpid()}")
        assert digest(run_dir) == before


# ----------------------------------------------------------------------------- eval.sh


def test_eval_truncated_weights(assets, cache, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(assets["base"], model)
    truncate(model / "model.safetensors")
    before = digest(tmp_path)
    proc = run([*EVAL_SH, model, tmp_path / "out", "mop_arc"], cache)
    assert_one_line_error(proc, str(model / "model.safetensors"))
    assert digest(tmp_path) == before


@pytest.mark.parametrize("env,fragment", [
    ({"NUM_GPUS": "abc"}, "NUM_GPUS / --num_gpus must be a positive integer, not 'abc'"),
    pytest.param({"NUM_GPUS": "0"}, "must be a positive integer, not '0'", marks=SLOW),
    pytest.param({"EVAL_DEVICE": "nonsense"}, "unknown --device 'nonsense'", marks=SLOW),
])
def test_eval_bad_environment(env, fragment, assets, cache, tmp_path):
    before = digest(tmp_path)
    proc = run([*EVAL_SH, assets["base"], tmp_path / "out", "mop_arc"], cache, env)
    assert_one_line_error(proc, fragment)
    assert digest(tmp_path) == before


@SLOW
def test_eval_out_dir_whose_parent_cannot_be_written(assets, cache, tmp_path):
    proc = run([*EVAL_SH, assets["base"], unwritable_parent(tmp_path) / "out", "mop_arc"], cache)
    assert_one_line_error(proc, "OUT_DIR", "cannot write in")


def test_eval_refuses_a_locked_out_dir(assets, cache, tmp_path):
    out = tmp_path / "scores" / "dense_eval"
    out.parent.mkdir()
    with exclusive_lock(sibling_lock(out), "test"):
        proc = run([*EVAL_SH, assets["base"], out, "mop_arc"], cache)
        assert_one_line_error(proc, f"is in use by process {os.getpid()}")
    assert list(out.parent.iterdir()) == []


# ----------------------------------------------------------------------------- tables, latency, drivers


@pytest.mark.parametrize("content,fragment", [
    ('{"tasks": {"mop_arc": {"acc": 0.5', "mop_eval.json is not valid JSON"),
    pytest.param('{"model_dir": "x"}', "mop_eval.json lacks tasks", marks=SLOW),
    pytest.param('{"tasks": {"mop_arc": {"acc": "high"}}}', "mop_arc acc is not a number", marks=SLOW),
])
def test_tables_on_a_corrupt_score_file(content, fragment, cache, tmp_path):
    results = tmp_path / "results"
    (results / "dense_eval").mkdir(parents=True)
    (results / "dense_eval" / "mop_eval.json").write_text(content)
    before = digest(results)
    proc = run([sys.executable, "-m", "mop.evaluate.tables", results], cache)
    assert_one_line_error(proc, str(results / "dense_eval" / "mop_eval.json"), fragment)
    assert digest(results) == before


@pytest.mark.parametrize("flags,fragment", [
    (["--model", "{truncated}"], "model.safetensors"),
    pytest.param(["--device", "nonsense"], "unknown --device", marks=SLOW),
    pytest.param(["--threads", "0"], "--threads must be at least 1", marks=SLOW),
    pytest.param(["--out", "{unwritable}/latency.json"], "cannot write in", marks=SLOW),
    pytest.param(["--results_dir", "{corrupt_run}"], "mop_prune.json is not valid JSON", marks=SLOW),
])
def test_latency_bad_inputs(flags, fragment, assets, cache, tmp_path):
    truncated = tmp_path / "truncated"
    shutil.copytree(assets["base"], truncated)
    truncate(truncated / "model.safetensors")
    corrupt_run = copy_run(assets, tmp_path)
    (iteration_dir(corrupt_run, 1) / PRUNE_META).write_text("{")
    names = {"unwritable": unwritable_parent(tmp_path), "truncated": truncated, "corrupt_run": corrupt_run}
    flags = [f.format(**names) for f in flags]
    if "--model" not in flags and "--results_dir" not in flags:
        flags = ["--model", str(assets["base"]), *flags]
    before = digest(tmp_path)
    proc = run([sys.executable, "-m", "mop.evaluate.latency", "--runs", "2", "--warmup", "1", "--new_tokens", "2", *flags], cache)
    assert_one_line_error(proc, fragment)
    assert digest(tmp_path) == before


@pytest.mark.parametrize("driver", ["Llama2/run_mop_llama2.sh", "Llama3/run_mop_llama3_minimal.sh",
                                    "Llava/run_mop_llava.sh"])  # bash only: fast
def test_driver_refuses_a_bad_gpu_count_before_creating_anything(driver, cache, tmp_path):
    results = tmp_path / "results"
    proc = run(["bash", REPO / driver], cache, {"NUM_GPUS": "abc", "RESULTS_DIR": str(results),
                                                 "EMBEDDED_RESULTS_DIR": str(results)})
    assert_one_line_error(proc, "NUM_GPUS must be a positive integer, got 'abc'")
    assert not results.exists()


# ----------------------------------------------------------------------------- two writers at once

# Two processes race for one lock. The holder works only once the other is about to ask for the
# lock (the other touches `ready` when it sees the lock taken), so the second always finds it
# taken, whatever the two start-up times.
HANDSHAKE = textwrap.dedent("""
    import runpy, sys, time
    from pathlib import Path

    def wait_until(condition, what, seconds=120):
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                sys.exit(f"gave up waiting for {what}")
            time.sleep(0.005)

    def wait_for_the_other_then_pause(ready):  # the lock holder
        wait_until(ready.exists, "the other process")
        time.sleep(3)  # the other process reaches the lock meanwhile (its checks import model code first)

    def wait_for_the_lock_then_signal(lock, ready):  # the second process
        wait_until(lambda: lock.exists() and lock.read_text().strip(), f"a holder of {lock}")
        ready.touch()
""")

HOLD_LOCK_UNTIL_READY = HANDSHAKE + textwrap.dedent("""
    import mop.prune.pruner as pruner
    ready, script, argv = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    prune_locked = pruner.prune_locked

    def prune_once_the_other_is_ready(*args, **kwargs):  # called while holding the run folder's lock
        wait_for_the_other_then_pause(ready)
        return prune_locked(*args, **kwargs)

    pruner.prune_locked = prune_once_the_other_is_ready
    sys.argv = [script] + argv
    runpy.run_path(script, run_name="__main__")
""")

WAIT_FOR_LOCK_THEN_RUN = HANDSHAKE + textwrap.dedent("""
    import mop.run.cli  # the heavy imports first, so this process reaches the lock within milliseconds
    lock, ready, script, argv = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4:]
    wait_for_the_lock_then_signal(lock, ready)
    sys.argv = [script] + argv
    runpy.run_path(script, run_name="__main__")
""")


@pytest.mark.slow  # 6-17 s: make test-slow (CI) runs it
def test_two_prune_runs_on_one_folder(assets, cache, tmp_path):
    """Two processes on the same --save_dir: one finishes with the weights of a lone run, the
    other stops at once with one line naming the first; nothing of the first is touched."""
    from safetensors.torch import load_file

    save_dir, ready = tmp_path / "shared", tmp_path / "second_ready"
    args = [str(a) for a in prune_args(assets, save_dir)[2:]]
    env = {**os.environ, "PYTHONPATH": str(REPO), "MOP_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    first = subprocess.Popen([sys.executable, "-c", HOLD_LOCK_UNTIL_READY, ready, PRUNE[1], *args],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen([sys.executable, "-c", WAIT_FOR_LOCK_THEN_RUN, save_dir / LOCK_NAME, ready, PRUNE[1],
                               *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_second, err_second = second.communicate(timeout=TIMEOUT)
    out_first, err_first = first.communicate(timeout=TIMEOUT)
    assert first.returncode == 0, err_first[-2000:]
    assert second.returncode == 2 and len(err_second.strip().splitlines()) == 1, err_second
    assert f"is in use by process {first.pid}" in err_second
    lone = assets["run"]  # the same settings, run alone
    for i in (1, 2):
        a = load_file(iteration_dir(save_dir, i) / "model.safetensors")
        b = load_file(iteration_dir(lone, i) / "model.safetensors")
        assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert sorted(p.name for p in save_dir.iterdir()) == sorted(p.name for p in lone.iterdir())


FAKE_CACHE_BUILD = HANDSHAKE + textwrap.dedent("""
    sys.path.insert(0, sys.argv[1])
    import mop.models.embedded as embedded
    from conftest import tiny_model, make_tokenizer
    from transformers import AutoTokenizer
    tokenizer_dir, role, ready = sys.argv[2], sys.argv[3], Path(sys.argv[4])

    def slow_fake_gguf(dtype=None):  # called while holding the cache lock
        print("building", flush=True)
        wait_for_the_other_then_pause(ready)
        make_tokenizer(tokenizer_dir)
        return tiny_model(4, 3), AutoTokenizer.from_pretrained(tokenizer_dir)

    embedded.load_from_gguf = slow_fake_gguf  # the only fake: the GGUF dequantisation
    if role == "second":
        wait_for_the_lock_then_signal(embedded.cache_root() / ".smollm2-135m.lock", ready)
    print(embedded.embedded_checkpoint("smollm2-135m"), flush=True)
""")


@pytest.mark.slow  # 6-17 s: make test-slow (CI) runs it
def test_two_first_uses_of_the_model_cache_both_succeed(tmp_path):
    """Two processes need the embedded model on an empty cache: one builds it, the other waits
    for it and uses the same folder; both succeed (only the GGUF dequantisation is faked)."""
    cache = tmp_path / "cache"  # empty and not even created yet
    env = {**os.environ, "PYTHONPATH": str(REPO), "MOP_CACHE": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-c", FAKE_CACHE_BUILD, str(REPO / "tests"), str(tmp_path / role), role,
                               str(tmp_path / "second_ready")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for role in ("first", "second")]
    results = [p.communicate(timeout=TIMEOUT) for p in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err[-2000:]
        assert out.strip().splitlines()[-1] == str(cache / "smollm2-135m")
    (out1, _), (out2, err2) = results
    assert "building" in out1 and "building" not in out2  # built once; the second waited and reused it
    assert f"waiting for process {procs[0].pid}" in err2
    assert (cache / "smollm2-135m" / "model.safetensors").is_file()
    assert sorted(p.name for p in cache.iterdir()) == ["smollm2-135m"]  # no temporaries, no lock left


@pytest.mark.slow  # the real GGUF conversion twice at once: about a minute
def test_two_real_first_uses_of_the_embedded_model(tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO), "MOP_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    code = "import sys; from mop.models.loading import resolve_model_name; print(resolve_model_name('smollm2-135m'))"
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        assert out.strip().splitlines()[-1] == str(cache / "smollm2-135m")
    assert sorted(p.name for p in cache.iterdir()) == ["smollm2-135m"]


# ----------------------------------------------------------------------------- the lock itself


def test_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    lock = tmp_path / "x.lock"
    with exclusive_lock(lock, "the thing"):
        assert lock.read_text().split()[0] == str(os.getpid())
        with pytest.raises(UsageError, match=f"the thing is in use by process {os.getpid()}"):
            with exclusive_lock(lock, "the thing"):
                pass
    assert not lock.exists()
    with exclusive_lock(lock, "the thing"):  # free again
        pass


def test_waiting_lock_gets_it_when_the_holder_is_done(tmp_path):
    lock = tmp_path / "x.lock"
    held, order = threading.Event(), []

    def holder():
        with exclusive_lock(lock, "cache"):
            held.set()
            time.sleep(0.4)
            order.append("holder done")

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait()
    with exclusive_lock(lock, "cache", wait=True):
        order.append("waiter got it")
    thread.join()
    assert order == ["holder done", "waiter got it"]


def test_stale_temporaries_of_exactly_one_result_are_removed(tmp_path):
    names = [".tmp-prune_iteration_1-123-abcd1234", ".tmp-prune_iteration_1", ".tmp-prune_iteration_10-5-00ff00ff",
             ".tmp-prune_iteration_1_ft_2ep-9-0a0a0a0a", "prune_iteration_1", ".work-prune_iteration_1_ft_2ep"]
    for name in names:
        (tmp_path / name).mkdir()
    removed = remove_stale_temporaries(tmp_path, "prune_iteration_1")
    assert sorted(p.name for p in removed) == [".tmp-prune_iteration_1", ".tmp-prune_iteration_1-123-abcd1234"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])


def test_result_lock_creates_the_missing_parent(tmp_path):
    """finetune.py / eval.sh may be pointed at an output in a folder that does not exist yet."""
    target = tmp_path / "new" / "deeper" / "prune_iteration_1_ft_1ep"
    with locked_result(target, "test") as lock:
        assert lock == target.parent / ".prune_iteration_1_ft_1ep.lock" and lock.is_file()
    assert target.parent.is_dir() and list(target.parent.iterdir()) == []
