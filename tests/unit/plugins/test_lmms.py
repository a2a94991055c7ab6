"""LLaVA's visual benchmarks through lmms-eval: mop/plugins/llava/lmms.py, Llava/eval.sh, mop/plugins/llava/tasks_lmms, mop.evaluate.tables.

Most tests need no lmms-eval. Those that read or run the installed one (`make install-lmms`,
found as Llava/eval.sh finds it: LMMS_PYTHON, else .cache/lmms-venv) skip cleanly without it;
scoring the embedded tiny LLaVA end to end is in the slow set. The recorded results file in
tests/recorded/ is lmms-eval 0.7.3's own output of `Llava/eval.sh tiny-llava OUT mop_shapes_lmms`.
"""

import copy
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest

from mop.core.io import UsageError
from mop.evaluate import lmms_results
from mop.plugins.llava import lmms
from mop.plugins.llava.tasks_lmms import make_parquet

REPO = Path(__file__).resolve().parents[3]
RECORDED = REPO / "tests" / "recorded" / "lmms_eval_0.7.3_results_mop_shapes_tiny_llava.json"
SHAPES_JSONL = REPO / "mop" / "plugins" / "llava" / "tasks_vision" / "data" / "shapes.jsonl"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def lmms_installed() -> bool:
    return lmms.installed_version(lmms.lmms_python()) is not None


needs_lmms = pytest.mark.skipif(not lmms_installed(), reason="lmms-eval is not installed (make install-lmms)")


def recorded(value: float | None = None, stderr: float | None = None) -> dict:
    """The recorded lmms-eval results, optionally with the shapes task's exact match replaced
    (the tiny LLaVA scored 0: a test needs other numbers to tell fields apart)."""
    raw = json.loads(RECORDED.read_text())
    entry = raw["results"]["mop_shapes_lmms"]
    if value is not None:
        entry["exact_match,first_word"] = value
    if stderr is not None:
        entry["exact_match_stderr,first_word"] = stderr
    return raw


def shipped_answers() -> list[str]:
    return [json.loads(line)["answer"] for line in SHAPES_JSONL.read_text().splitlines() if line.strip()]


# ----------------------------------------------------------------------------- lmms-eval's results


def test_recorded_file_is_parsed_into_the_headline_score():
    raw = recorded(0.375, 0.1)
    parsed = lmms_results.parse_results(raw)
    assert parsed["tasks"] == {"mop_shapes_lmms": {"acc": 0.375, "acc_stderr": 0.1, "acc_norm": None,
                                                   "acc_norm_stderr": None}}
    assert parsed["lmms_headlines"]["mop_shapes_lmms"] == {"metric": "exact_match", "scale": 1.0}
    # "N/A" (the clustered stderr lmms-eval could not compute) is left out, numbers are kept
    assert parsed["lmms_metrics"]["mop_shapes_lmms"] == {"exact_match": 0.375, "exact_match_stderr": 0.1,
                                                         "exact_match_stderr_clt": 0.0}


def test_recorded_file_as_the_tiny_llava_scored_it():
    raw = json.loads(RECORDED.read_text())
    assert raw["n-samples"]["mop_shapes_lmms"] == {"original": 24, "effective": 24}
    assert lmms_results.parse_results(raw)["tasks"]["mop_shapes_lmms"]["acc"] == raw["results"]["mop_shapes_lmms"][
        "exact_match,first_word"]


@pytest.mark.parametrize("task,entry,acc,stderr", [
    ("scienceqa_img", {"exact_match,none": 0.7, "exact_match_stderr,none": 0.01}, 0.7, 0.01),
    ("pope", {"pope_accuracy,none": 0.8, "pope_f1_score,none": 0.9, "pope_f1_score_stderr,none": "N/A"}, 0.9, None),
    ("mme", {"mme_perception_score,none": 1500.0, "mme_cognition_score,none": 300.0}, 0.75, None),
    ("textvqa_val", {"exact_match,none": 0.5, "submission,none": "/tmp/submission.json"}, 0.5, None),
    ("mmvet", {"gpt_eval_score,none": 31.5}, 0.315, None),
    ("llava_in_the_wild", {"gpt_eval_llava_conv,none": 50.0, "gpt_eval_llava_all,none": 65.0}, 0.65, None),
    ("some_task", {"alias": "some_task", "foo_score,none": 55.0}, 0.55, None),  # not known: >1 read as percent
    ("other_task", {"bar,none": 0.25, "bar_stderr,none": 0.05}, 0.25, 0.05),
])
def test_headline_metric_of_each_benchmark(task, entry, acc, stderr):
    scores = lmms_results.parse_results({"results": {task: {"alias": task, **entry}}})["tasks"][task]
    assert scores["acc"] == pytest.approx(acc) and scores["acc_norm"] is None
    assert scores["acc_stderr"] == (None if stderr is None else pytest.approx(stderr))


