"""Disk: which checkpoints a run keeps, what it will need, and a full disk as a clear error.

A full grid keeps only the checkpoints it will use: `--keep_iterations 4,8` deletes every other
iteration as soon as the next one is complete (so the newest complete iteration is always on
disk and `--resume` works at any moment), while each iteration's metadata stays in the run
folder's `iteration_records/` for summaries, tables and path replay. Before a run starts its
need is estimated from the schedule and compared with the free space of the target.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .io import UsageError

GB = 1e9
DELETING_PREFIX = ".del-"
HUB_EXTRA_BYTES = 20_000_000  # tokenizer and config files of a checkpoint whose folder we cannot see


def parse_keep(text: str, num_iterations: int) -> set[int] | None:
    """`all` -> None (keep every iteration); `4,8` -> {4, 8} (the last iteration always stays)."""
    if text.strip().lower() == "all":
        return None
    try:
        kept = {int(t) for t in text.split(",") if t.strip()}
    except ValueError:
        raise UsageError(f"--keep_iterations must be 'all' or a comma list of iterations, not {text!r}") from None
    bad = sorted(i for i in kept if not 1 <= i <= num_iterations)
    if bad:
        raise UsageError(f"--keep_iterations names iterations outside 1..{num_iterations}: {bad}")
    return kept | {num_iterations}


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def free_bytes(path: Path) -> int:
    """Free space of the filesystem that holds `path` (or would: its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def extra_bytes(model_path: str) -> int:
    """Bytes of a checkpoint besides its weights (tokenizer, configs), from the source folder."""
    folder = Path(model_path)
    if not folder.is_dir():
        return HUB_EXTRA_BYTES
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file() and not f.name.endswith((".safetensors", ".bin")))


def estimate_run_bytes(schedule: list[dict], num_iterations: int, start: int, kept: set[int] | None,
                       bytes_per_param: int, extra: int, recovered: int = 0) -> int:
    """Bytes a pruning run will add: every kept iteration still to come, two transient
    checkpoints (the newest complete one and the one being written), and `recovered` merged
    checkpoints a driver will make from this run. Iterations whose size the schedule does not
    know (metric paths) are counted at the unpruned size."""
    dense = schedule[0]["params"]
    sizes = {row["iteration"]: row["params"] for row in schedule}

    def size(i: int) -> int:
        return sizes.get(i, dense) * bytes_per_param + extra

    to_come = range(start + 1, num_iterations + 1)
    kept_to_come = [i for i in to_come if kept is None or i in kept]
    largest = max((size(i) for i in to_come), default=0)
    return sum(size(i) for i in kept_to_come) + 2 * largest + recovered * largest


def check_free_space(target: Path, needed: int, what: str,
                     hint: str = "free some space or keep fewer checkpoints (--keep_iterations)") -> None:
    free = free_bytes(target)
    if needed > free:
        raise UsageError(f"{what} needs about {needed / GB:.1f} GB but only {free / GB:.1f} GB are free at {target}; "
                         f"{hint}")


def retire(folder: Path) -> None:
    """Delete a checkpoint folder so that its final name never points at a half-deleted folder:
    rename first (atomic), then remove."""
    if not folder.exists():
        return
    doomed = folder.parent / f"{DELETING_PREFIX}{folder.name}"
    shutil.rmtree(doomed, ignore_errors=True)
    os.replace(folder, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def remove_leftovers(save_dir: Path) -> None:
    """Folders an interrupted deletion left behind."""
    for leftover in Path(save_dir).glob(f"{DELETING_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
