"""What a decoder family looks like to MoP, and the adapter the generic modules talk to.

`Family` is a frozen description of one `config.model_type`: how many hidden-size norms a layer
has and whether it has per-head-dim q/k norms (both count in the one-layer budget of a width
step but are never pruned), which projections carry a bias, the decoder-layer class FSDP wraps,
the LoRA settings recovery uses, the default width mode, and whether the final logits are
soft-capped. Each family module (llama.py, mistral.py, ...) holds one instance; nothing else in
`mop/` names a family.

`DecoderAdapter` wraps one model (a causal LM or a multimodal wrapper of one) and answers, for
the generic code, where the layers, attention and MLP projections live, what a layer's shape and
parameter count are (`layer_shape`), which keyword arguments each layer receives (`layer_kind`:
Gemma-3 alternates sliding-window and global layers), and how final hidden states become logits.
All the families here share transformers' Llama layout (`model.layers[i].self_attn.{q,k,v,o}_proj`,
`.mlp.{gate,up,down}_proj`, `model.norm`), so one adapter class serves them; a family with another
layout would subclass it.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

# The projections LoRA adapts (recovery and the path probe): every Linear of attention and MLP.
LORA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Recovery LoRA of the paper's Llama-2 / Llama-3 scripts (r, alpha): the default for every text family.
PAPER_LORA = (32, 10)
# Where `attention_bias` puts a bias: on all four projections (llama, qwen3, gemma3), on q/k/v
# only, always (qwen2), or nowhere, whatever the config says (mistral).
BIAS_RULES = ("config_all", "qkv_always", "none")


def legacy_rope_keys(params: dict) -> dict:
    """transformers 4.57's spelling of one `rope_parameters` entry (`rope_theta`, `rope_scaling`):
    4.57 reads only these and silently falls back to theta 10000 without them."""
    if "rope_theta" not in params:
        return {}
    scaling = {key: value for key, value in params.items() if key != "rope_theta"}
    return {"rope_theta": params["rope_theta"],
            "rope_scaling": None if scaling.get("rope_type", "default") == "default" else scaling}


@dataclass(frozen=True)
class Family:
    """The model-specific facts of one decoder family (see the module docstring)."""

    model_type: str
    decoder_layer_class: str  # FSDP wraps one of these per unit (configs/fsdp.yaml leaves it to us)
    lora: tuple[int, int] = PAPER_LORA  # (r, alpha) of recovery: published for llama, the paper's otherwise
    layer_norms: int = 2  # hidden-size norms per decoder layer
    qk_norms: bool = False  # per-head-dim q_norm / k_norm, shared by all heads of a layer
    bias_rule: str = "config_all"
    final_logit_softcap: bool = False  # logits = cap * tanh(logits / cap) when the config sets a cap
    # Hub id -> config file in mop/assets/configs, shipped so dry runs of these models work offline.
    shipped_configs: tuple[tuple[str, str], ...] = ()
    # transformers 5's config of this family refuses a hidden size that is not a multiple of the
    # head count (llama, gemma3_text), so a heads-pruned model may not be writable as this family.
    heads_divide_hidden: bool = False
    # For such a family: the config (a dict) of another stock model_type that computes the same
    # function for this config, or None where none does. Pruned checkpoints are written in that
    # form, so stock transformers, vLLM and llama.cpp load them with no code of ours.
    twin: Callable[[dict], dict | None] | None = None
    # The legacy rope keys (for transformers 4.57) of this family's `rope_parameters`.
    legacy_rope: Callable[[dict], dict] = legacy_rope_keys

    def accepts_heads(self, text_config: dict) -> bool:
        """Whether the config's attention can be written as this family itself: always, or, for a
        family whose config checks the head count, while the heads still span the hidden size
        (heads x head_dim == hidden, as before any head is pruned). Once heads are pruned such a
        model is written as its twin whatever the count, so that the folders of one run never
        change type from one iteration to the next, nor when the run is resumed."""
        heads, hidden = text_config.get("num_attention_heads"), text_config.get("hidden_size")
        if not self.heads_divide_hidden or not heads:
            return True
        return heads * (text_config.get("head_dim") or hidden // heads) == hidden

    def stock_form(self, text_config: dict) -> dict | None:
        """The config a checkpoint of this shape is written with: its own, its twin's, or None
        where transformers 5 may refuse the shape and no twin computes the same function."""
        if self.accepts_heads(text_config):
            return text_config
        return self.twin(text_config) if self.twin is not None else None

    def norm_params(self, hidden: int, head_dim: int) -> int:
        """Parameters of one layer's norms: never pruned, but part of one layer's budget."""
        return self.layer_norms * hidden + (2 * head_dim if self.qk_norms else 0)

    def config_biases(self, text_config) -> tuple[bool, bool, bool]:
        """(q/k/v bias, o bias, MLP bias) a model of this config is built with."""
        flag = bool(getattr(text_config, "attention_bias", False))
        mlp = bool(getattr(text_config, "mlp_bias", False))
        if self.bias_rule == "qkv_always":
            return True, False, mlp
        if self.bias_rule == "none":
            return False, False, mlp
        return flag, flag, mlp

    @staticmethod
    def default_mlp_only(text_config) -> bool:
        """Width mode when a script leaves it open: grouped-query models prune MLP neurons only (the
        published Llama-3 setting: a whole K/V group per layer is a coarse, costly unit), multi-head
        models prune heads and neurons (the published Llama-2 setting)."""
        kv = getattr(text_config, "num_key_value_heads", None) or text_config.num_attention_heads
        return kv < text_config.num_attention_heads

    def softcap(self, text_config) -> float | None:
        if not self.final_logit_softcap:
            return None
        return getattr(text_config, "final_logit_softcapping", None)

    def parameters_per_layer(self, text_config) -> int:
        """One decoder layer of this config, by the family's formula (dry runs, memory model)."""
        h, heads = text_config.hidden_size, text_config.num_attention_heads
        d = getattr(text_config, "head_dim", None) or h // heads
        kv = getattr(text_config, "num_key_value_heads", None) or heads
        i = text_config.intermediate_size
        qkv_bias, o_bias, mlp_bias = self.config_biases(text_config)
        attention = 2 * h * heads * d + 2 * h * kv * d + ((heads + 2 * kv) * d if qkv_bias else 0) + (h if o_bias else 0)
        mlp = 3 * h * i + ((2 * i + h) if mlp_bias else 0)
        return attention + mlp + self.norm_params(h, d)


