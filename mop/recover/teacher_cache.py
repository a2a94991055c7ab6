"""A teacher cache: the dense model's next-token targets over the recovery data, computed once.

Distillation needs the teacher's distribution at every token of every example. Run online, the
teacher costs a forward pass per step of every recovery and its weights sit beside the student's
(two 7B/8B models do not train on one 24 GB GPU). A MoP grid recovers dozens of checkpoints of
the same dense model on the same data, so this module runs the teacher once and stores, per
prediction position (every token of an example but its last), the top-k log-probabilities, their
token ids and the log of the mass outside them; `--objective kd` then compares the student on
those k + 1 buckets (mop/models/divergence.py `coarse_kl`, the path criterion's KL).

    python -m mop.recover.teacher_cache --teacher meta-llama/Meta-Llama-3-8B --cache_dir Llama3/results_llama3/teacher_cache

Per position: k ids (int32) + k log-probs (`--dtype`: float16 beside bf16 training on a GPU,
float32 on CPU, as recovery asks) + the tail (float32), i.e. 388 bytes at k = 64 in float16. The
folder holds `key.json` (what the targets depend on: teacher, tokenizer, data, max length, k,
temperature; a cache is refused for anything else), shards of `SHARD_EXAMPLES` examples
(`shard-00000.safetensors`, each written atomically, so an interrupted
build resumes at the first missing shard) and `complete.json`, written last.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from ..core.disk import check_free_space
from ..core.io import UsageError, atomic_file, exit_on_usage_error, read_metadata, write_json
from ..core.layout import TEACHER_COMPLETE, TEACHER_KEY
from ..models.data import load_alpaca_records, resolve_data_source
from ..models.divergence import top_k_targets
from ..models.loading import load_config, load_model, resolve_model_dir
from .batches import RecoveryCollator, training_examples
from .distill import OutputHead, final_hidden, use_bf16
from .packed_attention import packed_attention

KEY_FILE, COMPLETE_FILE = TEACHER_KEY, TEACHER_COMPLETE
SHARD_EXAMPLES = 1024
DTYPES = {"float16": torch.float16, "float32": torch.float32}
KEY_FIELDS = ("teacher", "tokenizer", "data", "max_length", "top_k", "temperature", "dtype")


def cache_dtype(bf16: bool) -> str:
    """The stored log-probs' dtype a recovery asks for: float16 beside bf16 training on a GPU,
    float32 for an fp32 (CPU) run."""
    return "float16" if bf16 else "float32"


def check_cache_dir(cache_dir: Path, flag: str) -> None:
    """A cache folder's path must be a folder or not exist yet (one line, not FileExistsError)."""
    if cache_dir.exists() and not cache_dir.is_dir():
        raise UsageError(f"{flag} {cache_dir} is a file, not a folder; give a folder (new or an earlier cache)")


def positions_of(examples: Sequence[dict]) -> list[int]:
    """Prediction positions per example: all tokens but the last."""
    return [len(e["input_ids"]) - 1 for e in examples]


def bytes_per_position(top_k: int, dtype: str) -> int:
    return top_k * (4 + DTYPES[dtype].itemsize) + 4


def fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def tokenizer_fingerprint(tokenizer) -> str:
    """The vocabulary and special tokens: two tokenizers with the same fingerprint encode alike."""
    return fingerprint([type(tokenizer).__name__, sorted(tokenizer.get_vocab().items()),
                        tokenizer.bos_token_id, tokenizer.eos_token_id])


def teacher_fingerprint(path: str) -> str:
    """The teacher's config and, for a local folder, the names and sizes of its weight files: a
    changed checkpoint under the same name is noticed without loading or hashing gigabytes."""
    folder = Path(path)
    files = sorted((f.name, f.stat().st_size) for f in folder.glob("*.safetensors")) if folder.is_dir() else []
    return fingerprint([load_config(path).to_diff_dict(), files])


def cache_key(teacher_path: str, tokenizer, examples: Sequence[dict], max_length: int, top_k: int,
              temperature: float, dtype: str) -> dict:
    """What the stored targets depend on (the data as encoded: records, template, tokenizer, cut)."""
    data = fingerprint([[e["input_ids"], e["labels"]] for e in examples])
    return {"teacher": f"{teacher_path}@{teacher_fingerprint(teacher_path)}", "tokenizer": tokenizer_fingerprint(tokenizer),
            "data": f"{len(examples)} examples@{data}", "max_length": max_length, "top_k": top_k,
            "temperature": temperature, "dtype": dtype}


