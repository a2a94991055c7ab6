"""Files, folders, locks and errors shared by every entry point.

Every artifact a later stage trusts (a pruned checkpoint, a merged model, an eval result) is
written into a temporary sibling folder and renamed into place at the end, so that a folder
with the final name is always complete: an interrupted run leaves only a
`.tmp-<name>-<pid>-<random>` folder that the next writer of the same result removes.

Every writer holds an exclusive lock (`exclusive_lock`) on what it writes for as long as it
writes: a second writer of the same run folder, recovered checkpoint or score folder stops at
once with a one-line error naming the running process, and never touches the first one's files;
a second builder of a cache entry waits and then uses the finished result. Temporaries have
unique names, so even writers that do not share a lock never delete each other's files.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import platform
import re
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from .layout import METADATA_TYPES

LOCK_NAME = ".mop.lock"  # the lock file inside a locked folder (see `locked_folder`)


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


# ----------------------------------------------------------------------------- locks


def _lock_holder(lock_file: Path) -> str:
    """Who holds a lock, as its lock file says (`<pid> <command>`); the holder writes it right
    after locking, so an empty file is read again for a moment before giving up."""
    for _ in range(20):
        try:
            text = lock_file.read_text(errors="replace").strip()
        except OSError:
            text = ""
        if text:
            pid, _, command = text.partition(" ")
            return f"process {pid}" + (f" ({command[:120]})" if command else "")
        time.sleep(0.05)
    return "another process"


def _open_locked(lock_file: Path, what: str, wait: bool) -> int:
    """A descriptor holding the flock on `lock_file`, or a UsageError naming the holder.

    The holder deletes its lock file when done (while still holding it), so after locking we
    check that the path still names the file we locked; if not, we lock the new one.
    """
    while True:
        try:
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise UsageError(f"cannot write {what}: cannot create {lock_file}: {err.strerror}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise UsageError(f"{what} is in use by {_lock_holder(lock_file)}; wait for it to finish "
                                     "or choose another folder") from None
                print(f"waiting for {_lock_holder(lock_file)} to finish {what} ...", file=sys.stderr, flush=True)
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(lock_file).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            return fd
        os.close(fd)


@contextlib.contextmanager
def exclusive_lock(lock_file: str | os.PathLike, what: str, wait: bool = False) -> Iterator[Path]:
    """Hold an exclusive lock for the block: the one rule that keeps two runs off the same files.

    `lock_file` is created if needed and holds `<pid> <command>` while the lock is held. If
    another process holds it: `wait=False` raises a UsageError naming that process (a second
    writer of a run must not start), `wait=True` blocks until it is released (a cache entry the
    other process is building). The lock is the kernel's (flock): it is released when the
    process ends in any way, so a killed run never leaves a stale lock behind; the file itself
    is deleted on a normal exit.
    """
    lock_file = Path(lock_file)
    fd = _open_locked(lock_file, what, wait)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {' '.join([Path(sys.argv[0]).name] + sys.argv[1:])}\n".encode())
        yield lock_file
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_file)  # still locked: a process that opened it re-checks the path
        os.close(fd)


def sibling_lock(target: str | os.PathLike) -> Path:
    """The lock file of a result that is written as a whole folder: `.<name>.lock` beside it
    (inside the folder it would be renamed away with the temporary)."""
    target = Path(target)
    return target.parent / f".{target.name}.lock"


def locked_result(target: str | os.PathLike, what: str, wait: bool = False):
    """The lock of a result written as a whole folder (`sibling_lock`), its parent folder
    created first if needed."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create {target.parent}: {err.strerror}") from None
    return exclusive_lock(sibling_lock(target), what, wait)


