"""Checks a bash driver runs before it creates anything (scripts/pipeline.sh `mop_setup`).

    python -m mop.run.driver_check --tasks mop_mini,mop_heldout_ppl

Why: a driver's first stage takes minutes to hours, so an interpreter without the project's
dependencies, or a task name lm_eval does not know, must stop it at once with one line -- not
as a traceback from the first stage, or after the dense model was scored. So must a MODEL_NAME
that names no model, or a data file in PRUNE_ARGS / FT_ARGS that is not there -- dry runs included,
which need neither weights nor the hub for it. This module imports only
the standard library and the mop modules that need nothing else (io, stages), so that a bare
interpreter reaches the dependency check; the checks that need the dependencies are
mop.run.setup_checks, imported once they are found.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import shutil
import sys

from ..core.io import UsageError
from .stages import SlurmSettings

# What every stage imports; a PYTHON lacking one of them fails only when its first stage starts.
REQUIRED_MODULES = ("torch", "transformers", "peft", "accelerate", "datasets", "lm_eval", "safetensors")


def missing_modules(names=REQUIRED_MODULES) -> list[str]:
    """Modules the interpreter cannot find (found by spec only: importing torch takes seconds)."""
    return [name for name in names if importlib.util.find_spec(name) is None]


def check_slurm(dry_run: bool) -> None:
    """EXECUTOR=slurm: the SLURM_* settings parse (mop.run.stages reads them the same way) and sbatch
    is there, found before the driver creates its folders rather than when it submits."""
    SlurmSettings.from_env(os.environ, 1, ".")
    if not dry_run and shutil.which("sbatch") is None:
        raise UsageError("EXECUTOR=slurm needs sbatch on PATH (DRY_RUN=1 prints the jobs without it)")


def check_dependencies(python_name: str, executor: str = "local", dry_run: bool = False) -> None:
    """Raise a UsageError for the first problem: missing dependencies, Slurm settings."""
    missing = missing_modules()
    if missing:
        raise UsageError(f"PYTHON={python_name} lacks {', '.join(missing)}; set PYTHON to the interpreter of an "
                         "environment made with `make install` (or create .venv)")
    if executor == "slurm":
        check_slurm(dry_run)


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
        check_dependencies(args.python_name, args.executor, args.dry_run)
        from . import setup_checks  # needs torch and lm_eval: only now that they are known to be installed

        if args.tasks is not None:
            setup_checks.check_tasks(args.tasks)
        if args.model_name is not None:
            setup_checks.check_model_name(args.model_name)
        parsed = setup_checks.check_flag_settings(args.model_folder, args.prune_args, args.ft_args, args.table_args)
        setup_checks.check_data_sources(parsed, args.model_name or "")
    except Exception as err:  # a UsageError, or a broken installation: one line either way
        message = str(err) if type(err).__name__ == "UsageError" else f"PYTHON={args.python_name}: {type(err).__name__}: {err}"
        print("error: " + " ".join(message.split()), file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
