"""Benchmark (prints numbers, not a test): memory of the streamed vs the in-memory AMP pass.

    python benchmarks/bench_offload.py [--models smollm2-135m,random-250m] [--prompts 128] [--batch_size 16]
    python benchmarks/bench_offload.py --device cuda      # on a GPU: peak GPU memory of both passes

What is measured. The streamed pass (mop/prune/streaming.py) keeps the model in CPU memory and lets one
decoder layer at a time visit the compute device, so the quantity that matters is the memory of
the *device*. Where the device is a GPU (`--device cuda`), that is `torch.cuda.max_memory_allocated`
of each pass. On a CPU-only machine the device and the host are the same memory, so the benchmark
lets a process play the device instead and measures its peak resident set size (VmHWM, reset
just before the pass) above the RSS it had before any weight was loaded. Both passes build the model with its weights on
PyTorch's meta device (no memory) and read tensors from the safetensors file with plain reads
(no memory mapping, whose touched pages would count as resident too):
- in-memory: the process reads every weight, then runs `amp_scores`;
- streamed: the process reads the modules outside the decoder layers (embeddings, norms) and runs
  `amp_scores_streamed` with a `place` that reads one decoder layer for the duration of its turn
  and drops it afterwards. The file plays the role of the CPU memory that holds the whole model
  in a real offloaded run.
Each pass runs in a fresh process (a peak cannot be reset). Expected: the streamed peak is about
the resident modules + one decoder layer + the cached layer inputs of all prompts, the in-memory
peak about the whole model + one batch's activations. Both passes must give the same scores; the
largest relative difference is printed.

The ~250M model is random (hidden 1024, MLP 4096, 14 layers, 16 query / 4 KV heads, the embedded
tokenizer's 49152-token vocabulary, tied embeddings), written once to a temporary folder.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from mop.models.adapter import get_adapter  # noqa: E402
from mop.models.data import EMBEDDED_INSTRUCTIONS, calibration_prompt, load_alpaca_records  # noqa: E402
from mop.models.loading import resolve_model_name  # noqa: E402
from mop.prune.importance import amp_scores, amp_scores_streamed, batch_prompts  # noqa: E402
from mop.prune.streaming import capture_layer_inputs, swapped  # noqa: E402

MIB = 2**20
RANDOM_250M = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=14, num_attention_heads=16,
                   num_key_value_heads=4, max_position_embeddings=2048, tie_word_embeddings=True)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss() -> None:
    """Start the peak (VmHWM) anew from the current RSS (Linux: 5 into clear_refs)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_rss_bytes() -> int:
    """VmHWM: the peak RSS of this process image. (Not ru_maxrss: it survives exec, so a child
    would report its parent's peak.)"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def make_random_model(folder: Path) -> Path:
    """A ~250M random Llama in float32 safetensors, with the embedded tokenizer."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if (folder / "model.safetensors").exists():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_name("smollm2-135m"))
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **RANDOM_250M)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def calibration(checkpoint: Path, prompts: int, batch_size: int) -> list[dict]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    records = load_alpaca_records(EMBEDDED_INSTRUCTIONS, prompts)
    return batch_prompts(tokenizer, [calibration_prompt(r) for r in records], batch_size, 512)


