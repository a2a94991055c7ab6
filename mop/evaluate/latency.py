"""Generation latency, the paper's protocol: dense vs pruned, or every checkpoint of a results folder.

    python -m mop.evaluate.latency --model PRUNED_DIR --baseline DENSE_DIR [--out latency.json]
    python -m mop.evaluate.latency --results_dir Llama3/results_llama3 --baseline meta-llama/Meta-Llama-3-8B
    python -m mop.evaluate.latency --model smollm2-135m --runs 4 --warmup 1 --new_tokens 32     # short CPU check
    python -m mop.evaluate.latency --model PRUNED_DIR --baseline DENSE_DIR --compile both        # eager and compiled

Protocol (paper, LLaMA-2-7B on one RTX 4090): batch 1, a 12-token input, 128 generated tokens,
greedy decoding with the KV cache, 20 runs of which the first 10 are warm-up; the mean of the
other 10 is reported. Exactly --new_tokens tokens are generated (min_new_tokens = max_new_tokens,
so the end-of-sequence token cannot stop a run early); the count is checked on every run. On CUDA
each timed region is bracketed by torch.cuda.synchronize().

Besides the total generation time, two parts are reported:
  prefill            one forward pass over the input tokens with the cache enabled, timed on its
                     own under the same runs/warm-up protocol;
  decode per token   derived: (total - prefill) / (new_tokens - 1) -- generate() runs one prefill
                     (which yields the first new token) and then new_tokens - 1 one-token decode
                     steps, so this is the mean cost of one cached decode step including
                     generate()'s own per-step overhead.
Ratios are model / baseline (below 1 = faster than the baseline).

--compile: decoding as it is usually deployed. Eager decoding at batch 1 is bound by per-step
overhead (Python, kernel launches) on a fast GPU, so removing parameters saves less time than it
removes bytes. With --compile, generate() uses a static KV cache (cache_implementation="static")
and transformers compiles the one-token decode step with torch.compile -- mode "reduce-overhead"
(CUDA graphs) on CUDA, the default inductor mode on CPU (which needs a C++ compiler) -- so the
per-token time follows the bytes read. The prefill stays eager, as transformers runs it. The first
warm-up run pays the compilation (its time is reported as first_run_s). Eager stays the default:
it is the paper's protocol. `--compile both` times every model both ways; ratios compare models
timed the same way.

--results_dir: every `run_*/prune_iteration_<i>/` checkpoint below a results folder (parameter
counts and compression from its mop_prune.json), plus --baseline / --model if given, tabulated
against compression. Recovered `_ft_<e>ep` checkpoints are not timed: they have exactly the shapes
of their `prune_iteration_<i>`. --out writes all numbers as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.args import OneLineParser
from ..core.io import (UsageError, check_writable_target, exit_on_usage_error, read_metadata, software_versions,
                       write_json)
from ..core.layout import CHECKPOINT_DIR, PRUNE_META
from ..models.adapter import count_parameters
from ..models.loading import check_weights, load_model, resolve_device, resolve_dtype, resolve_model_dir
from .tables import run_order

FILLER_TEXT = (
    "The quick brown fox jumps over the lazy dog while the committee reviews the annual report "
    "on renewable energy, public transport and the history of the local library."
)
COMPILE_CHOICES = {"off": ("eager",), "on": ("compiled",), "both": ("eager", "compiled")}


@dataclass(frozen=True)
class CompileSetup:
    """How the decode step is compiled (--compile): torch.compile's backend and mode."""

    backend: str = "inductor"
    mode: str = "reduce-overhead"

    def generation_kwargs(self) -> dict:
        """GenerationConfig fields: a static cache, and transformers' own compilation of the decode
        step (it compiles on CUDA only unless told to compile on every device)."""
        from transformers import CompileConfig

        config = CompileConfig(backend=self.backend, mode=self.mode)
        config._compile_all_devices = True  # transformers' switch for compiling off CUDA (CPU runs)
        return {"cache_implementation": "static", "compile_config": config, "disable_compile": False}


def compile_setup_for(device: str, mode: str, backend: str) -> CompileSetup:
    """`auto` mode: CUDA graphs on CUDA, inductor's default on CPU (CUDA graphs need a GPU)."""
    if mode == "auto":
        mode = "reduce-overhead" if device.startswith("cuda") else "default"
    if backend == "inductor" and not device.startswith("cuda") and not cpp_compiler():
        raise UsageError("--compile on CPU needs a C++ compiler for torch.compile (g++ or $CXX); none found")
    return CompileSetup(backend=backend, mode=mode)


