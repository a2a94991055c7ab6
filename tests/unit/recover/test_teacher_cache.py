"""The teacher cache (mop/recover/teacher_cache.py) and distillation from it."""

from __future__ import annotations

import csv

import pytest
import torch
from conftest import tiny_model
from test_distill import pruned_and_dense, recover  # noqa: F401  (fixture)
from test_packing import examples

import mop.recover.teacher_cache as tc
from mop.core.io import UsageError
from mop.core.layout import LOSS_LOG
from mop.models.divergence import coarse_kl, top_k_targets
from mop.recover.batches import RecoveryCollator, prediction_positions
from mop.recover.distill import OutputHead, final_hidden, kd_sum

pytestmark = pytest.mark.usefixtures("one_thread")
PAD = 3


def key(**changes) -> dict:
    base = {"teacher": "t@1", "tokenizer": "tok", "data": "5 examples@x", "max_length": 64, "top_k": 8,
            "temperature": 1.0, "dtype": "float32"}
    return {**base, **changes}


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(tc, "SHARD_EXAMPLES", 2)  # 5 examples: three shards
    teacher = tiny_model(kv_heads=2, layers=3, seed=2)
    tc.build_cache(tmp_path / "cache", key(), teacher, PAD, examples(), batch_examples=2, progress=False)
    return tmp_path / "cache", teacher


def test_cache_kd_equals_online_kd_on_the_same_top_k(cache_dir):
    folder, teacher = cache_dir
    student, feats = tiny_model(kv_heads=2, layers=2, seed=1), examples()
    cache = tc.TeacherCache.open(folder, key())
    batch = RecoveryCollator(PAD, packing=True, row_tokens=16, teacher_cache=cache)(feats)
    with torch.no_grad():
        hidden, t_hidden = final_hidden(student, batch), final_hidden(teacher, batch)
        from_cache, n = kd_sum(OutputHead(student), hidden, batch, 1.0)
        where = prediction_positions(batch["segments"])
        top, idx, rest = top_k_targets(OutputHead(teacher).log_probs(t_hidden[where]), 8)
        online = coarse_kl(OutputHead(student).log_probs(hidden[where]), top, idx, rest).sum()
    assert n == sum(len(f["input_ids"]) - 1 for f in feats) and online.item() > 1e-3
    assert from_cache.item() == pytest.approx(online.item(), rel=1e-5)


def test_cache_is_refused_for_other_data_tokenizer_or_max_length(cache_dir):
    folder, _ = cache_dir
    for field, value in (("data", "5 examples@y"), ("tokenizer", "other"), ("max_length", 128), ("top_k", 4)):
        with pytest.raises(UsageError, match=f"another {field}"):
            tc.TeacherCache.open(folder, key(**{field: value}))
        with pytest.raises(UsageError, match=f"another {field}"):
            tc.build_cache(folder, key(**{field: value}), None, PAD, examples(), progress=False)


def test_an_interrupted_build_resumes_at_the_missing_shard(cache_dir, monkeypatch):
    folder, teacher = cache_dir
    shards = sorted(folder.glob("shard-*"))
    assert len(shards) == 3
    before = {p.name: p.read_bytes() for p in shards}
    kept = shards[0].stat().st_ino
    (folder / tc.COMPLETE_FILE).unlink()
    shards[1].unlink()
    calls = []
    real = tc.shard_targets
    monkeypatch.setattr(tc, "shard_targets", lambda *a, **k: calls.append(len(a[2])) or real(*a, **k))
    tc.build_cache(folder, key(), teacher, PAD, examples(), batch_examples=2, progress=False)
    assert calls == [2]  # only shard 1 (examples 2 and 3) was computed again
    assert shards[0].stat().st_ino == kept
    assert {p.name: p.read_bytes() for p in sorted(folder.glob("shard-*"))} == before


