"""Command-line front ends shared by the per-model scripts.

Each model folder's script holds its hyperparameters as constants and passes them here as
defaults; every one can be overridden by the flag of the same name (the published flag names
are kept).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Callable

from .io import UsageError, exit_on_usage_error
from .plan import BUDGET_RULES


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as a single line and exit status 2."""

    def error(self, message):
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def prune_parser(defaults: dict, description: str) -> argparse.ArgumentParser:
    from .streaming import OFFLOAD_MODES  # imports torch: kept out of the light CLIs (tables, stages)

    p = OneLineParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model_name", default=defaults["model_name"],
                   help="hub id, local checkpoint, or an embedded name (smollm2-135m, smollm2-135m-mha)")
    p.add_argument("--save_dir", default=defaults["save_dir"], help="run folder for prune_iteration_<i>/")
    p.add_argument("--num_iterations", type=int, default=defaults["num_iterations"])
    p.add_argument("--decision_sequence", default=defaults["decision_sequence"],
                   help="--path sequence: L = drop a layer, G = width step; cycled if shorter than --num_iterations")
    p.add_argument("--seed", type=int, default=defaults["seed"])
    p.add_argument("--mlp_only", action=argparse.BooleanOptionalAction, default=defaults["mlp_only"],
                   help="width steps prune MLP neurons only (published Llama-3 setting)")
    p.add_argument("--budget_rule", choices=BUDGET_RULES, default=defaults.get("budget_rule", "exact"))
    p.add_argument("--calibration_data", default=defaults["calibration_data"],
                   help="hub dataset id or local Alpaca-format JSON/JSONL")
    p.add_argument("--num_calibration_prompts", type=int, default=defaults["num_calibration_prompts"])
    p.add_argument("--calibration_batch_size", type=int, default=defaults.get("calibration_batch_size", 16))
    p.add_argument("--max_calibration_length", type=int, default=defaults.get("max_calibration_length", 512))
    p.add_argument("--dtype", default=defaults.get("dtype", "auto"), help="auto = bfloat16 on CUDA, float32 on CPU")
    p.add_argument("--device", default=defaults.get("device", "auto"))
    p.add_argument("--offload", choices=OFFLOAD_MODES, default=defaults.get("offload", "auto"),
                   help="on: keep the model in CPU memory and stream decoder layers through the device one at a "
                        "time (models larger than the GPU); auto: on when the weights do not fit the device's "
                        "free memory (never on a CPU run)")
    p.add_argument("--resume", action="store_true", help="continue after the last complete iteration")
    add_path_flags(p, defaults)
    p.add_argument("--dry_run", action="store_true",
                   help="print the compression schedule from the config alone (no weights)")
    return p


def add_path_flags(p: argparse.ArgumentParser, defaults: dict) -> None:
    """How each iteration's step is chosen (mop/paths.py describes the criteria)."""
    from .paths import PATHS

    p.add_argument("--path", choices=PATHS, default=defaults.get("path", "sequence"),
                   help="sequence: --decision_sequence; random: a coin per iteration seeded by --seed; "
                        "ppl / kl / cosine: build both candidates every iteration and keep the one closer "
                        "to the unpruned model on held-out text")
    p.add_argument("--probe_steps", type=int, default=defaults.get("probe_steps", 0),
                   help="metric paths: LoRA steps given to each candidate before it is scored (0: no probe)")
    p.add_argument("--probe_samples", type=int, default=defaults.get("probe_samples", 64),
                   help="records the probe trains on (after the calibration and reference records)")
    p.add_argument("--num_reference_prompts", type=int, default=defaults.get("num_reference_prompts", 32),
                   help="metric paths: held-out records (after the calibration prompts) scored against the unpruned model")
    p.add_argument("--reference_top_k", type=int, default=defaults.get("reference_top_k", 256),
                   help="next-token log-probs of the unpruned model kept per position for the KL "
                        "(>= vocabulary size: exact KL)")


def print_schedule(rows: list[dict]) -> None:
    print(f"{'iter':>4} {'dec':>3} {'layers':>6} {'heads':>7} {'interm':>7} {'params':>15} {'compr':>7}")
    for r in rows:
        heads = f"{r['query_heads']}/{r['kv_heads']}"
        print(f"{r['iteration']:>4} {r['decision']:>3} {r['layers']:>6} {heads:>7} "
              f"{r['intermediate_size']:>7} {r['params']:>15,} {100 * r['compression']:>6.2f}%")
    for target in (0.20, 0.30, 0.40):
        best = min(rows[1:], key=lambda r: abs(r["compression"] - target), default=None)
        if best is not None:
            print(f"nearest to {100 * target:.0f}%: iteration {best['iteration']} "
                  f"({100 * best['compression']:.2f}%, {best['params'] / 1e9:.2f}B params)")


def dry_run(settings) -> list[dict]:
    from .configs import config_for_dry_run
    from .plan import parse_decisions
    from .pruner import simulate_path

    if settings.path not in ("sequence", "random"):
        raise UsageError(f"--dry_run needs a path known in advance (sequence or random); a {settings.path} "
                         "path is chosen while pruning")
    config = config_for_dry_run(settings.model_name)
    if settings.path == "random":
        from .paths import random_decisions

        drawn = random_decisions(config, settings.num_iterations, settings.seed, settings.width_mode, settings.budget_rule)
        decisions = [d for d, _ in drawn]
    else:
        decisions = parse_decisions(settings.decision_sequence, settings.num_iterations)
    rows = simulate_path(config, decisions, settings.width_mode, settings.budget_rule)
    print_schedule(rows)
    return rows


def prune_main(
    defaults: dict,
    description: str,
    argv: list[str] | None = None,
    extend_parser: Callable[[argparse.ArgumentParser], None] | None = None,
    batch_builder_for: Callable[[argparse.Namespace], Callable | None] | None = None,
) -> list[dict]:
    """Parse flags into PruneSettings and run (or dry-run) the pruning loop.

    `extend_parser` adds model-specific flags; `batch_builder_for(args)` may return a custom
    calibration batch builder (LLaVA image prompts), None for the default text prompts.
    """
    from .pruner import PruneSettings, calibration_batches, run_pruning

    parser = prune_parser(defaults, description)
    if extend_parser:
        extend_parser(parser)
    args = parser.parse_args(argv)
    fields = {f.name for f in dataclasses.fields(PruneSettings)}
    settings = PruneSettings(**{k: v for k, v in vars(args).items() if k in fields})

    @exit_on_usage_error
    def main():
        if settings.num_calibration_prompts < 1 or settings.calibration_batch_size < 1:
            raise UsageError("--num_calibration_prompts and --calibration_batch_size must be at least 1")
        if args.dry_run:
            return dry_run(settings)
        builder = (batch_builder_for(args) if batch_builder_for else None) or calibration_batches
        return run_pruning(settings, batch_builder=builder)

    return main()
