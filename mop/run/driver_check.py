"""Checks a bash driver runs before it creates anything (scripts/pipeline.sh `mop_setup`).

    python -m mop.run.driver_check --tasks mop_mini,mop_heldout_ppl

Why: a driver's first stage takes minutes to hours, so an interpreter without the project's
dependencies, or a task name lm_eval does not know, must stop it at once with one line -- not
as a traceback from the first stage, or after the dense model was scored. So must a MODEL_NAME
that names no model, or a data file in PRUNE_ARGS / FT_ARGS that is not there -- dry runs included,
which need neither weights nor the hub for it. Only the standard
library and the mop modules that need nothing else (io, args, stages) are imported at the top, so
that a bare interpreter reaches the dependency check; modules that import torch are imported on use.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import runpy
import shutil
import sys
from pathlib import Path
from unittest import mock

from ..core.args import settings_from_args
from ..core.io import UsageError
from .stages import SlurmSettings

# What every stage imports; a PYTHON lacking one of them fails only when its first stage starts.
REQUIRED_MODULES = ("torch", "transformers", "peft", "accelerate", "datasets", "lm_eval", "safetensors")
MOP = Path(__file__).resolve().parents[1]
LOCAL_TASK_DIRS = (MOP / "evaluate" / "tasks", MOP / "plugins" / "llava" / "tasks_vision")


def missing_modules(names=REQUIRED_MODULES) -> list[str]:
    """Modules the interpreter cannot find (found by spec only: importing torch takes seconds)."""
    return [name for name in names if importlib.util.find_spec(name) is None]


def unknown_tasks(tasks: list[str], known_without_index=()) -> list[str]:
    """Tasks neither local (mop/evaluate/tasks, mop/plugins/llava/tasks_vision), nor in `known_without_index`, nor in
    lm_eval's full index; the full index (seconds to build) is read only when needed."""
    from lm_eval.tasks import TaskManager  # heavy, and only checked to be installed by now

    local = TaskManager(include_path=[str(d) for d in LOCAL_TASK_DIRS if d.is_dir()], include_defaults=False)
    rest = [t for t in tasks if t not in local.all_tasks and t not in known_without_index]
    if not rest:
        return []
    full = TaskManager(include_path=[str(d) for d in LOCAL_TASK_DIRS if d.is_dir()])
    return [t for t in rest if t not in full.all_tasks]


def check_slurm(dry_run: bool) -> None:
    """EXECUTOR=slurm: the SLURM_* settings parse (mop.run.stages reads them the same way) and sbatch
    is there, found before the driver creates its folders rather than when it submits."""
    SlurmSettings.from_env(os.environ, 1, ".")
    if not dry_run and shutil.which("sbatch") is None:
        raise UsageError("EXECUTOR=slurm needs sbatch on PATH (DRY_RUN=1 prints the jobs without it)")


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
            from ..recover.settings import RecoverySettings  # imports torch: only once the dependencies are checked

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
    from ..models.configs import SHIPPED  # imports torch: only once the dependencies are checked
    from ..models.embedded import EMBEDDED_NAMES
    from ..models.loading import resolve_model_dir

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
    from ..models.data import _looks_like_path, resolve_data_source

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


def check_driver(tasks_text: str | None, python_name: str, executor: str = "local", dry_run: bool = False) -> None:
    """Raise a UsageError for the first problem: missing dependencies, Slurm settings, unknown tasks."""
    missing = missing_modules()
    if missing:
        raise UsageError(f"PYTHON={python_name} lacks {', '.join(missing)}; set PYTHON to the interpreter of an "
                         "environment made with `make install` (or create .venv)")
    if executor == "slurm":
        check_slurm(dry_run)
    if tasks_text is None:
        return
    from ..evaluate.harness import PAPER_TASKS, parse_tasks  # imports torch: only once the dependencies are checked

    try:
        tasks = parse_tasks(tasks_text)
    except UsageError as err:
        raise UsageError(f"TASKS: {err}; give a comma list of lm_eval tasks or groups, or 'paper'") from None
    unknown = unknown_tasks(tasks, PAPER_TASKS)
    if unknown:
        raise UsageError(f"TASKS: unknown lm_eval task(s) {', '.join(unknown)}; use a comma list of lm_eval tasks "
                         f"or groups, 'paper', or the local tasks in {', '.join(str(d) for d in LOCAL_TASK_DIRS)}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", help="the driver's TASKS (comma list); omitted: dependencies only")
    p.add_argument("--python_name", default=sys.executable, help="how the driver names this interpreter")
    p.add_argument("--executor", default="local", help="the driver's EXECUTOR (slurm: its settings are checked)")
    p.add_argument("--dry_run", action="store_true", help="DRY_RUN=1: no sbatch needed")
    p.add_argument("--model_name", help="the driver's MODEL_NAME (checked to resolve); omitted: not checked")
    p.add_argument("--model_folder", help="the driver's model folder (its prune.py and finetune.py parse the flags below)")
    p.add_argument("--prune_args", default="", help="the driver's PRUNE_ARGS")
    p.add_argument("--ft_args", default="", help="the driver's FT_ARGS")
    p.add_argument("--table_args", default="", help="the driver's TABLE_ARGS")
    args = p.parse_args(argv)
    try:
        check_driver(args.tasks, args.python_name, args.executor, args.dry_run)
        if args.model_name is not None:
            check_model_name(args.model_name)
        parsed = check_flag_settings(args.model_folder, args.prune_args, args.ft_args, args.table_args)
        check_data_sources(parsed, args.model_name or "")
    except Exception as err:  # a UsageError, or a broken installation: one line either way
        message = str(err) if type(err).__name__ == "UsageError" else f"PYTHON={args.python_name}: {type(err).__name__}: {err}"
        print("error: " + " ".join(message.split()), file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
