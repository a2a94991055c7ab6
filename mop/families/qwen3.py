"""Qwen3 (dense): per-head-dim `q_norm` / `k_norm` shared across the heads of a layer.

The q/k norms act on each head's head_dim vector with one weight for all heads, so pruning a
head or a group leaves them untouched; they count (2 x head_dim) in one layer's budget next to
the two hidden-size RMSNorms. `attention_bias` puts a bias on q/k/v/o (off in Qwen3-8B).
"""

from .base import Family

FAMILY = Family(model_type="qwen3", decoder_layer_class="Qwen3DecoderLayer", qk_norms=True,
                shipped_configs=(("Qwen/Qwen3-8B", "qwen3-8b.json"),))
