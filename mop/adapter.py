"""Architecture adapters: where the pieces MoP edits live in a given model class.

The algorithm only talks to an adapter: the decoder layers, each layer's attention
(q/k/v/o projections) and gated MLP (gate/up/down), and the text config to update. The adapter
is chosen from `config.model_type`, never from a model name. Multi-head attention is treated as
grouped-query attention with one query head per group, so one code path serves Llama-2 and
Llama-3.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from .io import UsageError

# Decoders with RMSNorm, RoPE attention (q/k/v/o) and a gated MLP (gate/up/down) in the
# `model.layers[i].self_attn / .mlp` layout of transformers' Llama implementation.
LLAMA_FAMILY = ("llama",)
MULTIMODAL_WRAPPERS = ("llava",)
# The projections LoRA adapts (recovery and the path probe): every Linear of attention and MLP.
LORA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Published LoRA rank / alpha of the recovery step: Llama-2 / Llama-3 scripts, and LLaVA's text-only
# recovery of its language model.
PUBLISHED_LORA = {"llama": (32, 10), "llava": (8, 16)}


def is_multimodal(config) -> bool:
    """A wrapper (LLaVA) around a language model: only that language model is pruned and tuned."""
    return config.model_type in MULTIMODAL_WRAPPERS


def published_lora(config) -> tuple[int, int]:
    """(r, alpha) the paper's scripts use for this kind of model."""
    return PUBLISHED_LORA[config.model_type]


def model_class(config):
    """The transformers Auto class that loads this kind of checkpoint."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText  # heavy: imported on use

    return AutoModelForImageTextToText if is_multimodal(config) else AutoModelForCausalLM


def text_config_of(config):
    """The language model's config: the config itself, or `text_config` of a wrapper."""
    return config.text_config if is_multimodal(config) else config


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

    def intermediate_size(self, layer: nn.Module) -> int:
        return layer.mlp.gate_proj.out_features

    @staticmethod
    def layer_index(layer: nn.Module) -> int:
        return layer.self_attn.layer_idx

    @staticmethod
    def set_layer_index(layer: nn.Module, index: int) -> None:
        """The KV cache is indexed by the attention's layer_idx: renumber after deleting layers."""
        layer.self_attn.layer_idx = index

    @staticmethod
    def set_group_size(layer: nn.Module, group_size: int) -> None:
        layer.self_attn.num_key_value_groups = group_size

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

    def final_norm(self) -> nn.Module:
        """The norm between the last decoder layer and the vocabulary projection."""
        return self.decoder.norm

    def run_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """Forward through the decoder only: calibration needs no vocabulary projection."""
        return self.decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)

    @contextlib.contextmanager
    def without_layer(self, index: int) -> Iterator[None]:
        """Run the decoder as if layer `index` were deleted (for scoring without a copy).

        The decoder iterates over its `layers` list, so a list without the layer is exactly the
        depth step's model for forward passes without a KV cache; the original list is put back
        even when the block raises.
        """
        original = self.decoder.layers
        self.decoder.layers = nn.ModuleList(layer for i, layer in enumerate(original) if i != index)
        try:
            yield
        finally:
            self.decoder.layers = original

    def lora_targets(self) -> str:
        """A regex over full module names reaching only the decoder's projections (never a
        vision tower, which has q/k/v projections of its own)."""
        prefix = next(name for name, module in self.model.named_modules() if module is self.decoder)
        return rf"{re.escape(prefix)}\.layers\.\d+\.(self_attn|mlp)\.({'|'.join(LORA_PROJECTIONS)})"

    def run_calibration_batch(self, batch: dict):
        """Text batches go through the decoder; image batches through the whole model."""
        if "pixel_values" in batch:
            return self.model(**batch, use_cache=False)
        return self.run_text(batch["input_ids"], batch["attention_mask"])


def get_adapter(model: nn.Module) -> DecoderAdapter:
    config = model.config
    check_supported(config)
    if is_multimodal(config):
        return DecoderAdapter(model, model.model.language_model, config.text_config)
    decoder = model.model if hasattr(model, "model") else model
    return DecoderAdapter(model, decoder, config)


def count_parameters(module: nn.Module) -> int:
    """Unique parameters (tied embeddings counted once), as the published scripts report."""
    return sum(p.numel() for p in module.parameters())
