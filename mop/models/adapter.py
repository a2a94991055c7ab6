"""The adapter the generic modules import: a stable name for mop.families.

Everything model-specific lives in mop/families/ (one module per `config.model_type`); this
module re-exports the entry points so that callers keep one import path.
"""

from __future__ import annotations

from ..families import (FAMILIES, LORA_PROJECTIONS, MULTIMODAL_WRAPPERS, SHIPPED_CONFIGS, DecoderAdapter, Family,
                        check_supported, count_parameters, default_mlp_only, family_of, get_adapter, is_multimodal,
                        model_class, published_lora, supported_types, text_config_of, wrapper_plugin)

__all__ = ["FAMILIES", "LORA_PROJECTIONS", "MULTIMODAL_WRAPPERS", "SHIPPED_CONFIGS", "DecoderAdapter", "Family", "check_supported",
           "count_parameters", "default_mlp_only", "family_of", "get_adapter", "is_multimodal", "model_class",
           "published_lora", "supported_types", "text_config_of", "wrapper_plugin"]
