"""Result tables in the paper's layout, collected from a model's results folder.

    python -m mop.evaluate.tables Llama3/results_llama3 [--metric acc_norm] [--stage both] [--targets 0.2,0.3,0.4]

Reads every `mop_eval.json` below the folder (layout: `dense_eval/`, `run_seed_<s>/`,
`run_depth_only/`, `run_width_only/`, each run holding `prune_iteration_<i>_eval/` and
`prune_iteration_<i>_ft_<e>ep_eval/`) and the parameter counts and compression ratios of the
checkpoints (`mop_prune.json`, else `pruning_summary.json`). For each compression target (20, 30
and 40 % by default) every path contributes the evaluated checkpoint whose compression is nearest
to the target (ties: the earlier iteration), if one lies within --tolerance of it. Rows: dense,
MoP per seed, MoP mean +- std over the seeds, depth-only, width-only (and any other `run_*`).
Columns: params, compression, each evaluated task, average over those tasks.

Stages: `recovered` uses the LoRA-recovered checkpoints (`_ft_<e>ep_eval`; with several epoch
counts, the largest, or --epochs), `pruned` the un-recovered ones (`prune_iteration_<i>_eval`),
`both` (default) gives one table for each stage that has any scores.

Metric per task (--metric):
  acc_norm (default)  length-normalised accuracy where the task reports it, plain acc where it
                      does not (winogrande, and any task without acc_norm);
  acc                 plain accuracy for every task;
  paper               the per-task choice of LLM-Pruner-style pruning tables: acc_norm for
                      hellaswag, arc_challenge and openbookqa (and mop_hellaswag), acc elsewhere.
The MoP paper does not state which of the two it reports; compare like with like.

Perplexity tasks (those reporting lm_eval's `word_perplexity`, e.g. the held-out
`mop_heldout_ppl`) get a column "<task> ppl" after the average: word perplexity, lower is
better, never part of the average.

The average is the unweighted mean over the table's accuracy tasks (empty when a checkpoint
lacks one).
Scores made on a subset (mop_eval.json "limit", i.e. EVAL_LIMIT / --limit) are marked with a dagger
and a note, since they are not comparable with full-task scores.
The seed spread is the sample standard deviation (n - 1) over the seeds.

Writes results_table.md, results_table.csv (unrounded values exactly as in the JSON files, as
fractions), results_table.tex and results_plot.png (average accuracy against compression, one
line per path, the dense model as a star) into the results folder (or --out_dir), and prints the
Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ..core.args import OneLineParser
from ..core.io import UsageError, atomic_file, exit_on_usage_error, read_json, read_metadata
from ..core.layout import DEPTH_RULES, EVAL_DIR, EVAL_META, PRUNE_META, RUN_CONFIG, SUMMARY_JSON, objective_of_suffix
from .harness import PAPER_TASKS
from .lmms_results import holds_results, record_from_results  # lmms-eval's results files (LLaVA's visual benchmarks)

NORM_TASKS_PAPER = ("hellaswag", "arc_challenge", "openbookqa", "mop_hellaswag")
METRICS = ("acc_norm", "acc", "paper")
STAGES = ("recovered", "pruned")
STAGE_TITLES = {
    "recovered": "LoRA-recovered checkpoints",
    "pruned": "Pruned checkpoints without recovery",
}
OUTPUT_NAMES = ("results_table.md", "results_table.csv", "results_table.tex", "results_plot.png")


@dataclass
class Scored:
    """One evaluated checkpoint."""

    run: str  # run folder name; "dense" for the unpruned model
    iteration: int
    stage: str  # "dense", "recovered" or "pruned"
    epochs: int | None
    params: int | None
    compression: float | None
    tasks: dict  # mop_eval.json "tasks"
    eval_dir: Path
    limit: float | None = None  # lm_eval --limit the scores were made with (None: full tasks)


@dataclass
class Row:
    """One table row: a checkpoint, or the seeds' mean or standard deviation."""

    target: float | None
    method: str
    run: str
    iteration: str
    params: float | None
    compression: float | None
    values: dict  # task -> float | None
    average: float | None
    spread: dict | None = field(default=None)  # for the mean row: task/"average"/"params"/"compression" -> std
    limit: float | None = None  # set when a score came from a --limit subset (flagged in the tables)


