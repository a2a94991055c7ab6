"""Recovery by distillation (`finetune.py --objective kd | kd+sft`, mop/distill.py)."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from conftest import tiny_model

from mop.cli import finetune_main
from mop.distill import kd_loss
from mop.io import write_json
from mop.layout import LOSS_LOG, PRUNE_META

pytestmark = pytest.mark.usefixtures("one_thread")
DEFAULTS = dict(pruned_model_dir="unused", tuned_model_dir=None, num_epochs=1, data="auto")
RECORDS = [{"instruction": f"explain the {w} .", "input": "", "output": f"the {w} is big and red ."}
           for w in ("sun", "tree", "cat", "dog", "city", "river", "water", "word")]


@torch.no_grad()
def kl_by_hand(student, teacher, ids: torch.Tensor, mask: torch.Tensor, temperature: float) -> float:
    """Each example alone (its real tokens only): sum over the vocabulary of p_t (log p_t - log p_s)
    at temperature T, for every position but the last; mean over all positions of all examples; x T^2."""
    values = []
    for row, row_mask in zip(ids, mask):
        real = row[row_mask.bool()][None]
        s = (student(real).logits[0, :-1].double() / temperature).softmax(-1)
        t = (teacher(real).logits[0, :-1].double() / temperature).softmax(-1)
        values += (t * (t.log() - s.log())).sum(-1).tolist()
    return sum(values) / len(values) * temperature ** 2


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_kd_loss_equals_the_kl_computed_by_hand_on_padded_batches(temperature):
    student, teacher = tiny_model(kv_heads=2, layers=2, seed=1), tiny_model(kv_heads=2, layers=3, seed=2)
    ids = torch.tensor([[5, 9, 13, 17, 21, 25], [7, 11, 15, 3, 3, 3], [8, 12, 3, 3, 3, 3]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]])
    with torch.no_grad():
        loss = kd_loss(student(ids, attention_mask=mask).logits, teacher(ids, attention_mask=mask).logits, mask,
                       temperature)
    # fp32 log-probs against fp64: the small KL of two near distributions loses ~1e-5 to cancellation
    assert loss.item() == pytest.approx(kl_by_hand(student, teacher, ids, mask, temperature), rel=1e-4)
    assert loss.item() > 1e-3


def test_kd_loss_is_zero_when_the_student_is_the_teacher():
    model = tiny_model(kv_heads=2, layers=2)
    ids, mask = torch.tensor([[5, 9, 13, 17]]), torch.ones(1, 4, dtype=torch.long)
    with torch.no_grad():
        logits = model(ids).logits
    assert kd_loss(logits, logits.clone(), mask).item() == pytest.approx(0.0, abs=1e-7)


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
