"""Decode speed-up of pruned checkpoints on CPU: transformers against llama.cpp (f32 and q8_0).

    python benchmarks/bench_speedup.py --threads 2 --out bench_speedup.json

Models: the embedded dense smollm2-135m and the checkpoints of one Llama3/prune.py run
(`--num_iterations 12 --decision_sequence LGGLLLGGLLGL`, MLP-only width steps) whose
compression is nearest 10, 20 and 30% in its pruning_summary.json; the run is made (or
resumed) under --work, keeping only those iterations (read from the path's dry run first).

Every model decodes the same fixed prompt (one ChatML user turn), batch 1, greedy, exactly
--new_tokens tokens (transformers: eager attention, float32, `min_new_tokens` = `max_new_tokens`;
llama.cpp: no stop at end of generation), torch and llama.cpp on the same --threads. Decode
speed is the tokens after the first over the time they took; each figure is the median of
--repeats runs after one warm-up run.

Next to each measured ratio to dense: the limit that the parameter count predicts (dense
params / pruned params: decoding one token reads every weight once, so a memory-bound decode
takes time in proportion to them) and the one the weight bytes predict (dense GGUF bytes /
pruned GGUF bytes: in q8_0 a tensor whose rows are not a multiple of 32 stays in f16). A
least-squares line of milliseconds per token against weight bytes, per backend, splits a
token's time into a part that scales with the weights and a fixed part (per-token overhead)
that pruning cannot shorten.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mop.core.io import UsageError, exit_on_usage_error, read_json, write_json  # noqa: E402
from mop.deploy.comparison import prompt_text  # noqa: E402
from mop.deploy.gguf import LlamaCpp, Sampling, cached_gguf, find_build, load_bindings  # noqa: E402
from mop.models.embedded import embedded_checkpoint  # noqa: E402

DENSE = "smollm2-135m"
DECISIONS = "LGGLLLGGLLGL"
PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
FORMATS = ("transformers", "llama.cpp f32", "llama.cpp q8_0")


# ----------------------------------------------------------------------------- checkpoints


def nearest_iterations(rows: list[dict], targets: list[float]) -> list[int]:
    """The pruned iteration whose compression is nearest each target (fraction), in order."""
    pruned = [r for r in rows if r["iteration"] > 0]
    return [min(pruned, key=lambda r: abs(r["compression"] - t))["iteration"] for t in targets]


def planned_iterations(args) -> list[int]:
    """The iterations to keep, from the path's dry run (shapes do not depend on the weights)."""
    from mop.run.cli import dry_run
    from mop.prune.pruner import PruneSettings

    settings = PruneSettings(model_name=DENSE, save_dir=str(args.work / "run"), num_iterations=args.num_iterations,
                             decision_sequence=DECISIONS, mlp_only=True, align=args.align)
    return nearest_iterations(dry_run(settings), args.targets)


def pruned_run(args) -> Path:
    """Llama3/prune.py's run under --work, made or resumed, keeping only the iterations needed."""
    run = args.work / "run"
    keep = planned_iterations(args)
    if all((run / f"prune_iteration_{i}" / "config.json").exists() for i in keep):
        return run
    cmd = [sys.executable, str(REPO / "Llama3" / "prune.py"), "--model_name", DENSE, "--save_dir", str(run),
           "--num_iterations", str(args.num_iterations), "--decision_sequence", DECISIONS,
           "--keep_iterations", ",".join(map(str, keep)), "--num_calibration_prompts",
           str(args.num_calibration_prompts), "--align", str(args.align)]
    if run.exists():
        cmd.append("--resume")
    print("pruning:", " ".join(cmd), flush=True)
    if subprocess.run(cmd).returncode:
        raise UsageError(f"pruning failed: {' '.join(cmd)}")
    return run