def _missing_ancestors(folder: Path) -> list[Path]:
    """The folders `mkdir(parents=True)` would create, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


@contextlib.contextmanager
def locked_folder(folder: str | os.PathLike, what: str) -> Iterator[Path]:
    """Create `folder` if needed and hold the lock file inside it (`.mop.lock`) for the block.

    Folders this call created are removed again if the block leaves them empty (a run that
    failed before writing anything leaves no trace).
    """
    folder = Path(folder)
    created = _missing_ancestors(folder.absolute())
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create {folder}: {err.strerror}") from None
    try:
        with exclusive_lock(folder / LOCK_NAME, what):
            yield folder
    finally:
        for path in created:
            try:
                path.rmdir()
            except OSError:
                break


def check_writable_target(target: str | os.PathLike, flag: str) -> None:
    """`target` (a folder or file to create or fill) can be written: the nearest existing path
    on the way to it must be a folder we can create files in. Tested by creating an unnamed
    temporary file there (gone at once), since permission bits do not tell (root, read-only
    mounts)."""
    target = Path(target).absolute()
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag} {target}: {existing} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise UsageError(f"{flag} {target}: cannot write in {existing}: {err.strerror}") from None


# ----------------------------------------------------------------------------- atomic results


def temporary_sibling(final: str | os.PathLike) -> Path:
    """A fresh name beside `final` to write it under: `.tmp-<name>-<pid>-<random>`.

    Unique per writer, so two writers never write into (or delete) the same temporary.
    """
    final = Path(final)
    return final.parent / f".tmp-{final.name}-{os.getpid()}-{secrets.token_hex(4)}"


def remove_stale_temporaries(folder: str | os.PathLike, name_pattern: str) -> list[Path]:
    """Delete the temporaries of results named by `name_pattern` (a regex) in `folder`.

    Only for a caller that holds the lock covering those results: then every such temporary
    was left by a run that died. Older fixed-name temporaries (`.tmp-<name>`) go too.
    """
    pattern = re.compile(rf"\.tmp-(?:{name_pattern})(?:-\d+-[0-9a-f]+)?")
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        if pattern.fullmatch(path.name):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
            removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder that becomes `final` only if the block succeeds.

    Call it while holding the lock that covers `final` (see `exclusive_lock`): temporaries of
    `final` left by interrupted runs are discarded first. `final` must not exist yet:
    completed results are never overwritten.
    """
    final = Path(final)
    if final.exists():
        raise FileExistsError(f"{final} already exists; refusing to overwrite a completed result")
    remove_stale_temporaries(final.parent, re.escape(final.name))
    tmp = temporary_sibling(final)
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


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON via a temporary file and a rename, so readers never see half a file."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file's content; an unreadable or invalid file is a one-line error naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} not found") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a folder, not a JSON file") from None
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text (corrupt?)") from None
    except json.JSONDecodeError as err:
        raise UsageError(f"{path} is not valid JSON (corrupt?): {err}") from None


def read_json_object(path: str | os.PathLike, required: tuple[str, ...] = ()) -> dict:
    """A JSON file that must hold an object with the `required` keys (a run's state files)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise UsageError(f"{path} does not hold a JSON object (corrupt?)")
    missing = [key for key in required if key not in data]
    if missing:
        raise UsageError(f"{path} lacks {', '.join(missing)} (corrupt or from another program?)")
    return data


JSON_TYPE_NAMES = {dict: "an object", list: "a list", str: "text", int: "a whole number", float: "a number",
                   bool: "true/false", type(None): "null"}


def json_type_name(value_or_type) -> str:
    """How a JSON value's type reads in an error ('a list', 'null', ...)."""
    kind = value_or_type if isinstance(value_or_type, type) else type(value_or_type)
    return JSON_TYPE_NAMES.get(kind, kind.__name__)


def read_metadata(path: str | os.PathLike, needs: tuple[str, ...] = (), kind: str | None = None) -> dict:
    """A metadata file the project wrote (mop_prune.json, run_config.json, mop_eval.json, ...):
    a JSON object holding the keys `needs`, each key of a known type (mop.core.layout.METADATA_TYPES
    for `kind`, by default the file's name) of that type. Any difference is one UsageError naming
    the file and the key."""
    path = Path(path)
    data = read_json_object(path, needs)
    for key, types in METADATA_TYPES.get(kind or path.name, {}).items():
        allowed = types if isinstance(types, tuple) else (types,)
        value = data.get(key)
        if key in data and (not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)):
            wanted = " or ".join(dict.fromkeys(json_type_name(t) for t in allowed))
            raise UsageError(f"{path}: '{key}' must be {wanted}, found {json_type_name(value)} (corrupt or from another "
                             "program?)")
    return data


def read_text_file(path: Path) -> str:
    """A data file's text; a folder, an unreadable or a non-UTF-8 file is a one-line error."""
    if path.is_dir():
        raise UsageError(f"data file {path} is a folder, not a .json or .jsonl file")
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as err:
        raise UsageError(f"cannot read data file {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise UsageError(f"data file {path} is not UTF-8 text (byte {err.start}): save it as UTF-8 JSON") from None


def read_json_list(path: Path, what: str) -> list:
    """A non-empty list from a JSON file (one list) or a JSONL file (one item a line)."""
    text = read_text_file(path)
    if path.suffix == ".jsonl":
        items = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise UsageError(f"{path} line {number} is not valid JSON: {err}") from None
    else:
        try:
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
    """True when the folder holds anything besides a lock file."""
    path = Path(path)
    return path.is_dir() and any(p.name != LOCK_NAME for p in path.iterdir())
