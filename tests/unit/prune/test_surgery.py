"""Surgery on tiny random Llama models: shapes, configs and functional equivalences."""

import copy

import pytest
import torch
from conftest import tiny_model
from transformers import LlamaForCausalLM

from mop.models.adapter import count_parameters, get_adapter
from mop.prune.budget import LayerShape
from mop.prune.steps import layer_shape
from mop.prune.surgery import depth_index, drop_layer, remove_groups, remove_neurons, sync_config

TOKENS = torch.tensor([[1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45]])


def logits(model, ids=TOKENS):
    with torch.no_grad():
        return model(ids).logits


def zero_o_proj_columns(model, layer, group, group_size, head_dim):
    cols = slice(group * group_size * head_dim, (group + 1) * group_size * head_dim)
    with torch.no_grad():
        model.model.layers[layer].self_attn.o_proj.weight[:, cols] = 0


@pytest.mark.parametrize("kv_heads", [4, 2], ids=["mha", "gqa"])
def test_removing_a_group_equals_zeroing_its_o_proj_columns(kv_heads):
    model = tiny_model(kv_heads=kv_heads)
    reference = copy.deepcopy(model)
    adapter = get_adapter(model)
    g, d = adapter.group_size(), adapter.head_dim
    removals = {0: [1], 2: [0], 5: [kv_heads - 1]}
    for layer, groups in removals.items():
        for group in groups:
            zero_o_proj_columns(reference, layer, group, g, d)
    # Every layer must keep the same count: remove one group everywhere, zero the same in the reference.
    for i, layer in enumerate(adapter.layers()):
        group = removals.get(i, [0])[0]
        if i not in removals:
            zero_o_proj_columns(reference, i, group, g, d)
        remove_groups(adapter, layer, [group])
    sync_config(adapter)
    torch.testing.assert_close(logits(model), logits(reference), atol=1e-4, rtol=0)


def test_removing_neurons_equals_zeroing_down_proj_columns(tiny_gqa):
    reference = copy.deepcopy(tiny_gqa)
    adapter = get_adapter(tiny_gqa)
    for i, layer in enumerate(adapter.layers()):
        neurons = [(i * 7 + k * 13) % 96 for k in range(10)]
        with torch.no_grad():
            reference.model.layers[i].mlp.down_proj.weight[:, neurons] = 0
        remove_neurons(adapter, layer, neurons)
    sync_config(adapter)
    torch.testing.assert_close(logits(tiny_gqa), logits(reference), atol=1e-4, rtol=0)


@pytest.mark.parametrize("kv_heads,bias", [(4, False), (2, False), (2, True)], ids=["mha", "gqa", "gqa-bias"])
def test_shapes_follow_formulas_and_config_matches_weights(kv_heads, bias):
    model = tiny_model(kv_heads=kv_heads, bias=bias)
    adapter = get_adapter(model)
    before = layer_shape(adapter)
    for layer in adapter.layers():
        remove_groups(adapter, layer, [0])
        remove_neurons(adapter, layer, list(range(10)))
    drop_layer(adapter, depth_index(adapter))
    sync_config(adapter)
    cfg, d, h = model.config, adapter.head_dim, 64
    q_heads, kv = before.query_heads - before.group_size, before.kv_heads - 1
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.intermediate_size) == (q_heads, kv, 86)
    assert cfg.num_hidden_layers == len(adapter.layers()) == 5 and cfg.head_dim == 16
    for i, layer in enumerate(adapter.layers()):
        a, m = layer.self_attn, layer.mlp
        assert a.q_proj.weight.shape == (q_heads * d, h) and a.o_proj.weight.shape == (h, q_heads * d)
        assert a.k_proj.weight.shape == a.v_proj.weight.shape == (kv * d, h)
        assert m.gate_proj.weight.shape == m.up_proj.weight.shape == (86, h)
        assert m.down_proj.weight.shape == (h, 86)
        if bias:
            assert a.q_proj.bias.shape == (q_heads * d,) and a.k_proj.bias.shape == (kv * d,)
            assert m.gate_proj.bias.shape == (86,) and m.down_proj.bias.shape == (h,)
        assert a.layer_idx == i
    # The formula-based counts agree with the real weights.
    shape = layer_shape(adapter)
    assert shape == LayerShape(5, h, d, q_heads, kv, 86, bias, bias, o_bias=bias, norm_params=2 * h)
    assert shape.layer_params == count_parameters(adapter.layers()[0])
    assert shape.attention_params == count_parameters(adapter.layers()[0].self_attn)
    assert shape.mlp_params == count_parameters(adapter.layers()[0].mlp)
    # A fresh model built from the edited config has exactly the same parameter shapes.
    fresh = LlamaForCausalLM(cfg)
    assert {k: v.shape for k, v in fresh.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


def test_depth_step_removes_original_layer_n_minus_3(tiny_mha):
    original = [copy.deepcopy(layer.state_dict()) for layer in tiny_mha.model.layers]
    adapter = get_adapter(tiny_mha)
    index = depth_index(adapter)
    assert index == 3
    drop_layer(adapter, index)
    kept = [0, 1, 2, 4, 5]
    assert tiny_mha.config.num_hidden_layers == 5
    for new_i, old_i in enumerate(kept):
        layer = tiny_mha.model.layers[new_i]
        assert layer.self_attn.layer_idx == new_i
        for key, value in layer.state_dict().items():
            torch.testing.assert_close(value, original[old_i][key], rtol=0, atol=0)


def test_generation_with_kv_cache_matches_no_cache_after_pruning(tiny_gqa):
    adapter = get_adapter(tiny_gqa)
    drop_layer(adapter, depth_index(adapter))
    drop_layer(adapter, depth_index(adapter))
    for layer in adapter.layers():
        remove_groups(adapter, layer, [1])
        remove_neurons(adapter, layer, [0, 5, 7])
    sync_config(adapter)
    prompt = TOKENS[:, :5]
    with torch.no_grad():
        cached = tiny_gqa.generate(prompt, max_new_tokens=8, do_sample=False, use_cache=True, min_new_tokens=8)
        uncached = tiny_gqa.generate(prompt, max_new_tokens=8, do_sample=False, use_cache=False, min_new_tokens=8)
        assert torch.equal(cached, uncached)
        # Incremental decoding with the cache gives the logits of a full forward pass.
        full = tiny_gqa(cached).logits
        out = tiny_gqa(cached[:, :-3], use_cache=True)
        step = tiny_gqa(cached[:, -3:], past_key_values=out.past_key_values).logits
    torch.testing.assert_close(step, full[:, -3:], atol=1e-5, rtol=1e-4)


def test_surgery_works_on_meta_tensors():
    from mop.models.loading import build_meta_model

    model = build_meta_model(tiny_model(kv_heads=2).config)
    adapter = get_adapter(model)
    for layer in adapter.layers():
        remove_groups(adapter, layer, [0])
        remove_neurons(adapter, layer, [1, 2])
    sync_config(adapter)
    assert model.model.layers[0].self_attn.q_proj.weight.is_meta
    assert model.config.num_key_value_heads == 1 and model.config.intermediate_size == 94
