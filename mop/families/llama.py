"""Llama (Llama-2, Llama-3, Llama-3.1/3.2 with `rope_scaling`; Vicuna inside LLaVA-1.5).

Two RMSNorms per layer; `attention_bias` puts a bias on q/k/v/o, `mlp_bias` on gate/up/down
(both off in the published checkpoints). Recovery LoRA r=32, alpha=10: the paper's scripts.

transformers 5's LlamaConfig refuses a hidden size that is not a multiple of the head count, so a
heads-pruned Llama is written as `mistral`: without biases and with no sliding window, Mistral's
layer is Llama's (same weight names, same RoPE including llama3 scaling, same norms), and stock
transformers (4.57 and 5.x), vLLM and llama.cpp all load it. A Llama with biases has no such twin.
"""

from .base import Family

# Llama-only fields a Mistral config has no use for (pretraining_tp is 1 in every released Llama).
LLAMA_ONLY_FIELDS = ("attention_bias", "mlp_bias", "pretraining_tp")


def rope_parameters(config: dict) -> dict:
    """transformers 5's `rope_parameters` of a config written by 4.x (`rope_theta`, `rope_scaling`)."""
    if "rope_parameters" in config or "rope_theta" not in config:
        return config.get("rope_parameters")
    scaling = dict(config.get("rope_scaling") or {})
    scaling.setdefault("rope_type", scaling.pop("type", "default"))
    return {**scaling, "rope_theta": config["rope_theta"]}


def mistral_twin(config: dict) -> dict | None:
    """The Mistral config that computes this Llama config's function, or None (biases)."""
    if config.get("attention_bias") or config.get("mlp_bias"):
        return None
    twin = {key: value for key, value in config.items() if key not in LLAMA_ONLY_FIELDS}
    rope = rope_parameters(config)
    if rope is not None:
        twin["rope_parameters"] = rope
    twin.update(model_type="mistral", sliding_window=None,
                head_dim=config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])
    if "architectures" in config:
        twin["architectures"] = ["MistralForCausalLM"]
    return twin


FAMILY = Family(
    model_type="llama",
    decoder_layer_class="LlamaDecoderLayer",
    lora=(32, 10),  # the paper's Llama-2 / Llama-3 recovery scripts
    shipped_configs=(("meta-llama/Llama-2-7b-hf", "llama-2-7b-hf.json"),
                     ("meta-llama/Meta-Llama-3-8B", "meta-llama-3-8b.json")),
    heads_divide_hidden=True,
    twin=mistral_twin,
)
