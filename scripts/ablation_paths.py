"""Path-criterion ablation at small scale: the paper's perplexity / KL / cosine / random comparison.

Each path -- chosen by perplexity, by KL divergence and by cosine similarity against the unpruned
model (`--path ppl|kl|cosine`, mop/prune/path_selection.py), and random paths for several seeds
(`--path random`) -- prunes the embedded model for the same number of iterations (each removes
about one decoder layer's worth of parameters, so all runs end at about the same size). The last
checkpoint of each run is recovered with a short LoRA run (mop/recover/trainer.py) and scored zero-shot on
the local mop_mini tasks (mop/evaluate/harness.py). The table lists every run and, per criterion, the
average accuracy; random paths are reported as mean +- sample std over seeds. Runs that end in
bit-identical checkpoints (the same path) are recovered and scored once.

    python scripts/ablation_paths.py                     # defaults: about 30 min on 2 free CPU cores
    python scripts/ablation_paths.py --num_iterations 3 --eval_limit 20 --recovery_steps 4   # a quick look

Everything lands in --out_dir (git-ignored): run_<name>/prune_iteration_<i>/ (after a run is
complete only the last iteration keeps its weights, unless --keep_intermediate),
run_<name>/prune_iteration_<N>_ft_<S>steps/ (recovered), ..._eval/ (scores), ablation_table.md,
ablation_results.json. Every stage is skipped when its output is complete, so an interrupted
ablation continues where it stopped when started again with the same flags.

At this scale (135M parameters, a few recovery steps, a few dozen questions per task) the
differences between paths are mostly within the evaluation noise; the script reproduces the
procedure, not the paper's numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODEL_NAME = "smollm2-135m-mha"  # embedded; the Llama-2 path (heads and neurons in width steps)
MLP_ONLY = False  # True for the Llama-3 setting (use with smollm2-135m)
OUT_DIR = str(REPO / "Llama2" / "results_llama2_embedded" / "path_ablation")
NUM_ITERATIONS = 8  # about 20% of the parameters; every path takes the same number
CRITERIA = "ppl,kl,cosine"
RANDOM_SEEDS = "1,2,3"
NUM_CALIBRATION_PROMPTS = 32  # AMP importance (records [0, 32) of the shipped instruction set)
NUM_REFERENCE_PROMPTS = 16  # held-out text the criteria score on (records [32, 48))
REFERENCE_TOP_K = 256
PROBE_STEPS = 0  # LoRA steps given to each candidate before scoring (0: none, as the released scripts)
PROBE_SAMPLES = 16
RECOVERY_STEPS = 16  # optimizer steps of batch 4 (the published recovery is 2 epochs of 51.8k records)
RECOVERY_SAMPLES = 64
RECOVERY_MAX_LENGTH = 192
EVAL_TASKS = "mop_mini"
EVAL_LIMIT = 100  # questions per task (of about 205)
EVAL_BATCH_SIZE = 8
THREADS = 1  # torch threads: on a shared 2-core machine one thread is much faster than two


def build_parser():
    from mop.core.args import OneLineParser

    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_name", default=MODEL_NAME)
    p.add_argument("--mlp_only", action=argparse.BooleanOptionalAction, default=MLP_ONLY)
    p.add_argument("--out_dir", default=OUT_DIR)
    p.add_argument("--num_iterations", type=int, default=NUM_ITERATIONS)
    p.add_argument("--criteria", default=CRITERIA, help="comma list of ppl, kl, cosine (may be empty)")
    p.add_argument("--random_seeds", default=RANDOM_SEEDS, help="comma list of seeds (may be empty)")
    p.add_argument("--num_calibration_prompts", type=int, default=NUM_CALIBRATION_PROMPTS)
    p.add_argument("--num_reference_prompts", type=int, default=NUM_REFERENCE_PROMPTS)
    p.add_argument("--reference_top_k", type=int, default=REFERENCE_TOP_K)
    p.add_argument("--probe_steps", type=int, default=PROBE_STEPS)
    p.add_argument("--probe_samples", type=int, default=PROBE_SAMPLES)
    p.add_argument("--recovery_steps", type=int, default=RECOVERY_STEPS)
    p.add_argument("--recovery_samples", type=int, default=RECOVERY_SAMPLES)
    p.add_argument("--recovery_max_length", type=int, default=RECOVERY_MAX_LENGTH)
    p.add_argument("--eval_tasks", default=EVAL_TASKS)
    p.add_argument("--eval_limit", default=str(EVAL_LIMIT), help="questions per task ('none': all)")
    p.add_argument("--eval_batch_size", type=int, default=EVAL_BATCH_SIZE)
    p.add_argument("--threads", type=int, default=THREADS, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--keep_intermediate", action="store_true",
                   help="keep the weights of every iteration (default: only the last one's, to save disk)")
    return p


# ----------------------------------------------------------------------------- the runs


def planned_runs(args) -> list[tuple[str, str, int]]:
    """(run name, --path, --seed) of every run, criteria first."""
    from mop.core.io import UsageError
    from mop.prune.path_selection import METRIC_PATHS

    criteria = [c.strip() for c in args.criteria.split(",") if c.strip()]
    unknown = [c for c in criteria if c not in METRIC_PATHS]
    if unknown:
        raise UsageError(f"--criteria: unknown {', '.join(unknown)}; choose from {', '.join(METRIC_PATHS)}")
    try:
        seeds = [int(s) for s in args.random_seeds.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--random_seeds must be a comma list of integers, got {args.random_seeds!r}") from None
    runs = [(f"path_{c}", c, 1) for c in criteria] + [(f"random_seed_{s}", "random", s) for s in seeds]
    if not runs:
        raise UsageError("nothing to run: give --criteria and/or --random_seeds")
    return runs


def prune_settings(args, save_dir: Path, path: str, seed: int):
    from mop.prune.pruner import PruneSettings

    return PruneSettings(
        model_name=args.model_name, save_dir=str(save_dir), num_iterations=args.num_iterations, path=path, seed=seed,
        mlp_only=args.mlp_only, num_calibration_prompts=args.num_calibration_prompts,
        num_reference_prompts=args.num_reference_prompts, reference_top_k=args.reference_top_k,
        probe_steps=args.probe_steps if path != "random" else 0, probe_samples=args.probe_samples,
        resume=(save_dir / "run_config.json").exists(),
    )


def drop_intermediate_weights(save_dir: Path, last: int) -> None:
    """Free disk: iterations before the last keep their metadata, not their weights."""
    for i in range(1, last):
        for weights in (save_dir / f"prune_iteration_{i}").glob("*.safetensors"):
            weights.unlink()


def prune(args, name: str, path: str, seed: int) -> Path:
    from mop.core.layout import iteration_dir
    from mop.prune.pruner import run_pruning

    save_dir = Path(args.out_dir) / f"run_{name}"
    last = iteration_dir(save_dir, args.num_iterations)
    print(f"\n=== prune {name} (--path {path} --seed {seed}) ===", flush=True)
    run_pruning(prune_settings(args, save_dir, path, seed))
    if not args.keep_intermediate:
        drop_intermediate_weights(save_dir, args.num_iterations)
    return last


def weights_digest(checkpoint: Path) -> str:
    """sha256 of the weight files: equal digests mean bit-identical checkpoints."""
    digest = hashlib.sha256()
    for weights in sorted(checkpoint.glob("*.safetensors")):
        with open(weights, "rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                digest.update(block)
    return digest.hexdigest()


def recover(args, pruned: Path) -> Path:
    from mop.recover.job import finetune_checkpoint
    from mop.recover.settings import RecoverySettings

    tuned = pruned.parent / f"{pruned.name}_ft_{args.recovery_steps}steps"
    settings = RecoverySettings(max_steps=args.recovery_steps, batch_size=4, grad_accum=1,
                                max_length=args.recovery_max_length, logging_steps=1,
                                save_steps=max(args.recovery_steps, 1), seed=1)
    print(f"\n=== recover {pruned} ===", flush=True)
    finetune_checkpoint(pruned, tuned, settings, data="auto", num_samples=args.recovery_samples, resume=True)
    return tuned


def evaluate(args, model_dir: Path) -> dict:
    from mop.core.io import read_json
    from mop.core.layout import EVAL_META
    from mop.evaluate.harness import main as evaluate_main

    out = model_dir.parent / f"{model_dir.name}_eval"
    print(f"\n=== evaluate {model_dir} ===", flush=True)
    argv = [str(model_dir), str(out), "--tasks", args.eval_tasks, "--batch_size", str(args.eval_batch_size),
            "--device", "cpu"]
    if args.eval_limit.lower() != "none":
        argv += ["--limit", args.eval_limit]
    evaluate_main(argv)
    return read_json(out / EVAL_META)


# ----------------------------------------------------------------------------- the table


def averages(scores: dict) -> dict:
    """Mean acc and acc_norm over the tasks (in %)."""
    tasks = scores["tasks"]
    mean = {}
    for metric in ("acc", "acc_norm"):
        values = [m[metric] for m in tasks.values() if m[metric] is not None]
        mean[metric] = 100 * sum(values) / len(values) if values else None
    return mean


def run_row(name: str, path: str, seed: int, pruned: Path, tuned: Path, scores: dict, same_as: str | None) -> dict:
    from mop.core.io import read_json
    from mop.core.layout import FINETUNE_META

    meta = read_json(pruned / "mop_prune.json")
    return {
        "run": name, "path": path, "seed": seed, "decisions": meta["decisions_so_far"], "params": meta["params"],
        "compression": meta["compression"], "same_checkpoint_as": same_as,
        "recovery_loss": read_json(tuned / FINETUNE_META)["final_train_loss"],
        "tasks": {t: 100 * m["acc"] for t, m in scores["tasks"].items()}, **{f"avg_{k}": v for k, v in averages(scores).items()},
    }


def criterion_summary(rows: list[dict]) -> list[dict]:
    """One line per criterion; random paths as mean +- sample std over seeds."""
    lines = []
    for path in dict.fromkeys(r["path"] for r in rows):
        group = [r for r in rows if r["path"] == path]
        line = {"criterion": path, "runs": len(group)}
        for key in ("avg_acc", "avg_acc_norm", "compression"):
            values = [r[key] for r in group if r[key] is not None]
            line[key] = statistics.mean(values) if values else None
            line[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else None
        lines.append(line)
    return lines


def format_value(mean, std, scale=1.0, digits=2) -> str:
    if mean is None:
        return "-"
    text = f"{scale * mean:.{digits}f}"
    return text + (f" +- {scale * std:.{digits}f}" if std is not None else "")


def format_table(rows: list[dict], summary: list[dict], settings: dict) -> str:
    tasks = list(rows[0]["tasks"])
    lines = [f"Path-criterion ablation: {settings['model_name']}, {settings['num_iterations']} iterations, "
             f"recovery {settings['recovery_steps']} steps, {settings['eval_tasks']} (limit {settings['eval_limit']}), "
             "accuracies in %", "",
             "| run | path | compression | recovery loss | " + " | ".join(tasks) + " | avg acc | avg acc_norm |",
             "|---|---|---|---|" + "---|" * len(tasks) + "---|---|"]
    for r in rows:
        same = f" (= {r['same_checkpoint_as']})" if r["same_checkpoint_as"] else ""
        lines.append(f"| {r['run']} | {r['decisions']}{same} | {100 * r['compression']:.2f}% | {r['recovery_loss']:.3f} | "
                     + " | ".join(f"{r['tasks'][t]:.2f}" for t in tasks)
                     + f" | {format_value(r['avg_acc'], None)} | {format_value(r['avg_acc_norm'], None)} |")
    lines += ["", "| criterion | runs | compression | avg acc | avg acc_norm |", "|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| {s['criterion']} | {s['runs']} | {format_value(s['compression'], s['compression_std'], 100)}% | "
                     f"{format_value(s['avg_acc'], s['avg_acc_std'])} | "
                     f"{format_value(s['avg_acc_norm'], s['avg_acc_norm_std'])} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main


def run(args) -> str:
    import torch

    from mop.core.io import UsageError, write_json

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.recovery_steps < 1 or args.recovery_samples < 1:
        raise UsageError("--recovery_steps and --recovery_samples must be at least 1")
    runs = planned_runs(args)
    out = Path(args.out_dir)
    began = time.perf_counter()
    seconds = {}
    finals = {}
    for name, path, seed in runs:
        start = time.perf_counter()
        finals[name] = prune(args, name, path, seed)
        seconds[f"prune_{name}"] = round(time.perf_counter() - start, 1)
    rows, scored = [], {}  # weights digest -> (first run with them, its recovered folder, its scores)
    for name, path, seed in runs:
        digest = weights_digest(finals[name])
        if digest not in scored:
            start = time.perf_counter()
            tuned = recover(args, finals[name])
            seconds[f"recover_{name}"] = round(time.perf_counter() - start, 1)
            start = time.perf_counter()
            scored[digest] = (name, tuned, evaluate(args, tuned))
            seconds[f"evaluate_{name}"] = round(time.perf_counter() - start, 1)
        first, tuned, scores = scored[digest]
        rows.append(run_row(name, path, seed, finals[name], tuned, scores, first if first != name else None))
    summary = criterion_summary(rows)
    settings = {k: v for k, v in vars(args).items()}
    table = format_table(rows, summary, settings)
    seconds["total_this_invocation"] = round(time.perf_counter() - began, 1)
    write_json(out / "ablation_results.json", {"settings": settings, "runs": rows, "summary": summary, "seconds": seconds})
    (out / "ablation_table.md").write_text(table)
    print("\n" + table)
    print(f"wrote {out / 'ablation_table.md'} and ablation_results.json ({seconds['total_this_invocation']:.0f} s)")
    return table


def main(argv=None):
    from mop.core.io import exit_on_usage_error

    args = build_parser().parse_args(argv)
    return exit_on_usage_error(run)(args)


if __name__ == "__main__":
    main()
