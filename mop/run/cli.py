"""Command-line front ends shared by the per-model scripts.

Each model folder's script holds its hyperparameters as constants and passes them here; every
one can be overridden by the flag of the same name (the published flag names are kept). Defaults
the scripts do not set come from the settings dataclasses (`PruneSettings`, `RecoverySettings`),
so each default is stated once.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Callable

from ..core.args import OneLineParser, finite_float, settings_defaults, settings_from_args
from ..core.io import UsageError, exit_on_usage_error
from ..core.layout import default_tuned_dir
from ..models.adapter import default_mlp_only, published_lora
from ..models.configs import config_for_dry_run
from ..models.loading import load_config, resolve_model_name
from ..prune.budget import BUDGET_RULES, parse_decisions
from ..prune.path_selection import CANDIDATE_MODES, PATHS
from ..prune.preflight import check_heads_writable
from ..prune.pruner import PruneSettings, calibration_batches, run_pruning
from ..prune.steps import DEPTH_RULES, THIRD_TO_LAST, random_decisions, simulate_path
from ..prune.streaming import OFFLOAD_MODES
from ..recover.distill import OBJECTIVES
from ..recover.job import finetune_checkpoint
from ..recover.settings import TEACHER_MODES, RecoverySettings

# ----------------------------------------------------------------------------- pruning


def prune_parser(defaults: dict, description: str) -> argparse.ArgumentParser:
    d = settings_defaults(PruneSettings, defaults)
    p = OneLineParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model_name", default=d["model_name"],
                   help="hub id, local checkpoint, or an embedded name (smollm2-135m, smollm2-135m-mha)")
    p.add_argument("--save_dir", default=d["save_dir"], help="run folder for prune_iteration_<i>/")
    p.add_argument("--num_iterations", type=int, default=d["num_iterations"])
    p.add_argument("--decision_sequence", default=d["decision_sequence"],
                   help="--path sequence: L = drop a layer, G = width step; cycled if shorter than --num_iterations")
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument("--mlp_only", action=argparse.BooleanOptionalAction, default=d["mlp_only"],
                   help="width steps prune MLP neurons only (published Llama-3 setting; a script that leaves "
                        "it open (None) gets the family's default: MLP only for grouped-query models)")
    p.add_argument("--budget_rule", choices=BUDGET_RULES, default=d["budget_rule"])
    p.add_argument("--depth_rule", choices=DEPTH_RULES, default=d["depth_rule"],
                   help="which layer an L step removes: third_to_last (the paper's rule) or block_influence (the "
                        "layer that changes the hidden state least on the calibration prompts, scored anew at "
                        "every L step; the first and last layers are kept)")
    p.add_argument("--align", type=int, default=d["align"],
                   help="keep the MLP width a multiple of N after every width step (0: off, the paper's exact "
                        "budget); 32 for llama.cpp q8_0, 256 for k-quants, 64 for GPU kernels")
    p.add_argument("--calibration_data", default=d["calibration_data"],
                   help="hub dataset id or local Alpaca-format JSON/JSONL")
    p.add_argument("--num_calibration_prompts", type=int, default=d["num_calibration_prompts"])
    p.add_argument("--calibration_batch_size", type=int, default=d["calibration_batch_size"])
    p.add_argument("--max_calibration_length", type=int, default=d["max_calibration_length"])
    p.add_argument("--dtype", default=d["dtype"], help="auto = the checkpoint's half precision on CUDA, float32 on CPU")
    p.add_argument("--device", default=d["device"])
    p.add_argument("--offload", choices=OFFLOAD_MODES, default=d["offload"],
                   help="on: keep the model in CPU memory and stream decoder layers through the device one at a "
                        "time (models larger than the GPU); auto: on when the weights do not fit the device's "
                        "free memory (never on a CPU run)")
    p.add_argument("--resume", action="store_true", help="continue after the last complete iteration")
    p.add_argument("--keep_iterations", default=d["keep_iterations"],
                   help="'all', or a comma list of iterations whose checkpoints stay on disk (the last one always "
                        "does); the others are deleted once the next iteration is complete, their metadata is kept")
    p.add_argument("--recovered_checkpoints", type=int, default=d["recovered_checkpoints"],
                   help="merged checkpoints that will be made from this run (counted in the disk estimate)")
    add_path_flags(p, d)
    p.add_argument("--dry_run", action="store_true",
                   help="print the compression schedule from the config alone (no weights)")
    return p


def add_path_flags(p: argparse.ArgumentParser, d: dict) -> None:
    """How each iteration's step is chosen (mop/prune/path_selection.py describes the criteria)."""
    p.add_argument("--path", choices=PATHS, default=d["path"],
                   help="sequence: --decision_sequence; random: a coin per iteration seeded by --seed; "
                        "ppl / kl / cosine: build both candidates every iteration and keep the one closer "
                        "to the unpruned model on held-out text")
    p.add_argument("--probe_steps", type=int, default=d["probe_steps"],
                   help="metric paths: LoRA steps given to each candidate before it is scored (0: no probe)")
    p.add_argument("--probe_samples", type=int, default=d["probe_samples"],
                   help="records the probe trains on (after the calibration and reference records)")
    p.add_argument("--num_reference_prompts", type=int, default=d["num_reference_prompts"],
                   help="metric paths: held-out records (after the calibration prompts) scored against the unpruned model")
    p.add_argument("--reference_top_k", type=int, default=d["reference_top_k"],
                   help="next-token log-probs of the unpruned model kept per position for the KL "
                        "(>= vocabulary size: exact KL)")
    p.add_argument("--candidates", choices=CANDIDATE_MODES, default=d["candidates"],
                   help="metric paths: view = score each candidate as a view of the live model (no copy); "
                        "copy = score deep copies (the reference implementation, twice the memory)")


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


