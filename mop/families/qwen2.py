"""Qwen2 / Qwen2.5: biases on q/k/v (always, whatever the config says) but not on o_proj.

A GQA group owns its query heads' q rows and q-bias entries, its K/V head's k/v rows and bias
entries, and the o_proj columns of its query heads; the o_proj bias belongs to no head. Two
RMSNorms per layer. Layers carry an `attention_type` (all `full_attention` unless
`use_sliding_window`).
"""

from .base import Family

FAMILY = Family(model_type="qwen2", decoder_layer_class="Qwen2DecoderLayer", bias_rule="qkv_always",
                shipped_configs=(("Qwen/Qwen2.5-7B", "qwen2.5-7b.json"),))