def checkpoints(args) -> list[tuple[str, Path, float]]:
    """(label, folder, compression) of the dense model and the picked iterations, as the run's
    pruning_summary.json gives them."""
    run = pruned_run(args)
    rows = read_json(run / "pruning_summary.json")
    picked = [(f"iteration {i}", run / f"prune_iteration_{i}", rows[i]["compression"])
              for i in nearest_iterations(rows, args.targets)]
    return [(f"dense {DENSE}", embedded_checkpoint(DENSE), 0.0), *picked]


# ----------------------------------------------------------------------------- timing


class TokenClock:
    """A `generate` streamer that only notes when each new token arrives (no decoding, so the
    measured time is generate's own)."""

    def __init__(self):
        self.times: list[float] = []
        self.prompt_seen = False

    def put(self, value) -> None:
        if not self.prompt_seen:  # generate hands the prompt over first
            self.prompt_seen = True
            return
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass

    def decode_tokens_per_s(self) -> float:
        """Tokens after the first over the time from the first to the last."""
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


@torch.inference_mode()
def transformers_run(model, ids: torch.Tensor, new_tokens: int, pad_id: int) -> float:
    clock = TokenClock()
    model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                   min_new_tokens=new_tokens, do_sample=False, temperature=None, top_p=None, top_k=None,
                   pad_token_id=pad_id, streamer=clock)
    if len(clock.times) != new_tokens:
        raise RuntimeError(f"transformers made {len(clock.times)} tokens, not {new_tokens}")
    return clock.decode_tokens_per_s()


def repeated(measure, repeats: int) -> dict:
    """One warm-up run, then the median (and all values) of `repeats` runs."""
    measure()
    values = [measure() for _ in range(repeats)]
    return {"tokens_per_s": statistics.median(values), "runs": [round(v, 2) for v in values]}


