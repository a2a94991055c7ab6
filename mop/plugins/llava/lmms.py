"""LLaVA's visual benchmarks through lmms-eval: which tasks it scores, its command, its results.

    python -m mop.plugins.llava.lmms evaluate MODEL_DIR OUT_DIR [--tasks ...]   what Llava/eval.sh runs
    python -m mop.plugins.llava.lmms available                                   exit 0 and the version, or exit 1

lmms-eval, the evaluator LLaVA papers use, lives in an environment of its own (`make install-lmms`
makes .cache/lmms-venv; LMMS_PYTHON points elsewhere), so the project's environment stays lean:
it runs as a subprocess (`python -m lmms_eval --model llava_hf ...`) and is never imported here.

Tasks are routed by name, so one OUT_DIR holds a checkpoint's text and visual scores:
  lmms_paper                the five rule-scored benchmarks of LLaVA-1.5: scienceqa_img, pope,
                            mme, vizwiz_vqa_val, textvqa_val (hub datasets)
  mmvet, llava_in_the_wild  scored by a GPT judge: refused unless its key is set (OPENAI_API_KEY,
                            or AZURE_API_KEY with API_TYPE=azure: lmms-eval's judge settings)
  mop_shapes_lmms           the project's offline task (mop/plugins/llava/tasks_lmms), for tests and CPU runs
  lmms:<task>               any other lmms-eval task
  anything else             an lm_eval task, scored by mop.plugins.llava.plugin's `hf-multimodal` backend
SCORER=lmms (environment) makes lmms_paper the default task list (else `paper,mmmu_val`, lm_eval
only, as before) and insists on lmms-eval being installed.

Each benchmark's headline metric is stored as `acc` in mop_eval.json, as a fraction of its full
scale, so that `python -m mop.evaluate.tables` shows it like an accuracy: ScienceQA-IMG, VizWiz-VQA and
TextVQA exact match (VQA accuracy for the two VQA sets), POPE F1 (what LLaVA-1.5 reports), MME
perception score / 2000, MM-Vet and LLaVA-Bench GPT scores / 100. Every metric lmms-eval reported
is kept as it is under `lmms_metrics`.

OUT_DIR (written atomically, skipped when it holds mop_eval.json, like mop.evaluate.harness):
  mop_eval.json                      the project's record (see mop/evaluate/harness.py)
  lmms_eval_results.json             lmms-eval's results file
  lmms_eval_samples_<task>.jsonl     every document's prompt, generated answer and score
  lm_eval_results.json               when lm_eval tasks were scored too
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ...core.args import OneLineParser
from ...core.io import (UsageError, atomic_directory, check_writable_target, exit_on_usage_error, locked_result,
                        write_json)
from ...core.layout import EVAL_META, RAW_RESULTS, work_dir_for
from ...evaluate.harness import (add_eval_arguments, check_out_dir, command_line, merge_result_dicts, parse_tasks,
                                 print_summary, score_checkpoint, summarize)
from ...evaluate.lmms_results import merged_results, parse_results, result_files
from ...models.loading import check_weights, load_config, resolve_model_dir
from .tasks_lmms.make_parquet import ensure_parquet

REPO = Path(__file__).resolve().parents[3]
TASKS_LMMS = Path(__file__).resolve().parent / "tasks_lmms"
DEFAULT_LMMS_PYTHON = REPO / ".cache" / "lmms-venv" / "bin" / "python"
PINNED_VERSION = "0.7.3"  # requirements-lmms.txt; the paper tasks' dataset names depend on it
INSTALL_HINT = "make install-lmms"

LMMS_PAPER_ALIAS = "lmms_paper"
LMMS_PAPER_TASKS = ("scienceqa_img", "pope", "mme", "vizwiz_vqa_val", "textvqa_val")
JUDGE_TASKS = ("mmvet", "llava_in_the_wild")
LOCAL_TASKS = ("mop_shapes_lmms",)  # mop/plugins/llava/tasks_lmms/*.yaml
PREFIX = "lmms:"
SCORERS = ("auto", "lmms")
TEXT_DEFAULT_TASKS = "paper,mmmu_val"  # Llava/eval.sh's lm_eval default

RESULTS_NAME = "lmms_eval_results.json"
SAMPLES_NAME = "lmms_eval_samples_{task}.jsonl"


class LmmsEvalFailed(RuntimeError):
    """lmms-eval ran but produced no results (its own output says why): exit 1, one line."""


# ----------------------------------------------------------------------------- the environment


def lmms_python() -> Path:
    """The interpreter of lmms-eval's environment: LMMS_PYTHON, else .cache/lmms-venv's."""
    configured = os.environ.get("LMMS_PYTHON", "").strip()
    return Path(configured) if configured else DEFAULT_LMMS_PYTHON


def installed_version(python: Path) -> str | None:
    """lmms-eval's version in that environment, None when it (or the interpreter) is missing.
    Reads the package metadata only: a fraction of a second, where importing takes seconds."""
    if not (python.is_file() and os.access(python, os.X_OK)):
        return None
    probe = "import importlib.metadata as m; print(m.version('lmms_eval'))"
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def missing_message(python: Path) -> str:
    """The one line that says how to get lmms-eval (eval.sh's exit 2, the driver's note)."""
    return (f"lmms-eval is not installed (no lmms_eval for {python}): run `{INSTALL_HINT}`, "
            "or set LMMS_PYTHON to a Python that has it")


def require_lmms() -> tuple[Path, str]:
    """(interpreter, version) of lmms-eval's environment, or the one-line install hint."""
    python = lmms_python()
    version = installed_version(python)
    if version is None:
        raise UsageError(missing_message(python))
    if version != PINNED_VERSION:
        print(f"warning: lmms-eval {version} found; the project pins {PINNED_VERSION} "
              "(its tasks' hub dataset names differ between versions)", flush=True)
    return python, version


