"""Loading models: names to folders, dtype and device choice, configs, weights.

Every entry point loads through here, so an embedded name, a local checkpoint and a hub id are
resolved the same way everywhere, and a bad name or an unreadable config is one clear error.
"""

from __future__ import annotations

import contextlib
import copy
import re
from pathlib import Path
from typing import Iterator

import torch

from ..core.io import UsageError, one_line, read_json_object
from .adapter import check_supported, is_multimodal, model_class, text_config_of
from .embedded import EMBEDDED_NAMES, embedded_checkpoint
from .stock import config_from_dict, model_types, stock_config_dict
from .tiny_llava import TINY_LLAVA, tiny_llava_checkpoint

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


# ----------------------------------------------------------------------------- names


def resolve_model_name(name: str) -> str:
    """Map embedded names to their cached checkpoint (built on first use); anything else passes
    through unchanged (a hub id or a local path)."""
    if name == TINY_LLAVA:
        return str(tiny_llava_checkpoint())
    if name in EMBEDDED_NAMES:
        return str(embedded_checkpoint(name))
    return name


def resolve_model_dir(name: str) -> str:
    """A local checkpoint folder (must hold config.json), an embedded name, or a hub id.

    `owner/name` is taken for a hub id only when `owner` is not a local folder, so a mistyped
    results path is reported as missing instead of being sent to the hub.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UsageError(f"{name} holds no config.json: not a (complete) model checkpoint")
        return str(path.resolve())
    if name.startswith((".", "/", "~")):
        raise UsageError(f"model folder not found: {name}")
    if name in EMBEDDED_NAMES:
        return resolve_model_name(name)
    if HUB_ID.match(name) and not Path(name.split("/")[0]).exists():
        load_config(name)  # an unreachable or unknown hub id fails here, before any work starts
        return name
    raise UsageError(f"model folder not found: {name}")


# ----------------------------------------------------------------------------- dtype and device


def resolve_dtype(name: str, device: str, saved: torch.dtype | None = None) -> torch.dtype:
    """`auto`: float32 on CPU; on CUDA the checkpoint's own half precision (Llama-2 and LLaVA
    are stored in float16, Llama-3 in bfloat16), so pruning never re-rounds the weights."""
    if name == "auto":
        if not device.startswith("cuda"):
            return torch.float32
        return saved if saved in (torch.float16, torch.bfloat16) else torch.bfloat16
    try:
        return DTYPES[name]
    except KeyError:
        raise UsageError(f"unknown --dtype {name!r}; choose auto, float32, bfloat16 or float16") from None


def saved_dtype(config, default: torch.dtype | None = None) -> torch.dtype | None:
    """The dtype a checkpoint is stored in, from its config (`default` if not recorded)."""
    value = getattr(config, "dtype", None)
    if isinstance(value, str):
        value = DTYPES.get(value.replace("torch.", ""))
    return value if isinstance(value, torch.dtype) else default


def resolve_device(name: str) -> str:
    """`auto`, or a torch device string that exists on this machine (cpu, cuda, cuda:<i>, mps),
    checked before anything is loaded."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(f"unknown --device {name!r}; use auto, cpu, cuda or cuda:<index>") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name} requested but CUDA is not available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise UsageError(f"--device {name} requested but MPS is not available")
    elif device.type != "cpu":
        raise UsageError(f"unsupported --device {name!r}; use auto, cpu, cuda or cuda:<index>")
    return name


# ----------------------------------------------------------------------------- configs and weights


def load_config(model_path: str):
    """A checkpoint's config; one written before checkpoints were in stock form (a heads-pruned
    folder whose config transformers 5 refuses) is read as its stock form (mop.models.stock)."""
    from transformers import AutoConfig  # heavy: imported on use

    if model_path.startswith((".", "/", "~")) and not Path(model_path).expanduser().exists():
        raise UsageError(f"model path not found: {model_path}")
    try:
        earlier = earlier_form(model_path)
        if earlier is not None:
            return earlier
        return AutoConfig.from_pretrained(model_path)
    except UsageError as err:
        raise UsageError(f"cannot load the config of {model_path!r}: {err}") from None
    except Exception as err:
        raise UsageError(f"cannot load the config of {model_path!r}: {one_line(err)}") from None


def earlier_form(model_path: str):
    """The stock config of a local checkpoint whose own config.json is not in stock form, else None."""
    path = Path(model_path).expanduser() / "config.json"
    if not path.is_file():
        return None
    written = read_json_object(path)
    if is_stock(written):
        return None
    config = config_from_dict(written)
    config._name_or_path = str(Path(model_path).expanduser())
    return config


def is_stock(config: dict) -> bool:
    """Whether stock transformers 5 loads this config dict as the model it describes."""
    return model_types(stock_config_dict(config)) == model_types(config)


def check_weights(model_path: str | Path) -> None:
    """A local checkpoint's safetensors files are complete: each file's header is read and its
    length checked against the tensors it lists (cheap: no weights are read), and the shards a
    sharded checkpoint's index names exist. Catches truncated and corrupt downloads or copies
    before anything is loaded or written. Hub ids pass (nothing local to check)."""
    from safetensors import safe_open  # heavy: imported on use

    folder = Path(model_path)
    if not folder.is_dir():
        return
    for index in sorted(folder.glob("*.safetensors.index.json")):
        shards = set(read_json_object(index, ("weight_map",))["weight_map"].values())
        missing = sorted(s for s in shards if not (folder / s).is_file())
        if missing:
            raise UsageError(f"{folder} is incomplete: {index.name} names missing shard(s) {', '.join(missing[:3])}")
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except Exception as err:  # SafetensorError, OSError: truncated, corrupt, unreadable
            raise UsageError(f"cannot read the weights {path}: {one_line(err)}") from None