def test_no_room_for_the_cache_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr("mop.core.disk.free_bytes", lambda path: 1000)
    with pytest.raises(UsageError, match="the teacher cache needs about .* --teacher_cache_dir"):
        tc.build_cache(tmp_path / "cache", key(), None, PAD, examples(), progress=False)
    assert not (tmp_path / "cache").exists()


def test_size_per_position():
    assert tc.bytes_per_position(64, "float16") == 388 and tc.bytes_per_position(64, "float32") == 516


def losses(folder) -> list[float]:
    with open(folder / LOSS_LOG) as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def test_finetune_from_a_cache_with_the_whole_vocabulary_equals_online_kd(pruned_and_dense, tmp_path):  # noqa: F811
    """k = vocabulary size: the cached targets hold the whole distribution, so the first step's loss
    equals online KD's; the cache is written once and reused by a second checkpoint of the run."""
    dense, pruned, data = pruned_and_dense
    vocab = str(tiny_model(layers=1).config.vocab_size)
    online = recover(pruned, tmp_path / "online", data, "--objective", "kd", "--teacher_mode", "online")
    cached = recover(pruned, tmp_path / "cached", data, "--objective", "kd", "--teacher_mode", "cache",
                     "--kd_top_k", vocab)
    folder = pruned.parent.parent / "teacher_cache"
    assert cached["teacher_mode"] == "cache" and cached["teacher_cache_dir"] == str(folder)
    assert (folder / tc.COMPLETE_FILE).exists() and online["teacher_mode"] == "online"
    assert losses(tmp_path / "cached")[0] == pytest.approx(losses(tmp_path / "online")[0], rel=1e-5)
    stamp = (folder / "shard-00000.safetensors").stat().st_mtime_ns
    recover(pruned, tmp_path / "cached_again", data, "--objective", "kd", "--teacher_mode", "cache", "--kd_top_k", vocab)
    assert (folder / "shard-00000.safetensors").stat().st_mtime_ns == stamp


def test_auto_teacher_mode_follows_the_memory_plan(pruned_and_dense, monkeypatch):  # noqa: F811
    """auto: online when the plan fits the teacher beside the student, else the cache; online
    forced onto a budget it does not fit is a one-line error; no plan (CPU): online."""
    import dataclasses

    import mop.recover.job as recovery
    from mop.models.loading import load_config
    from mop.recover.memory import GB, HEADROOM, RUNTIME_RESERVE_GB, TrainingSetup, estimate_peak, model_parameter_count

    dense, pruned, _ = pruned_and_dense
    config = load_config(str(pruned))
    settings = recovery.RecoverySettings(objective="kd", batch_size=1, grad_accum=1, max_length=32, lora_r=4,
                                         gradient_checkpointing=True)
    teacher = model_parameter_count(load_config(str(dense)))
    base = TrainingSetup(weight_dtype=torch.float32, lora_r=4, max_length=32, device_type="cpu")
    alone = estimate_peak(config, 1, True, base).total
    both = estimate_peak(config, 1, True, dataclasses.replace(base, teacher_params=teacher)).total
    assert both - alone >= teacher * 4
    between = ((alone + both) / 2 / GB + RUNTIME_RESERVE_GB) / (1 - HEADROOM)  # fits the student only
    roomy = (2 * both / GB + RUNTIME_RESERVE_GB) / (1 - HEADROOM)
    for budget, mode in ((between, "cache"), (roomy, "online")):
        tight = dataclasses.replace(settings, max_memory_gb=budget)
        _, plan, chosen = recovery.plan_memory(tight, config, torch.float32, 1, str(dense))
        assert chosen == mode and plan is not None
    with pytest.raises(UsageError, match="does not fit"):
        recovery.plan_memory(dataclasses.replace(settings, max_memory_gb=between, teacher_mode="online"), config,
                             torch.float32, 1, str(dense))
    assert recovery.plan_memory(settings, config, torch.float32, 1, str(dense))[1:] == (None, "online")  # CPU
    assert recovery.plan_memory(dataclasses.replace(settings, objective="sft"), config, torch.float32)[2] is None
