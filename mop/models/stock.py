"""The stock form of a checkpoint: a config that plain transformers (5.x and 4.57), vLLM and
GGUF converters load with no code of ours.

transformers 5 refuses some families' configs whose hidden size is not a multiple of the head
count, which is what pruning attention heads makes. Each family says (mop/families) whether its
own config takes a shape and, if not, which other stock model_type computes the same function
(its twin). This module applies that to a config dict, to a wrapper's `text_config`, and to a
config object about to be written, so that:
- every checkpoint the project writes is in stock form (mop.models.checkpoint);
- checkpoints written before (heads-pruned folders of the family's own type) still load here
  (mop.models.loading) and can be rewritten in stock form (`python -m mop.deploy.export`).

Both rope spellings are written: transformers 5 reads `rope_parameters`, 4.57 reads only the
legacy keys each family names (`Family.legacy_rope`).
"""

from __future__ import annotations

import copy

from ..core.io import UsageError
from ..families import FAMILIES, MULTIMODAL_WRAPPERS


def with_legacy_rope(config: dict) -> dict:
    """The family's legacy rope keys beside `rope_parameters`, for transformers 4.57 readers."""
    family, params = FAMILIES.get(config.get("model_type")), config.get("rope_parameters")
    if family is None or not isinstance(params, dict):
        return config
    return {**config, **family.legacy_rope(params)}


def unwritable_reason(model_type: str, shape: str) -> str:
    return (f"{model_type} with {shape} cannot be written in a form stock transformers 5 loads: its config refuses "
            "a hidden size that is not a multiple of the head count, which pruning heads makes, and no stock "
            "architecture computes the same model")


def stock_text_config(text_config: dict) -> dict:
    """A language model's config dict in stock form (the family's twin where its own refuses)."""
    family = FAMILIES.get(text_config.get("model_type"))
    if family is None:
        return text_config
    written = family.stock_form(text_config)
    if written is None:
        shape = f"{text_config['num_attention_heads']} attention heads on hidden size {text_config['hidden_size']}"
        raise UsageError(unwritable_reason(family.model_type, shape))
    return with_legacy_rope(written)


def stock_config_dict(config: dict) -> dict:
    """A checkpoint's config dict (a causal LM's, or a wrapper's around one) in stock form."""
    if config.get("model_type") in MULTIMODAL_WRAPPERS and isinstance(config.get("text_config"), dict):
        return {**config, "text_config": stock_text_config(config["text_config"])}
    return stock_text_config(config)


def config_from_dict(config: dict):
    """A transformers config object of the dict's stock form."""
    return config_object(stock_config_dict(config))


def config_object(config: dict):
    """The transformers config object of a config dict (already in stock form)."""
    from transformers import AutoConfig  # heavy: imported on use

    data = copy.deepcopy(config)
    model_type = data.pop("model_type", None)
    if model_type is None:
        raise UsageError("the config names no model_type")
    return AutoConfig.for_model(model_type, **data)


def stock_config(config):
    """The config object `config` is written as, or None when it is already in stock form."""
    current = config.to_dict()
    written = stock_config_dict(current)
    if model_types(written) == model_types(current):
        return None
    return config_object(written)


def model_types(config: dict) -> tuple:
    text = config.get("text_config")
    return config.get("model_type"), text.get("model_type") if isinstance(text, dict) else None


def can_write_heads_pruned(text_config) -> str | None:
    """None when any head count of this model can be written in stock form, else the reason
    (checked before a run that prunes heads starts any work)."""
    data = text_config.to_dict() if hasattr(text_config, "to_dict") else dict(text_config)
    family = FAMILIES.get(data.get("model_type"))
    if family is None or not family.heads_divide_hidden:
        return None
    # One head fewer stands for every pruned shape the run may reach.
    heads = data["num_attention_heads"]
    probe = {**data, "num_attention_heads": heads - 1, "head_dim": data.get("head_dim") or data["hidden_size"] // heads}
    if family.stock_form(probe) is not None:
        return None
    return unwritable_reason(family.model_type, "pruned attention heads") + "; prune MLP neurons only (--mlp_only)"
