"""Configs shipped so dry runs work offline with no weights: the paper's models and one model per
further family (which ones: each family's `shipped_configs`, mop/families)."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.io import UsageError
from .adapter import SHIPPED_CONFIGS
from .loading import load_config, resolve_model_name

CONFIG_DIR = Path(__file__).resolve().parents[1] / "assets" / "configs"
SHIPPED = SHIPPED_CONFIGS  # hub id -> file, from each family (mop/families)


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