def test_unfiltered_value_wins_and_groups_are_left_out():
    raw = {"results": {"grp": {"exact_match,none": 0.9}, "t": {"exact_match,strict": 0.1, "exact_match,none": 0.2}},
           "group_subtasks": {"grp": ["t"], "t": []}}
    assert lmms_results.parse_results(raw)["tasks"] == {"t": {"acc": 0.2, "acc_stderr": None, "acc_norm": None,
                                                      "acc_norm_stderr": None}}


def test_results_files_of_several_runs_are_merged(tmp_path):
    """One lmms-eval run per benchmark into one --output_path: the folder's record holds them all."""
    first = recorded(0.25)
    second = copy.deepcopy(first)
    second["results"] = {"pope": {"alias": "pope", "pope_f1_score,none": 0.8}}
    second["n-samples"] = {"pope": {"original": 9000, "effective": 9000}}
    model_dir = tmp_path / "eval" / "llava_hf"
    model_dir.mkdir(parents=True)
    (model_dir / "20261204_100000_results.json").write_text(json.dumps(first))
    (model_dir / "20261204_110000_results.json").write_text(json.dumps(second))
    (tmp_path / "eval" / "unrelated_results.json").write_text(json.dumps({"results": {"x": {}}}))  # not lmms-eval's
    os.utime(model_dir / "20261204_100000_results.json", (1, 1))
    record = lmms_results.record_from_results(tmp_path / "eval")
    assert {t: s["acc"] for t, s in record["tasks"].items()} == {"mop_shapes_lmms": 0.25, "pope": 0.8}
    assert record["limit"] is None and len(record["sources"]) == 2
    assert lmms_results.holds_results(tmp_path / "eval" / "mop_eval.json")
    assert not lmms_results.holds_results(tmp_path / "nothing" / "mop_eval.json")


@needs_lmms
def test_headline_metrics_and_datasets_are_those_of_the_installed_lmms_eval():
    """The metric names of HEADLINES are in the pinned lmms-eval's task YAMLs, and its paper
    tasks read the `lmms-lab-encoder/*` datasets (the reason for the pin)."""
    probe = "import importlib.util; print(importlib.util.find_spec('lmms_eval').submodule_search_locations[0])"
    package = Path(subprocess.run([str(lmms.lmms_python()), "-c", probe], capture_output=True, text=True,
                                  check=True).stdout.strip())
    yamls = {}
    for path in (package / "tasks").rglob("*.yaml"):
        match = re.search(r"^task:\s*\"?([\w-]+)\"?\s*$", path.read_text(errors="replace"), re.M)
        if match:
            yamls[match.group(1)] = path
    for task in lmms.LMMS_PAPER_TASKS + lmms.JUDGE_TASKS:
        text = yamls[task].read_text()
        assert re.search(rf"-\s*metric:\s*{lmms_results.HEADLINES[task].metric}\s*$", text, re.M), task
        include = re.search(r"^include:\s*(\S+)", text, re.M)
        if include:
            text += "\n" + (yamls[task].parent / include.group(1)).read_text()
        dataset = re.search(r"^dataset_path:\s*(\S+)", text, re.M).group(1)
        assert dataset.startswith("lmms-lab-encoder/"), (task, dataset)


# ----------------------------------------------------------------------------- tasks and command


