"""Recovery throughput and peak memory: padded batches (the code before packing) against packed ones,
and the three ways to get a loss: sft, kd with the teacher online, kd from a teacher cache.

Every configuration trains the same LoRA (published r=32, alpha=10, all seven projections) of the
same pruned checkpoint on the same records for the same optimizer steps, at the demo's batch (8 x 2
examples, <= 256 tokens), each in a process of its own (so each peak is its own: the maximum
resident set size of that process, which includes the model and Python):

  padded (before)  the stock Trainer + DataCollatorForSeq2Seq: padded rows, full-vocabulary fp32
                   logits at every position, peft's own LoRA layers (what mop.recover.trainer ran before)
  padded           mop.recover.trainer with --no-packing: padded rows, head only where the loss is (this
                   and the rows below run LoRA through mop/recover/lora_cpu.py: cheaper CPU dropout
                   masks, the update added by one addmm)
  packed           mop.recover.trainer (the default): rows without padding, head only where the loss is
  kd online        packed, --objective kd, the dense teacher beside the student
  kd cache         packed, --objective kd from a teacher cache (built first, not timed)

Throughput counts real (non-padding) tokens per second of training. Prints, asserts nothing.

    python benchmarks/bench_finetune.py                           # ~6 min on 2 cores
    python benchmarks/bench_finetune.py --repeats 3               # each configuration 3 times, medians compared
    python benchmarks/bench_finetune.py --steps 24 --checkpoint <pruned folder>
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

CONFIGS = ("padded (before)", "padded", "packed", "kd online", "kd cache")
DEFAULT_CHECKPOINT = "/tmp/mop_bench_depth_rules/seed_1_block_influence/prune_iteration_8"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT,
                   help="a pruned checkpoint with mop_prune.json (benchmarks/bench_depth_rules.py makes the default)")
    p.add_argument("--steps", type=int, default=8, help="optimizer steps per configuration")
    p.add_argument("--num_records", type=int, default=400)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1, help="runs of every configuration, in turn; the median is compared")
    p.add_argument("--one", choices=CONFIGS, help=argparse.SUPPRESS)  # run one configuration (child process)
    p.add_argument("--work", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def demo_settings(steps: int):
    from mop.recover.settings import RecoverySettings

    return RecoverySettings(max_steps=steps, batch_size=8, grad_accum=2, max_length=256, num_epochs=1,
                            save_steps=10 ** 9, logging_steps=steps, precision="fp32")


def stock_trainer_run(model, tokenizer, records, settings, work: Path) -> dict:
    """The recovery as it ran before packing: stock Trainer, padded rows, the model's own loss."""
    from transformers import DataCollatorForSeq2Seq, Trainer

    from mop.recover.batches import encode_records
    from mop.recover.trainer import training_arguments, wrap_with_lora

    examples = [{"input_ids": e["input_ids"], "attention_mask": [1] * len(e["input_ids"]), "labels": e["labels"]}
                for e in encode_records(tokenizer, records, settings.max_length)]
    pad_tokenizer = copy.deepcopy(tokenizer)
    if pad_tokenizer.pad_token_id is None:
        pad_tokenizer.pad_token = pad_tokenizer.eos_token
    pad_tokenizer.padding_side = "right"
    collator = DataCollatorForSeq2Seq(pad_tokenizer, padding=True, label_pad_token_id=-100, return_tensors="pt")
    peft_model = wrap_with_lora(model, settings, cpu_layers=False)  # peft's own LoRA layers, as before
    trainer = Trainer(model=peft_model, args=training_arguments(settings, work, False, False),
                      train_dataset=examples, data_collator=collator, processing_class=pad_tokenizer)
    began = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - began
    state = trainer.state
    return {"train_tokens": state.num_input_tokens_seen, "train_seconds": seconds,
            "final_train_loss": [e["loss"] for e in state.log_history if "loss" in e][-1]}