def dry_run(settings: PruneSettings) -> list[dict]:
    if settings.path not in ("sequence", "random"):
        raise UsageError(f"--dry_run needs a path known in advance (sequence or random); a {settings.path} "
                         "path is chosen while pruning")
    config = config_for_dry_run(settings.model_name)
    check_heads_writable(settings, config)
    if settings.path == "random":
        drawn = random_decisions(config, settings.num_iterations, settings.seed, settings.width_mode, settings.budget_rule,
                                 settings.align)
        decisions = [d for d, _ in drawn]
    else:
        decisions = parse_decisions(settings.decision_sequence, settings.num_iterations)
    rows = simulate_path(config, decisions, settings.width_mode, settings.budget_rule, settings.align)
    print_schedule(rows)
    print(depth_rule_note(settings.depth_rule))
    return rows


def with_family_width_mode(settings: PruneSettings) -> PruneSettings:
    """Settings whose width mode a script left open (mlp_only None: Custom/prune.py) take the
    family's default, read from the model's config before any weight is loaded."""
    if settings.mlp_only is not None:
        return settings
    mlp_only = default_mlp_only(config_for_dry_run(settings.model_name))
    print(f"width mode from the model's family: {'mlp_only' if mlp_only else 'attention_mlp'}", flush=True)
    return dataclasses.replace(settings, mlp_only=mlp_only)


def with_family_lora(args: argparse.Namespace) -> argparse.Namespace:
    """LoRA r / alpha a script left open (None: Custom/finetune.py) from the checkpoint's family
    (the paper's r=32, alpha=10 for text families, LLaVA's r=8, alpha=16)."""
    if args.lora_r is not None and args.lora_alpha is not None:
        return args
    r, alpha = published_lora(load_config(resolve_model_name(args.pruned_model_dir)))
    return argparse.Namespace(**{**vars(args), "lora_r": args.lora_r if args.lora_r is not None else r,
                                 "lora_alpha": args.lora_alpha if args.lora_alpha is not None else alpha})


def depth_rule_note(depth_rule: str) -> str:
    """What a real run's L steps would remove (all layers have one shape, so sizes do not depend on it)."""
    if depth_rule == THIRD_TO_LAST:
        return "depth rule third_to_last: a real run's L steps remove the third-to-last layer"
    return ("depth rule block_influence: a real run's L steps remove the layer with the lowest block influence on "
            "the calibration prompts (first and last layers kept); sizes are the same for any layer")


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
    parser = prune_parser(defaults, description)
    if extend_parser:
        extend_parser(parser)
    args = parser.parse_args(argv)

    @exit_on_usage_error
    def main():
        settings = with_family_width_mode(settings_from_args(PruneSettings, args))
        if settings.num_calibration_prompts < 1 or settings.calibration_batch_size < 1:
            raise UsageError("--num_calibration_prompts and --calibration_batch_size must be at least 1")
        if settings.align < 0:
            raise UsageError(f"--align must be 0 (off) or a positive number of neurons, got {settings.align}")
        if args.dry_run:
            return dry_run(settings)
        builder = (batch_builder_for(args) if batch_builder_for else None) or calibration_batches
        return run_pruning(settings, batch_builder=builder)

    return main()


# ----------------------------------------------------------------------------- recovery


