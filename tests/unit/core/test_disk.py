"""Disk (mop/disk.py, issue 14): keep only the checkpoints a run will use, estimate the need before
starting, and turn a full disk into a one-line error that leaves earlier results intact."""

import errno
import json
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO
from safetensors.torch import load_file
from test_drivers import run_bash

import mop.core.disk
import mop.prune.pruner
from mop.core.disk import estimate_run_bytes, parse_keep
from mop.prune.pruner import PruneSettings, run_pruning
from mop.run.cli import prune_main

SEQUENCE = "LGGLGLGG"


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread per module


def settings(model, save_dir, data, **kw):
    base = dict(model_name=str(model), save_dir=str(save_dir), num_iterations=8, decision_sequence=SEQUENCE,
                calibration_data=str(data), num_calibration_prompts=8, calibration_batch_size=4)
    return PruneSettings(**{**base, **kw})


def checkpoint_files(folder: Path) -> dict:
    """Every file of a checkpoint; mop_prune.json without what differs between two runs by design
    (timings, the run folder, the keep and resume settings)."""
    files = {}
    for f in sorted(folder.iterdir()):
        if f.name == "mop_prune.json":
            meta = json.loads(f.read_text())
            meta.pop("seconds")
            meta.pop("checkpoint_bytes")
            for key in ("keep_iterations", "save_dir", "resume"):
                meta["settings"].pop(key)
            files[f.name] = meta
        elif f.name == "model.safetensors":
            files[f.name] = {k: v.clone() for k, v in load_file(f).items()}
        else:
            files[f.name] = f.read_bytes()
    return files


def assert_same_checkpoint(a: Path, b: Path):
    x, y = checkpoint_files(a), checkpoint_files(b)
    assert x.keys() == y.keys()
    for name in x:
        if name == "model.safetensors":
            assert x[name].keys() == y[name].keys()
            assert all(torch.equal(x[name][k], y[name][k]) for k in x[name]), name
        else:
            assert x[name] == y[name], name


def checkpoint_dirs(run: Path) -> list[str]:
    return sorted(p.name for p in run.iterdir() if p.name.startswith("prune_iteration_"))


def test_keep_list_parsing():
    assert parse_keep("all", 8) is None
    assert parse_keep("4, 8", 8) == {4, 8}
    assert parse_keep("4", 8) == {4, 8}  # the last iteration always stays
    for bad in ("4,x", "0,4", "9"):
        with pytest.raises(mop.core.disk.UsageError):
            parse_keep(bad, 8)


def test_estimate_counts_kept_iterations_transients_and_recoveries():
    schedule = [{"iteration": i, "params": 1000 - 100 * i} for i in range(0, 5)]
    # 2 bytes a parameter, 10 bytes of tokenizer: sizes 1810 1610 1410 1210 for iterations 1..4
    assert estimate_run_bytes(schedule, 4, 0, {2, 4}, 2, 10) == 1610 + 1210 + 2 * 1810
    assert estimate_run_bytes(schedule, 4, 0, None, 2, 10, recovered=1) == 1810 + 1610 + 1410 + 1210 + 3 * 1810
    assert estimate_run_bytes(schedule, 4, 2, {2, 4}, 2, 10) == 1210 + 2 * 1410  # resumed after iteration 2
    assert estimate_run_bytes(schedule, 4, 4, {2, 4}, 2, 10) == 0


def test_kept_checkpoints_equal_a_keep_all_run(checkpoint_factory, calibration_file, tmp_path):
    base = checkpoint_factory(kv_heads=4)
    run_pruning(settings(base, tmp_path / "all", calibration_file), progress=False)
    rows = run_pruning(settings(base, tmp_path / "kept", calibration_file, keep_iterations="4,8"), progress=False)
    assert checkpoint_dirs(tmp_path / "kept") == ["prune_iteration_4", "prune_iteration_8"]
    for i in (4, 8):
        assert_same_checkpoint(tmp_path / "kept" / f"prune_iteration_{i}", tmp_path / "all" / f"prune_iteration_{i}")
    assert [r["iteration"] for r in rows] == list(range(9))
    assert [r["on_disk"] for r in rows[1:]] == [i in (4, 8) for i in range(1, 9)]
    summary_all = json.loads((tmp_path / "all" / "pruning_summary.json").read_text())
    keys = ("iteration", "decision", "layers", "query_heads", "kv_heads", "intermediate_size", "params", "compression")
    assert [{k: r[k] for k in keys} for r in rows] == [{k: r[k] for k in keys} for r in summary_all]
    assert all(r["checkpoint_bytes"] > 0 for r in rows[1:])
    assert sorted(p.name for p in (tmp_path / "kept" / "iteration_records").iterdir()) == \
        sorted(f"iteration_{i}.json" for i in range(1, 9))


