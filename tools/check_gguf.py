"""Convert MoP checkpoints with llama.cpp and compare llama.cpp with transformers (`make check-gguf`).

llama.cpp comes from the llama-cpp-python source distribution (the Makefile downloads it with
pip and builds only the shared library `libllama.so` of its vendored llama.cpp): its
`convert_hf_to_gguf.py` converts, with the gguf-py it ships (on PYTHONPATH), and its ctypes
bindings (`llama_cpp/llama_cpp.py`, loaded without the package's high-level module) run the GGUF.
That machinery (finding the build, converting, quantising, running) is mop/deploy/gguf.py's.

Checkpoints: the embedded dense model; LGGL iteration 4 of Llama2/prune.py (smollm2-135m-mha)
and of Llama3/prune.py (smollm2-135m, --mlp_only), both with --align 32; a tiny random MHA model
with the embedded tokenizer and one of its 4 heads pruned (3 x 32 != hidden 128), which the
project writes as its Mistral twin (mop/models/stock.py) and the converter maps to its llama architecture. Each is
converted to f32 and q8_0; a q8_0 conversion must not fall back to f16 for any tensor.
Q4_K_M (llama.cpp's `llama_model_quantize`, from the f32 GGUF): the dense model and the same two
LGGL checkpoints pruned with --align 256. k-quants need rows that are multiples of 256; SmolLM2's
hidden size 576 is not, so every tensor whose rows are hidden-wide (attention, gate, up) falls
back in the dense model already. What pruning shapes is the MLP width, the rows of ffn_down: with
--align 256 none of those may fall back.

Compared with transformers (f32, CPU) on the same token ids:
- greedy: the first 16 tokens generated greedily after a ChatML prompt, for each prompt;
- next-token agreement: fraction of positions of held-out instruction texts where both argmax
  next tokens agree; perplexity of both on those texts;
- tokenizer: llama.cpp's own tokenization of a text set against the checkpoint's tokenizer.
Results: a table on stdout and `<work>/results.json`; exit status 1 if f32 greedy tokens differ,
a q8_0 conversion falls back, or the tokenizers disagree.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mop.core.io import exit_on_usage_error, read_json  # noqa: E402
from mop.deploy import gguf  # noqa: E402
from mop.deploy.gguf import LlamaCpp, LlamaCppBuild, find_build, load_bindings, quantize  # noqa: E402
from mop.models.checkpoint import save_checkpoint  # noqa: E402
from mop.models.data import calibration_prompt  # noqa: E402
from mop.models.embedded import embedded_checkpoint  # noqa: E402

GREEDY_TOKENS = 16
PROMPTS = ["What is the capital of France?", "Write a short poem about the sea.",
           "List three uses of a paperclip.", "Explain why the sky is blue in one sentence."]
HELD_OUT = range(300, 308)  # instruction records after any calibration prompt of the check's runs
TOKENIZER_TEXTS = [
    "The year 2024 had 366 days.", "Call 555-0123 or   42 and\n 7 items",
    "naïve café, Zürich → 東京 🚀 😶\u200d🌫️", "def add(a, b):\n    return a + b  # sum\n\tx = [1, 2, 3]\n",
    "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n", "  leading spaces and trailing   ",
]
KQUANT_ROWS_SET_BY_PRUNING = "ffn_down"  # its rows are the (aligned) MLP width


# ----------------------------------------------------------------------------- checkpoints


def run(cmd: list[str], log: Path, env: dict | None = None) -> str:
    """Run a command, keep its output in `log`; a failure stops the check with that output."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{(proc.stdout + proc.stderr)[-3000:]}")
    return proc.stdout + proc.stderr


def pruned_checkpoint(work: Path, script: str, model: str, extra: list[str], align: int) -> Path:
    save_dir = work / f"{Path(script).parent.name.lower()}_lggl_align{align}"
    target = save_dir / "prune_iteration_4"
    if not target.exists():
        cmd = [sys.executable, str(REPO / script), "--model_name", model, "--save_dir", str(save_dir),
               "--num_iterations", "4", "--decision_sequence", "LGGL", "--num_calibration_prompts", "32",
               "--calibration_batch_size", "8", "--align", str(align), *extra]
        if save_dir.exists():
            cmd.append("--resume")
        run(cmd, work / f"{save_dir.name}.log")
    return target


