"""Zero-shot scoring of a checkpoint with stock EleutherAI lm_eval (no fork).

    python -m mop.evaluate MODEL_DIR OUT_DIR [--tasks piqa,hellaswag,...] [--limit N]

(`Llama2/eval.sh` and `Llama3/eval.sh` are thin wrappers around this.) The paper scores every
checkpoint zero-shot on piqa, hellaswag, winogrande, arc_easy and arc_challenge; that is the
default task list. The project's own small offline tasks (group `mop_mini` = mop_arc, mop_piqa,
mop_hellaswag) live in `mop/evaluate/tasks/`, which is always passed to lm_eval as an include path.

Environment knobs (each one is also a flag; the flag wins):
  EVAL_BATCH_SIZE  lm_eval batch size (default: `auto` on CUDA, 8 on CPU)
  EVAL_DEVICE      auto (cuda if available, else cpu), cpu, cuda, cuda:1, ...
  EVAL_DTYPE       auto (the checkpoint's own dtype on CUDA, float32 on CPU), float32, bfloat16, float16
  EVAL_LIMIT       score only the first N documents of each task (or a fraction < 1): quick runs only
  NUM_GPUS         > 1: data-parallel run, `accelerate launch -m lm_eval ...` (the stock CLI)

Output (OUT_DIR is written atomically: it appears complete or not at all):
  lm_eval_results.json  lm_eval's own results dictionary (per-sample logs are not kept)
  mop_eval.json         {"model_dir", "tasks": {task: {acc, acc_stderr, acc_norm, acc_norm_stderr}},
                         "groups", "num_fewshot", "limit", "versions", "command", ...}

An OUT_DIR that already holds mop_eval.json is complete: the run prints "already complete --
skipped" and exits 0 without loading the model, so a batch of evaluations can simply be started
again after an interruption. A missing model folder, an unknown task or an OUT_DIR that exists
without mop_eval.json is a one-line error with exit status 2; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..core.args import OneLineParser
from ..core.io import (UsageError, atomic_directory, check_writable_target, exit_on_usage_error, locked_result,
                       one_line, software_versions, write_json)
from ..core.layout import EVAL_META, RAW_RESULTS, work_dir_for
from ..models.adapter import is_multimodal, wrapper_plugin
from ..models.loading import (DTYPES, check_weights, earlier_form, load_config, load_model, reading_checkpoint,
                              resolve_device, resolve_model_dir, saved_dtype, text_tokenizer)

# The paper's zero-shot tasks; `paper` in a task list stands for them (the drivers' default).
PAPER_TASKS = ("piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge")
PAPER_ALIAS = "paper"
TASKS_DIR = Path(__file__).resolve().parent / "tasks"
METRIC_FIELDS = ("acc", "acc_stderr", "acc_norm", "acc_norm_stderr")
# Reported by rolling log-likelihood tasks (mop_heldout_ppl); kept only for tasks that report them.
PERPLEXITY_FIELDS = ("word_perplexity", "byte_perplexity", "bits_per_byte")
ENV_KNOBS = ("EVAL_BATCH_SIZE", "EVAL_DEVICE", "EVAL_DTYPE", "EVAL_LIMIT", "NUM_GPUS")


# ----------------------------------------------------------------------------- lm_eval's output


def _number(value) -> float | None:
    """lm_eval writes "N/A" (or NaN) where a stderr cannot be computed; store those as null."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def parse_metric_keys(task_result: dict) -> dict[str, float | None]:
    """One task's lm_eval entry -> {acc, acc_stderr, acc_norm, acc_norm_stderr}, plus
    {word_perplexity, byte_perplexity, bits_per_byte} for a task that reports them.

    lm_eval keys every metric as "<metric>,<filter>" ("acc,none", "acc_norm_stderr,none"). The
    unfiltered value ("none") is used; a task that only reports a filtered variant gets that one.
    An accuracy metric the task does not report is None.
    """
    by_metric: dict[str, dict[str, object]] = {}
    for key, value in task_result.items():
        if "," in key:
            metric, filter_name = key.split(",", 1)
            by_metric.setdefault(metric, {})[filter_name] = value
    parsed = {}
    for field in METRIC_FIELDS + tuple(f for f in PERPLEXITY_FIELDS if f in by_metric):
        variants = by_metric.get(field, {})
        raw = variants["none"] if "none" in variants else next(iter(variants.values()), None)
        parsed[field] = _number(raw)
    return parsed


