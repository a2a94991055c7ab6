"""AMP importance: definition, padding invariance, hook hygiene."""

import pytest
import torch
from conftest import tiny_model

from mop.adapter import get_adapter
from mop.importance import amp_scores, batch_prompts

PROMPTS = [
    "explain the sun .", "what is water and why is it blue ? write a short sentence",
    "name two red trees", "list one two three four five", "the city",
    "describe a big slow dog and a small fast cat in the river city",
]


@pytest.fixture
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def reference_scores(model, tokenizer, prompts):
    """Direct per-prompt computation from captured activations, one prompt at a time."""
    adapter = get_adapter(model)
    d = adapter.head_dim
    heads = [torch.zeros(adapter.query_heads(l)) for l in adapter.layers()]
    neurons = [torch.zeros(l.mlp.gate_proj.out_features) for l in adapter.layers()]
    for text in prompts:
        ids = torch.tensor([tokenizer(text)["input_ids"]])
        captured = {}
        handles = []
        for i, layer in enumerate(adapter.layers()):
            handles.append(layer.self_attn.o_proj.register_forward_hook(
                lambda m, a, o, i=i: captured.__setitem__(("o", i), a[0])))
            handles.append(layer.mlp.down_proj.register_forward_hook(
                lambda m, a, o, i=i: captured.__setitem__(("d", i), a[0])))
        try:
            with torch.no_grad():
                model(ids)
        finally:
            for h in handles:
                h.remove()
        for i, layer in enumerate(adapter.layers()):
            x, w = captured[("o", i)][0], layer.self_attn.o_proj.weight  # (T, H*d), (hidden, H*d)
            for h in range(heads[i].numel()):
                heads[i][h] += (x[:, h * d:(h + 1) * d] @ w[:, h * d:(h + 1) * d].T).abs().sum(-1).mean()
            neurons[i] += captured[("d", i)][0].abs().mean(0)
    n = len(prompts)
    return [h / n for h in heads], [m / n for m in neurons]


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_batched_scores_equal_one_prompt_at_a_time(tokenizer, kv_heads):
    model = tiny_model(kv_heads=kv_heads)
    adapter = get_adapter(model)
    batched = amp_scores(adapter, batch_prompts(tokenizer, PROMPTS, 4, 64), progress=False)
    single = amp_scores(adapter, batch_prompts(tokenizer, PROMPTS, 1, 64), progress=False)
    ref_heads, ref_neurons = reference_scores(model, tokenizer, PROMPTS)
    for i in range(adapter.num_layers):
        torch.testing.assert_close(batched.heads[i], single.heads[i], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(batched.neurons[i], single.neurons[i], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(batched.heads[i], ref_heads[i], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(batched.neurons[i], ref_neurons[i], rtol=1e-4, atol=1e-6)
    assert batched.group_scores(0, 4 // kv_heads).shape == (kv_heads,)
    torch.testing.assert_close(batched.group_scores(1, 4 // kv_heads),
                               batched.heads[1].view(kv_heads, -1).mean(1))


def test_padding_is_excluded(tokenizer):
    batches = batch_prompts(tokenizer, PROMPTS, 6, 64)
    assert len(batches) == 1 and (batches[0]["attention_mask"] == 0).any()
    lengths = batches[0]["attention_mask"].sum(1)
    assert lengths.tolist() == sorted(len(tokenizer(p)["input_ids"]) for p in PROMPTS)


def test_hooks_are_removed_even_on_error(tokenizer):
    model = tiny_model()
    adapter = get_adapter(model)
    bad = [{"input_ids": torch.tensor([[1, 2, 10_000]]), "attention_mask": torch.ones(1, 3, dtype=torch.long)}]
    with pytest.raises(Exception):
        amp_scores(adapter, bad, progress=False)
    for layer in adapter.layers():
        assert not layer.self_attn.o_proj._forward_pre_hooks
        assert not layer.mlp.down_proj._forward_pre_hooks


def test_mlp_only_scores_skip_heads(tokenizer):
    adapter = get_adapter(tiny_model())
    scores = amp_scores(adapter, batch_prompts(tokenizer, PROMPTS, 3, 64), with_heads=False, progress=False)
    assert scores.heads[0].numel() == 0 and scores.neurons[0].shape == (96,)