@contextlib.contextmanager
def reading_checkpoint(model_path: str) -> Iterator[None]:
    """The load boundary: an error while reading a checkpoint's files (weights, tokenizer,
    processor) becomes a one-line UsageError naming the checkpoint. Out-of-memory stays what it is."""
    try:
        yield
    except (UsageError, torch.OutOfMemoryError):
        raise
    except Exception as err:
        raise UsageError(f"cannot load {model_path}: {one_line(err)}") from None


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' own logging at error level while inside (its load report would repeat, as a
    table on stderr, the disagreement this module reports in one line); the level is restored."""
    from transformers.utils import logging as hf_logging  # heavy: imported on use

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


LAYER_INDEX = re.compile(r"\blayers\.(\d+)\.")


def natural_key(name: str) -> list:
    """Sort key reading digit runs as numbers, so layer 2 comes before layer 10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def layer_count_note(model_path: str, config) -> str:
    """' (config.json says N layers, the weights hold M)' when the names in a local checkpoint's
    weight files show another number of decoder layers than its config (the commonest lie: a
    config edited, or copied from another run), else ''. Reads the files' headers only."""
    from safetensors import safe_open  # heavy: imported on use

    said = getattr(text_config_of(config), "num_hidden_layers", None)
    held = set()
    for path in sorted(Path(model_path).glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as weights:
            held.update(int(m.group(1)) for key in weights.keys() for m in [LAYER_INDEX.search(key)] if m)
    if said is None or not held or max(held) + 1 == said:
        return ""
    return f" (config.json says {said} layers, the weights hold {max(held) + 1})"


def disagreement(model_path: str, config, info: dict) -> str | None:
    """The first way the weight files and the model config.json describes disagree, from
    transformers' loading report (which already ignores the keys it knows are harmless): a
    tensor of another shape, one the config implies but the files lack, one the files hold but
    the config does not imply. None when they agree."""
    mismatched = sorted(info.get("mismatched_keys") or [], key=lambda item: natural_key(item[0]))
    if mismatched:
        key, held, implied = mismatched[0][:3]
        return (f"{model_path}: config.json disagrees with the weights: {key} has shape {tuple(held)} in the "
                f"weight files, the config implies {tuple(implied)}")
    missing = sorted(info.get("missing_keys") or [], key=natural_key)
    if missing:
        return (f"{model_path}: the weight files lack {missing[0]}, which config.json implies"
                f"{layer_count_note(model_path, config)} ({len(missing)} tensor(s) missing)")
    unexpected = sorted(info.get("unexpected_keys") or [], key=natural_key)
    if unexpected:
        return (f"{model_path}: the weight files hold {unexpected[0]}, which config.json does not imply"
                f"{layer_count_note(model_path, config)} ({len(unexpected)} tensor(s) unused)")
    return None


def first_non_finite(model) -> str | None:
    """'name: N NaN/inf values' for the first parameter holding a NaN or an infinity, else None.
    Checked on the weights as loaded (in memory, wherever they are), so the disk is read once;
    NaN weights (an fp16 overflow, a corrupt file) would otherwise give NaN importance scores
    and a run that looks normal."""
    for name, param in model.named_parameters():
        if param.is_floating_point() and param.device.type != "meta" and not bool(torch.isfinite(param).all()):
            bad = int((~torch.isfinite(param)).sum())
            return f"{name} holds {bad} NaN/inf value(s)"
    return None


def load_checked_weights(model_path: str, config, dtype: torch.dtype):
    """The model's weights, checked against themselves before any work: every tensor the config
    implies is in the files with the shape it implies, none is left unused, and all are finite.
    Anything else is a one-line UsageError naming the first disagreement (transformers itself
    would drop unused tensors with a warning, and refuses a shape with a long table)."""
    with quiet_transformers():
        model, info = model_class(config).from_pretrained(model_path, config=config, dtype=dtype,
                                                          output_loading_info=True, ignore_mismatched_sizes=True)
    problem = disagreement(model_path, config, info)
    if problem is None:
        bad = first_non_finite(model)
        problem = bad and f"{model_path}: weight {bad} (a corrupt file or a float16 overflow?)"
    if problem is not None:
        raise UsageError(problem)
    return model


def load_model(model_path: str, dtype: torch.dtype, device: str):
    """Model and its text/image processing (tokenizer, or a processor for LLaVA)."""
    from transformers import AutoProcessor, AutoTokenizer  # heavy: imported on use

    config = load_config(model_path)
    check_supported(config)
    check_weights(model_path)
    with reading_checkpoint(model_path):
        model = load_checked_weights(model_path, config, dtype)
        if is_multimodal(config):
            processing = AutoProcessor.from_pretrained(model_path, config=config)
            tokenizer = processing.tokenizer
        else:
            processing = tokenizer = AutoTokenizer.from_pretrained(model_path, config=config)
    model = model.to(device)
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, processing


def text_tokenizer(processing):
    """The tokenizer inside a processor, or the tokenizer itself."""
    return getattr(processing, "tokenizer", processing)


def build_meta_model(config):
    """The model's structure without weights: shapes and parameter counts only.

    Works on a copy of `config`, because surgery on the meta model edits its config.
    """
    with torch.device("meta"):
        return model_class(config).from_config(copy.deepcopy(config))
