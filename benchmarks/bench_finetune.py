"""Training throughput: our recovery batches against the published batch-1 setup.

Both runs train the same LoRA (published r=32, alpha=10, all seven projections) on the same
records for one epoch with the same effective batch of 16, through the same code
(mop.recovery.train_adapter); only the batching differs:
  ours       batch 16 x 1 accumulation, padded, grouped by length
  published  batch 1 x 16 accumulation, no padding, random order
Throughput counts non-padding tokens per second of training. Prints, asserts nothing.

  python benchmarks/bench_finetune.py                       # embedded SmolLM2-135M, 96 records
  python benchmarks/bench_finetune.py --num_records 128 --threads 2
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

CONFIGS = {  # name -> (batch_size, grad_accum, group_by_length)
    "ours": (16, 1, True),
    "published": (1, 16, False),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m", help="embedded name, hub id or checkpoint folder")
    p.add_argument("--data", default="auto", help="Alpaca JSON (auto: the shipped instruction set)")
    p.add_argument("--num_records", type=int, default=96, help="a multiple of 16 keeps both runs equal in steps")
    p.add_argument("--max_length", type=int, default=512)
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    return p.parse_args()


def padding_overhead(tokenizer, records, max_length: int, batch: int, grouped: bool, seed: int = 1) -> float:
    """Padded tokens / real tokens for one epoch of the given batching (the Trainer's sampler).

    Length grouping sorts within "megabatches" of up to 50 optimizer batches, so on a few dozen
    records it cannot group much; on the full 51.8k Alpaca records it can.
    """
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from mop.recovery import encode_records

    lengths = [len(e["input_ids"]) for e in encode_records(tokenizer, records, max_length)]
    generator = torch.Generator().manual_seed(seed)
    if grouped:
        order = list(LengthGroupedSampler(batch, lengths=lengths, generator=generator))
    else:
        order = torch.randperm(len(lengths), generator=generator).tolist()
    chunks = [order[i:i + batch] for i in range(0, len(order), batch)]
    padded = sum(max(lengths[i] for i in chunk) * len(chunk) for chunk in chunks)
    return padded / sum(lengths)


def run_one(name: str, model, tokenizer, records, max_length: int, work: Path) -> dict:
    from mop.recovery import RecoverySettings, train_adapter

    batch, accum, grouped = CONFIGS[name]
    settings = RecoverySettings(batch_size=batch, grad_accum=accum, group_by_length=grouped, num_epochs=1,
                                max_length=max_length, save_steps=10**9, logging_steps=1)
    report = train_adapter(copy.deepcopy(model), tokenizer, records, settings, work / name, progress=True)
    return report.stats


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from mop.data import EMBEDDED_INSTRUCTIONS, load_alpaca_records
    from mop.models import resolve_model_name
    from mop.models import load_model
    from mop.recovery import use_bf16

    bf16 = use_bf16("auto")
    model, tokenizer = load_model(resolve_model_name(args.model), torch.bfloat16 if bf16 else torch.float32, "cpu")
    source = str(EMBEDDED_INSTRUCTIONS) if args.data == "auto" else args.data
    records = load_alpaca_records(source, args.num_records)
    print(f"model {args.model} | {len(records)} records of {source} | max_length {args.max_length} | "
          f"threads {torch.get_num_threads()} | {'bf16' if bf16 else 'fp32'}")
    for name, (batch, _, grouped) in CONFIGS.items():
        print(f"{name}: padded/real tokens = {padding_overhead(tokenizer, records, args.max_length, batch, grouped):.3f}")
    if args.num_records < 51_800:
        full = load_alpaca_records(source)
        print(f"for comparison, grouped 16-batches over all {len(full)} records of {source}: padded/real = "
              f"{padding_overhead(tokenizer, full, args.max_length, 16, True):.3f} "
              f"(random 16-batches: {padding_overhead(tokenizer, full, args.max_length, 16, False):.3f})")
    results = {}
    with tempfile.TemporaryDirectory(prefix="mop_bench_ft_") as tmp:
        # Warm-up: first-call costs (allocator, kernels, lazy imports) must not land on one side.
        warm = load_alpaca_records(source, 16)
        run_one("ours", model, tokenizer, warm, args.max_length, Path(tmp) / "warmup")
        for name in CONFIGS:
            results[name] = run_one(name, model, tokenizer, records, args.max_length, Path(tmp))
    print(f"\n{'config':<10} {'batch x accum':>13} {'grouped':>7} {'steps':>5} {'tokens':>8} {'seconds':>8} "
          f"{'tokens/s':>9} {'final loss':>10}")
    for name, (batch, accum, grouped) in CONFIGS.items():
        r = results[name]
        print(f"{name:<10} {f'{batch} x {accum}':>13} {str(grouped):>7} {r['global_steps']:>5} {r['train_tokens']:>8} "
              f"{r['train_seconds']:>8.1f} {r['tokens_per_second']:>9.1f} {r['final_train_loss']:>10.4f}")
    ratio = results["ours"]["tokens_per_second"] / results["published"]["tokens_per_second"]
    print(f"\nthroughput ours / published: {ratio:.2f}x")


if __name__ == "__main__":
    main()
