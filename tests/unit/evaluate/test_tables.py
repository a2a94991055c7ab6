"""mop.evaluate.tables on a synthetic results folder: every cell equals the JSON it came from."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import csv
import json
import random
import statistics
from pathlib import Path

import numpy as np
import pytest

from mop.evaluate import tables

TASKS = ["piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge"]
DENSE_PARAMS = 1_000_000
# compression of every iteration, per run (iteration i -> COMPRESSION[run][i - 1])
COMPRESSION = {
    "run_seed_1": [0.05, 0.10, 0.16, 0.21, 0.27, 0.32, 0.37, 0.41],
    "run_seed_2": [0.04, 0.11, 0.17, 0.19, 0.26, 0.31, 0.37, 0.44],
    "run_seed_3": [0.06, 0.12, 0.18, 0.23, 0.28, 0.35, 0.36, 0.41],
    "run_depth_only": [0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40],
    "run_width_only": [0.04, 0.09, 0.14, 0.18, 0.23, 0.27, 0.32, 0.36],
}
EVALUATED = [2, 4, 5, 6, 7, 8]  # iterations with scores (recovered and un-recovered)
# nearest evaluated iteration per target (worked out by hand from the table above)
EXPECTED = {
    0.2: {"run_seed_1": 4, "run_seed_2": 4, "run_seed_3": 4, "run_depth_only": 4, "run_width_only": 4},
    0.3: {"run_seed_1": 6, "run_seed_2": 6, "run_seed_3": 5, "run_depth_only": 6, "run_width_only": 7},
    0.4: {"run_seed_1": 8, "run_seed_2": 7, "run_seed_3": 8, "run_depth_only": 8, "run_width_only": 8},
}


def fake_scores(rng: random.Random) -> dict:
    scores = {}
    for t in TASKS:
        acc = rng.uniform(0.3, 0.8)
        norm = None if t == "winogrande" else rng.uniform(0.3, 0.8)
        scores[t] = {"acc": acc, "acc_stderr": rng.uniform(0.005, 0.02), "acc_norm": norm,
                     "acc_norm_stderr": None if norm is None else rng.uniform(0.005, 0.02)}
    return scores


def write_eval(folder: Path, scores: dict) -> None:
    folder.mkdir(parents=True)
    (folder / "mop_eval.json").write_text(json.dumps({"model_dir": str(folder), "tasks": scores, "num_fewshot": 0}))


@pytest.fixture
def results(tmp_path):
    """dense + 3 seeds + depth-only + width-only; scores kept in memory to compare against."""
    rng = random.Random(0)
    root = tmp_path / "results_fake"
    truth = {"dense": fake_scores(rng)}
    write_eval(root / "dense_eval", truth["dense"])
    for run, compressions in COMPRESSION.items():
        run_dir = root / run
        summary = [{"iteration": 0, "params": DENSE_PARAMS, "compression": 0.0}]
        for i, c in enumerate(compressions, start=1):
            params = round(DENSE_PARAMS * (1 - c))
            summary.append({"iteration": i, "params": params, "compression": c})
            ckpt = run_dir / f"prune_iteration_{i}"
            ckpt.mkdir(parents=True)
            (ckpt / "mop_prune.json").write_text(json.dumps({"iteration": i, "params": params, "compression": c}))
        (run_dir / "pruning_summary.json").write_text(json.dumps(summary))
        for i in EVALUATED:
            for stage, suffix in (("pruned", "_eval"), ("recovered", "_ft_2ep_eval")):
                truth[(run, i, stage)] = fake_scores(rng)
                write_eval(run_dir / f"prune_iteration_{i}{suffix}", truth[(run, i, stage)])
        # a shorter recovery of one checkpoint: must lose against the 2-epoch one
        write_eval(run_dir / "prune_iteration_4_ft_1ep_eval", fake_scores(rng))
    # an incomplete eval folder (no mop_eval.json) is ignored
    (root / "run_seed_1" / ".tmp-prune_iteration_3_eval").mkdir()
    (root / "run_seed_1" / "prune_iteration_3_eval").mkdir()
    return root, truth


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def value(scores: dict, task: str, metric: str) -> float:
    s = scores[task]
    if metric == "acc" or (metric == "paper" and task not in ("hellaswag", "arc_challenge")):
        return s["acc"]
    return s["acc_norm"] if s["acc_norm"] is not None else s["acc"]


@pytest.mark.parametrize("metric", ["acc_norm", "acc", "paper"])
def test_csv_cells_equal_json(results, metric):
    root, truth = results
    tables.main([str(root), "--metric", metric])
    rows = read_csv(root / "results_table.csv")
    checked = 0
    for row in rows:
        if row["run"] == "seeds":
            continue
        key = "dense" if row["run"] == "dense" else (row["run"], int(row["iteration"]), row["stage"])
        scores = truth[key]
        for t in TASKS:
            assert float(row[t]) == value(scores, t, metric)
        assert float(row["average"]) == pytest.approx(np.mean([value(scores, t, metric) for t in TASKS]), abs=1e-15)
        if row["run"] != "dense":
            c = COMPRESSION[row["run"]][int(row["iteration"]) - 1]
            assert float(row["compression"]) == c and int(row["params"]) == round(DENSE_PARAMS * (1 - c))
        checked += 1
    assert checked == 2 * (1 + 3 * 5)  # per stage: dense + 3 targets x 5 paths


def test_nearest_iterations_and_stages(results):
    root, _ = results
    tables.main([str(root)])
    rows = read_csv(root / "results_table.csv")
    for stage in ("recovered", "pruned"):
        for target, expected in EXPECTED.items():
            picked = {r["run"]: int(r["iteration"]) for r in rows
                      if r["stage"] == stage and r["target"] and float(r["target"]) == target and r["run"].startswith("run_")}
            assert picked == expected, (stage, target)


def test_seed_mean_and_std(results):
    root, truth = results
    tables.main([str(root), "--metric", "acc"])
    rows = read_csv(root / "results_table.csv")
    for stage in ("recovered", "pruned"):
        for target, expected in EXPECTED.items():
            seeds = [truth[(f"run_seed_{s}", expected[f"run_seed_{s}"], stage)] for s in (1, 2, 3)]
            mean = next(r for r in rows if r["stage"] == stage and r["target"] and float(r["target"]) == target
                        and r["method"].startswith("MoP mean"))
            std = next(r for r in rows if r["stage"] == stage and r["target"] and float(r["target"]) == target
                       and r["method"].startswith("MoP std"))
            for t in TASKS:
                vals = [s[t]["acc"] for s in seeds]
                assert float(mean[t]) == pytest.approx(np.mean(vals), abs=1e-12)
                assert float(std[t]) == pytest.approx(np.std(vals, ddof=1), abs=1e-12)
            averages = [np.mean([s[t]["acc"] for t in TASKS]) for s in seeds]
            assert float(mean["average"]) == pytest.approx(np.mean(averages), abs=1e-12)
            assert float(std["average"]) == pytest.approx(np.std(averages, ddof=1), abs=1e-12)
            assert mean["iteration"] == "/".join(str(expected[f"run_seed_{s}"]) for s in (1, 2, 3))


def test_markdown_shows_json_numbers_and_files_written(results):
    root, truth = results
    out = root / "tables_out"
    result = tables.main([str(root), "--out_dir", str(out), "--stage", "recovered"])
    md = (out / "results_table.md").read_text()
    assert md == result["markdown"]
    lines = [l for l in md.splitlines() if l.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["Target", "Method", "Iter", "Params", "Compr."] + TASKS + ["Avg"]
    seed1_30 = next(l for l in lines if l.startswith("| 30% | MoP (seed 1, sft) |"))
    cells = [c.strip() for c in seed1_30.strip("|").split("|")]
    scores = truth[("run_seed_1", 6, "recovered")]
    assert cells[2] == "6" and cells[4] == "32.0%" and cells[3] == "0.7M"
    assert cells[5:10] == [f"{100 * value(scores, t, 'acc_norm'):.2f}" for t in TASKS]
    assert "MoP mean ± std (3 seeds, sft)" in md and "Pruned checkpoints without recovery" not in md
    tex = (out / "results_table.tex").read_text()
    assert "\\toprule" in tex and "arc\\_easy" in tex and "$\\pm$" in tex
    assert (out / "results_plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "results_plot.png").stat().st_size > 10_000


def test_recovered_uses_largest_epoch_unless_told(results):
    root, truth = results
    tables.main([str(root), "--stage", "recovered", "--targets", "20"])
    row = next(r for r in read_csv(root / "results_table.csv") if r["run"] == "run_seed_1")
    assert float(row["piqa"]) == value(truth[("run_seed_1", 4, "recovered")], "piqa", "acc_norm")
    tables.main([str(root), "--stage", "recovered", "--targets", "20", "--epochs", "1"])
    rows = [r for r in read_csv(root / "results_table.csv") if r["run"].startswith("run_")]
    assert {r["iteration"] for r in rows} == {"4"}  # only iteration 4 has a 1-epoch score
    assert float(rows[0]["piqa"]) != value(truth[("run_seed_1", 4, "recovered")], "piqa", "acc_norm")


def test_tolerance_drops_far_checkpoints(results):
    root, _ = results
    tables.main([str(root), "--stage", "pruned", "--targets", "0.5", "--tolerance", "0.07"])
    runs = {r["run"] for r in read_csv(root / "results_table.csv") if r["target"]}
    # only seed 2 (0.44) lies within 0.07 of 0.5; the others reach 0.36-0.41
    assert runs == {"run_seed_2"}


def test_limited_scores_are_flagged(results):
    root, _ = results
    path = root / "run_seed_2" / "prune_iteration_4_eval" / "mop_eval.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "limit": 40}))
    md = tables.main([str(root), "--stage", "pruned", "--targets", "0.2"])["markdown"]
    flagged = [l for l in md.splitlines() if "†" in l and l.startswith("|")]
    assert [l.split("|")[2].strip() for l in flagged] == ["MoP (seed 2) †", "MoP mean ± std (3 seeds) †"]
    assert "--limit 40 per task" in md
    rows = read_csv(root / "results_table.csv")
    assert {r["run"]: r["limit"] for r in rows if r["method"].startswith("MoP (seed")} == {
        "run_seed_1": "", "run_seed_2": "40", "run_seed_3": ""}


def test_nearest_prefers_earlier_iteration_on_ties():
    def ckpt(i, c):
        return tables.Scored("run_seed_1", i, "pruned", None, 1, c, {}, Path("."))

    picks = [ckpt(3, 0.25), ckpt(5, 0.35), ckpt(4, 0.30)]
    assert tables.nearest(picks, 0.30, 0.05).iteration == 4
    assert tables.nearest([ckpt(5, 0.35), ckpt(3, 0.25)], 0.30, 0.05).iteration == 3
    assert tables.nearest(picks, 0.45, 0.05) is None


def test_bad_input_exits_2(tmp_path):
    with pytest.raises(SystemExit) as exc:
        tables.main([str(tmp_path / "nope")])
    assert exc.value.code == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exc:
        tables.main([str(tmp_path / "empty")])
    assert exc.value.code == 2


def test_perplexity_column_and_depth_rule_groups(tmp_path):
    """A held-out perplexity task is shown as its own column (word perplexity, not averaged), and
    seed runs of another depth rule get their own rows and their own seed mean."""
    rng = random.Random(7)
    root = tmp_path / "results_rules"
    accuracy = {}

    def scores_with_ppl(key):
        scores = fake_scores(rng)
        accuracy[key] = statistics.fmean(  # the paper's average: acc_norm where reported, else acc
            s["acc_norm"] if s["acc_norm"] is not None else s["acc"] for s in scores.values())
        ppl = rng.uniform(5, 5000)
        scores["mop_heldout_ppl"] = {"acc": None, "acc_stderr": None, "acc_norm": None, "acc_norm_stderr": None,
                                     "word_perplexity": ppl, "byte_perplexity": 1.5, "bits_per_byte": 0.6}
        return scores, ppl

    ppl = {}
    dense, ppl["dense"] = scores_with_ppl("dense")
    write_eval(root / "dense_eval", dense)
    runs = ["run_seed_1", "run_seed_2", "run_seed_1_block_influence", "run_seed_2_block_influence",
            "run_depth_only_block_influence"]
    for run in runs:
        (root / run / "prune_iteration_4").mkdir(parents=True)
        (root / run / "prune_iteration_4" / "mop_prune.json").write_text(
            json.dumps({"iteration": 4, "params": 800_000, "compression": 0.2}))
        scores, ppl[run] = scores_with_ppl(run)
        write_eval(root / run / "prune_iteration_4_ft_1ep_eval", scores)
    result = tables.build_tables(root, stage="recovered", targets=[0.2])
    tasks, rows = result["tables"]["recovered"]
    assert list(tasks.accuracy) == TASKS and list(tasks.perplexity) == ["mop_heldout_ppl"]
    by_method = {r.method: r for r in rows}
    assert list(by_method) == ["Dense", "MoP (seed 1, sft)", "MoP (seed 2, sft)", "MoP mean ± std (2 seeds, sft)",
                               "MoP (seed 1, block_influence, sft)", "MoP (seed 2, block_influence, sft)",
                               "MoP mean ± std (2 seeds, block_influence, sft)", "Depth-only (block_influence, sft)"]
    for method, run in [("Dense", "dense"), ("MoP (seed 2, block_influence, sft)", "run_seed_2_block_influence")]:
        assert by_method[method].average == pytest.approx(accuracy[run], abs=1e-12)
        assert by_method[method].values["mop_heldout_ppl"] == ppl[run]
    mean_bi = by_method["MoP mean ± std (2 seeds, block_influence, sft)"]
    assert mean_bi.values["mop_heldout_ppl"] == pytest.approx(
        (ppl["run_seed_1_block_influence"] + ppl["run_seed_2_block_influence"]) / 2)
    header = result["markdown"].splitlines()[2]
    assert header.split(" | ")[-2:] == ["Avg", "mop_heldout_ppl ppl |"]
    dense_line = next(line for line in result["markdown"].splitlines() if "| Dense |" in line)
    assert dense_line.split(" | ")[-1] == f"{tables.fmt_perplexity(ppl['dense'])} |"


def test_recovery_objectives_are_their_own_rows(tmp_path):
    """A `_kd` recovery of a run is a series of its own ("+kd"), next to the run's sft recovery; each
    recovered row names its objective."""
    rng = random.Random(3)
    root = tmp_path / "results_objectives"
    write_eval(root / "dense_eval", fake_scores(rng))
    truth = {}
    for run in ("run_seed_1", "run_seed_1_block_influence"):
        (root / run / "prune_iteration_8").mkdir(parents=True)
        (root / run / "prune_iteration_8" / "mop_prune.json").write_text(
            json.dumps({"iteration": 8, "params": 800_000, "compression": 0.2}))
        for suffix in ("", "_kd"):
            truth[(run, suffix)] = fake_scores(rng)
            write_eval(root / run / f"prune_iteration_8_ft_1ep{suffix}_eval", truth[(run, suffix)])
    tasks, rows = tables.build_tables(root, stage="recovered", targets=[0.2])["tables"]["recovered"]
    labels = [r.method for r in rows]
    assert labels == ["Dense", "MoP (seed 1, sft)", "MoP (seed 1, kd)", "MoP (seed 1, block_influence, sft)",
                      "MoP (seed 1, block_influence, kd)"]
    kd_row = rows[labels.index("MoP (seed 1, block_influence, kd)")]
    assert kd_row.values["arc_easy"] == tables.metric_value(
        "arc_easy", truth[("run_seed_1_block_influence", "_kd")]["arc_easy"], "acc_norm")


@pytest.mark.parametrize("flags,message", [
    (["--tolerance", "inf"], "--tolerance must be a finite"), (["--tolerance", "nan"], "--tolerance must be a finite"),
    (["--tolerance", "-0.1"], "--tolerance must be a finite"), (["--epochs", "0"], "--epochs must be"),
    (["--epochs", "-1"], "--epochs must be"), (["--targets", "nan"], "--targets"),
])
def test_bad_table_flags_are_one_line_and_write_nothing(flags, message, results, capsys):
    root, _ = results
    before = sorted(p.name for p in root.iterdir())
    with pytest.raises(SystemExit) as exc:
        tables.main([str(root), *flags])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and message in err and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in root.iterdir()) == before