def group_names(raw: dict) -> set[str]:
    """Names in lm_eval's results that are groups (aggregates of other tasks), not tasks."""
    return {name for name, subtasks in raw.get("group_subtasks", {}).items() if subtasks}


def summarize(raw: dict, model_dir: str, command: str, num_fewshot: int, extra: dict | None = None) -> dict:
    """The project's compact record of one evaluation (the schema every table reads)."""
    groups = group_names(raw)
    results = raw.get("results", {})
    tasks = {name: parse_metric_keys(res) for name, res in sorted(results.items()) if name not in groups}
    if not tasks:
        raise ValueError("lm_eval returned no task results")
    versions = software_versions()
    if raw.get("lm_eval_version"):
        versions["lm_eval"] = raw["lm_eval_version"]
    return {
        "model_dir": model_dir,
        "tasks": tasks,
        "groups": {name: parse_metric_keys(results[name]) for name in sorted(groups) if name in results},
        "num_fewshot": num_fewshot,
        "n_shot": raw.get("n-shot", {}),
        "n_samples": {name: n.get("effective") for name, n in raw.get("n-samples", {}).items()},
        "versions": versions,
        "command": command,
        **(extra or {}),
    }


def merge_result_dicts(parts: list[dict], later_wins: bool) -> dict:
    """Several lm_eval / lmms-eval result dictionaries as one: the per-task tables (mapping entries
    other than `config`) merged key by key, a later part's task replacing an earlier one's;
    `samples` dropped; any other entry from the first part, or with `later_wins` from the last."""
    merged: dict = {}
    for raw in parts:
        for key, value in raw.items():
            if key == "samples":
                continue
            if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "config":
                merged[key] = {**merged[key], **value}
            elif later_wins or key not in merged:
                merged[key] = value
    return merged


def write_outputs(out_dir: Path, raw: dict, summary: dict) -> None:
    with atomic_directory(out_dir) as tmp:
        write_json(tmp / RAW_RESULTS, {k: v for k, v in raw.items() if k != "samples"})
        write_json(tmp / EVAL_META, summary)


# ----------------------------------------------------------------------------- settings


def env_default(name: str, fallback: str | None = None) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or fallback


def parse_limit(text: str | None) -> int | float | None:
    """EVAL_LIMIT / --limit: N documents per task, or a fraction of each task when < 1."""
    if text in (None, "", "none", "None"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--limit must be a number, not {text!r}") from None
    if not (math.isfinite(value) and value > 0):  # NaN and inf would reach int() as a traceback
        raise UsageError(f"--limit / EVAL_LIMIT must be a finite number above 0 (N items, or a share below 1), not {text!r}")
    return value if value < 1 else int(value)


def resolve_eval_dtype(name: str, device: str) -> str:
    """`auto`: the checkpoint's stored dtype on CUDA (lm_eval's own `auto`), float32 on CPU."""
    if name not in ("auto", "float32", "bfloat16", "float16"):
        raise UsageError(f"unknown dtype {name!r}; choose auto, float32, bfloat16 or float16")
    if name == "auto" and not device.startswith("cuda"):
        return "float32"
    return name


def resolve_batch_size(text: str | None, device: str) -> str | int:
    if text is None:
        return "auto" if device.startswith("cuda") else 8
    if text.startswith("auto"):
        return text
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"batch size must be a positive integer or 'auto', not {text!r}")
    return int(text)


def check_gpu_count(num_gpus: int) -> None:
    import torch

    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if available < num_gpus:
        raise UsageError(f"NUM_GPUS={num_gpus} but only {available} CUDA device(s) are visible")