def test_task_routing():
    tasks = lmms.expand_tasks("paper,lmms_paper,mop_shapes_lmms,lmms:gqa,pope")
    lmms_tasks, text_tasks = lmms.split_tasks(tasks)
    assert lmms_tasks == ["scienceqa_img", "pope", "mme", "vizwiz_vqa_val", "textvqa_val", "mop_shapes_lmms", "gqa"]
    assert text_tasks == ["piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge"]
    assert lmms.split_tasks(["mop_mini", "mop_shapes", "mmmu_val"]) == ([], ["mop_mini", "mop_shapes", "mmmu_val"])
    with pytest.raises(UsageError, match="must be followed"):
        lmms.split_tasks(["lmms:"])


def test_judged_benchmarks_need_the_judge_key(monkeypatch):
    for name in ("OPENAI_API_KEY", "AZURE_API_KEY", "API_TYPE"):
        monkeypatch.delenv(name, raising=False)
    lmms.check_judge_key(["pope", "mop_shapes_lmms"])  # rule-scored: no key needed
    with pytest.raises(UsageError, match="mmvet, llava_in_the_wild: .*OPENAI_API_KEY"):
        lmms.check_judge_key(["pope", "mmvet", "llava_in_the_wild"])
    monkeypatch.setenv("API_TYPE", "azure")
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    with pytest.raises(UsageError, match="AZURE_API_KEY"):
        lmms.check_judge_key(["mmvet"])
    monkeypatch.setenv("AZURE_API_KEY", "k")
    lmms.check_judge_key(["mmvet"])


def test_lmms_command(tmp_path):
    settings = {"device": "cpu", "dtype": "float32", "limit": 5}
    cmd = lmms.lmms_command(Path("/env/bin/python"), "/models/m", ["pope", "mme"], settings, tmp_path)
    args = {a: (cmd[i + 1] if i + 1 < len(cmd) and not cmd[i + 1].startswith("--") else None)
            for i, a in enumerate(cmd) if a.startswith("--")}
    assert cmd[:3] == ["/env/bin/python", "-m", "lmms_eval"]
    assert args["--model"] == "llava_hf" and args["--tasks"] == "pope,mme" and args["--batch_size"] == "1"
    assert args["--model_args"] == "pretrained=/models/m,device=cpu,device_map=cpu,dtype=float32"
    assert args["--include_path"] == str(REPO / "mop" / "plugins" / "llava" / "tasks_lmms") and args["--limit"] == "5"
    assert args["--reasoning_tags"] == "none" and args["--output_path"] == str(tmp_path) and "--log_samples" in cmd
    assert "--limit" not in lmms.lmms_command(Path("p"), "/m", ["pope"], {**settings, "limit": None}, tmp_path)
    with pytest.raises(UsageError, match="comma"):
        lmms.lmms_command(Path("p"), "/models/a,b", ["pope"], settings, tmp_path)


def test_pinned_version_and_install_target():
    pins = dict(re.findall(r"^([\w-]+)==(\S+)$", (REPO / "requirements-lmms.txt").read_text(), re.M))
    assert pins["lmms-eval"] == lmms.PINNED_VERSION
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^install-lmms:", makefile, re.M) and "-r requirements-lmms.txt -c requirements.txt" in makefile


@pytest.mark.parametrize("env,tasks", [({"SCORER": "lmms"}, []), ({}, ["mop_mini,pope"])])
def test_eval_sh_without_lmms_eval_names_the_install_command(tmp_path, env, tasks):
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(REPO / "Llava" / "eval.sh"), "tiny-llava", str(out), *tasks],
                          capture_output=True, text=True,
                          env={**os.environ, **OFFLINE, **env, "LMMS_PYTHON": str(tmp_path / "no-python")})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "make install-lmms" in lines[0] and lines[0].startswith("error: ")
    assert not out.exists()


def test_an_lmms_eval_run_without_results_is_one_line_and_leaves_nothing(tmp_path, tokenizer_dir):
    """lmms-eval 0.7.3 exits 0 after an error during evaluation: the missing results file is what
    tells, and the scores folder must not appear. A stand-in interpreter plays lmms-eval."""
    from test_llava import make_tiny_llava

    model, processor = make_tiny_llava(tokenizer_dir)
    checkpoint = tmp_path / "dense"
    model.save_pretrained(checkpoint)
    processor.save_pretrained(checkpoint)
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\nif [ "$1" = -c ]; then echo 0.7.3; else echo "lmms-eval stand-in: error"; fi\n')
    fake.chmod(0o755)
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(REPO / "Llava" / "eval.sh"), str(checkpoint), str(out), "mop_shapes_lmms,pope"],
                          capture_output=True, text=True, env={**os.environ, **OFFLINE, "LMMS_PYTHON": str(fake)})
    assert proc.returncode == 1 and "lmms-eval stand-in: error" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == ("error: lmms-eval wrote no results (exit status 0; its output is "
                                                   "above); pope read hub datasets: no hub access?")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dense", "python"]  # no OUT_DIR, no work folder


