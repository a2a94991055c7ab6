"""mop.recover.memory: the peak estimate against hand-computed numbers, and plans that respect the budget."""

import dataclasses
from types import SimpleNamespace

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from mop.core.io import UsageError
from mop.models.adapter import LORA_PROJECTIONS
from mop.models.configs import config_for_dry_run
from mop.recover import memory
from mop.recover.memory import TrainingSetup, estimate_peak, plan_recovery
from mop.recover.settings import RecoverySettings

PAPER_CONFIGS = ("meta-llama/Llama-2-7b-hf", "meta-llama/Meta-Llama-3-8B")
RTX_4090_BYTES = 24_564 * 2**20  # what torch reports as total_memory: 23.99 GiB
A100_80GB_BYTES = 81_920 * 2**20  # 80 GiB


def fake_cuda(monkeypatch, devices: dict[int, int], current: int = 0):
    """CUDA devices (index -> total bytes) as torch reports them, on a machine that may have none."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: SimpleNamespace(total_memory=devices[index]))


def hand_config(**kw):
    """hidden 64, 4 query heads and 2 K/V heads of 16, intermediate 96, 3 layers, vocabulary 100."""
    base = dict(vocab_size=100, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
                num_key_value_heads=2, head_dim=16, tie_word_embeddings=False)
    return LlamaConfig(**{**base, **kw})


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_planner_cli_predicts_what_recovery_with_default_settings_does(name, monkeypatch, capsys):
    """`python -m mop.recover.memory --config X` (its defaults) plans exactly what finetune.py's default
    RecoverySettings get on a 24 GB CUDA card: same micro-batch, accumulation, checkpointing, peak."""
    fake_cuda(monkeypatch, {0: RTX_4090_BYTES})
    cli = memory.main(["--config", name])
    fitted, plan = memory.fit_recovery_settings(RecoverySettings(), config_for_dry_run(name), torch.bfloat16,
                                                 LORA_PROJECTIONS)  # as mop.recover.job.plan_memory calls it
    assert (cli.micro_batch, cli.grad_accum, cli.gradient_checkpointing) == (
        fitted.batch_size, fitted.grad_accum, fitted.gradient_checkpointing)
    assert cli.estimate.total == plan.estimate.total


@pytest.mark.parametrize("kw", [{}, {"tie_word_embeddings": True}, {"attention_bias": True, "mlp_bias": True},
                                {"num_key_value_heads": 4}])
def test_parameter_count_formula_matches_the_model(kw):
    config = hand_config(**kw)
    assert memory.model_parameter_count(config) == sum(p.numel() for p in LlamaForCausalLM(config).parameters())


def test_estimate_equals_hand_computed_bytes():
    # Weights: embeddings 2 x 100 x 64 = 12,800; per layer q 4,096 + k 2,048 + v 2,048 + o 4,096 +
    # MLP 3 x 64 x 96 = 18,432 + norms 128 = 30,848, x 3 = 92,544; final norm 64 -> 105,408 x 4 bytes.
    # LoRA r=4: per layer 4 x (128 + 96 + 96 + 128 + 160 + 160 + 160) = 3,712, x 3 = 11,136 x 16 bytes.
    # One layer, fp32 (a = 4), CUDA dropout mask 1 byte, padded rows (K/V repeated to 64, mask copy 4 x 10):
    #   norms 8 x 64 = 512; LoRA inputs 5 x (3 x 64 + 64 + 2 x 64 + 96) = 2,400; LoRA A outputs 4 x 4 x 7 = 112;
    #   attention 4 x (2 x 64 + 2 x 64) + 4 x 4 heads + 40 = 1,080; MLP 4 x 3 x 96 = 1,152  -> 5,256 bytes.
    # Micro-batch 2 x 10 tokens = 20 tokens; per token 3 x 5,256 + 4 x 64 (final norm) + 4 x 64 (the hidden
    # states the loss gathers) = 16,280.
    setup = TrainingSetup(weight_dtype=torch.float32, lora_r=4, lora_dropout=0.05, max_length=10, packing=False)
    config = hand_config()
    off = estimate_peak(config, 2, False, setup)
    assert (off.weights, off.lora) == (105_408 * 4, 11_136 * 16)
    assert off.activations == 20 * 16_280
    # The head by chunks: 4 fp32 buffers of (positions, vocabulary); the chunk (2^25 / 100 positions)
    # is larger than the 20 tokens there are.
    assert off.transient == 4 * 4 * 20 * 100
    assert off.total == 421_632 + 178_176 + 325_600 + 32_000
    # Packed rows (the default): no mask copy, K/V not repeated: attention 4 x (2 x 64 + 2 x 32) + 16 = 784.
    packed = estimate_peak(config, 2, False, dataclasses.replace(setup, packing=True))
    assert packed.activations == 20 * (3 * (5_256 - 1_080 + 784) + 512)
    # Checkpointing: each layer keeps its fp32 input (256 bytes a token); the recomputed layer
    # (20 x 5,256) is larger than the logit buffers (32,000), so it is the transient part.
    on = estimate_peak(config, 2, True, setup)
    assert on.activations == 20 * (3 * 256 + 512)
    assert on.transient == 20 * 5_256
    # On CPU dropout keeps a float mask: 4 bytes instead of 1 per LoRA input element (480 a layer).
    cpu = estimate_peak(config, 2, False, dataclasses.replace(setup, device_type="cpu"))
    assert cpu.activations - off.activations == 20 * 3 * 3 * 480
    # bf16 base: 2-byte weights and activations, fp32 norms and logits, autocast copies of the LoRA weights.
    half = estimate_peak(config, 1, False, dataclasses.replace(setup, weight_dtype=torch.bfloat16))
    per_layer = 512 + 3 * 480 + 2 * 4 * 7 + (2 * (2 * 64 + 2 * 32) + 16) + 2 * 3 * 96  # unpadded: K/V not repeated
    assert half.weights == 105_408 * 2 and half.lora == 11_136 * 18
    assert half.activations == 10 * (3 * per_layer + 256 + 128)
    # Distillation, teacher online: its weights, its final hidden states (a h a token), two more logit buffers.
    online = estimate_peak(config, 2, False, dataclasses.replace(setup, teacher_params=105_408))
    assert online.weights - off.weights == 105_408 * 4 and online.activations - off.activations == 20 * 4 * 64
    assert online.transient == 6 * 4 * 20 * 100
    # From a teacher cache with k = 64: the batch's targets, 12 k bytes a token (fp32 log-probs, int64 ids).
    cached = estimate_peak(config, 2, False, dataclasses.replace(setup, cached_top_k=64))
    assert cached.activations - off.activations == 20 * 12 * 64 and cached.weights == off.weights


@pytest.mark.parametrize("name", PAPER_CONFIGS)
@pytest.mark.parametrize("budget", [20.0, 24.0, 32.0, 48.0, 80.0])
def test_plan_fits_budget_and_keeps_effective_batch(name, budget):
    config = config_for_dry_run(name)
    plan = plan_recovery(config, budget, effective_batch=16, max_micro_batch=4)
    usable = 0.9 * budget - 0.5  # 10% headroom and 0.5 GB for the CUDA context / runtime
    assert plan.usable_gb == pytest.approx(usable)
    # The fastest that fits, found by brute force over every setting in order of speed: without
    # checkpointing first, then the largest micro-batch among the divisors of 16 up to 4.
    fits = [(checkpointing, micro) for checkpointing in (False, True) for micro in (4, 2, 1)
            if estimate_peak(config, micro, checkpointing).total / 2**30 <= usable]
    assert fits, "every paper budget here fits something"
    assert (plan.gradient_checkpointing, plan.micro_batch, plan.grad_accum) == (fits[0][0], fits[0][1], 16 // fits[0][1])


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_24_gb_plans_of_the_paper_models(name, capsys):
    plan = memory.main(["--config", name, "--max_memory_gb", "24"])
    assert plan.estimate.total_gb < 24 and plan.micro_batch * plan.grad_accum == 16
    out = capsys.readouterr().out
    assert "memory plan for 24 GB" in out and f"micro-batch {plan.micro_batch} x {plan.grad_accum}" in out
    # What the issue warned about: the old default (4 x 512 tokens, no checkpointing) does not fit.
    assert estimate_peak(config_for_dry_run(name), 4, False).total_gb > 24


def test_estimate_grows_with_micro_batch_and_shrinks_with_checkpointing():
    config = config_for_dry_run("meta-llama/Llama-2-7b-hf")
    totals = [estimate_peak(config, m, False).total for m in (1, 2, 4, 8)]
    assert totals == sorted(totals) and len(set(totals)) == 4
    for m in (1, 4):
        assert estimate_peak(config, m, True).total < estimate_peak(config, m, False).total


def test_impossible_budget_is_a_usage_error():
    with pytest.raises(UsageError, match="does not fit 10 GB"):
        plan_recovery(config_for_dry_run("meta-llama/Llama-2-7b-hf"), 10.0)  # bf16 weights alone: 12.6 GB
    with pytest.raises(UsageError):
        plan_recovery(hand_config(), 0.0)


def test_required_checkpointing_stays_on():
    plan = plan_recovery(config_for_dry_run("meta-llama/Llama-2-7b-hf"), 80.0, require_checkpointing=True)
    assert plan.gradient_checkpointing and plan.micro_batch == 16


def test_fit_recovery_settings(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = config_for_dry_run("meta-llama/Llama-2-7b-hf")
    settings = RecoverySettings()
    assert memory.fit_recovery_settings(settings, config, torch.bfloat16) == (settings, None)  # CPU: no default
    zero = dataclasses.replace(settings, max_memory_gb=0)
    assert memory.fit_recovery_settings(zero, config, torch.bfloat16) == (zero, None)
    fitted, plan = memory.fit_recovery_settings(dataclasses.replace(settings, max_memory_gb=24), config, torch.bfloat16)
    assert (fitted.batch_size, fitted.grad_accum, fitted.gradient_checkpointing) == (
        plan.micro_batch, plan.grad_accum, plan.gradient_checkpointing)
    assert fitted.batch_size * fitted.grad_accum == 16 and fitted.learning_rate == settings.learning_rate
    fake_cuda(monkeypatch, {0: RTX_4090_BYTES})
    _, plan = memory.fit_recovery_settings(settings, config, torch.bfloat16)
    assert plan.budget_gb == 23.98  # the CUDA default: the device's memory, rounded down
    with pytest.raises(UsageError):
        memory.resolve_budget(-1.0, True)


def test_default_budget_is_the_devices_memory_and_24_reproduces_the_papers_card(monkeypatch):
    """Without --max_memory_gb an 80 GB card gets an 80 GB plan (LLaMA-2-7B: 4 x 4 without
    checkpointing), not the 24 GB card's 1 x 16; --max_memory_gb 24 gives the paper's plan on any card."""
    config = config_for_dry_run("meta-llama/Llama-2-7b-hf")
    fake_cuda(monkeypatch, {0: RTX_4090_BYTES, 1: A100_80GB_BYTES}, current=1)  # this process trains on GPU 1
    big, big_plan = memory.fit_recovery_settings(RecoverySettings(), config, torch.bfloat16, LORA_PROJECTIONS)
    assert big_plan.budget_gb == 80.0
    assert (big.batch_size, big.grad_accum, big.gradient_checkpointing) == (4, 4, False)
    paper, paper_plan = memory.fit_recovery_settings(RecoverySettings(max_memory_gb=24), config, torch.bfloat16,
                                                     LORA_PROJECTIONS)
    assert paper_plan.budget_gb == 24 and (paper.batch_size, paper.grad_accum) == (1, 16)
    fake_cuda(monkeypatch, {0: RTX_4090_BYTES, 1: A100_80GB_BYTES}, current=0)
    card, card_plan = memory.fit_recovery_settings(RecoverySettings(), config, torch.bfloat16, LORA_PROJECTIONS)
    assert card_plan.budget_gb == 23.98 and (card.batch_size, card.grad_accum, card.gradient_checkpointing) == (
        paper.batch_size, paper.grad_accum, paper.gradient_checkpointing)
    assert card_plan.estimate.total == paper_plan.estimate.total < big_plan.estimate.total


def test_fp32_weights_double_the_weight_term():
    config = hand_config()
    fp32 = estimate_peak(config, 1, False, TrainingSetup(weight_dtype=torch.float32))
    bf16 = estimate_peak(config, 1, False, TrainingSetup(weight_dtype=torch.bfloat16))
    assert fp32.weights == 2 * bf16.weights and fp32.activations > bf16.activations


def test_gigabytes_are_gibibytes_of_the_hand_computed_total():
    setup = TrainingSetup(weight_dtype=torch.float32, lora_r=4, lora_dropout=0.05, max_length=10, packing=False)
    total_bytes = 421_632 + 178_176 + 325_600 + 32_000  # test_estimate_equals_hand_computed_bytes
    assert estimate_peak(hand_config(), 2, False, setup).total_gb == pytest.approx(total_bytes / 1024**3)


def test_a_config_without_llama_sizes_is_refused_naming_the_supported_families():
    from transformers import GPT2Config

    from mop.core.io import UsageError
    from mop.recover.memory import check_decoder_config

    with pytest.raises(UsageError) as err:
        check_decoder_config(GPT2Config())
    message = str(err.value)
    assert "a gpt2 config lacks intermediate_size" in message
    assert all(family in message for family in ("llama", "mistral", "qwen2", "qwen3", "gemma3_text"))
