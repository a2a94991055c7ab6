"""The model families MoP prunes, one module each, chosen by `config.model_type`.

Adding a family means adding its module here (a `Family` in a file of its own, registered in
`FAMILIES`), its tiny test model (tests/conftest.py `FAMILY_CONFIGS`) and, for dry runs, its
shipped config (mop/assets/configs, named in its `Family.shipped_configs`). Nothing else names a
family.

Multimodal wrappers (LLaVA) hold one of these as their language model: only that model is
pruned and tuned, and the wrapper decides the recovery LoRA (LLaVA's published text-only r=8,
alpha=16) and where the language model lives.
"""

from __future__ import annotations

from torch import nn

from ..core.io import UsageError
from . import gemma3, llama, mistral, qwen2, qwen3
from .base import LORA_PROJECTIONS, DecoderAdapter, Family, count_parameters

FAMILIES: dict[str, Family] = {m.FAMILY.model_type: m.FAMILY for m in (llama, mistral, qwen2, qwen3, gemma3)}
# Wrapper model_type -> published recovery LoRA (r, alpha) of its language model.
MULTIMODAL_WRAPPERS = {"llava": (8, 16)}
# Wrapper model_type -> the plugin module that knows the wrapper beyond its language model (its
# recovery hooks `RECOVERY_HOOKS`, its lm_eval backend `EVAL_BACKEND`), imported on first use:
# callers find it from the checkpoint's config, never by name.
WRAPPER_PLUGINS = {"llava": "mop.plugins.llava.plugin"}
# Hub id -> shipped config file (mop/assets/configs): every family's, and the paper's LLaVA.
SHIPPED_CONFIGS = {hub: file for family in FAMILIES.values() for hub, file in family.shipped_configs}
SHIPPED_CONFIGS["llava-hf/llava-1.5-7b-hf"] = "llava-1.5-7b-hf.json"

__all__ = ["FAMILIES", "LORA_PROJECTIONS", "SHIPPED_CONFIGS", "DecoderAdapter", "Family", "check_supported", "count_parameters",
           "default_mlp_only", "family_of", "get_adapter", "is_multimodal", "model_class", "published_lora",
           "supported_types", "text_config_of", "wrapper_plugin"]


def is_multimodal(config) -> bool:
    """A wrapper (LLaVA) around a language model: only that language model is pruned and tuned."""
    return getattr(config, "model_type", None) in MULTIMODAL_WRAPPERS


def text_config_of(config):
    """The language model's config: the config itself, or `text_config` of a wrapper."""
    return config.text_config if is_multimodal(config) else config


def supported_types() -> str:
    return ", ".join(list(FAMILIES) + [f"{w} (around any of these)" for w in MULTIMODAL_WRAPPERS])


def check_supported(config) -> None:
    """Refuse, before any weight is loaded, a model this engine cannot prune (one line naming
    the supported model_types)."""
    model_type = getattr(config, "model_type", None)
    text_type = getattr(text_config_of(config), "model_type", None) if model_type else None
    if (model_type not in FAMILIES and model_type not in MULTIMODAL_WRAPPERS) or text_type not in FAMILIES:
        raise UsageError(f"unsupported model type {model_type!r} (language model {text_type!r}); "
                         f"supported model_types: {supported_types()}")


def family_of(config) -> Family:
    """The family of a model (of its language model, for a wrapper)."""
    check_supported(config)
    return FAMILIES[text_config_of(config).model_type]


def published_lora(config) -> tuple[int, int]:
    """(r, alpha) recovery uses for this kind of model: the wrapper's, else the family's."""
    if is_multimodal(config):
        return MULTIMODAL_WRAPPERS[config.model_type]
    return family_of(config).lora


def default_mlp_only(config) -> bool:
    """The width mode a script that leaves it open gets (see Family.default_mlp_only)."""
    return family_of(config).default_mlp_only(text_config_of(config))


def model_class(config):
    """The transformers Auto class that loads this kind of checkpoint."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText  # heavy: imported on use

    return AutoModelForImageTextToText if is_multimodal(config) else AutoModelForCausalLM


def get_adapter(model: nn.Module) -> DecoderAdapter:
    config = model.config
    family = family_of(config)
    if is_multimodal(config):
        return DecoderAdapter(model, model.model.language_model, config.text_config, family)
    decoder = model.model if hasattr(model, "model") else model
    return DecoderAdapter(model, decoder, config, family)


def wrapper_plugin(config):
    """The plugin module of a multimodal wrapper (mop.plugins.llava.plugin for LLaVA), imported on use: it brings
    the wrapper's heavier dependencies, which text models never need."""
    import importlib

    return importlib.import_module(WRAPPER_PLUGINS[config.model_type])
