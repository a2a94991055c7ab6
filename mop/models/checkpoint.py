"""Writing a checkpoint folder (weights + tokenizer or processor) that deployment tools read.

Every checkpoint the project writes (embedded model, pruned iteration, recovered model, the tiny
multimodal model) goes through `save_checkpoint`, so they all get the same fixes:
- the config is in stock form (mop.models.stock): a heads-pruned model whose family's config refuses its
  shape is written as the stock twin its family names, which computes the same function, so stock
  transformers 5, vLLM and GGUF converters load it; the legacy rope keys are written beside
  `rope_parameters` so transformers 4.57 reads it right;
- the tokenizer class is named `PreTrainedTokenizerFast`: transformers 5 writes its own
  `TokenizersBackend`, which 4.57 cannot load (both versions read the former as tokenizer.json);
- the chat template is also stored in `tokenizer_config.json`: transformers 4.57 writes it to
  `chat_template.jinja` only, and converters that read `tokenizer_config.json` drop it;
- a `tokenizer.model` that is a byte copy of a GGUF file is removed: transformers' GGUF loader
  records the GGUF as the tokenizer's vocabulary file and `save_pretrained` copies it (98 MB for
  the embedded model), and the GGUF converter cannot parse it. `tokenizer.json` holds the
  whole tokenizer, so nothing reads that file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .adapter import model_class
from .stock import stock_config, with_legacy_rope

CONFIG_FILE = "config.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"
TOKENIZER_CONFIG = "tokenizer_config.json"
SENTENCEPIECE_FILE = "tokenizer.model"
GGUF_MAGIC = b"GGUF"
# transformers 5 names the generic fast tokenizer (tokenizer.json run as written) `TokenizersBackend`;
# 4.57 knows it as PreTrainedTokenizerFast, a name 5.x also reads.
GENERIC_TOKENIZER_CLASS = "PreTrainedTokenizerFast"
PORTABLE_TOKENIZER_CLASS = {"TokenizersBackend": GENERIC_TOKENIZER_CLASS}


def save_checkpoint(model, processing, directory: str | os.PathLike) -> None:
    """Save weights (safetensors) and the tokenizer/processor into `directory`, then fix the files."""
    stock_model(model).save_pretrained(directory)
    processing.save_pretrained(directory)
    finish_checkpoint_files(directory)


def stock_model(model):
    """`model`, or the stock model that computes the same function and shares its tensors (no
    copy), when the model's own config cannot be written (mop.models.stock)."""
    config = stock_config(model.config)
    if config is None:
        return model
    with torch.device("meta"):
        twin = model_class(config).from_config(config, dtype=model.dtype)
    twin.load_state_dict(model.state_dict(), strict=True, assign=True)
    twin.generation_config = model.generation_config
    return twin


def finish_checkpoint_files(directory: str | os.PathLike) -> None:
    directory = Path(directory)
    legacy_rope_into_config(directory)
    remove_gguf_copy(directory)
    portable_tokenizer_class(directory)
    template_into_tokenizer_config(directory)


def rewrite_json(path: Path, change) -> None:
    """Replace a JSON file by `change(content)` through a temporary file and a rename."""
    content = change(json.loads(path.read_text(encoding="utf-8")))
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def legacy_rope_into_config(directory: Path) -> None:
    """The legacy rope keys beside `rope_parameters` (also in a wrapper's text_config)."""
    def add(config: dict) -> dict:
        config = with_legacy_rope(config)
        if isinstance(config.get("text_config"), dict):
            config["text_config"] = with_legacy_rope(config["text_config"])
        return config

    if (directory / CONFIG_FILE).is_file():
        rewrite_json(directory / CONFIG_FILE, add)


def portable_tokenizer_class(directory: Path) -> None:
    """Name the tokenizer class so that transformers 4.57 and 5.x both load it."""
    path = directory / TOKENIZER_CONFIG
    if not path.is_file():
        return
    def rename(config: dict) -> dict:
        name = config.get("tokenizer_class")
        return {**config, "tokenizer_class": PORTABLE_TOKENIZER_CLASS.get(name, name)} if name else config

    rewrite_json(path, rename)


def is_gguf_file(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        return f.read(len(GGUF_MAGIC)) == GGUF_MAGIC


def remove_gguf_copy(directory: Path) -> bool:
    """Delete `tokenizer.model` if it is a GGUF file (a real sentencepiece model is kept)."""
    path = directory / SENTENCEPIECE_FILE
    if is_gguf_file(path):
        path.unlink()
        return True
    return False


def template_into_tokenizer_config(directory: Path) -> None:
    """Copy `chat_template.jinja` into `tokenizer_config.json` so both kinds of readers see it.

    The jinja file is what transformers loads when both exist, so the config gets exactly its
    text and the two never disagree.
    """
    template_file, config_file = directory / CHAT_TEMPLATE_FILE, directory / TOKENIZER_CONFIG
    if not (template_file.is_file() and config_file.is_file()):
        return
    template = template_file.read_text(encoding="utf-8")
    rewrite_json(config_file, lambda config: {**config, "chat_template": template})
