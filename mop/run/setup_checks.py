"""The drivers' setting checks that need the project's dependencies (torch, transformers,
lm_eval): TASKS known to lm_eval, MODEL_NAME resolving, PRUNE_ARGS / FT_ARGS / TABLE_ARGS parsed by
the scripts they go to, the data files they name. mop.run.driver_check imports this module once
it has found those dependencies installed, so that a bare interpreter gets one line, not a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import runpy
import sys
from pathlib import Path
from unittest import mock

from lm_eval.tasks import TaskManager

from ..core.args import settings_from_args
from ..core.io import UsageError
from ..evaluate.harness import PAPER_TASKS, TASKS_DIR, parse_tasks
from ..models.configs import SHIPPED
from ..models.data import _looks_like_path, resolve_data_source
from ..models.embedded import EMBEDDED_NAMES
from ..models.loading import resolve_model_dir
from ..recover.settings import RecoverySettings

LOCAL_TASK_DIRS = (TASKS_DIR, Path(__file__).resolve().parents[1] / "plugins" / "llava" / "tasks_vision")


def unknown_tasks(tasks: list[str], known_without_index=()) -> list[str]:
    """Tasks neither local (mop/evaluate/tasks, mop/plugins/llava/tasks_vision), nor in `known_without_index`, nor in
    lm_eval's full index; the full index (seconds to build) is read only when needed."""
    local = TaskManager(include_path=[str(d) for d in LOCAL_TASK_DIRS if d.is_dir()], include_defaults=False)
    rest = [t for t in tasks if t not in local.all_tasks and t not in known_without_index]
    if not rest:
        return []
    full = TaskManager(include_path=[str(d) for d in LOCAL_TASK_DIRS if d.is_dir()])
    return [t for t in rest if t not in full.all_tasks]


class _Captured(Exception):
    """Raised in place of a script's parse_args: carries its parser out before anything runs."""

    def __init__(self, parser):
        super().__init__()
        self.parser = parser


def script_parser(entry: str):
    """The argparse parser a script (a .py path) or module (mop.evaluate.tables) builds, caught at its
    parse_args call so that nothing after it runs; None if it parses no flags that way."""
    def capture(self, *args, **kwargs):
        raise _Captured(self)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", capture), mock.patch.object(sys, "argv", [entry]):
        try:
            if entry.endswith(".py"):
                runpy.run_path(entry, run_name="__main__")
            else:
                module = importlib.import_module(entry)
                main = getattr(module, "main", None) or importlib.import_module(f"{entry}.__main__").main
                main([])  # a package (python -m mop.evaluate) runs its __main__'s main
        except _Captured as caught:
            return caught.parser
    return None


def parse_flag_setting(name: str, entry: str, text: str, leading: tuple[str, ...] = ()):
    """A driver's free-form flags (PRUNE_ARGS, FT_ARGS, TABLE_ARGS) parsed by the script they are
    passed to, as bash will pass them (split at spaces): an unknown flag or a bad value is an
    error naming the variable now, not when that stage starts. None when there is nothing to parse."""
    if not text.strip():
        return None
    parser = script_parser(entry)
    if parser is None:
        return None

    def error(message):
        raise UsageError(f"{name}: {message}")

    parser.error = error
    return argparse.ArgumentParser.parse_args(parser, [*leading, *text.split()])


def with_lora_placeholders(parsed: argparse.Namespace) -> argparse.Namespace:
    """Custom/finetune.py leaves LoRA r / alpha open (None) for the checkpoint's family to fill when
    the stage runs (mop.run.cli.with_family_lora, which loads the model's config); here an open one is
    given a valid stand-in, so that the recovery checks judge only the values FT_ARGS sets."""
    open_values = {name: 1 for name in ("lora_r", "lora_alpha") if getattr(parsed, name, 1) is None}
    return argparse.Namespace(**{**vars(parsed), **open_values})