def random_llama(hidden: int, heads: int, kv_heads: int, layers: int):
    """(A random Llama with heads of 32 over the embedded tokenizer's vocabulary, that tokenizer).
    Untied: tied random embeddings make it repeat its input."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(embedded_checkpoint("smollm2-135m"))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=32,
                         max_position_embeddings=1024, bos_token_id=1, eos_token_id=2, pad_token_id=2,
                         tie_word_embeddings=False)
    return LlamaForCausalLM(config).eval(), tokenizer


def prune_head(model, head: int):
    """The project's width-step surgery removing one head (group) from every layer; returns the model."""
    from mop.models.adapter import get_adapter
    from mop.prune.surgery import remove_groups, sync_config

    adapter = get_adapter(model)
    for layer in adapter.layers():
        remove_groups(adapter, layer, [head])
    sync_config(adapter)
    return model


def tiny_heads_pruned(work: Path) -> Path:
    """A random 2-layer MHA Llama (hidden 128, 4 heads of 32) with the embedded tokenizer, head 1 pruned."""
    target = work / "tiny_mha_3_of_4_heads"
    if not target.exists():
        model, tokenizer = random_llama(hidden=128, heads=4, kv_heads=4, layers=2)
        save_checkpoint(prune_head(model, 1), tokenizer, target)
    return target


def convert(build: LlamaCppBuild, checkpoint: Path, outtype: str, out: Path, work: Path) -> dict:
    """mop.deploy.gguf.convert with the check's log name; a failed conversion stops the check with it."""
    return gguf.convert(build, checkpoint, outtype, out, work / f"{out.stem}.convert.log")


# ----------------------------------------------------------------------------- comparisons


def prompt_ids(tokenizer, question: str) -> list[int]:
    """The ChatML prompt's token ids (transformers 5's apply_chat_template returns the encoding)."""
    return tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                         return_dict=True)["input_ids"]


def held_out_texts() -> list[str]:
    records = read_json(REPO / "mop" / "assets" / "instructions.json")
    return [calibration_prompt(records[i]) + " " + records[i]["output"] for i in HELD_OUT]


@torch.no_grad()
def hf_greedy(model, ids: list[int], n: int) -> list[int]:
    """Argmax continuation, EOS included like any token (as LlamaCpp.greedy does)."""
    out = list(ids)
    for _ in range(n):
        out.append(int(model(torch.tensor([out])).logits[0, -1].argmax()))
    return out[len(ids):]


def total_nll(logits: np.ndarray, ids: list[int]) -> float:
    """Summed negative log-likelihood of ids[1:] given the logits at positions 0..n-2."""
    x = torch.from_numpy(logits[:-1]).double()
    return torch.nn.functional.cross_entropy(x, torch.tensor(ids[1:]), reduction="sum").item()


def compare(C, gguf: Path, hf_model, tokenizer) -> dict:
    runtime = LlamaCpp(C, gguf)
    try:
        greedy = []
        for question in PROMPTS:
            ids = prompt_ids(tokenizer, question)
            greedy.append({"hf": hf_greedy(hf_model, ids, GREEDY_TOKENS), "llama_cpp": runtime.greedy(ids, GREEDY_TOKENS)})
        agree = total = 0
        nll = {"hf": 0.0, "llama_cpp": 0.0}
        for text in held_out_texts():
            ids = tokenizer(text)["input_ids"]
            with torch.no_grad():
                hf_logits = hf_model(torch.tensor([ids])).logits[0].double().numpy()
            cpp_logits = runtime.logits(ids)
            agree += int((hf_logits[:-1].argmax(-1) == cpp_logits[:-1].argmax(-1)).sum())
            total += len(ids) - 1
            nll["hf"] += total_nll(hf_logits, ids)
            nll["llama_cpp"] += total_nll(cpp_logits, ids)
        token_match = all(tokenizer(t)["input_ids"] == runtime.tokenize(t) for t in TOKENIZER_TEXTS)
    finally:
        runtime.close()
    return {
        "greedy_identical": sum(g["hf"] == g["llama_cpp"] for g in greedy), "greedy_prompts": len(greedy),
        "greedy_tokens_agreeing": sum(a == b for g in greedy for a, b in zip(g["hf"], g["llama_cpp"])),
        "greedy_tokens": GREEDY_TOKENS * len(greedy),
        "next_token_agreement": round(agree / total, 4), "positions": total,
        "ppl_hf": round(math.exp(nll["hf"] / total), 4), "ppl_llama_cpp": round(math.exp(nll["llama_cpp"] / total), 4),
        "tokenizer_identical": token_match, "greedy": greedy,
    }


