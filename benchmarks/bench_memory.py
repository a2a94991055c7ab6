"""Benchmark (prints numbers): mop.recover.memory's peak estimate against the measured peak of LoRA recovery.

    python benchmarks/bench_memory.py                                  # 12 rows, 512 tokens (~15 min, 2 cores)
    python benchmarks/bench_memory.py --max_length 256                 # the same at 256 tokens (~6 min)
    python benchmarks/bench_memory.py --models smollm2-135m --micro_batches 1,2 --malloc default

Every row is a fresh Python process (so one run's allocator state cannot leak into the next) that
imports torch/transformers/peft, records its resident memory (the baseline), loads the model in
fp32 on the CPU exactly as finetune.py does, resets the kernel's peak-RSS mark, and runs two
optimizer steps of `mop.recover.trainer.train_lora` (published LoRA: r=32, alpha=10, dropout 0.05,
seven projections) at the given micro-batch with one accumulation step (the second step runs
with AdamW's states allocated). Measured = peak RSS (VmHWM) - baseline; the weights count in both
columns. Sequences are exactly --max_length tokens (the longest batch a run can meet); with a
micro-batch above 1 one of them is 8 tokens shorter, so the batch is padded and carries an
attention mask as in real recovery batches.

How RSS is read. The workers run with glibc's mmap threshold fixed at 64 KiB (MALLOC_MMAP_THRESHOLD_,
`--malloc mmap`, the default here): every tensor above that size is mapped and unmapped on its own,
so RSS follows the memory tensors actually hold, as a GPU's caching allocator does. With glibc's
dynamic threshold (`--malloc default`) freed heap memory stays resident and the same steps read
about 25% higher. Weights are memory-mapped from the safetensors file on CPU, so embedding rows that
are never looked up are never resident: with untied embeddings (the 250M model) the measured peak
is 0.1-0.2 GB below what a GPU, where every weight is resident, holds.

Models: the embedded SmolLM2-135M (GQA, tied embeddings, vocabulary 49,152) and a random
Llama-2-style model of about 250M parameters (multi-head attention, untied embeddings; hidden
1024, 12 layers, intermediate 2816, 16 heads, and SmolLM2's vocabulary so its tokenizer can feed
it), written once to --random_dir. The table flags any row whose estimate is off by more than 25%.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

RANDOM_NAME = "random-llama2-250m"
TOLERANCE = 0.25
FILLER_WORD = " apple"  # one token in SmolLM2's tokenizer: response lengths are exact


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=f"smollm2-135m,{RANDOM_NAME}")
    p.add_argument("--micro_batches", default="1,2,4")
    p.add_argument("--checkpointing", default="off,on", help="off, on or both (off,on)")
    p.add_argument("--max_length", type=int, default=512)
    p.add_argument("--random_dir", default=str(Path(tempfile.gettempdir()) / "mop-bench-random-llama2-250m"))
    p.add_argument("--malloc", choices=("mmap", "default"), default="mmap",
                   help="mmap: glibc's mmap threshold fixed at 64 KiB in the workers, so RSS follows live tensor "
                        "memory; default: glibc's dynamic threshold (freed heap memory stays resident)")
    p.add_argument("--out", help="also write the rows as JSON")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # one measurement, JSON in, JSON out
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- memory readings


def proc_status_kib(field: str) -> int:
    """A `VmRSS` / `VmHWM` line of /proc/self/status, in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> bool:
    """Lower the kernel's peak-RSS mark to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------- models and data


def random_llama2_config(vocab_size: int, tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=1024, intermediate_size=2816, num_hidden_layers=12,
        num_attention_heads=16, num_key_value_heads=16, max_position_embeddings=2048, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )


def ensure_random_model(folder: Path) -> Path:
    """Write the random ~250M model (fp32) and the embedded tokenizer once."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    from mop.models.loading import resolve_model_name

    if (folder / "config.json").exists():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_name("smollm2-135m"))
    torch.manual_seed(0)
    model = LlamaForCausalLM(random_llama2_config(len(tokenizer), tokenizer))
    tmp = folder.with_name(folder.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(folder)
    return folder


def model_path(name: str, random_dir: str) -> str:
    from mop.models.loading import resolve_model_name

    return str(ensure_random_model(Path(random_dir))) if name == RANDOM_NAME else resolve_model_name(name)


def exact_length_records(tokenizer, lengths: list[int]) -> list[dict]:
    """Alpaca records whose training examples have exactly these token counts (prompt + response + EOS)."""
    from mop.recover.batches import encode_records

    base = {"instruction": "Repeat the word apple.", "input": ""}
    prompt_tokens = len(encode_records(tokenizer, [{**base, "output": FILLER_WORD}], 10**6)[0]["input_ids"]) - 1
    records = [{**base, "output": FILLER_WORD * (n - prompt_tokens)} for n in lengths]
    got = [len(e["input_ids"]) for e in encode_records(tokenizer, records, max(lengths))]
    if got != lengths:
        raise RuntimeError(f"wanted example lengths {lengths}, got {got}")
    return records


# ----------------------------------------------------------------------------- one measurement


def measure(job: dict) -> dict:
    """Runs in a fresh process: baseline, load, reset the peak, two optimizer steps, peak."""
    import peft  # noqa: F401  (imported before the baseline, like everything train_lora needs)
    import transformers.trainer  # noqa: F401
    from transformers import AutoTokenizer

    from mop.models.loading import load_model
    from mop.recover.memory import TrainingSetup, estimate_peak
    from mop.recover.settings import RecoverySettings
    from mop.recover.trainer import train_lora

    baseline_kib = proc_status_kib("VmRSS")
    model, tokenizer = load_model(job["path"], torch.float32, "cpu")
    micro, length = job["micro_batch"], job["max_length"]
    records = exact_length_records(tokenizer, [length] + [length - 8] * (micro - 1))
    settings = RecoverySettings(batch_size=micro, grad_accum=1, max_steps=2, max_length=length,
                                gradient_checkpointing=job["checkpointing"], precision="fp32", save_steps=10**6,
                                logging_steps=1, group_by_length=False)
    estimate = estimate_peak(model.config, micro, job["checkpointing"],
                             TrainingSetup(weight_dtype=torch.float32, lora_r=settings.lora_r,
                                           lora_dropout=settings.lora_dropout, max_length=length, device_type="cpu"))
    reset = reset_peak_rss()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mop-bench-mem-") as work:
        report = train_lora(model, tokenizer, records, settings, work, progress=False)
    seconds = time.perf_counter() - began
    peak_kib = proc_status_kib("VmHWM")
    return {**job, "measured_bytes": (peak_kib - baseline_kib) * 1024, "baseline_bytes": baseline_kib * 1024,
            "peak_reset": reset, "estimate": estimate.as_dict(), "estimate_bytes": estimate.total,
            "steps": report.stats["global_steps"], "train_tokens": report.stats["train_tokens"],
            "seconds": round(seconds, 1), "threads": torch.get_num_threads()}


def run_worker(job: dict, malloc_env: dict) -> dict:
    env = {**os.environ, **malloc_env}
    result = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True,
                            env=env)
    if result.returncode != 0:
        raise RuntimeError(f"measurement {job} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- the table


def print_rows(rows: list[dict]) -> int:
    """Prints the table; returns the number of rows off by more than the tolerance."""
    print(f"{'model':<20} {'micro':>5} {'ckpt':>4} {'tokens':>6} {'estimate GB':>11} {'measured GB':>11} "
          f"{'est/meas':>8} {'seconds':>7}")
    off = 0
    for r in rows:
        ratio = r["estimate_bytes"] / r["measured_bytes"]
        flag = "" if abs(ratio - 1) <= TOLERANCE else "  <-- outside 25%"
        off += bool(flag)
        print(f"{r['model']:<20} {r['micro_batch']:>5} {'on' if r['checkpointing'] else 'off':>4} "
              f"{r['micro_batch'] * r['max_length']:>6} {r['estimate_bytes'] / 2**30:>11.3f} "
              f"{r['measured_bytes'] / 2**30:>11.3f} {ratio:>8.3f} {r['seconds']:>7.1f}{flag}")
    return off


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(measure(json.loads(args.worker))))
        return 0
    malloc_env = {} if args.malloc == "default" else {"MALLOC_MMAP_THRESHOLD_": str(65536)}
    checkpointing = {"off": [False], "on": [True], "off,on": [False, True], "both": [False, True]}[args.checkpointing]
    rows = []
    for name in args.models.split(","):
        path = model_path(name, args.random_dir)
        for ckpt in checkpointing:
            for micro in (int(m) for m in args.micro_batches.split(",")):
                job = {"model": name, "path": path, "micro_batch": micro, "checkpointing": ckpt,
                       "max_length": args.max_length}
                rows.append(run_worker(job, malloc_env))
                if args.out:  # after every row: a long run that is interrupted keeps what it measured
                    Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
                r = rows[-1]
                print(f"  {name} micro-batch {micro} checkpointing {'on' if ckpt else 'off'}: estimate "
                      f"{r['estimate_bytes'] / 2**30:.3f} GB, measured {r['measured_bytes'] / 2**30:.3f} GB "
                      f"({r['seconds']} s)", flush=True)
    print(f"\nLoRA recovery peak memory, estimate (mop.recover.memory) vs measured (peak RSS - baseline after imports), "
          f"fp32 on CPU, sequences of {args.max_length} tokens, {torch.get_num_threads()} threads")
    off = print_rows(rows)
    print(f"{len(rows) - off} of {len(rows)} rows within {100 * TOLERANCE:.0f}%")
    return 1 if off else 0


if __name__ == "__main__":
    sys.exit(main())
