"""Zero-shot scoring of a checkpoint with stock EleutherAI lm_eval (no fork).

    python -m mop.evaluate MODEL_DIR OUT_DIR [--tasks piqa,hellaswag,...] [--limit N]

(`Llama2/eval.sh` and `Llama3/eval.sh` are thin wrappers around this.) The paper scores every
checkpoint zero-shot on piqa, hellaswag, winogrande, arc_easy and arc_challenge; that is the
default task list. The project's own small offline tasks (group `mop_mini` = mop_arc, mop_piqa,
mop_hellaswag) live in `mop/tasks/`, which is always passed to lm_eval as an include path.

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
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .cli import OneLineParser
from .io import UsageError, atomic_directory, one_line, exit_on_usage_error, software_versions, write_json

PAPER_TASKS = ("piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge")
TASKS_DIR = Path(__file__).resolve().parent / "tasks"
EVAL_META = "mop_eval.json"
RAW_RESULTS = "lm_eval_results.json"
METRIC_FIELDS = ("acc", "acc_stderr", "acc_norm", "acc_norm_stderr")
ENV_KNOBS = ("EVAL_BATCH_SIZE", "EVAL_DEVICE", "EVAL_DTYPE", "EVAL_LIMIT", "NUM_GPUS")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


# ----------------------------------------------------------------------------- lm_eval's output


def _number(value) -> float | None:
    """lm_eval writes "N/A" (or NaN) where a stderr cannot be computed; store those as null."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def parse_metric_keys(task_result: dict) -> dict[str, float | None]:
    """One task's lm_eval entry -> {acc, acc_stderr, acc_norm, acc_norm_stderr}.

    lm_eval keys every metric as "<metric>,<filter>" ("acc,none", "acc_norm_stderr,none"). The
    unfiltered value ("none") is used; a task that only reports a filtered variant gets that one.
    A metric the task does not report is None.
    """
    by_metric: dict[str, dict[str, object]] = {}
    for key, value in task_result.items():
        if "," in key:
            metric, filter_name = key.split(",", 1)
            by_metric.setdefault(metric, {})[filter_name] = value
    parsed = {}
    for field in METRIC_FIELDS:
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
    if value <= 0:
        raise UsageError(f"--limit must be positive, not {text!r}")
    return value if value < 1 else int(value)


def resolve_eval_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {name} requested but CUDA is not available")
    return name


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