def test_an_unknown_scorer_is_refused(tmp_path):
    proc = subprocess.run(["bash", str(REPO / "Llava" / "eval.sh"), "tiny-llava", str(tmp_path / "o")],
                          capture_output=True, text=True, env={**os.environ, **OFFLINE, "SCORER": "gpt"})
    assert proc.returncode == 2 and proc.stderr.strip() == "error: SCORER must be one of auto, lmms, not 'gpt'"


# ----------------------------------------------------------------------------- the offline task's data


def test_parquet_holds_the_shipped_questions_and_pictures(tmp_path):
    import datasets
    import pyarrow.parquet as pq

    target = tmp_path / "shapes.parquet"
    assert make_parquet.ensure_parquet(target) is True
    first = target.read_bytes()
    assert make_parquet.ensure_parquet(target) is False and target.read_bytes() == first  # deterministic
    entries = [json.loads(line) for line in SHAPES_JSONL.read_text().splitlines() if line.strip()]
    table = pq.read_table(target).to_pylist()
    assert [r["question"] for r in table] == [e["question"] for e in entries]
    assert [r["answer"] for r in table] == [e["answer"] for e in entries] and len(table) == 24
    assert [r["image"]["bytes"] for r in table] == [(SHAPES_JSONL.parent / e["image"]).read_bytes() for e in entries]
    loaded = datasets.load_dataset("parquet", data_files={"test": str(target)}, cache_dir=str(tmp_path / "hf"))
    assert loaded["test"][5]["image"].size == (64, 64)  # decoded as a picture, as lmms-eval's hook expects


def test_task_yaml_reads_the_written_parquet():
    text = (REPO / "mop" / "plugins" / "llava" / "tasks_lmms" / "mop_shapes_lmms.yaml").read_text()
    assert re.search(r"^task: (\S+)$", text, re.M).group(1) in lmms.LOCAL_TASKS
    data_file = re.search(r"^\s+test: (\S+)$", text, re.M).group(1)
    assert REPO / data_file == make_parquet.PARQUET  # relative to the repository root, where lmms-eval runs


# ----------------------------------------------------------------------------- mop.evaluate.tables


def write_run(root: Path) -> None:
    """A LLaVA results folder: dense and pruned scores as lmms-eval wrote them (no mop_eval.json),
    the recovered score as Llava/eval.sh wrote it."""
    for folder, value in (("dense_eval", 0.625), ("run_seed_1/prune_iteration_1_eval", 0.25)):
        path = root / folder / "tiny-llava" / "20261204_183800_results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(recorded(value)))
    summary = lmms.lmms_summary(None, recorded(0.5), "/m", "python -m mop.plugins.llava.lmms evaluate", {"limit": None})
    recovered = root / "run_seed_1" / "prune_iteration_1_ft_1ep_eval"
    recovered.mkdir(parents=True)
    (recovered / "mop_eval.json").write_text(json.dumps(summary))
    (root / "run_seed_1" / "pruning_summary.json").write_text(json.dumps(
        [{"iteration": 0, "params": 1_000_000, "compression": 0.0},
         {"iteration": 1, "params": 920_000, "compression": 0.08}]))


