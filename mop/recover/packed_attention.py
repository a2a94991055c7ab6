"""Attention over packed rows, one example at a time (transformers' AttentionInterface).

A packed row holds several examples end to end (mop/recover/batches.py). transformers' own way to keep
them apart under SDPA is a block-diagonal mask over the whole row: correct, but it computes the
attention of every token with every other token of the row and then masks most of it away, and a
masked SDPA cannot use the fused causal kernels. This attention function instead cuts each row at
the restarts of its `position_ids` and runs causal SDPA on each example alone: the same result
(tests/unit/recover/test_packing.py), no mask, no wasted work. FlashAttention's variable-length kernels do the
same on GPUs that have them; this needs nothing but torch.

Used by the recovery when batches are packed (`packed_attention(model)` around training), for the
families whose layers all attend causally over the whole sequence; a model with sliding-window
layers keeps transformers' masked SDPA.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F

NAME = "mop_packed_sdpa"


def packed_sdpa(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask,
                scaling: float | None = None, dropout: float = 0.0, position_ids: torch.Tensor | None = None,
                **kwargs) -> tuple[torch.Tensor, None]:
    """query (B, Hq, T, D), key/value (B, Hkv, T, D) -> output (B, T, Hq, D), one causal SDPA per
    example of each row (examples start where position_ids is 0)."""
    if position_ids is None:
        raise ValueError(f"{NAME} needs position_ids that restart at each packed example")
    rows = []
    for row, (q, k, v) in enumerate(zip(query.split(1), key.split(1), value.split(1))):
        sizes = example_lengths(position_ids[row])
        # split (not one slice per example): its backward is one concatenation, where each slice's
        # backward would write its gradient into a zeroed tensor of the whole row
        rows.append(torch.cat([
            F.scaled_dot_product_attention(qe, ke, ve, dropout_p=dropout if module.training else 0.0,
                                           is_causal=True, scale=scaling, enable_gqa=True)
            for qe, ke, ve in zip(q.split(sizes, 2), k.split(sizes, 2), v.split(sizes, 2))], dim=2))
    out = torch.cat(rows)  # (B, Hq, T, D)
    return out.transpose(1, 2).contiguous(), None


def example_lengths(positions: torch.Tensor) -> list[int]:
    """Lengths of the examples of one packed row, (T,) position ids that restart at 0 for each."""
    starts = (positions == 0).nonzero().flatten().tolist()
    if not starts or starts[0] != 0:
        raise ValueError(f"{NAME}: a packed row must begin an example (position id 0 first)")
    return [end - start for start, end in zip(starts, starts[1:] + [positions.shape[0]])]


def no_mask(*args, **kwargs) -> None:
    """The attention above needs no mask: the model is spared building one."""
    return None


def register() -> None:
    """Make NAME known to transformers (idempotent: the registries are keyed by name)."""
    from transformers import AttentionInterface, AttentionMaskInterface  # heavy: imported on use

    AttentionInterface.register(NAME, packed_sdpa)
    AttentionMaskInterface.register(NAME, no_mask)


def text_configs(model) -> list:
    """The config objects whose `_attn_implementation` the decoder reads (a wrapper's and its
    language model's)."""
    config = model.config
    return [config] + ([config.text_config] if getattr(config, "text_config", None) is not None else [])


def supports_packed_sdpa(model) -> bool:
    """Every layer attends causally over the whole sequence (no sliding window)."""
    return all(getattr(c, "sliding_window", None) is None for c in text_configs(model))


@contextlib.contextmanager
def packed_attention(model) -> Iterator[bool]:
    """Inside: the model's attention runs example by example (yields False and changes nothing for
    models it does not suit). The previous implementation is put back on the way out."""
    if not supports_packed_sdpa(model):
        yield False
        return
    register()
    configs = text_configs(model)
    before = [c._attn_implementation for c in configs]
    try:
        for c in configs:
            c._attn_implementation = NAME
        yield True
    finally:
        for c, name in zip(configs, before):
            c._attn_implementation = name
