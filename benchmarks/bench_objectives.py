"""Recovery objectives compared at the demo's budget: `sft` (the paper's) against `kd` (distillation
from the dense model), on pruned checkpoints of the embedded model (CPU).

Each checkpoint is recovered by the project's own finetune path (mop.recover.job.finetune_checkpoint)
with the demo's settings -- 24 optimizer steps of 8 x 2 examples of the shipped instruction set,
at most 256 tokens, LoRA r=32 alpha=10, lr 3e-4 -- once per objective, and scored by its mean
next-token cross-entropy (mop/evaluate/heldout.py) on the 51 held-out texts and on the last 8 records of
the shipped set (which the recovery trains on). Printed: the loss of the pruned, each recovered
and the dense model, and the share of the pruned-to-dense gap each objective closes.

    python benchmarks/bench_depth_rules.py --paths "seed 1" --iterations 8 --num_iterations 8   # makes the checkpoints
    python benchmarks/bench_objectives.py                                                         # ~10 min on 2 cores

By default it takes seed 1's iteration 8 under both depth rules from bench_depth_rules.py's
output folder; --checkpoints names others (comma list).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from mop.evaluate.heldout import heldout_texts, mean_token_loss, tail_texts  # noqa: E402
from mop.models.loading import load_model  # noqa: E402
from mop.prune.path_selection import freeze_startup_objects  # noqa: E402
from mop.recover.job import finetune_checkpoint  # noqa: E402
from mop.recover.settings import RecoverySettings

DEMO_RECOVERY = RecoverySettings(max_steps=24, save_steps=12, batch_size=8, grad_accum=2, max_length=256,
                                 num_epochs=1, logging_steps=4)
DEMO_SAMPLES = 400
DEFAULT_CHECKPOINTS = ("/tmp/mop_bench_depth_rules/seed_1_third_to_last/prune_iteration_8,"
                       "/tmp/mop_bench_depth_rules/seed_1_block_influence/prune_iteration_8")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", default=DEFAULT_CHECKPOINTS)
    p.add_argument("--objectives", default="sft,kd")
    p.add_argument("--out_dir", default="/tmp/mop_bench_objectives")
    p.add_argument("--learning_rates", default=f"{DEMO_RECOVERY.learning_rate:g}",
                   help="comma list: the grid is checkpoint x learning rate x objective")
    p.add_argument("--kd_temperature", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args(argv)


def losses(checkpoint, texts: dict[str, list[str]]) -> dict[str, float]:
    model, tokenizer = load_model(str(checkpoint), torch.float32, "cpu")
    return {name: mean_token_loss(model, tokenizer, t) for name, t in texts.items()}


def recovered(checkpoint: Path, objective: str, out_dir: Path, args, learning_rate: float) -> tuple[Path, float]:
    """The checkpoint recovered with `objective` (reused when already there), and its seconds."""
    variant = f"lr{learning_rate:g}_T{args.kd_temperature:g}"
    tuned = out_dir / f"{checkpoint.parent.name}_{checkpoint.name}_{objective.replace('+', '_')}_{variant}"
    began = time.perf_counter()
    if not tuned.exists():
        settings = dataclasses.replace(DEMO_RECOVERY, objective=objective, learning_rate=learning_rate,
                                       kd_temperature=args.kd_temperature)
        finetune_checkpoint(checkpoint, tuned, settings, num_samples=DEMO_SAMPLES, progress=False)
    return tuned, time.perf_counter() - began


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    freeze_startup_objects()
    out_dir = Path(args.out_dir)
    texts = {"held-out": heldout_texts(), "last 8": tail_texts(8)}
    results = {}
    for checkpoint in map(Path, args.checkpoints.split(",")):
        if not (checkpoint / "config.json").exists():
            raise SystemExit(f"error: {checkpoint} not found; make it with benchmarks/bench_depth_rules.py (see --help)")
        source = json.loads((checkpoint / "mop_prune.json").read_text())["source_model"]
        base = {"dense": losses(source, texts), "pruned": losses(checkpoint, texts)}
        for learning_rate in map(float, args.learning_rates.split(",")):
            row = dict(base)
            for objective in args.objectives.split(","):
                tuned, seconds = recovered(checkpoint, objective, out_dir, args, learning_rate)
                row[objective] = losses(tuned, texts)
                row[f"{objective} seconds"] = round(seconds, 1)
            results[f"{checkpoint} lr {learning_rate:g}"] = row
            print_row(f"{checkpoint.parent.name}/{checkpoint.name}, lr {learning_rate:g}", row,
                      args.objectives.split(","), texts)
            (out_dir / f"results_T{args.kd_temperature:g}.json").write_text(json.dumps(results, indent=1))
    return results


def print_row(label: str, row: dict, objectives: list[str], texts: dict) -> None:
    print(f"\n{label}: mean next-token cross-entropy (gap closed, recovery seconds)")
    for name in texts:
        dense, pruned = row["dense"][name], row["pruned"][name]
        cells = [f"dense {dense:.2f}", f"pruned {pruned:.2f}"]
        for objective in objectives:
            value = row[objective][name]
            closed = (pruned - value) / (pruned - dense) if pruned != dense else float("nan")
            cells.append(f"{objective} {value:.2f} ({100 * closed:.0f}%, {row[f'{objective} seconds']:.0f} s)")
        print(f"  {name:>8}: " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