def fallbacks_allowed(outtype: str, warnings: list[str]) -> bool:
    """q8_0 (32-blocks) may not fall back at all; Q4_K_M only where the dense model does too
    (hidden-wide rows), never on the MLP width that --align sets."""
    if outtype == "q4_k_m":
        return not any(KQUANT_ROWS_SET_BY_PRUNING in line for line in warnings)
    return not warnings


def checkpoint_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())


@exit_on_usage_error
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llama_cpp", required=True, help="extracted llama-cpp-python sdist")
    parser.add_argument("--lib_dir", required=True, help="folder holding the built libllama.so")
    parser.add_argument("--work", default=str(REPO / ".cache" / "check-gguf"))
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    build, work = find_build(args.llama_cpp, args.lib_dir), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    dense = embedded_checkpoint("smollm2-135m")
    # (name, checkpoint, output types): f32 first, the quantized types are made from or next to it
    checkpoints = [
        ("dense smollm2-135m", dense, ("f32", "q8_0", "q4_k_m")),
        ("Llama2/prune.py LGGL it4 (align 32)", pruned_checkpoint(work, "Llama2/prune.py", "smollm2-135m-mha", [], 32),
         ("f32", "q8_0")),
        ("Llama3/prune.py LGGL it4 (align 32)", pruned_checkpoint(work, "Llama3/prune.py", "smollm2-135m",
                                                                  ["--mlp_only"], 32), ("f32", "q8_0")),
        ("Llama2/prune.py LGGL it4 (align 256)", pruned_checkpoint(work, "Llama2/prune.py", "smollm2-135m-mha", [], 256),
         ("f32", "q4_k_m")),
        ("Llama3/prune.py LGGL it4 (align 256)", pruned_checkpoint(work, "Llama3/prune.py", "smollm2-135m",
                                                                   ["--mlp_only"], 256), ("f32", "q4_k_m")),
        ("tiny MHA, 3 of 4 heads", tiny_heads_pruned(work), ("f32", "q8_0")),
    ]
    C = load_bindings(build)
    results, failed = [], False
    for name, folder, outtypes in checkpoints:
        config = read_json(folder / "config.json")
        tokenizer = AutoTokenizer.from_pretrained(folder)
        hf_model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        stem = folder.parent.name if folder.name.startswith("prune_") else folder.name
        for outtype in outtypes:
            out = work / f"{stem}-{outtype}.gguf"
            made = (quantize(C, work / f"{stem}-f32.gguf", out, C.LLAMA_FTYPE_MOSTLY_Q4_K_M) if outtype == "q4_k_m"
                    else convert(build, folder, outtype, out, work))
            row = {"checkpoint": name, "outtype": outtype, "path": str(folder),
                   "layers": config["num_hidden_layers"], "heads": config["num_attention_heads"],
                   "head_dim": config.get("head_dim"), "hidden": config["hidden_size"],
                   "intermediate": config["intermediate_size"], "hf_bytes": checkpoint_size(folder),
                   "has_tokenizer_model": (folder / "tokenizer.model").exists(), **made}
            row.update(compare(C, out, hf_model, tokenizer))
            failed |= not row["tokenizer_identical"] or not fallbacks_allowed(outtype, row["fallback_warnings"])
            failed |= outtype == "f32" and row["greedy_identical"] != row["greedy_prompts"]
            results.append(row)
            print(f"{name:38s} {outtype:5s} greedy {row['greedy_identical']}/{row['greedy_prompts']} prompts "
                  f"({row['greedy_tokens_agreeing']}/{row['greedy_tokens']} tokens)  next-token "
                  f"{100 * row['next_token_agreement']:.2f}%  ppl hf {row['ppl_hf']:.3f} / llama.cpp "
                  f"{row['ppl_llama_cpp']:.3f}  tokenizer {'same' if row['tokenizer_identical'] else 'DIFFERS'}  "
                  f"fallbacks {len(row['fallback_warnings'])}  gguf {row['gguf_bytes'] / 1e6:.1f} MB", flush=True)
        del hf_model
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"check-gguf: {'FAILED' if failed else 'passed'} in {time.perf_counter() - began:.0f} s; "
          f"details in {work / 'results.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