def check_key(cache_dir: Path, key: dict) -> None:
    """Refuse a folder made for another teacher, tokenizer, data, max length or k (one line)."""
    stored = read_metadata(cache_dir / KEY_FILE)
    differs = [name for name in KEY_FIELDS if stored.get(name) != key[name]]
    if differs:
        name = differs[0]
        raise UsageError(f"teacher cache {cache_dir} was made for another {name} ({stored.get(name)!r}, "
                         f"not {key[name]!r}); give another --teacher_cache_dir or delete it")


def shard_path(cache_dir: Path, number: int) -> Path:
    return cache_dir / f"shard-{number:05d}.safetensors"


@torch.no_grad()
def shard_targets(teacher, head: OutputHead, examples: Sequence[dict], pad_token_id: int, top_k: int,
                  temperature: float, dtype: torch.dtype, batch_examples: int) -> dict[str, torch.Tensor]:
    """The stored targets of a run of examples, position after position, example after example."""
    collate = RecoveryCollator(pad_token_id, packing=True)
    device = next(teacher.parameters()).device
    tops, ids, rests = [], [], []
    for begin in range(0, len(examples), batch_examples):
        batch = {k: v.to(device) for k, v in collate(examples[begin:begin + batch_examples]).items()}
        hidden = final_hidden(teacher, batch)[0]  # one row: (tokens, H)
        segments = batch["segments"][0]
        for number in range(1, int(segments.max()) + 1):
            rows = hidden[segments == number][:-1]  # every token but the example's last
            for start in range(0, rows.shape[0], head.chunk_size()):
                top, idx, rest = top_k_targets(head.log_probs(rows[start:start + head.chunk_size()], temperature), top_k)
                tops.append(top.to(dtype).cpu())
                ids.append(idx.to(torch.int32).cpu())
                rests.append(rest.float().cpu())
    return {"top": torch.cat(tops), "ids": torch.cat(ids), "rest": torch.cat(rests),
            "positions": torch.tensor(positions_of(examples), dtype=torch.int64)}


def build_cache(cache_dir: Path, key: dict, teacher, pad_token_id: int, examples: Sequence[dict],
                batch_examples: int = 8, progress: bool = True) -> Path:
    """Write (or finish) the cache in `cache_dir` for `examples`; a complete cache is left as is."""
    from safetensors.torch import save_file  # heavy: imported on use
    from tqdm.auto import tqdm

    cache_dir = Path(cache_dir)
    if (cache_dir / KEY_FILE).exists():
        check_key(cache_dir, key)
        if (cache_dir / COMPLETE_FILE).exists():
            return cache_dir
    shards = range(math.ceil(len(examples) / SHARD_EXAMPLES))
    missing = [n for n in shards if not shard_path(cache_dir, n).exists()]
    positions = positions_of(examples)
    needed = sum(sum(positions[n * SHARD_EXAMPLES:(n + 1) * SHARD_EXAMPLES]) for n in missing)
    check_free_space(cache_dir, needed * bytes_per_position(key["top_k"], key["dtype"]), "the teacher cache",
                     "free some space or give another --teacher_cache_dir")
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_json(cache_dir / KEY_FILE, key)
    head, dtype = OutputHead(teacher), DTYPES[key["dtype"]]
    with packed_attention(teacher):
        for n in tqdm(missing, desc="teacher cache", unit="shard", disable=not progress):
            part = examples[n * SHARD_EXAMPLES:(n + 1) * SHARD_EXAMPLES]
            tensors = shard_targets(teacher, head, part, pad_token_id, key["top_k"], key["temperature"], dtype,
                                    batch_examples)
            with atomic_file(shard_path(cache_dir, n)) as tmp:
                save_file(tensors, str(tmp))
    write_json(cache_dir / COMPLETE_FILE, {"examples": len(examples), "positions": sum(positions),
                                           "shards": len(shards), "bytes": sum(f.stat().st_size for f in
                                                                               cache_dir.glob("shard-*"))})
    return cache_dir


