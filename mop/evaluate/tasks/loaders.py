"""Dataset loader for the mop_* lm_eval tasks in this folder.

lm_eval 0.4.x hands ``dataset_kwargs.data_files`` straight to
``datasets.load_dataset``, which resolves relative paths against the current
working directory, not the YAML.  The task YAMLs therefore name this function
as ``custom_dataset: !function loaders.load_local_json``; lm_eval resolves
``!function`` relative to the YAML file and calls it as
``custom_dataset(**metadata, **dataset_kwargs)``.  Here relative data files
are resolved against this folder, so ``--include_path <repo>/mop/tasks`` works
from any working directory.
"""
from __future__ import annotations

from pathlib import Path

import datasets

TASK_DIR = Path(__file__).resolve().parent


def resolve_data_files(data_files: dict[str, str] | str) -> dict[str, str]:
    if isinstance(data_files, str):
        data_files = {"test": data_files}
    out = {}
    for split, f in data_files.items():
        p = Path(f)
        out[split] = str(p if p.is_absolute() else (TASK_DIR / p).resolve())
    return out


def load_local_json(data_files: dict[str, str] | str | None = None, **_ignored) -> datasets.DatasetDict:
    """Load JSONL files named relative to this folder (extra lm_eval metadata kwargs are ignored)."""
    if data_files is None:
        raise ValueError("mop tasks: dataset_kwargs.data_files is required")
    files = resolve_data_files(data_files)
    for split, f in files.items():
        if not Path(f).is_file():
            raise FileNotFoundError(f"mop tasks: data file for split {split!r} not found: {f}")
    return datasets.load_dataset("json", data_files=files)
