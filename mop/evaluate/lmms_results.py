"""lmms-eval's results files read as the project's records: each benchmark's headline metric as
`acc`, a fraction of its full scale, so that `python -m mop.evaluate.tables` shows LLaVA's visual
benchmarks beside the text tasks. Running lmms-eval is the LLaVA plugin's job (mop.plugins.llava.lmms); reading
what it wrote is here, where the tables need it, so that they import nothing from a plugin.

Headlines: ScienceQA-IMG, VizWiz-VQA and TextVQA exact match (VQA accuracy for the two VQA sets),
POPE F1 (what LLaVA-1.5 reports), MME perception score / 2000, MM-Vet and LLaVA-Bench GPT
scores / 100; every other metric lmms-eval reported is kept as it is under `lmms_metrics`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.io import UsageError
from ..core.layout import EVAL_META
from .harness import group_names, merge_result_dicts


@dataclass(frozen=True)
class Headline:
    """The metric a table shows for a benchmark, and its full scale (shown: value / scale)."""

    metric: str
    scale: float = 1.0


HEADLINES = {
    "scienceqa_img": Headline("exact_match"),
    "pope": Headline("pope_f1_score"),
    "mme": Headline("mme_perception_score", 2000.0),  # 10 perception categories, 200 points each
    "vizwiz_vqa_val": Headline("exact_match"),
    "textvqa_val": Headline("exact_match"),
    "mmvet": Headline("gpt_eval_score", 100.0),
    "llava_in_the_wild": Headline("gpt_eval_llava_all", 100.0),
    "mop_shapes_lmms": Headline("exact_match"),
}



def finite_number(value) -> float | None:
    """A metric value as a float; lmms-eval writes "N/A" (or NaN) where none could be computed."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def metric_values(task_result: dict) -> dict[str, float]:
    """One task's entry -> {metric: value}, stderrs included ("<metric>_stderr").

    Keys are "<metric>,<filter>" as in lm_eval; the unfiltered value ("none") wins, else the one
    filter a task defines (mop_shapes_lmms: "first_word"). Non-numbers (paths, "N/A") are left out.
    """
    values: dict[str, float] = {}
    for key, raw in task_result.items():
        if "," not in key:
            continue
        metric, filter_name = key.split(",", 1)
        number = finite_number(raw)
        if number is not None and (metric not in values or filter_name == "none"):
            values[metric] = number
    return values


def headline_for(task: str, values: dict[str, float]) -> Headline | None:
    """The known benchmark's headline, else the first reported metric (taken as a percentage
    when it exceeds 1); None when the task reported no number."""
    known = HEADLINES.get(task)
    if known is not None and known.metric in values:
        return known
    for metric, value in values.items():
        if not metric.endswith("_stderr"):
            return Headline(metric, 100.0 if value > 1 else 1.0)
    return None


def task_scores(values: dict[str, float], headline: Headline | None) -> dict[str, float | None]:
    """The mop_eval.json entry of one task: its headline as `acc` (a fraction of its scale)."""
    scores: dict[str, float | None] = {"acc": None, "acc_stderr": None, "acc_norm": None, "acc_norm_stderr": None}
    if headline is not None:
        scores["acc"] = values[headline.metric] / headline.scale
        stderr = values.get(f"{headline.metric}_stderr")
        scores["acc_stderr"] = None if stderr is None else stderr / headline.scale
    return scores


def parse_results(raw: dict) -> dict:
    """lmms-eval's results dictionary -> {"tasks", "lmms_metrics", "lmms_headlines"} (groups left out)."""
    groups = group_names(raw)
    tasks, metrics, headlines = {}, {}, {}
    for task, entry in sorted((raw.get("results") or {}).items()):
        if task in groups or not isinstance(entry, dict):
            continue
        values = metric_values(entry)
        headline = headline_for(task, values)
        tasks[task] = task_scores(values, headline)
        metrics[task] = values
        headlines[task] = None if headline is None else asdict(headline)
    return {"tasks": tasks, "lmms_metrics": metrics, "lmms_headlines": headlines}


def result_files(folder: Path) -> list[Path]:
    """lmms-eval's results files below a folder, oldest first.

    lmms-eval writes `<output_path>/<model>/<date>_results.json`; Llava/eval.sh keeps one as
    lmms_eval_results.json. A file that is not lmms-eval's (no "lmms_eval_version") is ignored.
    """
    found = []
    for path in folder.rglob("*_results.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "lmms_eval_version" in data and isinstance(data.get("results"), dict):
            found.append(path)
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def merged_results(paths: list[Path]) -> dict:
    """Several results files (e.g. one lmms-eval run per benchmark into one --output_path) as one:
    per-task tables merged, a later file's task replacing an earlier one's."""
    return merge_result_dicts([json.loads(path.read_text()) for path in paths], later_wins=True)


def holds_results(meta_path: Path) -> bool:
    """True when an eval folder has scores: its mop_eval.json, or lmms-eval results files
    (a run made by hand with `lmms-eval --output_path <the folder>`). mop.evaluate.tables asks this."""
    return meta_path.exists() or (meta_path.parent.is_dir() and bool(result_files(meta_path.parent)))


def record_from_results(folder: Path) -> dict:
    """A mop_eval.json-like record of the lmms-eval results files in a folder (for mop.evaluate.tables)."""
    paths = result_files(folder)
    if not paths:
        raise UsageError(f"{folder} holds neither {EVAL_META} nor lmms-eval results (*_results.json)")
    raw = merged_results(paths)
    config = raw.get("config") if isinstance(raw.get("config"), dict) else {}
    return {"model_dir": config.get("model_args"), **parse_results(raw), "limit": config.get("limit"),
            "scorer": "lmms-eval", "versions": {"lmms_eval": raw.get("lmms_eval_version")},
            "sources": [str(p) for p in paths]}