# ----------------------------------------------------------------------------- collecting


def checkpoint_meta(run_dir: Path) -> dict[int, dict]:
    """iteration -> {params, compression}: pruning_summary.json, overridden by mop_prune.json files."""
    meta: dict[int, dict] = {}
    summary = run_dir / SUMMARY_JSON
    if summary.exists():
        rows = read_json(summary)
        if not isinstance(rows, list) or not all(isinstance(r, dict) and isinstance(r.get("iteration"), int)
                                                 for r in rows):
            raise UsageError(f"{summary} is not a list of iteration rows (corrupt?)")
        for row in rows:
            meta[row["iteration"]] = {"params": row.get("params"), "compression": row.get("compression")}
    for path in sorted(run_dir.glob(f"prune_iteration_*/{PRUNE_META}")):
        data = read_metadata(path)
        if "iteration" in data and data.get("compression") is not None:
            meta[int(data["iteration"])] = {"params": data.get("params"), "compression": data["compression"]}
    return meta


def dense_params(root: Path) -> int | None:
    """The unpruned model's parameter count, as recorded by any pruning run."""
    for run_dir in sorted(root.glob("run_*")):
        meta = checkpoint_meta(run_dir)
        if 0 in meta and meta[0].get("params"):
            return meta[0]["params"]
        config = run_dir / RUN_CONFIG
        if config.exists():
            schedule = read_metadata(config).get("schedule") or []
            if schedule and schedule[0].get("params"):
                return schedule[0]["params"]
    return None


def read_scores(path: Path) -> dict:
    """A mop_eval.json with its per-task scores; a corrupt one is a one-line error naming it."""
    data = read_metadata(path, ("tasks",)) if path.exists() else record_from_results(path.parent)
    tasks = data["tasks"]
    if not isinstance(tasks, dict) or not all(isinstance(m, dict) for m in tasks.values()):
        raise UsageError(f"{path}: 'tasks' is not a mapping of task -> scores (corrupt?)")
    for task, scores in tasks.items():
        bad = [k for k, v in scores.items() if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))]
        if bad:
            raise UsageError(f"{path}: {task} {bad[0]} is not a number (corrupt?)")
    return data


def collect(root: Path) -> list[Scored]:
    """Every evaluated checkpoint below a results folder (folders without mop_eval.json are skipped)."""
    found = []
    dense = root / "dense_eval" / EVAL_META
    if holds_results(dense):
        data = read_scores(dense)
        found.append(Scored("dense", 0, "dense", None, dense_params(root), 0.0, data["tasks"], dense.parent,
                            data.get("limit")))
    for run_dir in sorted(p for p in root.glob("run_*") if p.is_dir()):
        meta = checkpoint_meta(run_dir)
        for eval_dir in sorted(run_dir.iterdir()):
            match = EVAL_DIR.match(eval_dir.name)
            if not match or not holds_results(eval_dir / EVAL_META):
                continue
            iteration = int(match.group(1))
            epochs = int(match.group(2)) if match.group(2) else None
            objective = objective_of_suffix(match.group(3))
            info = meta.get(iteration)
            if info is None:
                print(f"warning: {eval_dir} skipped: no mop_prune.json or pruning_summary row for iteration {iteration}")
                continue
            data = read_scores(eval_dir / EVAL_META)
            found.append(Scored(  # another objective than sft is its own series: run+kd
                run=run_dir.name + ("" if objective == "sft" else f"+{objective}"), iteration=iteration, stage="pruned" if epochs is None else "recovered",
                epochs=epochs, params=info.get("params"), compression=float(info["compression"]),
                tasks=data["tasks"], eval_dir=eval_dir, limit=data.get("limit"),
            ))
    return found


def stage_checkpoints(found: list[Scored], stage: str, epochs: int | None) -> list[Scored]:
    """One checkpoint per (run, iteration) of a stage: the chosen, else the largest, epoch count."""
    chosen: dict[tuple[str, int], Scored] = {}
    for s in found:
        if s.stage != stage or (epochs is not None and s.epochs != epochs):
            continue
        key = (s.run, s.iteration)
        if key not in chosen or (s.epochs or 0) > (chosen[key].epochs or 0):
            chosen[key] = s
    return sorted(chosen.values(), key=lambda s: (run_order(s.run), s.iteration))


# ----------------------------------------------------------------------------- selecting