# ----------------------------------------------------------------------------- tasks


def scorer_setting() -> str:
    """SCORER from the environment: auto (default) or lmms."""
    scorer = os.environ.get("SCORER", "").strip() or "auto"
    if scorer not in SCORERS:
        raise UsageError(f"SCORER must be one of {', '.join(SCORERS)}, not {scorer!r}")
    return scorer


def expand_tasks(text: str) -> list[str]:
    """A comma list with `lmms_paper` (and mop.evaluate.harness's `paper`) expanded, duplicates dropped."""
    names = []
    for name in (t.strip() for t in text.split(",")):
        names += list(LMMS_PAPER_TASKS) if name == LMMS_PAPER_ALIAS else [name]
    return list(dict.fromkeys(parse_tasks(",".join(names))))


def is_lmms_task(name: str) -> bool:
    """Whether lmms-eval scores this task: its known names, the project's, or an `lmms:` prefix."""
    return name.startswith(PREFIX) or name in LMMS_PAPER_TASKS + JUDGE_TASKS + LOCAL_TASKS


def split_tasks(tasks: list[str]) -> tuple[list[str], list[str]]:
    """(lmms-eval task names, `lmms:` prefix removed; lm_eval task names), order kept."""
    lmms = [t.removeprefix(PREFIX) for t in tasks if is_lmms_task(t)]
    if any(not t for t in lmms):
        raise UsageError(f"'{PREFIX}' must be followed by an lmms-eval task name")
    return lmms, [t for t in tasks if not is_lmms_task(t)]


def judge_key_name() -> str:
    """The variable lmms-eval's GPT judge reads its key from (API_TYPE selects the provider)."""
    return "AZURE_API_KEY" if os.environ.get("API_TYPE", "openai").strip().lower() == "azure" else "OPENAI_API_KEY"


def check_judge_key(tasks: list[str]) -> None:
    """Judged benchmarks (MM-Vet, LLaVA-Bench) only with a judge key: without one lmms-eval would
    generate every answer and then fail, or score them as zeros."""
    judged = [t for t in tasks if t in JUDGE_TASKS]
    key = judge_key_name()
    if judged and not os.environ.get(key, "").strip():
        raise UsageError(f"{', '.join(judged)}: scored by a GPT judge, which needs {key} "
                         "(lmms-eval's judge key); set it or leave the task out")


# ----------------------------------------------------------------------------- running lmms-eval


def model_args(model_path: str, settings: dict) -> str:
    """llava_hf's --model_args; lmms-eval splits the string at commas, so a path may hold none.
    device_map names the device too: llava_hf's default (an empty string) is refused by
    transformers' from_pretrained."""
    if "," in model_path:
        raise UsageError(f"lmms-eval cannot load a model folder whose path holds a comma: {model_path}")
    device = settings["device"]
    return f"pretrained={model_path},device={device},device_map={device},dtype={settings['dtype']}"


