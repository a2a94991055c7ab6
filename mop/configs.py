"""Configs of the paper's models and one model per further family (mop/families), shipped so dry
runs work offline with no weights."""

from __future__ import annotations

import json
from pathlib import Path

from .io import UsageError
from .models import load_config, resolve_model_name

CONFIG_DIR = Path(__file__).resolve().parent / "assets" / "configs"
SHIPPED = {
    "meta-llama/Llama-2-7b-hf": "llama-2-7b-hf.json",
    "meta-llama/Meta-Llama-3-8B": "meta-llama-3-8b.json",
    "llava-hf/llava-1.5-7b-hf": "llava-1.5-7b-hf.json",
    "mistralai/Mistral-7B-v0.3": "mistral-7b-v0.3.json",
    "Qwen/Qwen2.5-7B": "qwen2.5-7b.json",
    "Qwen/Qwen3-8B": "qwen3-8b.json",
    "google/gemma-3-1b-pt": "gemma-3-1b-pt.json",
}


def config_for_dry_run(model_name: str):
    """A shipped config for the paper's hub ids; otherwise the config of a local/embedded model."""
    from transformers import AutoConfig

    if model_name in SHIPPED:
        data = json.loads((CONFIG_DIR / SHIPPED[model_name]).read_text())
        model_type = data.pop("model_type")
        return AutoConfig.for_model(model_type, **data)
    path = resolve_model_name(model_name)
    try:
        return load_config(path)
    except UsageError:
        raise UsageError(f"no shipped config for {model_name!r} and it cannot be loaded offline") from None