@dataclass
class DecoderAdapter:
    """Access to a family's decoder inside `model` (a causal LM or a LLaVA wrapper)."""

    model: nn.Module
    decoder: nn.Module  # the base model: embed_tokens, layers, norm
    text_config: object
    family: Family

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

    @staticmethod
    def layer_kind(layer: nn.Module):
        """Which keyword arguments the decoder passes this layer: layers of one kind get the same
        mask and rotary embeddings (Qwen / Gemma-3: the attention's `layer_type`, sliding-window or
        full, which the decoder reads from `config.layer_types` by position); None where all layers
        are alike (Llama)."""
        return getattr(layer.self_attn, "layer_type", None)

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

    def layer_norm_params(self) -> int:
        """Parameters of one layer that a width step never removes (norms, q/k norms)."""
        return self.family.norm_params(self.hidden_size, self.head_dim)

    def final_norm(self) -> nn.Module:
        """The norm between the last decoder layer and the vocabulary projection."""
        return self.decoder.norm

    def output_head(self) -> nn.Module:
        return self.model.get_output_embeddings()

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits from final-norm outputs, as the model's own forward makes them (Gemma-3 may
        soft-cap them: cap * tanh(logits / cap))."""
        logits = self.output_head()(hidden)
        cap = self.family.softcap(self.text_config)
        if cap is not None:
            logits = torch.tanh(logits / cap) * cap
        return logits

    def run_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """Forward through the decoder only: calibration needs no vocabulary projection."""
        return self.decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)

    @contextlib.contextmanager
    def without_layer(self, index: int) -> Iterator[None]:
        """Run the decoder as if layer `index` were deleted (for scoring without a copy).

        The decoder iterates over its `layers` list, so a list without the layer is exactly the
        depth step's model for forward passes without a KV cache. Each layer keeps its own kind
        (sliding / global), as after a real depth step: transformers 5 hands layer i the mask and
        rotary embeddings of `config.layer_types[i]`, so the removed layer's entry leaves that list
        too. Both are put back even when the block raises.
        """
        original, kinds = self.decoder.layers, getattr(self.text_config, "layer_types", None)
        self.decoder.layers = nn.ModuleList(layer for i, layer in enumerate(original) if i != index)
        if kinds is not None and len(kinds) == len(original):
            self.text_config.layer_types = kinds[:index] + kinds[index + 1:]
        try:
            yield
        finally:
            self.decoder.layers = original
            if kinds is not None:
                self.text_config.layer_types = kinds

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


def count_parameters(module: nn.Module) -> int:
    """Unique parameters (tied embeddings counted once), as the published scripts report."""
    return sum(p.numel() for p in module.parameters())