def lmms_command(python: Path, model_path: str, tasks: list[str], settings: dict, output_path: Path) -> list[str]:
    """The stock lmms-eval CLI: llava_hf (one image-question at a time; it supports no larger
    batch), the project's task folder included, every sample logged. `--reasoning_tags none`:
    LLaVA writes no <think> blocks, and with tag stripping on (0.7.3's default) the samples
    file logs the filtered answer in place of the generated text."""
    cmd = [str(python), "-m", "lmms_eval", "--model", "llava_hf", "--model_args", model_args(model_path, settings),
           "--tasks", ",".join(tasks), "--batch_size", "1", "--include_path", str(TASKS_LMMS),
           "--reasoning_tags", "none", "--log_samples", "--output_path", str(output_path)]
    if settings["limit"] is not None:
        cmd += ["--limit", str(settings["limit"])]
    return cmd


def prepare_local_data(tasks: list[str]) -> None:
    """Write the local parquet files the requested project tasks read (only when stale)."""
    if "mop_shapes_lmms" in tasks:
        ensure_parquet()


def run_lmms(python: Path, model_path: str, tasks: list[str], settings: dict, work: Path) -> tuple[dict, dict]:
    """Run lmms-eval from the repository root (the local tasks' data paths are relative to it);
    returns (its results, without samples; {task: its samples file})."""
    output_path = work / "lmms_eval_output"
    cmd = lmms_command(python, model_path, tasks, settings, output_path)
    print("running:", " ".join(cmd), flush=True)
    done = subprocess.run(cmd, cwd=REPO)
    paths = result_files(output_path)
    if done.returncode != 0 or not paths:  # 0.7.3 exits 0 after an error during evaluation
        hub = [t for t in tasks if t not in LOCAL_TASKS]
        hint = f"; {', '.join(hub)} read hub datasets: no hub access?" if hub else ""
        raise LmmsEvalFailed(f"lmms-eval wrote no results (exit status {done.returncode}; its output is above){hint}")
    raw = merged_results(paths[-1:])
    samples = {}
    for task in tasks:
        found = sorted(output_path.rglob(f"*_samples_{task}.jsonl"))
        if found:
            samples[task] = found[-1]
    return raw, samples


# ----------------------------------------------------------------------------- scoring a checkpoint


def lmms_summary(text_raw: dict | None, lmms_raw: dict, model_path: str, command: str, extra: dict) -> dict:
    """mop_eval.json: mop.evaluate.harness's record of both passes, the lmms-eval tasks' entries being
    their headline metrics (lmms-eval reports no `acc`), every lmms-eval metric kept as well."""
    raw = merge_result_dicts([r for r in (text_raw, lmms_raw) if r], later_wins=False)
    summary = summarize(raw, model_path, command, num_fewshot=0, extra=extra)
    parsed = parse_results(lmms_raw)
    summary["tasks"] = {**summary["tasks"], **parsed["tasks"]}
    summary["lmms_metrics"] = parsed["lmms_metrics"]
    summary["lmms_headlines"] = parsed["lmms_headlines"]
    return summary


def write_lmms_outputs(out_dir: Path, text_raw: dict | None, lmms_raw: dict, samples: dict, summary: dict) -> None:
    """OUT_DIR appears complete or not at all (mop.core.io.atomic_directory), as mop.evaluate.harness's does."""
    with atomic_directory(out_dir) as tmp:
        if text_raw:
            write_json(tmp / RAW_RESULTS, {k: v for k, v in text_raw.items() if k != "samples"})
        write_json(tmp / RESULTS_NAME, lmms_raw)
        for task, path in samples.items():
            shutil.copyfile(path, tmp / SAMPLES_NAME.format(task=task))
        write_json(tmp / EVAL_META, summary)


def llava_backend():
    """LLaVA's lm_eval backend (plugin.LlavaEval). Imported here, when a checkpoint is scored, so that
    `available` and the task routing run without torch and peft (the LLaVA driver asks at its start)."""
    from .plugin import LlavaEval

    return LlavaEval()