def cpp_compiler() -> str | None:
    """The C++ compiler inductor would call on CPU (its default is g++; $CXX overrides)."""
    return shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")


# ----------------------------------------------------------------------------- measuring


def fixed_length_input(tokenizer, num_tokens: int) -> torch.Tensor:
    """(1, num_tokens) token ids of ordinary English text, the same for every model with this tokenizer."""
    ids = tokenizer(FILLER_TEXT, add_special_tokens=False)["input_ids"]
    if not ids:
        raise UsageError("the tokenizer produced no tokens for the benchmark text")
    while len(ids) < num_tokens:
        ids = ids + ids
    return torch.tensor([ids[:num_tokens]], dtype=torch.long)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> tuple[float, object]:
    """Wall time of fn() with the device's queued work finished before and after."""
    synchronize(device)
    began = time.perf_counter()
    result = fn()
    synchronize(device)
    return time.perf_counter() - began, result


def greedy_config(model, new_tokens: int, compiled: CompileSetup | None = None):
    """Greedy decoding of exactly new_tokens tokens, whatever the checkpoint's generation_config says.

    Eager (compiled=None): a dynamic KV cache and no compilation, also on CUDA.
    """
    from transformers import GenerationConfig

    eos = model.generation_config.eos_token_id
    pad = model.generation_config.pad_token_id
    if pad is None:
        pad = eos[0] if isinstance(eos, list) else eos
    cache = compiled.generation_kwargs() if compiled else {"disable_compile": True}
    return GenerationConfig(
        max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, num_beams=1,
        use_cache=True, eos_token_id=eos, pad_token_id=pad, **cache,
    )


def stats(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "runs": values,
    }


@torch.no_grad()
def measure(model, input_ids: torch.Tensor, new_tokens: int, runs: int, warmup: int,
            compiled: CompileSetup | None = None) -> dict:
    """Total generation time and prefill time, `runs` times each; the first `warmup` discarded.

    With `compiled`, generate() runs with a static cache and a compiled decode step; a run in
    which transformers did not compile it is an error rather than an eager number labelled compiled.
    """
    device = next(model.parameters()).device
    input_ids = input_ids.to(device)
    attention_mask = torch.ones_like(input_ids)
    config = greedy_config(model, new_tokens, compiled)
    totals, prefills, generated, first = [], [], set(), None
    for i in range(runs):
        seconds, out = timed(lambda: model.generate(input_ids=input_ids, attention_mask=attention_mask,
                                                    generation_config=config), device)
        count = out.shape[1] - input_ids.shape[1]
        if count != new_tokens:
            raise RuntimeError(f"generated {count} tokens instead of {new_tokens}")
        generated.add(count)
        first = seconds if first is None else first
        if i >= warmup:
            totals.append(seconds)
    if compiled and new_tokens > 1 and getattr(model, "_compiled_call", None) is None:
        raise RuntimeError("transformers did not compile the decode step (static cache not used?)")
    for i in range(runs):
        seconds, _ = timed(lambda: model(input_ids=input_ids, attention_mask=attention_mask, use_cache=True), device)
        if i >= warmup:
            prefills.append(seconds)
    total, prefill = stats(totals), stats(prefills)
    decode = (total["mean"] - prefill["mean"]) / (new_tokens - 1) if new_tokens > 1 else None
    return {
        "total_s": total,
        "prefill_s": prefill,
        "decode_per_token_s": decode,
        "tokens_per_s": new_tokens / total["mean"],
        "generated_tokens": generated.pop(),
        "first_run_s": first,
        "output_ids": out[0, input_ids.shape[1]:].tolist(),
        "mode": "compiled" if compiled else "eager",
    }


# ----------------------------------------------------------------------------- models


def checkpoint_info(model_dir: str) -> dict:
    """Parameter count and compression recorded by the pruner, when the folder has them."""
    meta = Path(model_dir) / PRUNE_META
    if meta.exists():
        data = read_metadata(meta)
        return {"iteration": data.get("iteration"), "params": data.get("params"),
                "compression": data.get("compression"), "decisions": data.get("decisions_so_far")}
    return {}


def time_modes(model, tokenizer, settings: dict) -> list[dict]:
    """measure() once per mode in settings["modes"] (eager first: compiling changes the model)."""
    input_ids = fixed_length_input(tokenizer, settings["input_tokens"])
    results = []
    for mode in settings.get("modes", ("eager",)):
        compiled = settings["compile"] if mode == "compiled" else None
        if compiled:
            torch._dynamo.reset()  # a fresh compile per model: no stale graphs, no recompile limit
        results.append(measure(model, input_ids, settings["new_tokens"], settings["runs"], settings["warmup"],
                               compiled))
    return results


