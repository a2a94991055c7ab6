"""Mistral (Mistral-7B-v0.1/v0.3): the Llama layout without any projection bias.

Two RMSNorms per layer; `sliding_window` (None in v0.3) applies to every layer alike.
"""

from .base import Family

FAMILY = Family(model_type="mistral", decoder_layer_class="MistralDecoderLayer", bias_rule="none",
                shipped_configs=(("mistralai/Mistral-7B-v0.3", "mistral-7b-v0.3.json"),))
