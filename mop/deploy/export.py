"""Rewrite a checkpoint folder in stock form, into a new folder.

    python -m mop.deploy.export SRC DST

For folders written before checkpoints were in stock form: a heads-pruned model (or a multimodal
wrapper around one) that this project wrote with transformers 4.57 keeps its family's type with a
hidden size that is not a multiple of its head count, and stock transformers 5, vLLM and `vllm
serve` refuse it. DST gets every file of SRC byte for byte (weights, tokenizer, the project's
metadata) except `config.json`, which is rewritten in stock form (mop.models.stock: the family's twin,
both rope spellings), and `tokenizer_config.json`, whose class is named so that both transformers
lines load it. The tensors keep their names and bytes, so nothing is re-saved and no model is loaded.
A folder already in stock form is copied with the same two files normalised. DST must not exist:
nothing is ever overwritten.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ..core.args import OneLineParser
from ..core.io import (LOCK_NAME, UsageError, atomic_directory, check_writable_target, exit_on_usage_error,
                       locked_result, read_json_object)
from ..models.checkpoint import CONFIG_FILE, finish_checkpoint_files, rewrite_json
from ..models.loading import check_weights, resolve_model_dir
from ..models.stock import model_types, stock_config_dict

SKIPPED = (LOCK_NAME,)


def export(source: str, target: str) -> tuple[Path, bool]:
    """Write SRC's stock form into the new folder DST (atomically); returns DST and whether the
    config changed type (False: SRC was already in stock form)."""
    source_dir = Path(resolve_model_dir(source))
    target_dir = Path(target).absolute()
    if target_dir.exists():
        raise UsageError(f"{target} already exists: mop.deploy.export never overwrites; name a new folder")
    if target_dir == source_dir or source_dir in target_dir.parents:
        raise UsageError(f"{target} lies inside the source checkpoint {source_dir}")
    check_writable_target(target_dir, "DST")
    check_weights(source_dir)
    written = _read_config(source_dir)
    config = stock_config_dict(written)
    with locked_result(target_dir, f"exporting {source_dir} to {target_dir}"), atomic_directory(target_dir) as tmp:
        copy_files(source_dir, tmp)
        rewrite_json(tmp / CONFIG_FILE, lambda _: config)
        finish_checkpoint_files(tmp)
    return target_dir, model_types(config) != model_types(written)


def _read_config(folder: Path) -> dict:
    return read_json_object(folder / CONFIG_FILE, ("model_type",))


def copy_files(source: Path, target: Path) -> None:
    """Every file and folder of `source` (not its lock), byte for byte."""
    for entry in sorted(source.iterdir()):
        if entry.name in SKIPPED or entry.name.startswith(".tmp-"):
            continue
        if entry.is_dir():
            shutil.copytree(entry, target / entry.name)
        else:
            shutil.copy2(entry, target / entry.name)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", metavar="SRC", help="a checkpoint folder (any the project wrote)")
    parser.add_argument("target", metavar="DST", help="the new folder to write (must not exist)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> Path:
    target, changed = export(args.source, args.target)
    how = "rewritten in stock form" if changed else "copied (already in stock form)"
    print(f"{target}: {how}; loads with stock transformers' from_pretrained", flush=True)
    return target


def main(argv: list[str] | None = None) -> Path:
    return exit_on_usage_error(run)(parse_args(argv))


if __name__ == "__main__":
    main()