def resolve_model_dir(name: str) -> str:
    """A local checkpoint folder (must hold config.json), an embedded name, or a hub id.

    `owner/name` is taken for a hub id only when `owner` is not a local folder, so a mistyped
    results path is reported as missing instead of being sent to the hub.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UsageError(f"{name} holds no config.json: not a (complete) model checkpoint")
        return str(path.resolve())
    if name.startswith((".", "/", "~")):
        raise UsageError(f"model folder not found: {name}")
    from .embedded import EMBEDDED_NAMES, resolve_model_name  # imports torch: only when needed

    if name in EMBEDDED_NAMES:
        return resolve_model_name(name)
    if HUB_ID.match(name) and not Path(name.split("/")[0]).exists():
        from .pruner import load_config

        try:  # an unreachable or unknown hub id fails here, before any task is indexed
            load_config(name)
        except UsageError as err:
            raise UsageError(str(err).splitlines()[0]) from None
        return name
    raise UsageError(f"model folder not found: {name}")


def check_gpu_count(num_gpus: int) -> None:
    import torch

    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if available < num_gpus:
        raise UsageError(f"NUM_GPUS={num_gpus} but only {available} CUDA device(s) are visible")


def parse_tasks(text: str) -> list[str]:
    tasks = [t.strip() for t in text.split(",") if t.strip()]
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
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model_dir, device=settings["device"], dtype=settings["dtype"],
              batch_size=settings["batch_size"])
    try:
        return simple_evaluate(model=lm, tasks=tasks, num_fewshot=0, limit=settings["limit"],
                               task_manager=task_manager, log_samples=False)
    except ConnectionError as err:  # a hub task's dataset while offline
        raise UsageError(f"cannot fetch the data of {', '.join(tasks)} (no hub access?): {one_line(err)}; "
                         "the local tasks (mop_mini) work offline") from None


def accelerate_command(model_dir: str, tasks: list[str], settings: dict, include_path: Path, output_path: Path) -> list[str]:
    """The stock lm_eval CLI under `accelerate launch` (one model replica per GPU)."""
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(settings["num_gpus"]),
        "--multi_gpu", "--main_process_port", "0",  # a free port: several scoring stages may share a node
        "-m", "lm_eval",
        "--model", "hf", "--model_args", f"pretrained={model_dir},dtype={settings['dtype']}",
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


# ----------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", help="checkpoint folder (HF format), embedded name or hub id")
    p.add_argument("out_dir", help="results folder to create, e.g. .../prune_iteration_8_ft_2ep_eval")
    p.add_argument("--tasks", default=",".join(PAPER_TASKS), help="comma list of lm_eval tasks or groups")
    p.add_argument("--batch_size", default=env_default("EVAL_BATCH_SIZE"))
    p.add_argument("--device", default=env_default("EVAL_DEVICE", "auto"))
    p.add_argument("--dtype", default=env_default("EVAL_DTYPE", "auto"))
    p.add_argument("--limit", default=env_default("EVAL_LIMIT"), help="quick runs only: N docs per task")
    p.add_argument("--num_gpus", type=int, default=int(env_default("NUM_GPUS", "1")))
    p.add_argument("--include_path", default=str(TASKS_DIR), help="folder of local lm_eval task YAMLs")
    return p


def command_line(argv: list[str]) -> str:
    """How this result was made: the command and the environment knobs that were set."""
    knobs = [f"{k}={shlex.quote(os.environ[k])}" for k in ENV_KNOBS if os.environ.get(k)]
    return " ".join(knobs + ["python -m mop.evaluate", shlex.join(argv)])


def run_evaluation(args: argparse.Namespace, argv: list[str]) -> dict | None:
    out_dir = Path(args.out_dir)
    if (out_dir / EVAL_META).exists():
        print(f"{out_dir}: already complete -- skipped (it holds {EVAL_META})")
        return None
    if out_dir.exists():
        raise UsageError(f"{out_dir} exists but holds no {EVAL_META}; remove it or choose another OUT_DIR")
    model_dir = resolve_model_dir(args.model_dir)
    tasks = parse_tasks(args.tasks)
    if args.num_gpus < 1:
        raise UsageError("NUM_GPUS / --num_gpus must be at least 1")
    if args.num_gpus > 1:
        check_gpu_count(args.num_gpus)
    device = "cuda" if args.num_gpus > 1 else resolve_eval_device(args.device)
    settings = {
        "device": device,
        "dtype": resolve_eval_dtype(args.dtype, device),
        "batch_size": resolve_batch_size(args.batch_size, device),
        "limit": parse_limit(args.limit),
        "num_gpus": args.num_gpus,
    }
    include_path = Path(args.include_path)
    task_manager = task_manager_for(tasks, include_path)
    began = time.perf_counter()
    if args.num_gpus > 1:
        work = out_dir.parent / f".work-{out_dir.name}"
        try:
            raw = evaluate_data_parallel(model_dir, tasks, settings, include_path, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    else:
        raw = evaluate_in_process(model_dir, tasks, settings, task_manager)
    extra = {"requested_tasks": tasks, "limit": settings["limit"], "settings": settings,
             "seconds": round(time.perf_counter() - began, 1)}
    summary = summarize(raw, model_dir, command_line(argv), num_fewshot=0, extra=extra)
    write_outputs(out_dir, raw, summary)
    print_summary(summary, out_dir)
    return summary


def print_summary(summary: dict, out_dir: Path) -> None:
    print(f"{'task':<20} {'acc':>8} {'acc_norm':>9}")
    for name, m in summary["tasks"].items():
        acc = "-" if m["acc"] is None else f"{100 * m['acc']:.2f}"
        norm = "-" if m["acc_norm"] is None else f"{100 * m['acc_norm']:.2f}"
        print(f"{name:<20} {acc:>8} {norm:>9}")
    print(f"wrote {out_dir / EVAL_META} ({summary['seconds']} s)")


def main(argv: list[str] | None = None) -> dict | None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    return exit_on_usage_error(run_evaluation)(args, argv)


if __name__ == "__main__":
    main()
