"""Architecture adapters: where the pieces MoP edits live in a given model class.

The algorithm only talks to an adapter: the decoder layers, each layer's attention
(q/k/v/o projections) and gated MLP (gate/up/down), and the text config to update. The adapter
is chosen from `config.model_type`, never from a model name. Multi-head attention is treated as
grouped-query attention with one query head per group, so one code path serves Llama-2 and
Llama-3.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .io import UsageError

# Decoders with RMSNorm, RoPE attention (q/k/v/o) and a gated MLP (gate/up/down) in the
# `model.layers[i].self_attn / .mlp` layout of transformers' Llama implementation.
LLAMA_FAMILY = ("llama",)
MULTIMODAL_WRAPPERS = ("llava",)


def text_config_of(config):
    """The language model's config: the config itself, or `text_config` of a wrapper."""
    return config.text_config if config.model_type in MULTIMODAL_WRAPPERS else config


def check_supported(config) -> None:
    """Refuse, before any weight is loaded, a model this engine cannot prune."""
    model_type = getattr(config, "model_type", None)
    text_type = getattr(text_config_of(config), "model_type", None) if model_type else None
    if model_type not in LLAMA_FAMILY + MULTIMODAL_WRAPPERS or text_type not in LLAMA_FAMILY:
        raise UsageError(
            f"unsupported model type {model_type!r} (language model {text_type!r}): MoP prunes "
            f"Llama-family decoders ({', '.join(LLAMA_FAMILY)}) and LLaVA wrappers of them"
        )


@dataclass
class DecoderAdapter:
    """Access to a Llama-family decoder inside `model` (a causal LM or a LLaVA wrapper)."""

    model: nn.Module
    decoder: nn.Module  # the LlamaModel: embed_tokens, layers, norm
    text_config: object

    def layers(self) -> nn.ModuleList:
        return self.decoder.layers

    @property
    def num_layers(self) -> int:
        return len(self.decoder.layers)

    @property
    def hidden_size(self) -> int:
        return self.text_config.hidden_size

    @property
    def head_dim(self) -> int:
        cfg = self.text_config
        return getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads

    def query_heads(self, layer: nn.Module) -> int:
        return layer.self_attn.q_proj.out_features // self.head_dim

    def kv_heads(self, layer: nn.Module) -> int:
        return layer.self_attn.k_proj.out_features // self.head_dim

    def group_size(self) -> int:
        """Query heads per K/V head (1 for multi-head attention); pruning keeps it fixed."""
        return self.text_config.num_attention_heads // self.text_config.num_key_value_heads

    @staticmethod
    def attention_projections(layer: nn.Module) -> tuple[nn.Linear, nn.Linear, nn.Linear, nn.Linear]:
        attn = layer.self_attn
        return attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj

    @staticmethod
    def mlp_projections(layer: nn.Module) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
        mlp = layer.mlp
        return mlp.gate_proj, mlp.up_proj, mlp.down_proj

    def run_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """Forward through the decoder only: calibration needs no vocabulary projection."""
        return self.decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)

    def run_calibration_batch(self, batch: dict):
        """Text batches go through the decoder; image batches through the whole model."""
        if "pixel_values" in batch:
            return self.model(**batch, use_cache=False)
        return self.run_text(batch["input_ids"], batch["attention_mask"])


def get_adapter(model: nn.Module) -> DecoderAdapter:
    config = model.config
    check_supported(config)
    if config.model_type in MULTIMODAL_WRAPPERS:
        return DecoderAdapter(model, model.model.language_model, config.text_config)
    decoder = model.model if hasattr(model, "model") else model
    return DecoderAdapter(model, decoder, config)


def count_parameters(module: nn.Module) -> int:
    """Unique parameters (tied embeddings counted once), as the published scripts report."""
    return sum(p.numel() for p in module.parameters())