def benchmark_model(name: str, settings: dict, label: str | None = None) -> list[dict]:
    """Load one model, time it (once per mode), free it: one entry per mode."""
    path = resolve_model_dir(name)
    model, tokenizer = load_model(path, settings["dtype"], settings["device"])
    try:
        results = time_modes(model, tokenizer, settings)
        info = {"label": label or name, "model": path, "params_counted": count_parameters(model),
                **checkpoint_info(path)}
    finally:
        del model
        if settings["device"].startswith("cuda"):
            torch.cuda.empty_cache()
    info.setdefault("params", info["params_counted"])
    return [{**info, **r, "label": info["label"] + (" [compiled]" if r["mode"] == "compiled" else "")}
            for r in results]


def results_checkpoints(results_dir: Path, iterations: set[int] | None) -> list[Path]:
    """Every run_*/prune_iteration_<i>/ with a mop_prune.json, in run and iteration order."""
    found = []
    for run_dir in sorted(p for p in results_dir.glob("run_*") if p.is_dir()):
        for ckpt in run_dir.iterdir():
            match = CHECKPOINT_DIR.match(ckpt.name)
            if match and (ckpt / PRUNE_META).exists() and (iterations is None or int(match.group(1)) in iterations):
                found.append((run_dir.name, int(match.group(1)), ckpt))
    # a plain run folder (prune.py --save_dir) works too
    for ckpt in results_dir.iterdir():
        match = CHECKPOINT_DIR.match(ckpt.name)
        if match and (ckpt / PRUNE_META).exists() and (iterations is None or int(match.group(1)) in iterations):
            found.append(("", int(match.group(1)), ckpt))
    return [p for _, _, p in sorted(found, key=lambda x: (run_order(x[0]), x[1]))]


def add_ratios(entries: list[dict], baseline: dict | None) -> None:
    if baseline is None:
        return
    base_decode = baseline["decode_per_token_s"]
    for e in entries:
        e["ratio_total"] = e["total_s"]["mean"] / baseline["total_s"]["mean"]
        e["ratio_prefill"] = e["prefill_s"]["mean"] / baseline["prefill_s"]["mean"]
        e["ratio_decode"] = (e["decode_per_token_s"] / base_decode
                             if e["decode_per_token_s"] is not None and base_decode else None)
        if baseline.get("params"):
            e.setdefault("compression_vs_baseline", 1 - e["params"] / baseline["params"])


def print_table(entries: list[dict]) -> None:
    print(f"{'model':<48} {'params':>12} {'compr':>7} {'total s':>9} {'prefill ms':>10} "
          f"{'decode ms/tok':>13} {'tok/s':>7} {'x base':>7}")
    for e in entries:
        compression = e.get("compression")
        if compression is None:
            compression = e.get("compression_vs_baseline")
        compr = "-" if compression is None else f"{100 * compression:.1f}%"
        decode = "-" if e["decode_per_token_s"] is None else f"{1000 * e['decode_per_token_s']:.2f}"
        ratio = f"{e['ratio_total']:.3f}" if "ratio_total" in e else "-"
        label = e["label"] if len(e["label"]) <= 48 else "..." + e["label"][-45:]
        print(f"{label:<48} {e['params']:>12,} {compr:>7} {e['total_s']['mean']:>9.3f} "
              f"{1000 * e['prefill_s']['mean']:>10.2f} {decode:>13} {e['tokens_per_s']:>7.1f} {ratio:>7}")


def ratio_line(entry: dict, baseline_label: str) -> str:
    decode = "-" if entry["ratio_decode"] is None else f"x{entry['ratio_decode']:.3f}"
    return (f"{entry['label']}: total x{entry['ratio_total']:.3f} ({100 * (entry['ratio_total'] - 1):+.1f}%), "
            f"prefill x{entry['ratio_prefill']:.3f}, decode/token {decode} vs {baseline_label}")


