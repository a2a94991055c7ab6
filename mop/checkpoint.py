"""Writing a checkpoint folder (weights + tokenizer or processor) that deployment tools read.

Every checkpoint the project writes (embedded model, pruned iteration, recovered model, tiny
LLaVA) goes through `save_checkpoint`, so they all get the same two fixes:
- the chat template is also stored in `tokenizer_config.json`: transformers 4.57 writes it to
  `chat_template.jinja` only, and converters that read `tokenizer_config.json` drop it;
- a `tokenizer.model` that is a byte copy of a GGUF file is removed: transformers' GGUF loader
  records the GGUF as the tokenizer's vocabulary file and `save_pretrained` copies it (98 MB for
  the embedded model), and llama.cpp's converter cannot parse it. `tokenizer.json` holds the
  whole tokenizer, so nothing reads that file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

CHAT_TEMPLATE_FILE = "chat_template.jinja"
TOKENIZER_CONFIG = "tokenizer_config.json"
SENTENCEPIECE_FILE = "tokenizer.model"
GGUF_MAGIC = b"GGUF"


def save_checkpoint(model, processing, directory: str | os.PathLike) -> None:
    """Save weights (safetensors) and the tokenizer/processor into `directory`, then fix the files."""
    model.save_pretrained(directory, safe_serialization=True)
    processing.save_pretrained(directory)
    finish_tokenizer_files(directory)


def finish_tokenizer_files(directory: str | os.PathLike) -> None:
    directory = Path(directory)
    remove_gguf_copy(directory)
    template_into_tokenizer_config(directory)


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
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["chat_template"] = template_file.read_text(encoding="utf-8")
    tmp = config_file.with_name(f".tmp-{config_file.name}")
    tmp.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, config_file)