def check_flag_settings(model_folder: str | None, prune_args: str, ft_args: str, table_args: str) -> dict:
    """PRUNE_ARGS / FT_ARGS through the model folder's prune.py / finetune.py parsers (FT_ARGS also
    through the recovery settings' own checks), TABLE_ARGS through mop.evaluate.tables. Returns the parsed
    PRUNE_ARGS and FT_ARGS by name (those given), for the checks that read their values."""
    parsed = {}
    if model_folder:
        parsed["PRUNE_ARGS"] = parse_flag_setting("PRUNE_ARGS", str(Path(model_folder) / "prune.py"), prune_args)
        parsed["FT_ARGS"] = parse_flag_setting("FT_ARGS", str(Path(model_folder) / "finetune.py"), ft_args)
        if parsed["FT_ARGS"] is not None:
            try:
                settings_from_args(RecoverySettings, with_lora_placeholders(parsed["FT_ARGS"])).check()
            except UsageError as err:
                raise UsageError(f"FT_ARGS: {err}") from None
    parse_flag_setting("TABLE_ARGS", "mop.evaluate.tables", table_args, leading=(".",))
    return {name: flags for name, flags in parsed.items() if flags is not None}


def check_model_name(name: str) -> None:
    """MODEL_NAME resolves the way the stages will resolve it (mop.models.loading.resolve_model_dir): a
    local folder holding config.json, an embedded name, or a hub id whose config loads. Two of its
    steps are skipped so that a dry run needs neither weights nor the hub: an embedded name is
    accepted without building its checkpoint (minutes), and a hub id with a shipped config
    (mop.models.configs.SHIPPED) without loading it -- each only where resolve_model_dir would not take
    the name for a local path first. Offline, any other hub id resolves only from the HF cache."""
    if name in EMBEDDED_NAMES and not Path(name).expanduser().is_dir():
        return
    if name in SHIPPED and not Path(name.split("/")[0]).exists():
        return
    try:
        resolve_model_dir(name)
    except UsageError as err:
        raise UsageError(f"MODEL_NAME={name}: {str(err).removesuffix(f': {name}')}") from None


# The data-source flag of each free-form setting: prune.py's calibration prompts, finetune.py's records.
DATA_FLAGS = {"PRUNE_ARGS": "calibration_data", "FT_ARGS": "data"}


def check_data_file(setting: str, flag: str, source: str, model_name: str) -> None:
    """A data source that is a local file by mop.models.data's rules (a path that exists, or a name that
    looks like one, not a hub id) must be a readable file: read only when its stage starts."""
    source = resolve_data_source(source, model_name)
    path = Path(source)
    if path.exists():
        if not path.is_file() or not os.access(path, os.R_OK):
            raise UsageError(f"{setting}: --{flag} {source} is not a readable file")
    elif _looks_like_path(source):
        raise UsageError(f"{setting}: --{flag} {source}: data file not found")


def check_data_sources(parsed: dict, model_name: str) -> None:
    """The data files PRUNE_ARGS (--calibration_data) and FT_ARGS (--data) name, as parsed."""
    for setting, flags in parsed.items():
        source = getattr(flags, DATA_FLAGS[setting], None)
        if source is not None:
            check_data_file(setting, DATA_FLAGS[setting], source, model_name)


def check_tasks(tasks_text: str) -> None:
    """TASKS: a comma list lm_eval knows (its index, the project's local tasks, or 'paper')."""
    try:
        tasks = parse_tasks(tasks_text)
    except UsageError as err:
        raise UsageError(f"TASKS: {err}; give a comma list of lm_eval tasks or groups, or 'paper'") from None
    unknown = unknown_tasks(tasks, PAPER_TASKS)
    if unknown:
        raise UsageError(f"TASKS: unknown lm_eval task(s) {', '.join(unknown)}; use a comma list of lm_eval tasks "
                         f"or groups, 'paper', or the local tasks in {', '.join(str(d) for d in LOCAL_TASK_DIRS)}")
