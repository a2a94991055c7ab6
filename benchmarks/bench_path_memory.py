"""Benchmark (prints numbers, not a test): peak memory of a metric path against a fixed path.

    python benchmarks/bench_path_memory.py [--iterations 8] [--models embedded,random250m] [--candidates view]

For each model, an `--path ppl` run and a `--path sequence` run of the same length are pruned in
fresh processes (Llama2/prune.py, multi-head models), and the peak resident set size of each
process is read from the kernel (`ru_maxrss` of the finished child). Scoring the candidates as
views of the live model should cost little more than the fixed path (target: ratio <= 1.15);
`--candidates copy` shows the deep-copy reference (about 2x). The fixed path replays the
decisions the ppl run took, so both runs end at the same model.

Models: `embedded` = smollm2-135m-mha; `random250m` = a random Llama-2-style model (hidden 1024,
16 heads, 12 layers, intermediate 2816, the embedded tokenizer's 49152-token vocabulary: ~254M
parameters), built once into a temporary folder.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build_random_model(folder: Path) -> str:
    """A ~254M-parameter random Llama-2-style checkpoint with the embedded tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from mop.models.loading import resolve_model_name

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_name("smollm2-135m-mha"))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=1024, intermediate_size=2816, num_hidden_layers=12,
                         num_attention_heads=16, num_key_value_heads=16, max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def peak_rss_gb(cmd: list[str]) -> float:
    """Run `cmd` in a fresh helper process and return the child's peak RSS in GB."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr[-2000:]}")
    return int(out.stdout.strip().splitlines()[-1]) * 1024 / 1e9  # ru_maxrss is in KiB on Linux


def prune_cmd(model: str, save_dir: Path, iterations: int, extra: list[str]) -> list[str]:
    return [sys.executable, str(REPO / "Llama2" / "prune.py"), "--model_name", model, "--save_dir", str(save_dir),
            "--num_iterations", str(iterations), "--calibration_data", str(REPO / "mop/assets/instructions.json"),
            *extra]


def measure(name: str, model: str, iterations: int, candidates: str, work: Path) -> dict:
    ppl_dir, seq_dir = work / f"{name}_ppl", work / f"{name}_seq"
    ppl = peak_rss_gb(prune_cmd(model, ppl_dir, iterations, ["--path", "ppl", "--candidates", candidates]))
    taken = json.loads((ppl_dir / "path_decisions.json").read_text())["decision_sequence"]
    seq = peak_rss_gb(prune_cmd(model, seq_dir, iterations, ["--path", "sequence", "--decision_sequence", taken]))
    return {"model": name, "decisions": taken, "ppl_gb": ppl, "sequence_gb": seq, "ratio": ppl / seq}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=8)
    p.add_argument("--models", default="embedded,random250m")
    p.add_argument("--candidates", default="view", choices=("view", "copy"))
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mop-bench-mem-") as tmp:
        work = Path(tmp)
        for name in args.models.split(","):
            model = "smollm2-135m-mha" if name == "embedded" else build_random_model(work / "random250m")
            rows.append(measure(name, model, args.iterations, args.candidates, work))
            r = rows[-1]
            print(f"{r['model']:<12} ppl ({args.candidates}) {r['ppl_gb']:.2f} GB   sequence {r['sequence_gb']:.2f} GB   "
                  f"ratio {r['ratio']:.3f}   decisions {r['decisions']}", flush=True)
    worst = max(r["ratio"] for r in rows)
    print(f"worst ratio {worst:.3f} ({'within' if worst <= 1.15 else 'above'} the 1.15 target)")


if __name__ == "__main__":
    main()
