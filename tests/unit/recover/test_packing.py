"""Packed recovery batches and the chunked-head losses (mop/recover/batches.py, mop/recover/distill.py)."""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch
import torch.nn.functional as F
from conftest import FAMILIES, family_model, tiny_model

import mop.recover.distill as distill
from mop.recover.batches import IGNORE_INDEX, RecoveryCollator, first_fit_rows, prediction_positions
from mop.recover.distill import OutputHead, final_hidden, kd_sum, response_ce_sum
from mop.recover.packed_attention import NAME, example_lengths, packed_attention

pytestmark = pytest.mark.usefixtures("one_thread")
PAD = 3


def examples(lengths=(9, 5, 12, 7, 3), prompt=(4, 2, 6, 3, 1), seed=0) -> list[dict]:
    """Random token examples: labels -100 on the first `prompt` tokens, the rest their own ids."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, (n, p) in enumerate(zip(lengths, prompt)):
        ids = torch.randint(4, 60, (n,), generator=g).tolist()
        out.append({"input_ids": ids, "labels": [IGNORE_INDEX] * p + ids[p:], "index": i})
    return out


def padded(features):
    return RecoveryCollator(PAD, packing=False)(features)


def packed(features, row_tokens=None):
    return RecoveryCollator(PAD, packing=True, row_tokens=row_tokens)(features)


def test_first_fit_rows_keeps_every_example_whole_and_rows_within_budget():
    lengths = [9, 5, 12, 7, 3, 20]
    rows = first_fit_rows(lengths, 16)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 16 for row in rows if len(row) > 1)
    assert rows == [[0, 1], [2, 4], [3], [5]]  # 9+5, 12+3, 7 (no room left for it), 20 alone


def test_collators_lay_out_the_same_tokens():
    feats = examples()
    pad, pack = padded(feats), packed(feats, row_tokens=16)
    assert pad["input_ids"].shape == (5, 12) and pack["input_ids"].shape[0] == 3
    for batch in (pad, pack):
        real = batch["attention_mask"].bool()
        assert real.sum() == sum(len(f["input_ids"]) for f in feats)
        assert batch["labels"].ne(IGNORE_INDEX).sum() == sum(sum(x != IGNORE_INDEX for x in f["labels"]) for f in feats)
        # prediction positions: every token but the last of each example
        assert prediction_positions(batch["segments"]).sum() == sum(len(f["input_ids"]) - 1 for f in feats)
    row = pack["position_ids"][0].tolist()
    assert row[:14] == list(range(9)) + list(range(5))  # restarting positions


def per_example_logits(model, feats):
    with torch.no_grad():
        return [model(torch.tensor([f["input_ids"]])).logits[0] for f in feats]


@pytest.mark.parametrize("row_tokens", [None, 16])
@pytest.mark.parametrize("per_example", [False, True], ids=["masked sdpa", "packed sdpa"])
def test_packed_rows_attend_within_their_example_only(row_tokens, per_example):
    """Each example's logits inside a packed row equal those of the example alone, under
    transformers' block mask and under mop.recover.packed_attention. Fails if the KV cache is on
    (transformers then ignores the packing) or positions do not restart."""
    model, feats = tiny_model(kv_heads=2, layers=2), examples()
    batch = packed(feats, row_tokens)
    with packed_attention(model) if per_example else contextlib.nullcontext():
        assert model.config._attn_implementation == (NAME if per_example else "sdpa")
        with distill.head_bypassed(model) as captured:
            with torch.no_grad():
                model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False)
    assert model.config._attn_implementation == "sdpa"
    hidden = captured[0]
    logits = model.lm_head(hidden)
    alone = per_example_logits(model, feats)
    for r in range(batch["input_ids"].shape[0]):
        for s in batch["segments"][r].unique().tolist():
            if s == 0:
                continue
            span = batch["segments"][r] == s
            ids = batch["input_ids"][r, span].tolist()
            match = next(i for i, f in enumerate(feats) if f["input_ids"] == ids)
            torch.testing.assert_close(logits[r, span], alone[match], atol=1e-5, rtol=1e-5)
    # the two traps: a cache, or positions that do not restart, mix the examples
    with distill.head_bypassed(model) as captured, torch.no_grad():
        model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=True)
        model(input_ids=batch["input_ids"], use_cache=False)
    for wrong in captured:
        assert (model.lm_head(wrong) - logits).abs().max() > 1e-3


def lora_model(seed=0):
    from peft import LoraConfig, get_peft_model

    model = tiny_model(kv_heads=2, layers=2, seed=seed)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                                 init_lora_weights=False))
    return peft_model


def loss_and_grads(model, batch, objective, teacher=None):
    model.zero_grad()
    head, hidden = OutputHead(model), final_hidden(model, batch)
    if objective == "sft":
        total, count = response_ce_sum(head, hidden, batch)
    else:
        with torch.no_grad():
            teacher_hidden = final_hidden(teacher, batch)
        total, count = kd_sum(head, hidden, batch, 1.5, OutputHead(teacher), teacher_hidden)
    loss = total / count
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("objective", ["sft", "kd"])
def test_packed_and_padded_batches_give_the_same_loss_and_gradients(objective):
    model, feats, teacher = lora_model(), examples(), tiny_model(kv_heads=2, layers=3, seed=5)
    loss_pad, grads_pad = loss_and_grads(model, padded(feats), objective, teacher)
    loss_pack, grads_pack = loss_and_grads(model, packed(feats, 16), objective, teacher)
    loss_one, grads_one = loss_and_grads(model, packed(feats), objective, teacher)
    with packed_attention(model.get_base_model()), packed_attention(teacher):
        loss_sdpa, grads_sdpa = loss_and_grads(model, packed(feats), objective, teacher)
    assert loss_pad > 1e-2  # a real loss (random tiny models: KL ~0.02, CE ~4)
    for loss, grads in ((loss_pack, grads_pack), (loss_one, grads_one), (loss_sdpa, grads_sdpa)):
        assert loss == pytest.approx(loss_pad, abs=1e-5)
        assert grads.keys() == grads_pad.keys() and len(grads) == 12
        for name in grads:
            torch.testing.assert_close(grads[name], grads_pad[name], atol=1e-5, rtol=1e-4)


def full_logits_losses(model, teacher, feats, temperature):
    """The losses written plainly: each example alone, full-vocabulary logits."""
    ce, ce_n, kl, kl_n = 0.0, 0, 0.0, 0
    for f in feats:
        ids = torch.tensor([f["input_ids"]])
        logits, t_logits = model(ids).logits[0, :-1].double(), teacher(ids).logits[0, :-1].double()
        labels = torch.tensor(f["labels"][1:])
        ce = ce + F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum")
        ce_n += int(labels.ne(IGNORE_INDEX).sum())
        s, t = (logits / temperature).log_softmax(-1), (t_logits / temperature).log_softmax(-1)
        kl = kl + (t.exp() * (t - s)).sum()
        kl_n += ids.shape[1] - 1
    return ce / ce_n, kl / kl_n * temperature ** 2


@pytest.mark.parametrize("chunk", [10 ** 6, 7])  # one chunk; chunks of 7 positions
def test_chunked_head_losses_equal_the_full_logits_losses(chunk, monkeypatch):
    monkeypatch.setattr(OutputHead, "chunk_size", lambda self: chunk)
    model, teacher, feats = tiny_model(kv_heads=2, layers=2, seed=1), tiny_model(kv_heads=2, layers=3, seed=2), examples()
    batch = packed(feats, 16)
    with torch.no_grad():
        head, hidden, t_hidden = OutputHead(model), final_hidden(model, batch), final_hidden(teacher, batch)
        ce, ce_n = response_ce_sum(head, hidden, batch)
        kl, kl_n = kd_sum(head, hidden, batch, 2.0, OutputHead(teacher), t_hidden)
        want_ce, want_kl = full_logits_losses(model, teacher, feats, 2.0)
    assert (ce / ce_n).item() == pytest.approx(want_ce.item(), rel=1e-5)
    assert (kl / kl_n).item() == pytest.approx(want_kl.item(), rel=1e-4) and want_kl > 1e-2


def test_chunks_hold_a_fixed_number_of_logits():
    head = OutputHead(tiny_model(kv_heads=2, layers=1))
    head.module = torch.nn.Linear(8, 128256, bias=False)  # Llama-3's vocabulary: 261 x 128256 fp32 = 128 MB
    assert head.chunk_size() == 261
    head.module = torch.nn.Linear(8, 2 ** 20, bias=False)  # a huge vocabulary: still 64 positions
    assert head.chunk_size() == 64


def test_kd_is_zero_when_the_student_is_the_teacher():
    model, batch = tiny_model(kv_heads=2, layers=2), packed(examples(), 16)
    with torch.no_grad():
        hidden = final_hidden(model, batch)
        kl, n = kd_sum(OutputHead(model), hidden, batch, 1.0, OutputHead(copy.deepcopy(model)), hidden.clone())
    assert n == sum(len(f["input_ids"]) - 1 for f in examples()) and abs(kl.item()) < 1e-5


def test_the_head_sees_no_position_while_bypassed():
    model, seen = tiny_model(kv_heads=2, layers=2), []
    handle = model.lm_head.register_forward_hook(lambda m, a, out: seen.append(out.shape))
    try:
        final_hidden(model, packed(examples(), 16))
    finally:
        handle.remove()
    assert len(seen) == 1 and seen[0][1] == 0
    assert not model.lm_head._forward_pre_hooks  # the bypass is removed afterwards


def test_models_with_sliding_windows_keep_the_masked_attention():
    model = tiny_model(kv_heads=2, layers=1)
    model.config.sliding_window = 4
    with packed_attention(model) as used:
        assert not used and model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_packs_and_scores_as_its_own_forward(family):
    """Packed rows (per-example attention, or transformers' masks where Gemma-3 has sliding-window
    layers) and the chunked head (with Gemma-3's soft cap) give the losses of each example alone
    through the model's own forward."""
    model, teacher = family_model(family, layers=3, seed=1), family_model(family, layers=2, seed=2)
    feats, batch = examples(), packed(examples(), 16)
    with packed_attention(model), packed_attention(teacher), torch.no_grad():
        hidden, t_hidden = final_hidden(model, batch), final_hidden(teacher, batch)
        ce, ce_n = response_ce_sum(OutputHead(model), hidden, batch)
        kl, kl_n = kd_sum(OutputHead(model), hidden, batch, 2.0, OutputHead(teacher), t_hidden)
    with torch.no_grad():
        want_ce, want_kl = full_logits_losses(model, teacher, feats, 2.0)
    assert (ce / ce_n).item() == pytest.approx(want_ce.item(), rel=1e-5)
    assert (kl / kl_n).item() == pytest.approx(want_kl.item(), rel=1e-4) and want_kl > 1e-3


def test_example_lengths_follow_the_restarts_and_refuse_a_row_that_starts_mid_example():
    assert example_lengths(torch.tensor([0, 1, 2, 0, 1, 0, 0, 1, 2, 3])) == [3, 2, 1, 4]
    with pytest.raises(ValueError, match="must begin an example"):
        example_lengths(torch.tensor([3, 4, 0, 1]))