@pytest.mark.parametrize("stop_after", [3, 5, 6])
def test_interrupted_keep_run_resumes_to_the_same_checkpoints(stop_after, checkpoint_factory, calibration_file,
                                                              tmp_path, monkeypatch):
    """Stopped right after iteration `stop_after` is saved (before older checkpoints are deleted),
    then resumed: the same two checkpoints as an uninterrupted keep-all run, nothing else left."""
    base = checkpoint_factory(kv_heads=4)
    run_pruning(settings(base, tmp_path / "all", calibration_file), progress=False)
    save = mop.prune.pruner.save_iteration

    def save_then_die(save_dir, i, *args):
        save(save_dir, i, *args)
        if i == stop_after:
            raise KeyboardInterrupt

    monkeypatch.setattr(mop.prune.pruner, "save_iteration", save_then_die)
    run = tmp_path / "kept"
    with pytest.raises(KeyboardInterrupt):
        run_pruning(settings(base, run, calibration_file, keep_iterations="4,8"), progress=False)
    assert f"prune_iteration_{stop_after}" in checkpoint_dirs(run)  # the newest complete one is on disk
    monkeypatch.setattr(mop.prune.pruner, "save_iteration", save)
    run_pruning(settings(base, run, calibration_file, keep_iterations="4,8", resume=True), progress=False)
    assert checkpoint_dirs(run) == ["prune_iteration_4", "prune_iteration_8"]
    for i in (4, 8):
        assert_same_checkpoint(run / f"prune_iteration_{i}", tmp_path / "all" / f"prune_iteration_{i}")


def test_run_that_cannot_fit_is_refused_before_writing(checkpoint_factory, calibration_file, tmp_path, monkeypatch,
                                                      capsys):
    base = checkpoint_factory(kv_heads=4)
    monkeypatch.setattr(mop.core.disk, "free_bytes", lambda path: 1000)
    run = tmp_path / "run"
    argv = ["--model_name", str(base), "--save_dir", str(run), "--calibration_data", str(calibration_file),
            "--num_iterations", "4", "--num_calibration_prompts", "8"]
    with pytest.raises(SystemExit) as exit_info:
        prune_main(dict(model_name="x", save_dir="x"), "test", argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1
    assert "GB but only 0.0 GB are free" in err[0]
    assert not run.exists()


def test_full_disk_during_a_save_is_one_line_and_keeps_earlier_iterations(checkpoint_factory, calibration_file,
                                                                          tmp_path, monkeypatch, capsys):
    base = checkpoint_factory(kv_heads=4)
    run = tmp_path / "run"
    sizes = mop.prune.pruner.folder_bytes
    calls = []

    def full_on_second_save(path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return sizes(path)

    monkeypatch.setattr(mop.prune.pruner, "folder_bytes", full_on_second_save)
    argv = ["--model_name", str(base), "--save_dir", str(run), "--calibration_data", str(calibration_file),
            "--num_iterations", "3", "--decision_sequence", "LGL", "--num_calibration_prompts", "8"]
    with pytest.raises(SystemExit) as exit_info:
        prune_main(dict(model_name="x", save_dir="x"), "test", argv)
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "AMP importance" not in line]
    assert exit_info.value.code == 2 and len(err) == 1 and err[0].startswith("error: disk full while writing")
    assert checkpoint_dirs(run) == ["prune_iteration_1"]  # iteration 1 intact, no partial folder
    assert not [p for p in run.iterdir() if p.name.startswith(".tmp-")]
    assert (run / "prune_iteration_1" / "model.safetensors").exists()


def test_drivers_keep_only_the_iterations_they_recover(tmp_path):
    from mop.run.grid import Grid, PrunePath, kept_iterations, prune_stage, recovered_iterations

    def grid(ft_iterations, keep="used", num_iterations=8):
        return Grid(model_folder=str(tmp_path), model_name="m", results_dir=str(tmp_path), log_dir=str(tmp_path),
                    python=sys.executable, paths=(), num_iterations=num_iterations, ft_iterations=ft_iterations,
                    keep_checkpoints=keep)

    found = [(kept_iterations(g), len(recovered_iterations(g))) for g in (grid("4 8"), grid("all"), grid("4 8", "all"))]
    assert found == [("4,8", 2), ("all", 8), ("all", 2)]
    # The embedded Llama drivers recover iterations 4 and 8 of 8: the prune stage keeps just those.
    settings = run_bash(f'source "{REPO}/scripts/embedded.sh"; echo "$NUM_ITERATIONS|${{FT_ITERATIONS[*]}}"',
                        tmp_path).stdout.split("|")
    stage = prune_stage(grid(settings[1].strip(), num_iterations=int(settings[0])), PrunePath("run_seed_1", "1", "LGGL"))
    out = " ".join(stage.command)
    assert "--num_iterations 8" in out and "--keep_iterations 4,8 --recovered_checkpoints 2" in out