# The drivers' run folders: run_seed_<s>, run_depth_only, run_width_only, each with a suffix
# naming the depth rule when it is not the paper's (DEPTH_RULE in scripts/pipeline.sh).
RUN_NAME = re.compile(r"run_(?:seed_(?P<seed>\d+)|(?P<extreme>depth_only|width_only))"
                      rf"(?:_(?P<rule>{'|'.join(DEPTH_RULES[1:])}))?(?:\+(?P<objective>kd|kd\+sft))?")
EXTREME_LABELS = {"depth_only": "Depth-only", "width_only": "Width-only"}


def run_order(run: str) -> tuple:
    """Seeds in numeric order (the paper's depth rule first), then depth-only, width-only, then
    anything else by name."""
    match = RUN_NAME.fullmatch(run)
    if match is None:
        return (3, "", 0, run)
    rule = (match["rule"] or "", match["objective"] or "")
    if match["seed"]:
        return (0, rule, int(match["seed"]), "")
    return (1 if match["extreme"] == "depth_only" else 2, rule, 0, "")


def run_label(run: str, recovered: bool = False) -> str:
    """The row label; a recovered checkpoint's names its recovery objective (sft: the paper's)."""
    if run == "dense":
        return "Dense"
    match = RUN_NAME.fullmatch(run)
    if match is None:
        return run.removeprefix("run_")
    notes = [n for n in (match["rule"], match["objective"] or ("sft" if recovered else None)) if n]
    if match["seed"]:
        return f"MoP (seed {match['seed']}" + "".join(f", {n}" for n in notes) + ")"
    return EXTREME_LABELS[match["extreme"]] + (f" ({', '.join(notes)})" if notes else "")


def seed_group(run: str) -> str | None:
    """For a seed run, its depth rule and recovery objective other than the paper's ("" for the
    paper's recipe, else e.g. "block_influence, kd"); None otherwise. Seeds are averaged within a
    group."""
    match = RUN_NAME.fullmatch(run)
    if match is None or not match["seed"]:
        return None
    return ", ".join(n for n in (match["rule"], match["objective"]) if n)


def nearest(checkpoints: list[Scored], target: float, tolerance: float) -> Scored | None:
    """The checkpoint whose compression is nearest to target (ties: earlier iteration)."""
    if not checkpoints:
        return None
    best = min(checkpoints, key=lambda s: (round(abs(s.compression - target), 9), s.iteration))  # no float-noise tie-breaks
    return best if abs(best.compression - target) <= tolerance + 1e-12 else None


def is_perplexity_scores(scores: dict) -> bool:
    return "word_perplexity" in scores


def metric_value(task: str, scores: dict, metric: str) -> float | None:
    """The number a table shows for one task (see the module docstring for the choices)."""
    if is_perplexity_scores(scores):
        return scores["word_perplexity"]
    if metric == "acc":
        return scores.get("acc")
    if metric == "paper" and task not in NORM_TASKS_PAPER:
        return scores.get("acc")
    norm = scores.get("acc_norm")
    return norm if norm is not None else scores.get("acc")


class Columns(list):
    """A table's task columns: accuracy tasks (the paper's first), then perplexity tasks, which
    are shown as perplexity and left out of the average."""

    def __init__(self, names, perplexity=()):
        super().__init__(names)
        self.perplexity = frozenset(perplexity)

    @property
    def accuracy(self) -> list[str]:
        return [t for t in self if t not in self.perplexity]

    def label(self, task: str) -> str:
        return f"{task} ppl" if task in self.perplexity else task


def task_columns(checkpoints: list[Scored]) -> Columns:
    names = {t for s in checkpoints for t in s.tasks}
    perplexity = {t for s in checkpoints for t, scores in s.tasks.items() if is_perplexity_scores(scores)}
    accuracy = [t for t in PAPER_TASKS if t in names] + sorted(names - set(PAPER_TASKS) - perplexity)
    return Columns(accuracy + sorted(perplexity), perplexity)


