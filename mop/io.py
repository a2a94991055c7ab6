"""Files, folders and errors shared by every entry point.

Every artifact a later stage trusts (a pruned checkpoint, a merged model, an eval result) is
written into a temporary sibling folder and renamed into place at the end, so that a folder
with the final name is always complete: an interrupted run leaves only a `.tmp-*` folder that
the next run removes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Iterator


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit status 2, nothing written."""


def one_line(err: BaseException, limit: int = 300) -> str:
    """An exception as a single line (library messages often span several)."""
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def exit_on_usage_error(main: Callable[[], Any]) -> Callable[[], Any]:
    """Wrap a script's main so a UsageError prints one line and exits with status 2."""

    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UsageError as err:
            print("error: " + " ".join(str(err).split()), file=sys.stderr)
            raise SystemExit(2) from None

    return wrapped


def temporary_sibling(final: Path) -> Path:
    return final.parent / f".tmp-{final.name}"


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder that becomes `final` only if the block succeeds.

    A leftover temporary folder from an interrupted run is discarded first. `final` must not
    exist yet: completed results are never overwritten.
    """
    final = Path(final)
    if final.exists():
        raise FileExistsError(f"{final} already exists; refusing to overwrite a completed result")
    tmp = temporary_sibling(final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(err):
            raise UsageError(f"disk full while writing {final}: the partial folder was removed, earlier results "
                             "are intact; free some space and run again (completed stages are kept)") from None
        raise
    os.replace(tmp, final)


def is_disk_full(err: BaseException) -> bool:
    """ENOSPC, also when a library wraps it in an exception of its own (safetensors does)."""
    return (isinstance(err, OSError) and err.errno == errno.ENOSPC) or "No space left on device" in str(err)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON via a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def read_json_list(path: Path, what: str) -> list:
    """A non-empty list from a JSON file (one list) or a JSONL file (one item a line)."""
    text = path.read_text()
    try:
        if path.suffix == ".jsonl":
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            items = json.loads(text) if text.strip() else []
    except json.JSONDecodeError as err:
        raise UsageError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(items, list) or not items:
        raise UsageError(f"{path} must hold a non-empty list of {what}")
    return items


def software_versions() -> dict[str, str]:
    """Versions that change published numbers; stored next to every result."""
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "accelerate", "datasets", "lm_eval"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def is_nonempty_dir(path: str | os.PathLike) -> bool:
    path = Path(path)
    return path.is_dir() and any(path.iterdir())
