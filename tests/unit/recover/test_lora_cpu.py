"""LoRA on CPU (mop/recover/lora_cpu.py): dropout masks from 16-bit draws and the update added by one addmm,
computing what peft's own layers compute."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from mop.recover.lora_cpu import ELEMENTS_PER_DRAW, MaskDropout, drop_threshold, use_mask_dropout
from mop.recover.settings import RecoverySettings
from mop.recover.trainer import wrap_with_lora

P = 0.05
RATE = (drop_threshold(P) + 2 ** 15) / 2 ** 16  # the exact drop probability


def dropped(shape=(1000, 1200), p=P, seed=0) -> torch.Tensor:
    torch.manual_seed(seed)
    return MaskDropout(p).train()(torch.ones(shape)) == 0


def within(observed: float, rate: float, count: int, sigmas: float = 5.0) -> bool:
    return abs(observed - rate) <= sigmas * math.sqrt(rate * (1 - rate) / count)


def test_drop_rate_is_p_to_within_a_16_bit_step():
    assert abs(RATE - P) <= 2 ** -17
    mask = dropped()
    assert within(mask.float().mean().item(), RATE, mask.numel())


def test_each_lane_of_a_64_bit_draw_drops_at_the_rate_and_independently():
    """Four elements share a 64-bit draw: each of the four 16-bit lanes must drop at the rate (a lane
    whose sign bit never varies would never or always drop) and two lanes of a draw together at
    rate^2 (they must not move together)."""
    lanes = dropped().flatten().view(-1, ELEMENTS_PER_DRAW).float()  # (draws, 4)
    count = lanes.shape[0]
    for lane in range(ELEMENTS_PER_DRAW):
        assert within(lanes[:, lane].mean().item(), RATE, count), lane
    both = (lanes[:, 0] * lanes[:, 1]).mean().item()
    assert within(both, RATE ** 2, count)


def test_kept_elements_are_scaled_like_torch_dropout_and_the_gradient_is_the_mask():
    torch.manual_seed(3)
    x = torch.randn(64, 96, requires_grad=True)
    y = MaskDropout(P).train()(x)
    kept = y != 0
    assert kept.float().mean() < 1
    torch.testing.assert_close(y[kept], x[kept] / (1 - P), rtol=1e-6, atol=0)
    y.backward(torch.ones_like(y))
    assert torch.equal(x.grad, kept.float() / (1 - P))


def test_the_seed_decides_the_mask():
    assert torch.equal(dropped(seed=1), dropped(seed=1))
    assert not torch.equal(dropped(seed=1), dropped(seed=2))


def test_eval_mode_and_p_zero_pass_the_input_through():
    x = torch.randn(8, 16)
    assert torch.equal(MaskDropout(P).eval()(x), x)
    assert torch.equal(MaskDropout(0.0).train()(x), x)


@pytest.mark.parametrize("p, expected", [(0.05, "MaskDropout"), (0.0, "Identity")])
def test_every_lora_dropout_of_a_recovery_model_is_swapped(tiny_gqa, p, expected):
    model = wrap_with_lora(tiny_gqa, RecoverySettings(lora_r=4, lora_alpha=8, lora_dropout=p))
    kinds = {type(m.lora_dropout["default"]).__name__ for m in model.modules()
             if isinstance(getattr(m, "lora_dropout", None), nn.ModuleDict)}
    assert kinds == {expected}
    if p:
        layers = tiny_gqa.config.num_hidden_layers
        swapped = [m for m in model.modules() if isinstance(m, MaskDropout)]
        assert len(swapped) == 7 * layers and all(d.p == p for d in swapped)
        assert use_mask_dropout(model) == 0  # nothing left to swap


# ----------------------------------------------------------------------------- the fused update


def lora_pair(model, p: float, seed: int = 0):
    """(peft's own LoRA model, the project's) of copies of `model`, with the same random A and B
    (B is zero at peft's start, which would hide the update)."""
    settings = RecoverySettings(lora_r=4, lora_alpha=8, lora_dropout=p)
    plain = wrap_with_lora(copy.deepcopy(model), settings, cpu_layers=False)
    use_mask_dropout(plain)  # the same dropout on both sides; only the update's sum differs
    fused = wrap_with_lora(copy.deepcopy(model), settings)
    torch.manual_seed(seed)
    for name, param in plain.named_parameters():
        if "lora_" in name:
            param.data.normal_(0, 0.1)
    fused.load_state_dict(plain.state_dict())
    return plain, fused


@pytest.mark.parametrize("p", [0.0, 0.05])
def test_fused_update_gives_peft_s_loss_and_gradients(tiny_gqa, p):
    plain, fused = lora_pair(tiny_gqa, p)
    lora_layers = [type(m).__name__ for m in fused.modules() if hasattr(m, "lora_A")]
    assert lora_layers == ["FusedLoraLinear"] * 7 * tiny_gqa.config.num_hidden_layers
    ids = torch.randint(0, tiny_gqa.config.vocab_size, (2, 12))
    results = []
    for model in (plain, fused):
        model.train()
        torch.manual_seed(7)  # the same dropout masks
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        results.append((loss.detach(), {n: q.grad for n, q in model.named_parameters() if q.grad is not None}))
    (plain_loss, plain_grads), (fused_loss, fused_grads) = results
    torch.testing.assert_close(fused_loss, plain_loss, rtol=1e-6, atol=1e-6)
    assert plain_grads.keys() == fused_grads.keys() and len(plain_grads) == 2 * 7 * tiny_gqa.config.num_hidden_layers
    for name in plain_grads:
        torch.testing.assert_close(fused_grads[name], plain_grads[name], rtol=1e-5, atol=1e-7)


def test_fused_layer_is_peft_s_own_outside_cpu_fp32_training(tiny_gqa):
    """Evaluation, a merged adapter or a disabled one take peft's path and give its outputs."""
    plain, fused = lora_pair(tiny_gqa, 0.05)
    ids = torch.randint(0, tiny_gqa.config.vocab_size, (2, 9))
    layer = next(m for m in fused.modules() if type(m).__name__ == "FusedLoraLinear")
    x = torch.randn(3, layer.in_features)
    assert layer.fusable(x, {})
    assert not layer.fusable(x, {"adapter_names": ["default"] * 3})
    assert not layer.fusable(x.double(), {})
    with torch.no_grad():
        for model in (plain, fused):
            model.eval()
        torch.testing.assert_close(fused(input_ids=ids).logits, plain(input_ids=ids).logits, rtol=0, atol=0)
        assert not layer.fusable(x, {})
        with fused.disable_adapter():
            torch.testing.assert_close(fused(input_ids=ids).logits, tiny_gqa(input_ids=ids).logits, rtol=0, atol=0)
        merged = fused.merge_and_unload()
        torch.testing.assert_close(merged(input_ids=ids).logits, plain(input_ids=ids).logits, rtol=1e-5, atol=1e-5)
