"""Benchmark (prints numbers, not a test): cost of one L and one G iteration on the embedded model.

    python benchmarks/bench_prune.py [--model smollm2-135m] [--prompts 128] [--batch_size 16] [--threads N]

Measures, on the calibration prompts of the shipped instruction set: seconds for a depth step,
for a width step (AMP scoring pass + surgery), for saving a checkpoint, and peak resident memory.
A G iteration should cost about one batched forward pass over the calibration tokens plus the
save -- not one generate call per prompt and a reload from disk as in the published scripts.
"""

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from mop.models.adapter import get_adapter  # noqa: E402
from mop.models.data import EMBEDDED_INSTRUCTIONS, calibration_prompt, load_alpaca_records  # noqa: E402
from mop.models.loading import resolve_model_name  # noqa: E402
from mop.prune.importance import amp_scores, batch_prompts  # noqa: E402
from mop.models.loading import load_model  # noqa: E402
from mop.prune.budget import WidthCarry  # noqa: E402
from mop.prune.steps import depth_step, width_step  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--prompts", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--mlp_only", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    path = resolve_model_name(args.model)
    (model, tok), t_load = timed(lambda: load_model(path, torch.float32, "cpu"))
    records = load_alpaca_records(EMBEDDED_INSTRUCTIONS, args.prompts)
    batches = batch_prompts(tok, [calibration_prompt(r) for r in records], args.batch_size, 512)
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    adapter = get_adapter(model)
    mode = "mlp_only" if args.mlp_only else "attention_mlp"

    def score(adapter_, with_heads):
        return amp_scores(adapter_, batches, with_heads=with_heads, progress=False)

    _, t_forward = timed(lambda: torch.inference_mode()(adapter.run_text)(
        batches[0]["input_ids"], batches[0]["attention_mask"]))
    _, t_l = timed(lambda: depth_step(adapter))
    _, t_score = timed(lambda: score(adapter, True))
    _, t_g = timed(lambda: width_step(adapter, score, mode, "exact", WidthCarry()))
    with tempfile.TemporaryDirectory() as tmp:
        _, t_save = timed(lambda: (model.save_pretrained(tmp), tok.save_pretrained(tmp)))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"model {args.model}: {sum(p.numel() for p in model.parameters()):,} params after L+G, "
          f"torch threads {torch.get_num_threads()}")
    print(f"calibration: {len(records)} prompts, {tokens} tokens, {len(batches)} batches of {args.batch_size}")
    print(f"load model            {t_load:7.2f} s")
    print(f"L iteration (surgery) {t_l:7.3f} s  (+ save {t_save:.2f} s)")
    print(f"AMP scoring pass      {t_score:7.2f} s  ({tokens / t_score:,.0f} tokens/s)")
    print(f"G iteration           {t_g:7.2f} s  (scoring + surgery; + save {t_save:.2f} s)")
    print(f"peak resident memory  {peak_mib:7.0f} MiB")


if __name__ == "__main__":
    main()
