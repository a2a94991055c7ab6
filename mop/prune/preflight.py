"""Checks of a pruning run's inputs that need no model weights, made before anything is loaded
or written.

A typo in a data path or a flag then costs seconds instead of the minutes of loading a 7B model,
and a bad value never leaves a half-made run folder behind. Every check raises a one-line
UsageError naming the flag or the file.
"""

from __future__ import annotations

from pathlib import Path

from ..core.args import check_seed
from ..core.io import UsageError, check_writable_target, read_metadata
from ..core.layout import PRUNE_META, completed_iterations, iteration_dir, iteration_meta_path
from ..models.adapter import check_supported, text_config_of
from ..models.data import load_alpaca_records, resolve_data_source
from ..models.loading import check_weights, load_config, resolve_device, resolve_dtype, resolve_model_name
from ..models.stock import can_write_heads_pruned
from .budget import parse_decisions
from .path_selection import check_path_settings

# What a resumed run reads back from each complete iteration's mop_prune.json.
RESUME_FIELDS = ("iteration", "decision", "accumulator_after", "layers", "query_heads", "kv_heads",
                 "intermediate_size", "params", "compression")
POSITIVE_FLAGS = ("num_calibration_prompts", "calibration_batch_size", "max_calibration_length")


def check_prune_inputs(settings, text_calibration: bool = True) -> None:
    """Flags and the path, device, dtype, the run folder's writability, the source model (its
    config is supported, its weight files complete) and the calibration records (when text
    prompts calibrate the run) -- the cheap ones first."""
    for name in POSITIVE_FLAGS:
        if getattr(settings, name) < 1:
            raise UsageError(f"--{name} must be at least 1, got {getattr(settings, name)}")
    if settings.recovered_checkpoints < 0:
        raise UsageError(f"--recovered_checkpoints must be 0 or more, got {settings.recovered_checkpoints}")
    check_seed(settings.seed)
    if settings.path == "sequence":
        parse_decisions(settings.decision_sequence, settings.num_iterations)
    check_path_settings(settings)
    device = resolve_device(settings.device)
    resolve_dtype(settings.dtype, device)
    check_writable_target(settings.save_dir, "--save_dir")
    model_path = resolve_model_name(settings.model_name)
    config = load_config(model_path)
    check_supported(config)
    check_heads_writable(settings, config)
    check_weights(model_path)
    if text_calibration:
        source = resolve_data_source(settings.calibration_data, settings.model_name)
        load_alpaca_records(source, settings.num_calibration_prompts)


def check_heads_writable(settings, config) -> None:
    """A run that prunes attention heads of a model whose pruned shape no stock architecture can
    be written as (mop.models.stock) is refused before any work, dry runs included."""
    if settings.mlp_only:
        return
    reason = can_write_heads_pruned(text_config_of(config))
    if reason is not None:
        raise UsageError(reason)


def check_resume_state(save_dir: Path) -> int:
    """What a resumed run continues from is readable: every complete iteration's mop_prune.json
    with the fields the loop and the summary read, and the last checkpoint's weight files.
    Returns the number of complete iterations."""
    done = completed_iterations(save_dir)
    for i in range(1, done + 1):
        read_metadata(iteration_meta_path(save_dir, i), RESUME_FIELDS, PRUNE_META)
    if done:
        check_weights(iteration_dir(save_dir, done))
    return done