def score_with_lmms(args: argparse.Namespace, command: str, lmms_tasks: list[str], text_tasks: list[str],
                    python: Path, version: str) -> dict | None:
    """Score a LLaVA checkpoint: lm_eval tasks in process (mop.plugins.llava.plugin), lmms-eval tasks in its
    environment; one OUT_DIR, checked, locked and written like mop.evaluate.harness's."""
    backend = llava_backend()
    out_dir = Path(args.out_dir)
    if check_out_dir(out_dir):
        return None
    check_judge_key(lmms_tasks)
    model_path = resolve_model_dir(args.model_dir)
    backend.check(args.model_dir, load_config(model_path))
    check_weights(model_path)
    settings = backend.settings(args)
    model_args(model_path, settings)  # a path lmms-eval cannot take is refused before any work
    include_path = Path(args.include_path)
    manager = backend.task_manager(text_tasks, include_path) if text_tasks else None
    check_writable_target(out_dir, "OUT_DIR")
    with locked_result(out_dir, f"the scoring into {out_dir}"):
        if check_out_dir(out_dir):
            return None
        began = time.perf_counter()
        prepare_local_data(lmms_tasks)
        text_raw, extra = (backend.run(model_path, text_tasks, settings, manager, include_path, out_dir)
                           if text_tasks else (None, {}))
        work = work_dir_for(out_dir)
        shutil.rmtree(work, ignore_errors=True)
        try:
            lmms_raw, samples = run_lmms(python, model_path, lmms_tasks, settings, work)
            lmms_settings = {"model": "llava_hf", "batch_size": 1, "device": settings["device"],
                             "dtype": settings["dtype"], "limit": settings["limit"]}
            extra = {"requested_tasks": text_tasks + lmms_tasks, **extra, "lmms_tasks": lmms_tasks,
                     "scorer": "lm_eval + lmms-eval" if text_tasks else "lmms-eval", "limit": settings["limit"],
                     **({"settings": settings} if text_tasks else {}), "lmms_settings": lmms_settings,
                     "lmms_command": lmms_command(python, model_path, lmms_tasks, settings, Path("<work>")),
                     "seconds": round(time.perf_counter() - began, 1)}
            summary = lmms_summary(text_raw, lmms_raw, model_path, command, extra)
            # the installed package's version: lmms-eval's own "lmms_eval_version" names the git
            # commit of the folder it ran in (here the project's repository) when there is one
            summary["versions"]["lmms_eval"] = version
            write_lmms_outputs(out_dir, text_raw, lmms_raw, samples, summary)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print_summary(summary, out_dir)
    return summary


def evaluate(args: argparse.Namespace, command: str) -> dict | None:
    """`evaluate`: route the tasks; without lmms-eval tasks this is exactly `mop.plugins.llava.plugin evaluate`."""
    scorer = scorer_setting()
    text = args.tasks or (LMMS_PAPER_ALIAS if scorer == "lmms" else TEXT_DEFAULT_TASKS)
    lmms_tasks, text_tasks = split_tasks(expand_tasks(text))
    if scorer == "lmms" or lmms_tasks:
        python, version = require_lmms()  # SCORER=lmms insists on it, whatever the tasks
    if not lmms_tasks:
        args.tasks = text
        return score_checkpoint(args, command, llava_backend())
    return score_with_lmms(args, command, lmms_tasks, text_tasks, python, version)


def available() -> int:
    """`available`: 0 and the version when lmms-eval is installed, else 1 and the install hint."""
    python = lmms_python()
    version = installed_version(python)
    if version is None:
        print(missing_message(python))
        return 1
    print(f"lmms-eval {version} ({python})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """`evaluate` takes mop.evaluate.harness's arguments and knobs; `available` none."""
    p = OneLineParser(prog="python -m mop.plugins.llava.lmms", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="score a LLaVA checkpoint (lmms-eval and lm_eval tasks) into OUT_DIR")
    add_eval_arguments(ev, "")
    sub.add_parser("available", help="exit 0 when lmms-eval is installed (prints its version), else 1")
    return p


def main(argv: list[str] | None = None):
    """Bad input: one line, exit 2 (before any model is loaded); a failed lmms-eval run: one line, exit 1."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.command == "available":
        raise SystemExit(available())
    try:
        return exit_on_usage_error(evaluate)(args, command_line("mop.plugins.llava.lmms", argv))
    except LmmsEvalFailed as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