def parse_tasks(text: str) -> list[str]:
    """A comma list of lm_eval tasks or groups; `paper` expands to the paper's five tasks."""
    tasks = []
    for name in (t.strip() for t in text.split(",")):
        if name:
            tasks += list(PAPER_TASKS) if name == PAPER_ALIAS else [name]
    if not tasks:
        raise UsageError("no tasks given")
    return tasks


def task_manager_for(tasks: list[str], include_path: Path):
    """A TaskManager that knows every requested task, or a UsageError naming the unknown ones.

    Indexing the project's own tasks alone is fast; lm_eval's full index (thousands of YAML
    files) is built only when a requested task is not a local one.
    """
    from lm_eval.tasks import TaskManager

    if include_path.is_dir():
        local = TaskManager(include_path=str(include_path), include_defaults=False)
        if all(t in local.all_tasks for t in tasks):
            return local
    manager = TaskManager(include_path=str(include_path) if include_path.is_dir() else None)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise UsageError(f"unknown lm_eval task(s): {', '.join(unknown)} (local tasks are read from {include_path})")
    return manager


# ----------------------------------------------------------------------------- running lm_eval


def evaluate_in_process(model_dir: str, tasks: list[str], settings: dict, task_manager) -> dict:
    """One process: lm_eval's HFLM wrapper and simple_evaluate, zero-shot."""
    from lm_eval import simple_evaluate  # heavy: imported on use
    from lm_eval.models.huggingface import HFLM

    with reading_checkpoint(model_dir):
        lm = HFLM(**hflm_model(model_dir, settings), batch_size=settings["batch_size"])
    try:
        return simple_evaluate(model=lm, tasks=tasks, num_fewshot=0, limit=settings["limit"],
                               task_manager=task_manager, log_samples=False)
    except ConnectionError as err:  # a hub task's dataset while offline
        raise UsageError(f"cannot fetch the data of {', '.join(tasks)} (no hub access?): {one_line(err)}; "
                         "the local tasks (mop_mini) work offline") from None


def hflm_model(model_dir: str, settings: dict) -> dict:
    """What HFLM is handed: the model and tokenizer loaded here, not the folder, so every scored
    checkpoint passes the project's checks on load (config against weights, finite weights;
    mop.models.loading) and a folder written before checkpoints were in stock form (whose config stock
    transformers 5 refuses) is read as its stock form. `auto` is the checkpoint's own dtype,
    as HFLM would choose from the folder."""
    config = load_config(model_dir)
    dtype = saved_dtype(config, DTYPES["float32"]) if settings["dtype"] == "auto" else DTYPES[settings["dtype"]]
    model, processing = load_model(model_dir, dtype, settings["device"])
    return dict(pretrained=model, tokenizer=text_tokenizer(processing))


def model_args_json(model_dir: str, dtype: str) -> str:
    """lm_eval's --model_args as one JSON object (lm_eval >= 0.4.10 reads a JSON value as is).

    The `key=value,key=value` form is split at every comma and '=' by lm_eval, so a model path
    holding one would break (or add options); a JSON string cannot be split.
    """
    return json.dumps({"pretrained": str(model_dir), "dtype": dtype})


def accelerate_command(model_dir: str, tasks: list[str], settings: dict, include_path: Path, output_path: Path) -> list[str]:
    """The stock lm_eval CLI under `accelerate launch` (one model replica per GPU)."""
    if earlier_form(model_dir) is not None:
        raise UsageError(f"{model_dir} is in the pre-transformers-5 form that stock lm_eval cannot load; "
                         f"write its stock form first: python -m mop.deploy.export {model_dir} <new folder>")
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(settings["num_gpus"]),
        "--multi_gpu", "--main_process_port", "0",  # a free port: several scoring stages may share a node
        "-m", "lm_eval", "run",
        "--model", "hf", "--model_args", model_args_json(model_dir, settings["dtype"]),
        "--tasks", ",".join(tasks), "--num_fewshot", "0", "--batch_size", str(settings["batch_size"]),
        "--include_path", str(include_path), "--output_path", str(output_path),
    ]
    if settings["limit"] is not None:
        cmd += ["--limit", str(settings["limit"])]
    return cmd


