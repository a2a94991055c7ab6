"""Recovery by distillation (`finetune.py --objective kd | kd+sft`, mop/recover/distill.py)."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import tiny_model

from mop.core.io import write_json
from mop.core.layout import LOSS_LOG, PRUNE_META
from mop.run.cli import finetune_main

pytestmark = pytest.mark.usefixtures("one_thread")
DEFAULTS = dict(pruned_model_dir="unused", tuned_model_dir=None, num_epochs=1, data="auto")
RECORDS = [{"instruction": f"explain the {w} .", "input": "", "output": f"the {w} is big and red ."}
           for w in ("sun", "tree", "cat", "dog", "city", "river", "water", "word")]


@pytest.fixture
def pruned_and_dense(tmp_path, tokenizer_dir):
    """A dense tiny model and a 'pruned' one (one layer fewer) whose mop_prune.json names it."""
    from conftest import save_checkpoint

    dense = save_checkpoint(tiny_model(kv_heads=2, layers=3, seed=4), tokenizer_dir, tmp_path / "dense")
    model = tiny_model(kv_heads=2, layers=3, seed=4)
    del model.model.layers[1]
    model.config.num_hidden_layers = 2
    pruned = save_checkpoint(model, tokenizer_dir, tmp_path / "run" / "prune_iteration_1")
    write_json(pruned / PRUNE_META, {"iteration": 1, "source_model": str(dense), "settings": {"model_name": "x"}})
    data = tmp_path / "data.json"
    data.write_text(json.dumps(RECORDS))
    return dense, pruned, data


def first_losses(folder) -> list[float]:
    with open(folder / LOSS_LOG) as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def recover(pruned, out, data, *extra):
    return finetune_main(DEFAULTS, "test", [
        "--pruned_model_dir", str(pruned), "--tuned_model_dir", str(out), "--data", str(data), "--max_steps", "2",
        "--batch_size", "4", "--grad_accum", "1", "--lora_r", "4", "--logging_steps", "1", "--precision", "fp32",
        "--max_length", "32", "--no-group_by_length", *extra])


def test_distillation_runs_against_the_recorded_dense_model(pruned_and_dense, tmp_path):
    dense, pruned, data = pruned_and_dense
    meta = recover(pruned, tmp_path / "kd", data, "--objective", "kd")
    assert meta["teacher"] == str(dense) and meta["settings"]["objective"] == "kd" and meta["global_steps"] == 2
    assert first_losses(tmp_path / "kd")[0] > 1e-3  # a pruned student differs from its teacher


def test_teacher_equal_to_student_gives_zero_kd_and_kd_plus_sft_equals_sft(pruned_and_dense, tmp_path):
    """LoRA starts as the identity (B = 0): with the checkpoint as its own teacher, the first step's
    KD loss is exactly what the two identical models give (0), and kd+sft's first loss is sft's."""
    _, pruned, data = pruned_and_dense
    recover(pruned, tmp_path / "self_kd", data, "--objective", "kd", "--teacher", str(pruned))
    recover(pruned, tmp_path / "self_kd_sft", data, "--objective", "kd+sft", "--teacher", str(pruned))
    recover(pruned, tmp_path / "sft", data)
    assert first_losses(tmp_path / "self_kd")[0] == pytest.approx(0.0, abs=1e-6)
    assert first_losses(tmp_path / "self_kd_sft")[0] == pytest.approx(first_losses(tmp_path / "sft")[0], rel=1e-5)


@pytest.mark.parametrize("extra,message", [
    (["--objective", "distil"], "invalid choice"),
    (["--objective", "kd", "--kd_temperature", "nan"], "finite"),
    (["--objective", "kd", "--kd_temperature", "0"], "--kd_temperature must be a finite number above 0"),
    (["--objective", "kd", "--teacher", "/nonexistent/dense"], "not found"),
])
def test_bad_distillation_settings_are_one_line_and_write_nothing(extra, message, pruned_and_dense, tmp_path, capsys):
    _, pruned, data = pruned_and_dense
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exc:
        recover(pruned, out, data, *extra)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists() and not (tmp_path / ".work-never").exists()


def test_kd_without_a_recorded_dense_model_asks_for_teacher(pruned_and_dense, tmp_path, capsys):
    _, pruned, data = pruned_and_dense
    (pruned / PRUNE_META).write_text(json.dumps({"iteration": 1, "settings": {"model_name": "x"}}))
    with pytest.raises(SystemExit) as exc:
        recover(pruned, tmp_path / "never", data, "--objective", "kd")
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "--teacher" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("objective", ["sft", "kd"])
def test_packed_and_padded_recoveries_log_the_same_losses(objective, pruned_and_dense, tmp_path):
    """--packing (the default) and --no-packing train on the same examples in the same order: the
    logged losses of both steps agree (packing changes only the layout), and so do the tokens seen."""
    _, pruned, data = pruned_and_dense
    packed = recover(pruned, tmp_path / "packed", data, "--objective", objective)
    padded = recover(pruned, tmp_path / "padded", data, "--objective", objective, "--no-packing")
    assert packed["settings"]["packing"] and not padded["settings"]["packing"]
    assert first_losses(tmp_path / "packed") == pytest.approx(first_losses(tmp_path / "padded"), rel=1e-5)
    assert packed["train_tokens"] == padded["train_tokens"] > 0