def measure_transformers(folder: Path, args) -> tuple[dict, list[int]]:
    """Figures of the checkpoint in transformers, and the prompt ids (llama.cpp reads the same)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    ids = tokenizer(prompt_text(tokenizer, PROMPT, True), add_special_tokens=False, return_tensors="pt")["input_ids"]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    result = repeated(lambda: transformers_run(model, ids, args.new_tokens, pad), args.repeats)
    params = sum(p.numel() for p in model.parameters())
    result.update(params=params, weight_bytes=sum(p.numel() * p.element_size() for p in model.parameters()))
    del model
    return result, ids[0].tolist()


def llama_cpp_run(runtime: LlamaCpp, ids: list[int], new_tokens: int) -> float:
    generation = runtime.generate(ids, new_tokens, Sampling(), stop_at_end=False)
    return generation.decode_tokens_per_s


def measure_llama_cpp(C, gguf: Path, ids: list[int], args) -> dict:
    runtime = LlamaCpp(C, gguf, n_ctx=len(ids) + args.new_tokens + 16, threads=args.threads)
    try:
        result = repeated(lambda: llama_cpp_run(runtime, ids, args.new_tokens), args.repeats)
        result.update(params=runtime.n_params, weight_bytes=runtime.weight_bytes)
    finally:
        runtime.close()
    return result


# ----------------------------------------------------------------------------- results


@dataclass
class Row:
    """One checkpoint: its compression and, per format, the measured figures."""

    label: str
    folder: str
    compression: float
    formats: dict = field(default_factory=dict)


def measure_all(args) -> list[Row]:
    build = find_build()
    C = load_bindings(build)
    torch.set_num_threads(args.threads)
    rows = []
    for label, folder, compression in checkpoints(args):
        row = Row(label, str(folder), compression)
        row.formats["transformers"], ids = measure_transformers(folder, args)
        for outtype in ("f32", "q8_0"):
            gguf = cached_gguf(build, folder, outtype, args.work / "gguf")
            row.formats[f"llama.cpp {outtype}"] = measure_llama_cpp(C, gguf, ids, args)
            if not args.keep_gguf:  # half a GB each in f32: the next model's room on a small disk
                gguf.unlink()
        print(f"{label}: " + ", ".join(f"{k} {v['tokens_per_s']:.1f} tok/s" for k, v in row.formats.items()), flush=True)
        rows.append(row)
    return rows


def overhead_fit(rows: list[Row], fmt: str) -> dict:
    """ms per token = fixed + slope * weight MB, least squares over the checkpoints: `fixed` is
    the per-token time that does not shrink with the weights."""
    x = np.array([r.formats[fmt]["weight_bytes"] / 1e6 for r in rows])
    y = np.array([1000 / r.formats[fmt]["tokens_per_s"] for r in rows])
    slope, fixed = np.polyfit(x, y, 1)
    dense_ms = y[0]
    return {"fixed_ms": round(float(fixed), 3), "ms_per_weight_mb": round(float(slope), 5),
            "dense_ms_per_token": round(float(dense_ms), 3), "fixed_share_of_dense": round(float(fixed / dense_ms), 3),
            "weight_gb_per_s": round(float(1 / slope), 2) if slope > 0 else None}


def markdown(rows: list[Row]) -> str:
    """The table: per checkpoint and format, decode tok/s, ratio to dense and both limits."""
    dense = rows[0].formats
    lines = ["| checkpoint | compression | format | decode tok/s | speed-up | limit (params) | limit (weight bytes) "
             "| speed-up / params limit |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        for fmt in FORMATS:
            f, d = row.formats[fmt], dense[fmt]
            speedup = f["tokens_per_s"] / d["tokens_per_s"]
            by_params, by_bytes = d["params"] / f["params"], d["weight_bytes"] / f["weight_bytes"]
            lines.append(f"| {row.label} | {100 * row.compression:.1f}% | {fmt} | {f['tokens_per_s']:.1f} | "
                         f"{speedup:.2f}x | {by_params:.2f}x | {by_bytes:.2f}x | {speedup / by_params:.2f} |")
    return "\n".join(lines)


def fits_markdown(fits: dict) -> str:
    lines = ["| format | ms/token (dense) | fixed ms/token | fixed share of dense | weights streamed (GB/s) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for fmt, fit in fits.items():
        lines.append(f"| {fmt} | {fit['dense_ms_per_token']:.2f} | {fit['fixed_ms']:.2f} | "
                     f"{100 * fit['fixed_share_of_dense']:.0f}% | {fit['weight_gb_per_s']} |")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="torch and llama.cpp threads")
    p.add_argument("--new_tokens", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--targets", default="10,20,30", help="compression targets in percent")
    p.add_argument("--num_iterations", type=int, default=12)
    p.add_argument("--num_calibration_prompts", type=int, default=32,
                   help="for the pruning run (which neurons go does not change any shape)")
    p.add_argument("--align", type=int, default=0, help="the pruning run's --align (32: q8_0 blocks, no f16 fallback)")
    p.add_argument("--work", default=str(REPO / ".cache" / "bench-speedup"), help="pruning run and GGUF files")
    p.add_argument("--keep_gguf", action="store_true", help="keep the GGUF files under --work (default: each is "
                   "deleted once measured)")
    p.add_argument("--out", help="JSON file for every figure")
    args = p.parse_args(argv)
    args.work = Path(args.work)
    args.targets = [float(t) / 100 for t in args.targets.split(",")]
    return args


@exit_on_usage_error
def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads < 1 or args.new_tokens < 2 or args.repeats < 1:
        raise UsageError("--threads and --repeats must be at least 1, --new_tokens at least 2")
    began = time.perf_counter()
    rows = measure_all(args)
    fits = {fmt: overhead_fit(rows, fmt) for fmt in FORMATS}
    print(f"\nDecode speed, batch 1, greedy, {args.new_tokens} new tokens, {args.threads} threads, median of "
          f"{args.repeats} after a warm-up ({platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}):\n")
    print(markdown(rows))
    print("\nms per token against weight bytes (least squares over the checkpoints):\n")
    print(fits_markdown(fits))
    data = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "prompt": PROMPT, "rows": [asdict(r) for r in rows], "fits": fits,
            "seconds": round(time.perf_counter() - began, 1)}
    if args.out:
        write_json(args.out, data)
        print(f"wrote {args.out}")
    return data


if __name__ == "__main__":
    main()