def run_one(name: str, checkpoint: Path, records, steps: int, work: Path) -> dict:
    """Train one configuration in this process; its statistics."""
    from mop.models.loading import load_model
    from mop.recover.teacher_cache import TeacherCache
    from mop.recover.trainer import train_lora

    model, tokenizer = load_model(str(checkpoint), torch.float32, "cpu")
    settings = demo_settings(steps)
    if name == "padded (before)":
        return stock_trainer_run(model, tokenizer, records, settings, work)
    settings = dataclasses.replace(settings, packing=name != "padded",
                                   objective="kd" if name.startswith("kd") else "sft")
    teacher = cache = None
    if name == "kd online":
        teacher = load_model(json.loads((checkpoint / "mop_prune.json").read_text())["source_model"],
                             torch.float32, "cpu")[0]
    if name == "kd cache":
        cache = TeacherCache.open(work.parent / "cache", json.loads((work.parent / "cache" / "key.json").read_text()))
    report = train_lora(model, tokenizer, records, settings, work, progress=False, teacher=teacher,
                           teacher_cache=cache)
    return {k: report.stats[k] for k in ("train_tokens", "train_seconds", "final_train_loss")}


def build_cache(checkpoint: Path, records, work: Path) -> None:
    from mop.models.loading import load_model, resolve_model_name
    from mop.recover.batches import encode_records
    from mop.recover.teacher_cache import build_cache as build
    from mop.recover.teacher_cache import cache_key, pad_id_of

    source = resolve_model_name(json.loads((checkpoint / "mop_prune.json").read_text())["source_model"])
    teacher, tokenizer = load_model(source, torch.float32, "cpu")
    settings = demo_settings(1)
    examples = encode_records(tokenizer, records, settings.max_length)
    key = cache_key(source, tokenizer, examples, settings.max_length, settings.kd_top_k, 1.0, "float16")
    build(work / "cache", key, teacher, pad_id_of(tokenizer), examples, progress=False)


def child(args) -> None:
    from mop.models.data import EMBEDDED_INSTRUCTIONS, load_alpaca_records
    from mop.prune.path_selection import freeze_startup_objects

    torch.set_num_threads(args.threads)
    freeze_startup_objects()
    records = load_alpaca_records(str(EMBEDDED_INSTRUCTIONS), args.num_records)
    work = Path(tempfile.mkdtemp(prefix=args.one.replace(" ", "_") + "_", dir=args.work))  # one per run
    stats = run_one(args.one, Path(args.checkpoint), records, args.steps, work)
    stats["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    print("RESULT " + json.dumps(stats))


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.one:
        return child(args)
    if args.repeats < 1:
        raise SystemExit(f"error: --repeats must be at least 1, got {args.repeats}")
    checkpoint = Path(args.checkpoint)
    if not (checkpoint / "mop_prune.json").exists():
        raise SystemExit(f"error: {checkpoint} not found; make it with benchmarks/bench_depth_rules.py")
    runs: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="mop_bench_ft_") as tmp:
        from mop.models.data import EMBEDDED_INSTRUCTIONS, load_alpaca_records

        began = time.perf_counter()
        build_cache(checkpoint, load_alpaca_records(str(EMBEDDED_INSTRUCTIONS), args.num_records), Path(tmp))
        print(f"teacher cache built in {time.perf_counter() - began:.0f} s", flush=True)
        for _ in range(args.repeats):  # the configurations in turn, so slow spells of the machine hit all
            for name in CONFIGS:
                runs[name].append(run_child(name, checkpoint, args, Path(tmp)))
                r = runs[name][-1]
                print(f"{name:<16} {r['train_tokens']:>7} tokens {r['train_seconds']:>7.1f} s "
                      f"{r['train_tokens'] / r['train_seconds']:>7.1f} tokens/s  peak RSS {r['peak_rss_gb']:.2f} GB  "
                      f"final loss {r['final_train_loss']:.4f}", flush=True)
    speed = {n: statistics.median(r["train_tokens"] / r["train_seconds"] for r in rs) for n, rs in runs.items()}
    print(f"\nmedian of {args.repeats} run(s): packed / padded (before): {speed['packed'] / speed['padded (before)']:.2f}x; "
          f"padded / padded (before): {speed['padded'] / speed['padded (before)']:.2f}x; "
          f"kd cache / kd online: {speed['kd cache'] / speed['kd online']:.2f}x")
    return runs


def run_child(name: str, checkpoint: Path, args, work: Path) -> dict:
    """One configuration trained in a fresh process; its statistics."""
    cmd = [sys.executable, __file__, "--one", name, "--work", str(work), "--checkpoint", str(checkpoint),
           "--steps", str(args.steps), "--num_records", str(args.num_records), "--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])

if __name__ == "__main__":
    main()
