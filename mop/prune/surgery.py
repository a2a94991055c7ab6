"""Structural edits on a decoder of any supported family (mop/families), one small function per edit.

What a head / GQA group owns: its q rows (and q-bias entries), its K/V head's k and v rows (and
bias entries), and the o_proj columns of its query heads; an o_proj bias and per-head-dim q/k
norms (where the family has them) are shared by all heads and stay. A neuron owns a gate row, an up row and
a down column (and gate/up bias entries).

Every edit slices Parameters (so it also works on meta tensors for dry runs) and keeps the
config equal to the weight shapes: `sync_config` is called after each pruning step.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..models.adapter import DecoderAdapter


def _keep_index(total: int, remove: Sequence[int], device) -> torch.Tensor:
    removed = set(int(i) for i in remove)
    if len(removed) != len(list(remove)) or any(i < 0 or i >= total for i in removed):
        raise ValueError(f"invalid indices to remove {sorted(removed)} out of {total}")
    return torch.tensor([i for i in range(total) if i not in removed], dtype=torch.long, device=device)


def _slice_rows(linear: nn.Linear, keep: torch.Tensor) -> None:
    """Keep output features `keep` (rows of the weight)."""
    linear.weight = nn.Parameter(linear.weight.data.index_select(0, keep.to(linear.weight.device)))
    if linear.bias is not None:
        linear.bias = nn.Parameter(linear.bias.data.index_select(0, keep.to(linear.bias.device)))
    linear.out_features = linear.weight.shape[0]


def _slice_columns(linear: nn.Linear, keep: torch.Tensor) -> None:
    """Keep input features `keep` (columns of the weight); the bias is untouched."""
    linear.weight = nn.Parameter(linear.weight.data.index_select(1, keep.to(linear.weight.device)))
    linear.in_features = linear.weight.shape[1]


def _feature_index(units: torch.Tensor, width: int) -> torch.Tensor:
    """Feature indices of whole units (heads) of `width` features: (n,) -> (n * width,)."""
    return (units[:, None] * width + torch.arange(width, device=units.device)).reshape(-1)


def drop_layer(adapter: DecoderAdapter, index: int) -> None:
    """Delete decoder layer `index`; renumber `layer_idx` (the KV cache is indexed by it)."""
    layers = adapter.layers()
    del layers[index]
    for i, layer in enumerate(layers):
        adapter.set_layer_index(layer, i)
    cfg = adapter.text_config
    cfg.num_hidden_layers = len(layers)
    layer_types = getattr(cfg, "layer_types", None)
    if layer_types is not None and len(layer_types) == len(layers) + 1:
        cfg.layer_types = layer_types[:index] + layer_types[index + 1 :]


def depth_index(adapter: DecoderAdapter) -> int:
    """The paper's depth rule (`third_to_last`): remove the third-to-last layer, so the last two
    always survive."""
    return adapter.num_layers - 3


def remove_groups(adapter: DecoderAdapter, layer: nn.Module, groups: Sequence[int]) -> None:
    """Remove whole GQA groups (a K/V head and its query heads) from one layer.

    q rows and o_proj columns of the group's query heads go together with the k/v rows of its
    K/V head, so the remaining heads keep their pairing. With one query head per group this is
    plain multi-head pruning.
    """
    if len(groups) == 0:
        return
    d, g = adapter.head_dim, adapter.group_size()
    q, k, v, o = adapter.attention_projections(layer)
    device = q.weight.device
    keep_groups = _keep_index(adapter.kv_heads(layer), groups, device)  # (G',)
    keep_heads = _feature_index(keep_groups, g)  # query heads of kept groups, (G' * g,)
    q_keep = _feature_index(keep_heads, d)  # (G' * g * d,)
    kv_keep = _feature_index(keep_groups, d)  # (G' * d,)
    _slice_rows(q, q_keep)
    _slice_rows(k, kv_keep)
    _slice_rows(v, kv_keep)
    _slice_columns(o, q_keep)


def remove_neurons(adapter: DecoderAdapter, layer: nn.Module, neurons: Sequence[int]) -> None:
    """Remove MLP neurons: gate/up rows and the matching down_proj columns."""
    if len(neurons) == 0:
        return
    gate, up, down = adapter.mlp_projections(layer)
    keep = _keep_index(gate.out_features, neurons, gate.weight.device)
    _slice_rows(gate, keep)
    _slice_rows(up, keep)
    _slice_columns(down, keep)


def sync_config(adapter: DecoderAdapter) -> None:
    """Write the (uniform) layer shapes into the text config, with an explicit head_dim.

    head_dim is stored explicitly because a pruned model's hidden_size is no longer
    num_attention_heads * head_dim.
    """
    layers = adapter.layers()
    first = layers[0]
    shapes = {(adapter.query_heads(l), adapter.kv_heads(l), adapter.intermediate_size(l)) for l in layers}
    if len(shapes) != 1:
        raise RuntimeError(f"decoder layers differ in shape after pruning: {sorted(shapes)}")
    cfg = adapter.text_config
    head_dim = adapter.head_dim
    cfg.head_dim = head_dim
    cfg.num_attention_heads = adapter.query_heads(first)
    cfg.num_key_value_heads = adapter.kv_heads(first)
    cfg.intermediate_size = adapter.intermediate_size(first)
    cfg.num_hidden_layers = len(layers)
    for layer in layers:
        adapter.set_group_size(layer, cfg.num_attention_heads // cfg.num_key_value_heads)