@dataclass
class TeacherCache:
    """A complete cache opened for reading: per example, the rows of its positions (memory-mapped,
    read as the collator asks for them)."""

    cache_dir: Path
    top_k: int
    _shards: list = field(default_factory=list)
    _where: list[tuple[int, int, int]] = field(default_factory=list)  # example -> (shard, first row, rows)

    @classmethod
    def open(cls, cache_dir: Path, key: dict) -> "TeacherCache":
        from safetensors import safe_open  # heavy: imported on use

        cache_dir = Path(cache_dir)
        if not (cache_dir / COMPLETE_FILE).exists():
            raise UsageError(f"teacher cache {cache_dir} is not complete; build it with python -m mop.recover.teacher_cache")
        check_key(cache_dir, key)
        cache = cls(cache_dir, key["top_k"])
        for n in range(read_metadata(cache_dir / COMPLETE_FILE, ("shards",))["shards"]):
            shard = safe_open(str(shard_path(cache_dir, n)), framework="pt")
            cache._shards.append(shard)
            first = 0
            for count in shard.get_tensor("positions").tolist():
                cache._where.append((n, first, count))
                first += count
        return cache

    def empty_targets(self, rows: int, width: int) -> dict[str, torch.Tensor]:
        return {"teacher_top": torch.zeros(rows, width, self.top_k), "teacher_ids": torch.zeros(rows, width, self.top_k,
                                                                                                dtype=torch.long),
                "teacher_rest": torch.zeros(rows, width)}

    def fill_targets(self, targets: dict, row: int, start: int, index: int) -> None:
        """Put example `index`'s stored targets at positions start, start + 1, ... of `row`."""
        shard, first, count = self._where[index]
        span = slice(start, start + count)
        reader = self._shards[shard]
        targets["teacher_top"][row, span] = reader.get_slice("top")[first:first + count].float()
        targets["teacher_ids"][row, span] = reader.get_slice("ids")[first:first + count].long()
        targets["teacher_rest"][row, span] = reader.get_slice("rest")[first:first + count]


# ----------------------------------------------------------------------------- command line


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", required=True, help="the dense model: embedded name, hub id or folder")
    p.add_argument("--cache_dir", required=True)
    p.add_argument("--data", default="auto", help="Alpaca JSON or hub id (auto: from the teacher's name)")
    p.add_argument("--num_samples", type=int, default=None)
    p.add_argument("--max_length", type=int, default=512)
    p.add_argument("--top_k", type=int, default=64)
    p.add_argument("--kd_temperature", type=float, default=1.0)
    p.add_argument("--dtype", choices=["auto", *sorted(DTYPES)], default="auto",
                   help="of the stored log-probs; auto: what recovery on this machine asks for (float16 with bf16 "
                        "on a GPU, float32 on CPU)")
    p.add_argument("--batch_size", type=int, default=8, help="examples per teacher forward pass")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    return p.parse_args(argv)


def prepare(teacher_name: str, data: str, num_samples: int | None, max_length: int, top_k: int, temperature: float,
            dtype: str, device: str):
    """(teacher model, tokenizer, encoded examples, key) for a cache over the recovery data."""
    if top_k < 1:
        raise UsageError(f"--top_k must be at least 1, got {top_k}")
    try:
        path = resolve_model_dir(teacher_name)
    except UsageError as err:
        raise UsageError(f"--teacher: {err}") from None
    records = load_alpaca_records(resolve_data_source(data, teacher_name), num_samples)
    bf16 = device.startswith("cuda") and use_bf16("auto")
    dtype = cache_dtype(bf16) if dtype == "auto" else dtype
    model, processing = load_model(path, torch.bfloat16 if bf16 else torch.float32, device)
    tokenizer = getattr(processing, "tokenizer", processing)
    examples = training_examples(tokenizer, records, max_length)
    key = cache_key(path, tokenizer, examples, max_length, top_k, temperature, dtype)
    return model, tokenizer, examples, key


def pad_id_of(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


@exit_on_usage_error
def main(argv=None) -> None:
    args = parse_args(argv)
    check_cache_dir(Path(args.cache_dir), "--cache_dir")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer, examples, key = prepare(args.teacher, args.data, args.num_samples, args.max_length, args.top_k,
                                              args.kd_temperature, args.dtype, device)
    folder = build_cache(Path(args.cache_dir), key, model, pad_id_of(tokenizer), examples, args.batch_size)
    info = read_metadata(folder / COMPLETE_FILE, ("examples", "positions", "bytes"))
    print(f"teacher cache {folder}: {info['examples']} examples, {info['positions']:,} positions, "
          f"{info['bytes'] / 2 ** 20:.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
