"""Fingerprints of the default runs, to prove that a change which should not alter results did not.

    python tools/fingerprint_runs.py --out before.json            # on the old tree
    python tools/fingerprint_runs.py --out after.json --compare before.json   # on the new one

Runs, on the CPU and offline, small versions of what a user runs through the per-model scripts
(their flags only, so the commands stay valid whatever moves inside `mop/`):
Llama3/prune.py (GQA, LGGL), Llama2/prune.py (the multi-head twin, GLG), Llava/prune.py (the
tiny LLaVA), Custom/prune.py on a seeded tiny random Qwen3 (built here with the embedded
tokenizer), Llama3/finetune.py on the Llama-3 run's last iteration (LoRA, 32 examples) and
`python -m mop.evaluate` on the recovered checkpoint (mop_mini, 20 documents per task).
The fingerprint is the SHA-256 of every weight file and of the pruning summaries, and every
score; `--compare` prints what differs and exits 1 when anything does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY_QWEN3_SEED = 0


def tiny_qwen3(folder: Path) -> Path:
    """A seeded 6-layer random Qwen3 with the embedded tokenizer: Custom/prune.py's family check."""
    sys.path.insert(0, str(REPO))
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    from mop.models.embedded import embedded_checkpoint

    if (folder / "config.json").is_file():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(embedded_checkpoint("smollm2-135m"))
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=96, num_hidden_layers=6,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(TINY_QWEN3_SEED)
    Qwen3ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def commands(work: Path, qwen3: Path) -> list[tuple[str, list[str]]]:
    """(name, argv) of every run, in order (the recovery and the score read the Llama-3 run)."""
    py = sys.executable
    small = ["--num_calibration_prompts", "8"]
    llama3 = work / "llama3"
    return [
        ("llama3_prune", [py, "Llama3/prune.py", "--model_name", "smollm2-135m", "--save_dir", str(llama3),
                          "--num_iterations", "4", "--decision_sequence", "LGGL", *small]),
        ("llama2_prune", [py, "Llama2/prune.py", "--model_name", "smollm2-135m-mha", "--save_dir",
                          str(work / "llama2"), "--num_iterations", "3", "--decision_sequence", "GLG", *small]),
        ("llava_prune", [py, "Llava/prune.py", "--model_name", "tiny-llava", "--save_dir", str(work / "llava"),
                         "--num_iterations", "2", "--decision_sequence", "LG", *small]),
        ("custom_qwen3_prune", [py, "Custom/prune.py", "--model_name", str(qwen3), "--save_dir",
                                str(work / "qwen3"), "--num_iterations", "3", "--decision_sequence", "LGL", *small,
                                "--calibration_data", "mop/assets/instructions.json"]),
        ("llama3_finetune", [py, "Llama3/finetune.py", "--pruned_model_dir", str(llama3 / "prune_iteration_4"),
                             "--tuned_model_dir", str(llama3 / "prune_iteration_4_ft"), "--num_epochs", "1",
                             "--num_samples", "32", "--max_length", "128"]),
        ("llama3_score", [py, "-m", "mop.evaluate", str(llama3 / "prune_iteration_4_ft"), str(work / "score"),
                          "--tasks", "mop_mini", "--limit", "20", "--device", "cpu"]),
    ]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(work: Path) -> dict:
    """Every weight file's and pruning summary's hash, and the scores, keyed by path under `work`
    (the tiny Qwen3 source, made here, is left out: it is an input, not a result)."""
    found = {}
    for path in sorted(work.rglob("*")):
        rel = path.relative_to(work).as_posix()
        if rel.startswith("source/"):
            continue
        if path.suffix == ".safetensors" or path.name == "pruning_summary.json":
            found[rel] = sha256(path)
        elif path.name == "mop_eval.json":
            found[rel] = json.loads(path.read_text())["tasks"]
    return found


def run_all(work: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONHASHSEED": "0"}
    qwen3 = tiny_qwen3(work / "source" / "tiny-qwen3")
    for name, argv in commands(work, qwen3):
        log = work / f"{name}.log"
        print(f"[run ] {name}: {' '.join(argv)}", flush=True)
        with log.open("w") as out:
            done = subprocess.run(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode:
            sys.exit(f"error: {name} failed (exit {done.returncode}); log: {log}")


def differences(ours: dict, theirs: dict) -> list[str]:
    lines = [f"only in the new run: {k}" for k in sorted(ours.keys() - theirs.keys())]
    lines += [f"only in the old run: {k}" for k in sorted(theirs.keys() - ours.keys())]
    lines += [f"differs: {k}" for k in sorted(ours.keys() & theirs.keys()) if ours[k] != theirs[k]]
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default=str(REPO / ".cache" / "fingerprint"), help="runs go here (replaced)")
    p.add_argument("--out", required=True, help="the fingerprint as JSON")
    p.add_argument("--compare", help="an earlier fingerprint: print what differs, exit 1 if anything does")
    args = p.parse_args(argv)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    run_all(work)
    found = fingerprint(work)
    Path(args.out).write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    print(f"{len(found)} fingerprints in {args.out}")
    if args.compare:
        lines = differences(found, json.loads(Path(args.compare).read_text()))
        print("\n".join(lines) if lines else f"identical to {args.compare}: {len(found)} of {len(found)}")
        return 1 if lines else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
