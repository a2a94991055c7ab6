"""Command-line plumbing every entry point shares: one-line argument errors, defaults taken
from the settings dataclasses."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys

from .io import UsageError


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


def finite_float(text: str) -> float:
    """An argparse type for real-valued flags: float() also accepts 'nan' and 'inf', which pass
    every `<= 0` check and fail only deep inside the optimiser, after the model is loaded."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


SEED_RANGE = (0, 2**32 - 1)  # what numpy's generator accepts (transformers' set_seed seeds numpy too)


def check_seed(seed: int) -> None:
    """--seed within numpy's range: outside it a run fails in np.random.seed, after loading the model."""
    if not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        raise UsageError(f"--seed must be a whole number in {SEED_RANGE[0]}..{SEED_RANGE[1]}, got {seed}")
