"""Llama (Llama-2, Llama-3, Llama-3.1/3.2 with `rope_scaling`; Vicuna inside LLaVA-1.5).

Two RMSNorms per layer; `attention_bias` puts a bias on q/k/v/o, `mlp_bias` on gate/up/down
(both off in the published checkpoints). Recovery LoRA r=32, alpha=10: the paper's scripts.
"""

from .base import Family

FAMILY = Family(
    model_type="llama",
    decoder_layer_class="LlamaDecoderLayer",
    lora=(32, 10),  # the paper's Llama-2 / Llama-3 recovery scripts
    shipped_configs=(("meta-llama/Llama-2-7b-hf", "llama-2-7b-hf.json"),
                     ("meta-llama/Meta-Llama-3-8B", "meta-llama-3-8b.json")),
)