def evaluate_data_parallel(model_dir: str, tasks: list[str], settings: dict, include_path: Path, work: Path) -> dict:
    output_path = work / "lm_eval_output"
    cmd = accelerate_command(model_dir, tasks, settings, include_path, output_path)
    print("running:", shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    found = sorted(output_path.rglob("results_*.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise RuntimeError(f"lm_eval wrote no results_*.json under {output_path}")
    return json.loads(found[-1].read_text())


class EvalBackend:
    """How a kind of checkpoint is scored. This one: causal LMs through lm_eval's `hf` model,
    in process, or data-parallel through the stock CLI under `accelerate launch` (num_gpus > 1).
    mop/plugins/llava/plugin.py subclasses it for LLaVA (`hf-multimodal`, text and image tasks)."""

    multimodal = False
    wrong_kind = "{path} is a LLaVA checkpoint; score it with Llava/eval.sh"

    def check(self, path: str, config) -> None:
        if is_multimodal(config) != self.multimodal:
            raise UsageError(self.wrong_kind.format(path=path))

    def settings(self, args: argparse.Namespace) -> dict:
        num_gpus = getattr(args, "num_gpus", 1)
        if num_gpus < 1:
            raise UsageError("NUM_GPUS / --num_gpus must be at least 1")
        if num_gpus > 1:
            check_gpu_count(num_gpus)
        device = "cuda" if num_gpus > 1 else resolve_device(args.device)
        return {"device": device, "dtype": resolve_eval_dtype(args.dtype, device),
                "batch_size": resolve_batch_size(args.batch_size, device), "limit": parse_limit(args.limit),
                "num_gpus": num_gpus}

    def task_manager(self, tasks: list[str], include_path: Path):
        return task_manager_for(tasks, include_path)

    def run(self, model_path: str, tasks: list[str], settings: dict, manager, include_path: Path,
            out_dir: Path) -> tuple[dict, dict]:
        """(lm_eval's results dictionary, extra fields for mop_eval.json)."""
        if settings["num_gpus"] == 1:
            return evaluate_in_process(model_path, tasks, settings, manager), {}
        work = work_dir_for(out_dir)
        try:
            return evaluate_data_parallel(model_path, tasks, settings, include_path, work), {}
        finally:
            shutil.rmtree(work, ignore_errors=True)


def eval_backend(config) -> EvalBackend:
    """How a checkpoint is scored, found from its config: a multimodal wrapper's plugin registers
    its backend (`EVAL_BACKEND`; LLaVA's scores text tasks through `hf-multimodal`), text
    families use lm_eval's `hf` model. So `python -m mop.evaluate` (Custom/eval.sh) scores any
    kind of checkpoint the project writes."""
    return wrapper_plugin(config).EVAL_BACKEND() if is_multimodal(config) else EvalBackend()


def score_checkpoint(args: argparse.Namespace, command: str, backend: EvalBackend | None = None) -> dict | None:
    """Score args.model_dir on args.tasks into args.out_dir/mop_eval.json (atomically).

    An OUT_DIR holding mop_eval.json is complete and skipped; every input is checked before the
    model is loaded; OUT_DIR is locked (`.<name>.lock` beside it) while it is being made.
    `backend`: how to score it, by default found from the checkpoint's config (`eval_backend`).
    """
    out_dir = Path(args.out_dir)
    if check_out_dir(out_dir):
        return None
    model_path = resolve_model_dir(args.model_dir)
    config = load_config(model_path)
    backend = backend or eval_backend(config)
    backend.check(args.model_dir, config)
    check_weights(model_path)
    tasks = parse_tasks(args.tasks)
    settings = backend.settings(args)
    include_path = Path(args.include_path)
    check_writable_target(out_dir, "OUT_DIR")
    manager = backend.task_manager(tasks, include_path)
    with locked_result(out_dir, f"the scoring into {out_dir}"):
        if check_out_dir(out_dir):  # finished by another run meanwhile
            return None
        began = time.perf_counter()
        raw, extra = backend.run(model_path, tasks, settings, manager, include_path, out_dir)
        extra = {"requested_tasks": tasks, **extra, "limit": settings["limit"], "settings": settings,
                 "seconds": round(time.perf_counter() - began, 1)}
        summary = summarize(raw, model_path, command, num_fewshot=0, extra=extra)
        write_outputs(out_dir, raw, summary)
    print_summary(summary, out_dir)
    return summary


def check_out_dir(out_dir: Path) -> bool:
    """True: OUT_DIR is complete (skip it). An OUT_DIR without mop_eval.json is refused."""
    if (out_dir / EVAL_META).exists():
        print(f"{out_dir}: already complete -- skipped (it holds {EVAL_META})")
        return True
    if out_dir.exists():
        raise UsageError(f"{out_dir} exists but holds no {EVAL_META}; remove it or choose another OUT_DIR")
    return False


# ----------------------------------------------------------------------------- entry point


def add_eval_arguments(p: argparse.ArgumentParser, default_tasks: str) -> None:
    """MODEL_DIR OUT_DIR and the scoring knobs (flags win over the EVAL_* environment)."""
    p.add_argument("model_dir", help="checkpoint folder (HF format), embedded name or hub id")
    p.add_argument("out_dir", help="results folder to create, e.g. .../prune_iteration_8_ft_2ep_eval")
    p.add_argument("--tasks", default=default_tasks,
                   help=f"comma list of lm_eval tasks or groups ({PAPER_ALIAS} = {','.join(PAPER_TASKS)})")
    p.add_argument("--batch_size", default=env_default("EVAL_BATCH_SIZE"))
    p.add_argument("--device", default=env_default("EVAL_DEVICE", "auto"))
    p.add_argument("--dtype", default=env_default("EVAL_DTYPE", "auto"))
    p.add_argument("--limit", default=env_default("EVAL_LIMIT"), help="quick runs only: N docs per task")
    p.add_argument("--include_path", default=str(TASKS_DIR), help="folder of local lm_eval task YAMLs")


def gpu_count(text: str) -> int:
    """NUM_GPUS / --num_gpus: a positive integer (argparse turns the error into one line)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"NUM_GPUS / --num_gpus must be a positive integer, not {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_eval_arguments(p, PAPER_ALIAS)
    p.add_argument("--num_gpus", type=gpu_count, default=env_default("NUM_GPUS", "1"),
                   help="> 1: data-parallel through accelerate launch (env NUM_GPUS)")
    return p


def command_line(module: str, argv: list[str]) -> str:
    """How this result was made: the command and the environment knobs that were set."""
    knobs = [f"{k}={shlex.quote(os.environ[k])}" for k in ENV_KNOBS if os.environ.get(k)]
    return " ".join(knobs + [f"python -m {module}", shlex.join(argv)])


def print_summary(summary: dict, out_dir: Path) -> None:
    print(f"{'task':<20} {'acc':>8} {'acc_norm':>9} {'word_ppl':>10}")
    for name, m in summary["tasks"].items():
        acc = "-" if m["acc"] is None else f"{100 * m['acc']:.2f}"
        norm = "-" if m["acc_norm"] is None else f"{100 * m['acc_norm']:.2f}"
        ppl = "-" if m.get("word_perplexity") is None else f"{m['word_perplexity']:.2f}"
        print(f"{name:<20} {acc:>8} {norm:>9} {ppl:>10}")
    print(f"wrote {out_dir / EVAL_META} ({summary['seconds']} s)")


def main(argv: list[str] | None = None) -> dict | None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    return exit_on_usage_error(score_checkpoint)(args, command_line("mop.evaluate", argv))


if __name__ == "__main__":
    main()
