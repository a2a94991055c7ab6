"""Command-line plumbing every entry point shares: one-line argument errors, defaults taken
from the settings dataclasses."""

from __future__ import annotations

import argparse
import dataclasses
import sys


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as a single line and exit status 2."""

    def error(self, message):
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def settings_defaults(settings_class, overrides: dict) -> dict:
    """The dataclass's own defaults, overridden by a script's constants (which must also name
    every field without a default)."""
    defaults = {f.name: f.default for f in dataclasses.fields(settings_class)
                if f.default is not dataclasses.MISSING}
    return {**defaults, **overrides}


def settings_from_args(settings_class, args: argparse.Namespace):
    """The settings dataclass filled from the parsed flags of the same names."""
    names = {f.name for f in dataclasses.fields(settings_class)}
    return settings_class(**{k: v for k, v in vars(args).items() if k in names})
