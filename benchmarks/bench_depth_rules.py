"""Held-out perplexity of pruned checkpoints under the two depth rules (embedded model, CPU).

For each path -- the paper's three seed paths, depth-only and width-only -- and each depth rule
(`third_to_last`, the paper's, and `block_influence`), the embedded model is pruned for
--num_iterations iterations with the project's own pruning loop (mop.prune.pruner.run_pruning, AMP on
the shipped calibration prompts, the settings of the embedded drivers) and the checkpoints at
--iterations are scored by their mean next-token cross-entropy (mop/evaluate/heldout.py) on
- `held-out`: mop/evaluate/tasks/data/mop_heldout.jsonl (51 texts no stage trains or calibrates on);
- `last 8`: the last 8 records of the shipped instruction set, in the same format (calibration
  uses the first 128, the embedded recovery all 400).
Width-only has no L step, so it is run once. Printed: a table of token perplexities exp(loss)
with the loss beside it, and the check of the depth-rule issue: block_influence's seed-1
iteration 8 against width-only's iteration 8 (at most 2x in perplexity).

    python benchmarks/bench_depth_rules.py                   # MLP-only width steps (Llama-3 setting), ~10 min
    python benchmarks/bench_depth_rules.py --no-mlp_only --model_name smollm2-135m-mha   # Llama-2 setting

Run folders go to --out_dir (default under /tmp); a run whose last checkpoint exists is reused.
"""

from __future__ import annotations

import argparse
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

from mop.evaluate.heldout import heldout_texts, mean_token_loss, perplexity, tail_texts  # noqa: E402
from mop.core.layout import iteration_dir  # noqa: E402
from mop.models.loading import load_model, resolve_model_name  # noqa: E402
from mop.prune.path_selection import freeze_startup_objects  # noqa: E402
from mop.prune.pruner import PruneSettings, run_pruning  # noqa: E402
from mop.prune.steps import DEPTH_RULES  # noqa: E402

PATHS = {  # name -> decision letters (cycled to --num_iterations)
    "seed 1": "LGGLLLGGLLGLGLLGGL", "seed 2": "GGLLGGGLGGGLLLGGLL", "seed 3": "LGLGGLLGLLGLGLGLGG",
    "depth-only": "L", "width-only": "G",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_name", default="smollm2-135m")
    p.add_argument("--mlp_only", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--num_iterations", type=int, default=12)
    p.add_argument("--iterations", default="4,8,12", help="checkpoints that are kept and scored")
    p.add_argument("--paths", default=",".join(PATHS), help=f"comma list of {', '.join(PATHS)}")
    p.add_argument("--out_dir", default="/tmp/mop_bench_depth_rules")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args(argv)


def run_dir(out: Path, path: str, rule: str) -> Path:
    return out / f"{path.replace(' ', '_')}_{rule}"


def prune(args, path: str, rule: str, keep: list[int]) -> Path:
    save_dir = run_dir(Path(args.out_dir), path, rule)
    if (iteration_dir(save_dir, args.num_iterations) / "mop_prune.json").exists():
        return save_dir
    settings = PruneSettings(
        model_name=args.model_name, save_dir=str(save_dir), num_iterations=args.num_iterations,
        decision_sequence=PATHS[path], mlp_only=args.mlp_only, depth_rule=rule,
        keep_iterations=",".join(map(str, keep)), resume=save_dir.exists(),
    )
    began = time.perf_counter()
    run_pruning(settings, progress=False)
    print(f"pruned {path} / {rule} in {time.perf_counter() - began:.0f} s", flush=True)
    return save_dir


def losses(checkpoint, texts: dict[str, list[str]]) -> dict[str, float]:
    model, tokenizer = load_model(str(checkpoint), torch.float32, "cpu")
    return {name: mean_token_loss(model, tokenizer, t) for name, t in texts.items()}


def removed_layers(save_dir: Path, upto: int) -> list[int]:
    records = [json.loads((save_dir / "iteration_records" / f"iteration_{i}.json").read_text())
               for i in range(1, upto + 1)]
    return [r["details"]["removed_original_layer"] for r in records if "removed_original_layer" in r["details"]]


def cell(loss: float) -> str:
    return f"{perplexity(loss):,.1f} ({loss:.2f})"


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    freeze_startup_objects()
    keep = [int(i) for i in args.iterations.split(",")]
    texts = {"held-out": heldout_texts(), "last 8": tail_texts(8)}
    results = {"dense": losses(resolve_model_name(args.model_name), texts)}
    rows = [("dense", "-", "", {0: results["dense"]})]
    for path in args.paths.split(","):
        for rule in DEPTH_RULES if path != "width-only" else DEPTH_RULES[:1]:
            save_dir = prune(args, path, rule, keep)
            scores = {i: losses(iteration_dir(save_dir, i), texts) for i in keep}
            results[f"{path} / {rule}"] = {str(i): s for i, s in scores.items()}
            rows.append((path, rule if path != "width-only" else "(no L step)",
                         " ".join(map(str, removed_layers(save_dir, max(keep)))), scores))
    print(f"\nmodel {args.model_name}, {'MLP-only' if args.mlp_only else 'heads + neurons'} width steps; "
          "token perplexity (mean cross-entropy) on the held-out texts / the last 8 shipped records")
    header = ["path", "depth rule", "original layers removed (in order)"] + [
        f"it. {i} {name}" for i in keep for name in texts]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for path, rule, removed, scores in rows:
        cells = [cell(scores[i][name]) if i in scores else "" for i in keep for name in texts]
        if path == "dense":
            cells = [cell(scores[0][name]) for _ in keep for name in texts]
        print("| " + " | ".join([path, rule, removed] + cells) + " |")
    check(results)
    (Path(args.out_dir) / "results.json").write_text(json.dumps(results, indent=1))
    return results


def check(results: dict) -> None:
    """The depth-rule issue's check: block_influence seed 1 it. 8 within 2x of width-only it. 8."""
    bi, width = results.get("seed 1 / block_influence", {}).get("8"), results.get("width-only / third_to_last", {}).get("8")
    if bi is None or width is None:
        return
    for name in bi:
        ratio = perplexity(bi[name]) / perplexity(width[name])
        print(f"check ({name}): seed 1 block_influence it. 8 ppl {perplexity(bi[name]):.2f} vs width-only it. 8 "
              f"{perplexity(width[name]):.2f}: ratio {ratio:.2f} ({'<= 2: passes' if ratio <= 2 else '> 2: FAILS'})")


if __name__ == "__main__":
    main()