def finetune_parser(defaults: dict, description: str) -> argparse.ArgumentParser:
    d = settings_defaults(RecoverySettings, defaults)
    p = OneLineParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--pruned_model_dir", default=d["pruned_model_dir"], help="pruned checkpoint folder")
    p.add_argument("--tuned_model_dir", default=d.get("tuned_model_dir"),
                   help="output folder (default: <pruned_model_dir>_ft_<num_epochs>ep)")
    p.add_argument("--num_epochs", type=finite_float, default=d["num_epochs"])
    p.add_argument("--data", default=d.get("data", "auto"),
                   help="hub dataset id, local Alpaca JSON/JSONL, or auto (from the checkpoint's "
                        "mop_prune.json: shipped set for embedded models, yahma/alpaca-cleaned otherwise)")
    p.add_argument("--num_samples", type=int, default=d.get("num_samples"), help="use the first N records")
    p.add_argument("--max_steps", type=int, default=d["max_steps"], help="> 0 overrides --num_epochs")
    p.add_argument("--lora_r", type=int, default=d["lora_r"])
    p.add_argument("--lora_alpha", type=int, default=d["lora_alpha"])
    p.add_argument("--lora_dropout", type=finite_float, default=d["lora_dropout"])
    p.add_argument("--learning_rate", type=finite_float, default=d["learning_rate"])
    p.add_argument("--batch_size", type=int, default=d["batch_size"], help="micro-batch of each process")
    p.add_argument("--grad_accum", type=int, default=d["grad_accum"],
                   help="accumulation steps, split across processes: effective batch = batch_size x grad_accum")
    p.add_argument("--max_length", type=int, default=d["max_length"])
    p.add_argument("--group_by_length", action=argparse.BooleanOptionalAction, default=d["group_by_length"])
    p.add_argument("--gradient_checkpointing", action=argparse.BooleanOptionalAction,
                   default=d["gradient_checkpointing"], help="less memory, ~30%% slower")
    p.add_argument("--max_memory_gb", type=finite_float, default=d["max_memory_gb"],
                   help="memory budget (GB): picks gradient checkpointing and the largest micro-batch (<= --batch_size) "
                        "whose estimated peak fits, keeping the effective batch; default: the CUDA device's total "
                        "memory (24: the paper's card), none on CPU; 0: no plan")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default=d["precision"])
    p.add_argument("--save_steps", type=int, default=d["save_steps"], help="Trainer checkpoint period")
    p.add_argument("--logging_steps", type=int, default=d["logging_steps"])
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument("--objective", choices=OBJECTIVES, default=d["objective"],
                   help="sft: cross-entropy of the responses (the paper's); kd: KL divergence to the dense model's "
                        "next-token distributions on every token; kd+sft: both")
    p.add_argument("--kd_temperature", type=finite_float, default=d["kd_temperature"])
    p.add_argument("--teacher", default=None,
                   help="kd: the dense model to distil from (default: the one named in the checkpoint's mop_prune.json)")
    p.add_argument("--teacher_mode", choices=TEACHER_MODES, default=d["teacher_mode"],
                   help="kd: online (the teacher runs beside the student), cache (its top-k targets are stored once "
                        "and read back, python -m mop.recover.teacher_cache), auto (online when both fit the memory plan)")
    p.add_argument("--teacher_cache_dir", default=None,
                   help="kd from a cache: its folder (default: teacher_cache/ beside the checkpoint's run folder)")
    p.add_argument("--kd_top_k", type=int, default=d["kd_top_k"], help="tokens per position a teacher cache keeps")
    p.add_argument("--packing", action=argparse.BooleanOptionalAction, default=d["packing"],
                   help="examples end to end in rows without padding (--no-packing: one padded row per example)")
    return p


def finetune_main(defaults: dict, description: str, argv: list[str] | None = None, scope: str = "text") -> dict | None:
    """Entry point of the finetune.py scripts: they differ in defaults and in the kinds of
    checkpoint they take (`scope`: text, multimodal or any); what a kind needs beyond the text
    recovery comes from the checkpoint's config (mop.recover.job.recovery_hooks)."""
    args = finetune_parser(defaults, description).parse_args(argv)
    tuned = args.tuned_model_dir or default_tuned_dir(args.pruned_model_dir, args.num_epochs, args.objective)

    @exit_on_usage_error
    def main():
        settings = settings_from_args(RecoverySettings, with_family_lora(args))
        return finetune_checkpoint(args.pruned_model_dir, tuned, settings, data=args.data,
                                   num_samples=args.num_samples, resume=args.resume, scope=scope, teacher=args.teacher,
                                   teacher_cache_dir=args.teacher_cache_dir)

    return main()