def test_tables_show_the_visual_benchmark_columns(tmp_path, capsys):
    from mop.evaluate.tables import main as tables_main

    root = tmp_path / "results_llava"
    write_run(root)
    tables_main([str(root), "--targets", "0.08"])
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("| Target"))
    assert "mop_shapes_lmms" in header.split(" | ")
    rows = {tuple(c.strip() for c in line.strip("|").split("|"))[1]: line for line in printed.splitlines()
            if line.startswith("| ") and not line.startswith("| Target")}
    assert "62.50" in rows["Dense"] and printed.count("MoP (seed 1)") == 1 and printed.count("MoP (seed 1, sft)") == 1
    recovered, pruned = printed.split("Pruned checkpoints without recovery")
    assert "50.00" in recovered.split("MoP (seed 1, sft)")[1].splitlines()[0]
    assert "25.00" in pruned.split("MoP (seed 1)")[1].splitlines()[0]
    with open(root / "results_table.csv") as handle:
        values = {(r["stage"], r["method"]): r["mop_shapes_lmms"] for r in csv.DictReader(handle)}
    assert values[("recovered", "MoP (seed 1, sft)")] == "0.5" and values[("pruned", "MoP (seed 1)")] == "0.25"


# ----------------------------------------------------------------------------- scoring the tiny LLaVA


def first_word(text: str) -> str:
    """The test's own reading of an answer: its first run of letters, lower-cased."""
    match = re.search(r"[A-Za-z]+", text)
    return match.group(0).lower() if match else ""


def generated_text(sample: dict) -> str:
    """The generated answer as lmms-eval logged it (one generation per question)."""
    resps = sample["resps"]
    while isinstance(resps, list):
        assert len(resps) == 1
        resps = resps[0]
    return resps


def run_eval_sh(out: Path, tasks: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **OFFLINE, "OMP_NUM_THREADS": "2"}
    env.pop("EVAL_LIMIT", None)  # the whole task unless the test sets a limit
    env.update(extra_env or {})
    proc = subprocess.run(["bash", str(REPO / "Llava" / "eval.sh"), "tiny-llava", str(out), tasks],
                          capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow  # lmms-eval's start-up and 24 generations of the tiny LLaVA: about 30 s
@needs_lmms
def test_tiny_llava_scored_through_eval_sh_matches_an_independent_count(tmp_path):
    out = tmp_path / "dense_eval"
    run_eval_sh(out, "mop_shapes_lmms")
    meta = json.loads((out / "mop_eval.json").read_text())
    samples = [json.loads(line) for line in (out / "lmms_eval_samples_mop_shapes_lmms.jsonl").read_text().splitlines()]
    samples.sort(key=lambda s: s["doc_id"])
    assert [s["target"] for s in samples] == shipped_answers()  # every shipped question, in order
    answers = [generated_text(s) for s in samples]
    assert any(a != first_word(a) for a in answers)  # the generated text, not the filtered word, is logged
    matches = [first_word(a) == s["target"] for a, s in zip(answers, samples)]
    assert [s["exact_match"] for s in samples] == [float(m) for m in matches]
    assert meta["tasks"]["mop_shapes_lmms"]["acc"] == pytest.approx(sum(matches) / len(samples), abs=1e-12)
    assert meta["n_samples"] == {"mop_shapes_lmms": 24} and meta["scorer"] == "lmms-eval"
    assert meta["versions"]["lmms_eval"] == lmms.PINNED_VERSION
    # a second call finds the folder complete and loads nothing
    again = run_eval_sh(out, "mop_shapes_lmms")
    assert "already complete" in again.stdout


@pytest.mark.slow  # the text task through lm_eval, then lmms-eval: about a minute
@needs_lmms
def test_text_and_visual_tasks_in_one_scores_folder(tmp_path):
    out = tmp_path / "eval"
    run_eval_sh(out, "mop_arc,mop_shapes_lmms", {"EVAL_LIMIT": "4"})
    meta = json.loads((out / "mop_eval.json").read_text())
    assert set(meta["tasks"]) == {"mop_arc", "mop_shapes_lmms"} and meta["scorer"] == "lm_eval + lmms-eval"
    assert meta["n_samples"] == {"mop_arc": 4, "mop_shapes_lmms": 4} and meta["limit"] == 4
    assert meta["tasks"]["mop_arc"]["acc"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert json.loads((out / "lm_eval_results.json").read_text())["results"].keys() == {"mop_arc"}
    assert json.loads((out / "lmms_eval_results.json").read_text())["results"].keys() == {"mop_shapes_lmms"}
    assert len((out / "lmms_eval_samples_mop_shapes_lmms.jsonl").read_text().splitlines()) == 4