def mean_or_none(values: list[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else statistics.fmean(values)


def checkpoint_row(s: Scored, tasks: Columns, metric: str, target: float | None) -> Row:
    values = {t: metric_value(t, s.tasks[t], metric) if t in s.tasks else None for t in tasks}
    return Row(target, run_label(s.run, s.stage == "recovered"), s.run, str(s.iteration), s.params, s.compression, values,
               mean_or_none([values[t] for t in tasks.accuracy]), limit=s.limit)


def seed_summary_row(rows: list[Row], tasks: list[str], target: float, group: str = "", recovered: bool = False) -> Row:
    """MoP mean over the seeds' rows, with the sample standard deviation of every column (recovered
    rows name their objective, sft when the group does not)."""

    def stats(values):
        if any(v is None for v in values):
            return None, None
        return statistics.fmean(values), statistics.stdev(values)

    values, spread = {}, {}
    for t in tasks:
        values[t], spread[t] = stats([r.values[t] for r in rows])
    average, spread["average"] = stats([r.average for r in rows])
    params, spread["params"] = stats([r.params for r in rows])
    compression, spread["compression"] = stats([r.compression for r in rows])
    iterations = "/".join(r.iteration for r in rows)
    limits = [r.limit for r in rows if r.limit is not None]
    note = group if group.endswith(("kd", "kd+sft")) or not recovered else ", ".join(n for n in (group, "sft") if n)
    label = f"MoP mean ± std ({len(rows)} seeds" + (f", {note})" if note else ")")
    return Row(target, label, "seeds" + (f"_{group}" if group else ""), iterations, params, compression,
               values, average, spread, limit=max(limits) if limits else None)


def build_rows(checkpoints: list[Scored], dense: Scored | None, tasks: list[str], metric: str,
               targets: list[float], tolerance: float) -> list[Row]:
    """The table of one stage: dense, then per target the seeds, their mean, and the extremes."""
    rows = [checkpoint_row(dense, tasks, metric, None)] if dense else []
    runs = sorted({s.run for s in checkpoints}, key=run_order)
    recovered = any(s.stage == "recovered" for s in checkpoints)
    for target in targets:
        seed_rows: dict[str, list[Row]] = {}  # depth rule -> its seeds' rows
        other_rows = []
        for run in runs:
            pick = nearest([s for s in checkpoints if s.run == run], target, tolerance)
            if pick is None:
                continue
            row, group = checkpoint_row(pick, tasks, metric, target), seed_group(run)
            (other_rows if group is None else seed_rows.setdefault(group, [])).append(row)
        for group, group_rows in seed_rows.items():
            summary = [seed_summary_row(group_rows, tasks, target, group, recovered)] if len(group_rows) >= 2 else []
            rows += group_rows + summary
        rows += other_rows
    return rows


# ----------------------------------------------------------------------------- formatting


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def fmt_params(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1e9:.2f}B" if value >= 1e9 else f"{value / 1e6:.1f}M"


def fmt_compression(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def fmt_perplexity(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}" if value < 1e4 else f"{value:.3g}"


def display_cells(row: Row, tasks: Columns, pm: str) -> list[str]:
    """A row as display strings (accuracy in percent with 2 decimals, then the average, then
    perplexities as plain numbers; mean rows as mean ± std)."""
    def with_spread(key, value, fmt=pct):
        if row.spread is None or row.spread.get(key) is None:
            return fmt(value)
        return f"{fmt(value)}{pm}{fmt(row.spread[key])}"

    target = "–" if row.target is None else f"{100 * row.target:.0f}%"
    method = row.method + (" †" if row.limit is not None else "")
    return ([target, method, row.iteration, fmt_params(row.params), fmt_compression(row.compression)]
            + [with_spread(t, row.values[t]) for t in tasks.accuracy] + [with_spread("average", row.average)]
            + [with_spread(t, row.values[t], fmt_perplexity) for t in tasks if t in tasks.perplexity])


def header(tasks: Columns) -> list[str]:
    return (["Target", "Method", "Iter", "Params", "Compr."] + tasks.accuracy + ["Avg"]
            + [tasks.label(t) for t in tasks if t in tasks.perplexity])


def markdown_table(rows: list[Row], tasks: list[str]) -> str:
    lines = ["| " + " | ".join(header(tasks)) + " |",
             "|" + "|".join(["---", "---", "---:", "---:", "---:"] + ["---:"] * (len(tasks) + 1)) + "|"]
    lines += ["| " + " | ".join(display_cells(r, tasks, " ± ")) + " |" for r in rows]
    return "\n".join(lines) + limit_note(rows)


def limit_note(rows: list[Row]) -> str:
    """Scores from a --limit subset are not comparable with full-task scores: say so under the table."""
    limits = sorted({r.limit for r in rows if r.limit is not None})
    if not limits:
        return ""
    return f"\n\n† scored on a subset (lm_eval --limit {', '.join(f'{l:g}' for l in limits)} per task)"


def latex_escape(text: str) -> str:
    return text.replace("\\", "\\textbackslash{}").replace("_", "\\_").replace("%", "\\%").replace("&", "\\&") \
        .replace("#", "\\#").replace("±", "$\\pm$").replace("–", "--").replace("†", "\\dag{}")


def latex_table(rows: list[Row], tasks: list[str], caption: str) -> str:
    cols = "llrrr" + "r" * (len(tasks) + 1)
    lines = [
        "\\begin{table}[t]", "\\centering", "\\small", f"\\caption{{{latex_escape(caption)}}}",
        f"\\begin{{tabular}}{{{cols}}}", "\\toprule",
        " & ".join(latex_escape(h) for h in header(tasks)) + " \\\\", "\\midrule",
    ]
    previous = "start"
    for r in rows:
        if r.target != previous and previous != "start":
            lines.append("\\midrule")
        previous = r.target
        lines.append(" & ".join(latex_escape(c) for c in display_cells(r, tasks, " ± ")) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    note = limit_note(rows).strip()
    if note:
        lines.append(f"\\par\\smallskip\\footnotesize {latex_escape(note)}")
    lines.append("\\end{table}")
    return "\n".join(lines)


def csv_records(stage: str, rows: list[Row], tasks: list[str]) -> list[dict]:
    """Unrounded values (fractions, exactly as read); the mean row is followed by a std row."""
    records = []
    for r in rows:
        base = {"stage": stage, "target": "" if r.target is None else r.target, "method": r.method,
                "run": r.run, "iteration": r.iteration, "limit": r.limit}
        records.append({**base, "params": r.params, "compression": r.compression,
                        **{t: r.values[t] for t in tasks}, "average": r.average})
        if r.spread is not None:
            records.append({**base, "method": r.method.replace("mean ± std", "std"),
                            "params": r.spread["params"], "compression": r.spread["compression"],
                            **{t: r.spread[t] for t in tasks}, "average": r.spread["average"]})
    return records


def csv_text(records: list[dict], tasks: list[str]) -> str:
    fields = ["stage", "target", "method", "run", "iteration", "limit", "params", "compression"] + tasks + ["average"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for rec in records:
        writer.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in rec.items()})
    return buffer.getvalue()


def metric_note(metric: str) -> str:
    return {
        "acc_norm": "acc_norm where the task reports it, else acc",
        "acc": "acc",
        "paper": "acc_norm for hellaswag/arc_challenge/openbookqa, acc elsewhere",
    }[metric]


# ----------------------------------------------------------------------------- plot


def plot(stage_points: dict[str, list[Scored]], dense: Scored | None, tasks_by_stage: dict[str, list[str]],
         metric: str, path: Path) -> None:
    """Average accuracy against compression, one line per path and stage, the dense model as a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(stage_points), figsize=(6.5 * len(stage_points), 4.5), squeeze=False)
    for ax, (stage, checkpoints) in zip(axes[0], stage_points.items()):
        tasks = tasks_by_stage[stage]
        for run in sorted({s.run for s in checkpoints}, key=run_order):
            pts = [(s.compression, checkpoint_row(s, tasks, metric, None).average)
                   for s in checkpoints if s.run == run]
            pts = sorted((c, a) for c, a in pts if a is not None)
            if pts:
                ax.plot([100 * c for c, _ in pts], [100 * a for _, a in pts], marker="o", label=run_label(run))
        if dense is not None:
            avg = checkpoint_row(dense, tasks, metric, None).average
            if avg is not None:
                ax.plot([0.0], [100 * avg], marker="*", markersize=14, color="black", linestyle="", label="Dense")
        ax.set_title(STAGE_TITLES[stage])
        ax.set_xlabel("compression (%)")
        ax.set_ylabel(f"average accuracy (%) over {len(tasks.accuracy)} tasks, metric: {metric}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


# ----------------------------------------------------------------------------- entry point


def write_text(path: Path, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text)


def parse_targets(text: str) -> list[float]:
    try:
        targets = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UsageError(f"--targets must be a comma list of fractions, not {text!r}") from None
    targets = [t / 100 if t > 1 else t for t in targets]  # accept 20,30,40 as well as 0.2,0.3,0.4
    if not targets or any(not 0 < t < 1 for t in targets):
        raise UsageError(f"--targets must lie between 0 and 1 (or 0 and 100 %), not {text!r}")
    return targets


def build_tables(root: Path, metric: str = "acc_norm", stage: str = "both", targets=(0.2, 0.3, 0.4),
                 tolerance: float = 0.05, epochs: int | None = None, out_dir: Path | None = None) -> dict:
    """Collect, select and write every output; returns {stage: (tasks, rows)} and the Markdown."""
    if not root.is_dir():
        raise UsageError(f"results folder not found: {root}")
    found = collect(root)
    if not found:
        raise UsageError(f"no mop_eval.json found under {root} (expected dense_eval/ and run_*/prune_iteration_*_eval/)")
    dense = next((s for s in found if s.stage == "dense"), None)
    stages = STAGES if stage == "both" else (stage,)
    tables, stage_points, tasks_by_stage = {}, {}, {}
    for name in stages:
        checkpoints = stage_checkpoints(found, name, epochs)
        if not checkpoints:
            continue
        tasks = task_columns(checkpoints + ([dense] if dense else []))
        tables[name] = (tasks, build_rows(checkpoints, dense, tasks, metric, list(targets), tolerance))
        stage_points[name] = checkpoints
        tasks_by_stage[name] = tasks
    if not tables:
        only_dense = "only the dense model has scores" if dense else "no checkpoint scores"
        raise UsageError(f"{root}: {only_dense} for stage {stage!r}")

    out_dir = out_dir or root
    out_dir.mkdir(parents=True, exist_ok=True)
    md_parts, tex_parts, records = [], [], []
    for name, (tasks, rows) in tables.items():
        title = f"{STAGE_TITLES[name]} — metric: {metric_note(metric)}; values in %"
        md_parts.append(f"## {title}\n\n{markdown_table(rows, tasks)}\n")
        tex_parts.append(latex_table(rows, tasks, f"{root.name}: {title}"))
        records += csv_records(name, rows, tasks)
    all_tasks = list(dict.fromkeys(t for tasks, _ in tables.values() for t in tasks))
    markdown = "\n".join(md_parts)
    write_text(out_dir / "results_table.md", markdown)
    write_text(out_dir / "results_table.csv", csv_text(records, all_tasks))
    write_text(out_dir / "results_table.tex", "% needs \\usepackage{booktabs}\n" + "\n\n".join(tex_parts) + "\n")
    plot(stage_points, dense, tasks_by_stage, metric, out_dir / "results_plot.png")
    return {"tables": tables, "markdown": markdown, "out_dir": out_dir}


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results_dir", help="a model's results folder, e.g. Llama3/results_llama3")
    p.add_argument("--metric", choices=METRICS, default="acc_norm")
    p.add_argument("--stage", choices=STAGES + ("both",), default="both")
    p.add_argument("--targets", default="0.2,0.3,0.4", help="compression targets (fractions or percent)")
    p.add_argument("--tolerance", type=float, default=0.05,
                   help="largest |compression - target| for a checkpoint to represent a target")
    p.add_argument("--epochs", type=int, default=None, help="recovered stage: only _ft_<epochs>ep_eval scores")
    p.add_argument("--out_dir", default=None, help="where the tables and plot go (default: the results folder)")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)

    @exit_on_usage_error
    def run():
        if not (math.isfinite(args.tolerance) and args.tolerance >= 0):
            raise UsageError(f"--tolerance must be a finite fraction of 0 or more, got {args.tolerance:g}")
        if args.epochs is not None and args.epochs < 1:
            raise UsageError(f"--epochs must be a whole number of at least 1, got {args.epochs}")
        result = build_tables(Path(args.results_dir), args.metric, args.stage, parse_targets(args.targets),
                              args.tolerance, args.epochs, Path(args.out_dir) if args.out_dir else None)
        print(result["markdown"])
        print("wrote " + ", ".join(str(result["out_dir"] / n) for n in OUTPUT_NAMES))
        return result

    return run()


if __name__ == "__main__":
    main()