SAFETENSORS_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def safetensors_index(file: Path) -> tuple[dict, int]:
    """(header entries by tensor name, byte offset of the data) of a safetensors file."""
    with open(file, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    return header, 8 + size


def read_tensors(file: Path, names) -> dict[str, torch.Tensor]:
    """The named tensors, read with plain file reads into memory of their own."""
    header, base = safetensors_index(file)
    tensors = {}
    with open(file, "rb") as f:
        for name in names:
            entry = header[name]
            start, end = entry["data_offsets"]
            f.seek(base + start)
            data = bytearray(f.read(end - start))
            tensors[name] = torch.frombuffer(data, dtype=SAFETENSORS_DTYPES[entry["dtype"]]).reshape(entry["shape"])
    return tensors


def lazy_adapter(checkpoint: Path, all_layers: bool):
    """The model built on the meta device with the weights outside the decoder layers read in,
    and either every layer read in too (`all_layers`) or a `place` that reads one decoder layer
    for its turn (what a real offload keeps in CPU memory)."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(checkpoint)
    with init_empty_weights():  # parameters on meta, buffers (rotary inv_freq) real
        model = AutoModelForCausalLM.from_config(config)
    file = checkpoint / "model.safetensors"
    names = list(safetensors_index(file)[0])
    model.load_state_dict(read_tensors(file, [n for n in names if all_layers or ".layers." not in n]),
                          strict=False, assign=True)
    if config.tie_word_embeddings:
        model.tie_weights()

    def place(index: int, layer):
        prefix = f"model.layers.{index}."
        tensors = read_tensors(file, [n for n in names if n.startswith(prefix)])
        return swapped([layer], lambda name, tensor: tensors[prefix + name])

    return get_adapter(model.eval()), place


def layer_bytes(checkpoint: Path) -> tuple[int, int]:
    """(bytes of all weights, bytes of one decoder layer) from the file's header."""
    header, _ = safetensors_index(checkpoint / "model.safetensors")
    sizes = {name: entry["data_offsets"][1] - entry["data_offsets"][0] for name, entry in header.items()}
    return sum(sizes.values()), sum(v for k, v in sizes.items() if k.startswith("model.layers.0."))


def run_pass(mode: str, checkpoint: Path, prompts: int, batch_size: int, device: str, out: Path) -> None:
    """One pass in this (fresh) process; writes its measurements and scores to `out`."""
    from mop.models.loading import load_model

    batches = calibration(checkpoint, prompts, batch_size)
    torch.set_grad_enabled(False)
    reset_peak_rss()
    before = rss_bytes()
    began = time.perf_counter()
    if device == "cpu":
        adapter, place = lazy_adapter(checkpoint, all_layers=mode == "in-memory")
        activations = sum(x.hidden.numel() * x.hidden.element_size() for x in capture_layer_inputs(adapter, batches, "cpu"))
        if mode == "in-memory":
            scores = amp_scores(adapter, batches, progress=False)
        else:
            scores = amp_scores_streamed(adapter, batches, "cpu", place=place, progress=False)
    else:
        model, _ = load_model(str(checkpoint), torch.float32, device if mode == "in-memory" else "cpu")
        adapter = get_adapter(model)
        activations = None
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        if mode == "in-memory":
            scores = amp_scores(adapter, batches, progress=False)
        else:
            scores = amp_scores_streamed(adapter, batches, device, progress=False)
    seconds = time.perf_counter() - began
    result = {"mode": mode, "seconds": seconds, "peak_rss_above_start": peak_rss_bytes() - before,
              "cached_activations": activations, "tokens": sum(int(b["attention_mask"].sum()) for b in batches),
              "heads": [h.tolist() for h in scores.heads], "neurons": [n.tolist() for n in scores.neurons]}
    if device.startswith("cuda"):
        result["peak_device"] = torch.cuda.max_memory_allocated()
    out.write_text(json.dumps(result))


def max_relative_difference(a: dict, b: dict) -> float:
    worst = 0.0
    for key in ("heads", "neurons"):
        for x, y in zip(a[key], b[key]):
            x, y = torch.tensor(x), torch.tensor(y)
            if x.numel():
                worst = max(worst, ((x - y).abs() / x.abs().clamp_min(1e-12)).max().item())
    return worst


def measure(name: str, checkpoint: Path, args, scratch: Path) -> None:
    results = {}
    for mode in ("in-memory", "streamed"):
        out = scratch / f"{name}-{mode}.json"
        subprocess.run([sys.executable, __file__, "--one_pass", mode, "--checkpoint", str(checkpoint), "--out",
                        str(out), "--prompts", str(args.prompts), "--batch_size", str(args.batch_size),
                        "--device", args.device], check=True)
        results[mode] = json.loads(out.read_text())
    total, layer = layer_bytes(checkpoint)
    mem, streamed = results["in-memory"], results["streamed"]
    key = "peak_device" if args.device.startswith("cuda") else "peak_rss_above_start"
    print(f"\n{name}: weights {total / MIB:.0f} MiB, one decoder layer {layer / MIB:.1f} MiB, "
          f"{mem['tokens']} calibration tokens in {args.prompts} prompts"
          + (f", cached layer inputs {streamed['cached_activations'] / MIB:.1f} MiB" if streamed["cached_activations"]
             else ""))
    label = "peak GPU memory" if args.device.startswith("cuda") else "peak RSS above start"
    for mode in ("in-memory", "streamed"):
        r = results[mode]
        print(f"  {mode:<10} {label}: {r[key] / MIB:8.1f} MiB   ({r['seconds']:.1f} s)")
    print(f"  streamed / in-memory: {streamed[key] / mem[key]:.2f}; "
          f"largest relative score difference: {max_relative_difference(mem, streamed):.2e}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="smollm2-135m,random-250m")
    p.add_argument("--prompts", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--device", default="cpu", help="cpu (RSS of a lazily loading process) or cuda (GPU memory)")
    p.add_argument("--one_pass", help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one_pass:
        return run_pass(args.one_pass, Path(args.checkpoint), args.prompts, args.batch_size, args.device,
                        Path(args.out))
    with tempfile.TemporaryDirectory(prefix="mop-bench-offload-") as tmp:
        scratch = Path(tmp)
        for name in args.models.split(","):
            if name == "random-250m":
                checkpoint = make_random_model(scratch / "random-250m")
            else:
                checkpoint = Path(resolve_model_name(name))
            measure(name, checkpoint, args, scratch)


if __name__ == "__main__":
    main()
