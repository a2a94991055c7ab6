"""Check (prints, not a test): candidate views against deep copies on the embedded model.

    python benchmarks/check_candidates.py [--model smollm2-135m-mha] [--iterations 8] [--probe_steps 0]
    python benchmarks/check_candidates.py --probe_steps 4 --criteria kl   # one criterion at a time

For each criterion (ppl, kl, cosine) the path is walked in lockstep: at every iteration both
candidates are scored as views of the live model (mop/prune/candidates.py) and as deep copies that
really take the step (the reference), the two choices and all scores are compared, and the live
model then takes the chosen step. Prints per criterion the decisions of both, whether they are
equal, and the largest relative score difference. With --probe_steps > 0 each candidate gets a
LoRA probe first (view and copy probes start from different random A matrices for the pruned
projections, so their scores agree only closely; the decisions should still agree).
"""

import argparse
import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from mop.models.adapter import get_adapter  # noqa: E402
from mop.prune.importance import amp_scores  # noqa: E402
from mop.models.loading import load_model, resolve_model_name  # noqa: E402
from mop.prune.path_selection import (METRIC_PATHS, PathSelector, build_reference, freeze_startup_objects,  # noqa: E402
                                held_out_records, probe_setup, reference_batches)
from mop.prune.pruner import PruneSettings, calibration_batches  # noqa: E402
from mop.prune.budget import WidthCarry  # noqa: E402
from mop.prune.steps import apply_decision  # noqa: E402


def walk(criterion: str, base, processing, settings: PruneSettings, reference, probe) -> dict:
    adapter = get_adapter(copy.deepcopy(base))
    batches = calibration_batches(settings, processing)

    def score_fn(a, with_heads):
        return amp_scores(a, batches, with_heads=with_heads, progress=False)

    views = PathSelector(criterion, reference, settings.width_mode, settings.budget_rule, probe)
    copies = PathSelector(criterion, reference, settings.width_mode, settings.budget_rule, probe, by_copy=True)
    carry, taken_view, taken_copy, worst = WidthCarry(), [], [], 0.0
    for i in range(settings.num_iterations):
        by_view = views.choose(adapter, score_fn, carry)
        by_copy = copies.choose(adapter, by_view.live_score_fn, carry)
        taken_view.append(by_view.decision)
        taken_copy.append(by_copy.decision)
        for d, cand in by_copy.candidates.items():
            for metric, value in (cand.get("scores") or {}).items():
                got = by_view.candidates[d]["scores"][metric]
                worst = max(worst, abs(got - value) / max(abs(value), 1e-12))
        _, carry = apply_decision(adapter, by_view.decision, by_view.live_score_fn, settings.width_mode,
                                  settings.budget_rule, carry)
        print(f"  {criterion} iteration {i + 1}: view {by_view.decision} copy {by_copy.decision}", flush=True)
    return {"view": "".join(taken_view), "copy": "".join(taken_copy), "max_rel_diff": worst}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-mha")
    p.add_argument("--iterations", type=int, default=8)
    p.add_argument("--probe_steps", type=int, default=0)
    p.add_argument("--mlp_only", action="store_true")
    p.add_argument("--criteria", default=",".join(METRIC_PATHS),
                   help="comma-separated subset of ppl,kl,cosine (with --probe_steps 4 each takes ~20 min on 2 cores)")
    args = p.parse_args()
    criteria = [c for c in args.criteria.split(",") if c]
    if not criteria or any(c not in METRIC_PATHS for c in criteria):
        p.error(f"--criteria takes a comma-separated subset of {','.join(METRIC_PATHS)}")
    settings = PruneSettings(model_name=args.model, save_dir="unused", num_iterations=args.iterations,
                             mlp_only=args.mlp_only, probe_steps=args.probe_steps, path="ppl")
    freeze_startup_objects()
    base, processing = load_model(resolve_model_name(args.model), torch.float32, "cpu")
    reference_records, probe_records = held_out_records(settings)
    reference = build_reference(get_adapter(base), reference_batches(settings, processing, reference_records),
                                settings.reference_top_k, progress=False)
    probe = probe_setup(settings, base.config, processing, probe_records, False) if args.probe_steps else None
    results = {c: walk(c, base, processing, settings, reference, probe) for c in criteria}
    print(f"model {args.model}, {args.iterations} iterations, probe_steps {args.probe_steps}")
    for criterion, r in results.items():
        print(f"{criterion:<7} view {r['view']}  copy {r['copy']}  equal={r['view'] == r['copy']}  "
              f"max relative score difference {r['max_rel_diff']:.2e}")


if __name__ == "__main__":
    main()