# ----------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="checkpoint folder, embedded name or hub id")
    p.add_argument("--baseline", help="the dense model to compare against")
    p.add_argument("--results_dir", help="time every run_*/prune_iteration_<i>/ below this folder")
    p.add_argument("--iterations", help="with --results_dir: only these iterations, e.g. 8,12,17")
    p.add_argument("--runs", type=int, default=20, help="timed runs per model, warm-up included")
    p.add_argument("--warmup", type=int, default=10, help="first runs discarded")
    p.add_argument("--input_tokens", type=int, default=12)
    p.add_argument("--new_tokens", type=int, default=128)
    p.add_argument("--dtype", default="auto", help="auto = bfloat16 on CUDA, float32 on CPU")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--compile", nargs="?", const="on", default="off", choices=tuple(COMPILE_CHOICES),
                   help="static KV cache + torch.compile'd decode step (bare --compile = on); both: eager and compiled")
    p.add_argument("--compile_mode", default="auto",
                   help="torch.compile mode; auto = reduce-overhead (CUDA graphs) on CUDA, default on CPU")
    p.add_argument("--compile_backend", default="inductor", help="torch.compile backend")
    p.add_argument("--out", help="write all numbers to this JSON file")
    return p


def check_args(args) -> None:
    if not (args.model or args.results_dir):
        raise UsageError("give --model (with an optional --baseline) or --results_dir")
    if args.runs < 1 or args.warmup < 0 or args.warmup >= args.runs:
        raise UsageError(f"need runs >= 1 and 0 <= warmup < runs (got runs={args.runs}, warmup={args.warmup})")
    if args.input_tokens < 1 or args.new_tokens < 1:
        raise UsageError("--input_tokens and --new_tokens must be at least 1")
    if args.results_dir and not Path(args.results_dir).is_dir():
        raise UsageError(f"results folder not found: {args.results_dir}")
    if args.out and Path(args.out).is_dir():
        raise UsageError(f"--out {args.out} is a folder; give a file name")
    if args.out:
        check_writable_target(args.out, "--out")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")


def parse_iterations(text: str | None) -> set[int] | None:
    if not text:
        return None
    try:
        return {int(t) for t in text.split(",") if t.strip()}
    except ValueError:
        raise UsageError(f"--iterations must be a comma list of integers, not {text!r}") from None


def run_benchmark(args) -> dict:
    check_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    modes = COMPILE_CHOICES[args.compile]
    compiled = compile_setup_for(device, args.compile_mode, args.compile_backend) if "compiled" in modes else None
    settings = {"device": device, "dtype": resolve_dtype(args.dtype, device), "runs": args.runs,
                "warmup": args.warmup, "input_tokens": args.input_tokens, "new_tokens": args.new_tokens,
                "modes": modes, "compile": compiled}
    names = [(n, None) for n in (args.baseline, args.model) if n]
    if args.results_dir:
        checkpoints = results_checkpoints(Path(args.results_dir), parse_iterations(args.iterations))
        if not checkpoints:
            raise UsageError(f"no prune_iteration_<i>/ with mop_prune.json under {args.results_dir}")
        root = Path(args.results_dir)
        names += [(str(c), str(c.relative_to(root))) for c in checkpoints]
    for name, _ in names:  # fail on a bad path or file before minutes of timing
        path = resolve_model_dir(name)
        check_weights(path)
        checkpoint_info(path)
    entries = []
    for i, (name, label) in enumerate(names, start=1):
        print(f"[{i}/{len(names)}] timing {label or name} ({' and '.join(modes)}) ...", flush=True)
        entries.extend(benchmark_model(name, settings, label))
    baseline = None
    for mode in modes:  # ratios compare models timed the same way
        group = [e for e in entries if e["mode"] == mode]
        base = group[0] if args.baseline else None
        baseline = baseline or base
        add_ratios(group, base)
    print_table(entries)
    if baseline is not None:
        for mode in modes:
            group = [e for e in entries if e["mode"] == mode]
            for e in group[1:]:
                print(ratio_line(e, group[0]["label"]))
    protocol = {k: v for k, v in settings.items() if k not in ("dtype", "compile")}
    report = {
        "protocol": {**protocol, "dtype": str(settings["dtype"]),
                     "compile": dataclasses.asdict(compiled) if compiled else None,
                     "batch_size": 1, "decoding": "greedy, KV cache, eos ignored (min_new_tokens = max_new_tokens)",
                     "decode_per_token": "(total - prefill) / (new_tokens - 1)",
                     "threads": torch.get_num_threads()},
        "baseline": baseline["label"] if baseline else None,
        "models": entries,
        "versions": software_versions(),
        "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, report)
        print(f"wrote {args.out}")
    return report


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    return exit_on_usage_error(run_benchmark)(args)


if __name__ == "__main__":
    main()
