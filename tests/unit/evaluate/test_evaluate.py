"""mop.evaluate.harness: lm_eval key parsing, the mop_eval.json record, CLI errors, one real tiny run."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, hand_scored_multiple_choice

from mop.core.io import read_json
from mop.evaluate import harness as evaluate

REPO = Path(__file__).resolve().parents[3]

FAKE_RAW = {
    "results": {
        "arc_easy": {"alias": "arc_easy", "acc,none": 0.75, "acc_stderr,none": 0.0089,
                     "acc_norm,none": 0.7, "acc_norm_stderr,none": 0.0094},
        "winogrande": {"alias": "winogrande", "acc,none": 0.69, "acc_stderr,none": 0.013},
        "mop_mini": {"alias": "mop_mini", "acc,none": 0.5, "acc_stderr,none": "N/A"},
    },
    "groups": {"mop_mini": {"acc,none": 0.5}},
    "group_subtasks": {"mop_mini": ["arc_easy"], "arc_easy": [], "winogrande": []},
    "n-shot": {"arc_easy": 0, "winogrande": 0},
    "n-samples": {"arc_easy": {"original": 2376, "effective": 2376}, "winogrande": {"original": 1267, "effective": 1267}},
    "lm_eval_version": "0.4.13",
    "samples": {"arc_easy": ["big per-sample log"]},
}


def test_parse_metric_keys_reads_unfiltered_values():
    parsed = evaluate.parse_metric_keys(FAKE_RAW["results"]["arc_easy"])
    assert parsed == {"acc": 0.75, "acc_stderr": 0.0089, "acc_norm": 0.7, "acc_norm_stderr": 0.0094}


def test_parse_metric_keys_missing_na_and_filtered():
    assert evaluate.parse_metric_keys(FAKE_RAW["results"]["winogrande"]) == {
        "acc": 0.69, "acc_stderr": 0.013, "acc_norm": None, "acc_norm_stderr": None}
    # "N/A" stderr and NaN become null; a filtered-only metric is still found; "none" wins over a filter.
    parsed = evaluate.parse_metric_keys({"acc,strict": 0.25, "acc_stderr,none": "N/A",
                                         "acc_norm,none": float("nan"), "acc_norm_stderr,x": 0.1,
                                         "acc_norm_stderr,none": 0.2})
    assert parsed == {"acc": 0.25, "acc_stderr": None, "acc_norm": None, "acc_norm_stderr": 0.2}


def test_summary_written_from_fake_results(tmp_path):
    summary = evaluate.summarize(FAKE_RAW, "/models/x", "python -m mop.evaluate a b", num_fewshot=0,
                                 extra={"limit": None})
    out = tmp_path / "x_eval"
    evaluate.write_outputs(out, FAKE_RAW, summary)
    stored = read_json(out / "mop_eval.json")
    assert set(stored["tasks"]) == {"arc_easy", "winogrande"}  # the group is not a task
    assert stored["tasks"]["arc_easy"]["acc_norm"] == 0.7
    assert stored["tasks"]["winogrande"]["acc_norm"] is None
    assert stored["groups"]["mop_mini"]["acc"] == 0.5 and stored["groups"]["mop_mini"]["acc_stderr"] is None
    assert stored["num_fewshot"] == 0 and stored["model_dir"] == "/models/x"
    assert stored["n_samples"] == {"arc_easy": 2376, "winogrande": 1267}
    assert stored["command"] == "python -m mop.evaluate a b"
    assert {"lm_eval", "transformers", "torch"} <= set(stored["versions"])
    raw = read_json(out / "lm_eval_results.json")
    assert raw["results"] == FAKE_RAW["results"] and "samples" not in raw
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


def test_settings_parsing():
    assert evaluate.parse_limit(None) is None and evaluate.parse_limit("20") == 20
    assert evaluate.parse_limit("0.1") == 0.1
    assert evaluate.resolve_batch_size(None, "cpu") == 8 and evaluate.resolve_batch_size(None, "cuda") == "auto"
    assert evaluate.resolve_batch_size("16", "cuda") == 16
    assert evaluate.resolve_eval_dtype("auto", "cpu") == "float32"
    assert evaluate.resolve_eval_dtype("auto", "cuda") == "auto"
    assert evaluate.parse_tasks("piqa, hellaswag,,") == ["piqa", "hellaswag"]
    # `paper` stands for the paper's five zero-shot tasks, wherever it appears in the list.
    assert evaluate.parse_tasks("paper,mmmu_val") == [
        "piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "mmmu_val"]
    assert evaluate.parse_tasks("mop_mini, paper") == [
        "mop_mini", "piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge"]
    for bad in (lambda: evaluate.parse_limit("x"), lambda: evaluate.parse_limit("0"),
                lambda: evaluate.resolve_batch_size("0", "cpu"), lambda: evaluate.parse_tasks(" , ")):
        with pytest.raises(evaluate.UsageError):
            bad()


def test_data_parallel_command_uses_stock_cli():
    settings = {"dtype": "auto", "batch_size": "auto", "limit": 10, "num_gpus": 4}
    cmd = evaluate.accelerate_command("/m", ["piqa", "mop_arc"], settings, Path("/repo/mop/tasks"), Path("/o"))
    text = " ".join(cmd)
    assert "accelerate.commands.launch --num_processes 4" in text and "-m lm_eval run --model hf" in text
    assert "--tasks piqa,mop_arc" in text and "--num_fewshot 0" in text
    assert "--include_path /repo/mop/tasks" in text and "--limit 10" in text
    assert json.loads(cmd[cmd.index("--model_args") + 1]) == {"pretrained": "/m", "dtype": "auto"}
    assert cmd[cmd.index("--main_process_port") + 1] == "0"  # concurrent scoring stages (EXECUTOR=gpus) on one node


def test_model_path_with_comma_and_equals_reaches_lm_eval_whole(tmp_path):
    """lm_eval's own command-line parser, given the command we build, must hand HFLM the path
    unsplit and no extra option (a `key=value,...` string would be split at ',' and '=')."""
    from lm_eval._cli import HarnessCLI
    from lm_eval.config.evaluate_config import EvaluatorConfig

    path = str(tmp_path / "run,trust_remote_code=True" / "prune_iteration_1,dtype=float16")
    settings = {"dtype": "float32", "batch_size": 8, "limit": None, "num_gpus": 2}
    cmd = evaluate.accelerate_command(path, ["mop_arc"], settings, evaluate.TASKS_DIR, tmp_path / "o")
    lm_eval_argv = cmd[cmd.index("lm_eval") + 1:]
    config = EvaluatorConfig.from_cli(HarnessCLI()._parser.parse_args(lm_eval_argv))
    assert config.model == "hf" and config.model_args == {"pretrained": path, "dtype": "float32"}
    assert config.tasks == ["mop_arc"]


@pytest.mark.parametrize("entry", ["module", "Llama2/eval.sh", "Llama3/eval.sh"])
def test_missing_model_dir_exits_2(tmp_path, entry):
    out = tmp_path / "out"
    args = [str(tmp_path / "no_such_model"), str(out)]
    if entry == "module":
        cmd = [sys.executable, "-m", "mop.evaluate", *args]
    else:
        cmd = ["bash", str(REPO / entry), *args]
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "model folder not found" in proc.stderr
    assert not out.exists()


def test_more_gpus_than_visible_is_refused(tmp_path, checkpoint_factory):
    model_dir = checkpoint_factory(layers=2, name="m")
    with pytest.raises(SystemExit) as exc:
        evaluate.main([str(model_dir), str(tmp_path / "out"), "--num_gpus", "64"])
    assert exc.value.code == 2 and not (tmp_path / "out").exists()


def test_complete_out_dir_is_skipped_and_foreign_dir_refused(tmp_path, capsys):
    done = tmp_path / "done"
    done.mkdir()
    (done / "mop_eval.json").write_text('{"tasks": {}}')
    assert evaluate.main([str(tmp_path / "missing_model_is_not_even_checked"), str(done)]) is None
    assert "already complete" in capsys.readouterr().out
    assert (done / "mop_eval.json").read_text() == '{"tasks": {}}'
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    with pytest.raises(SystemExit) as exc:
        evaluate.main([str(tmp_path), str(foreign)])
    assert exc.value.code == 2 and (foreign / "keep.txt").exists()


def test_local_task_index_finds_shipped_group():
    manager = evaluate.task_manager_for(["mop_mini", "mop_arc"], evaluate.TASKS_DIR)
    assert {"mop_mini", "mop_arc", "mop_piqa", "mop_hellaswag"} <= set(manager.all_tasks)


# ----------------------------------------------------------------------------- one real run

TASK_DOCS = [
    {"question": "what is the big tree", "choices": ["a green tree", "the blue river", "two cats"], "label": 0},
    {"question": "which is fast", "choices": ["a slow dog", "the fast cat"], "label": 1},
    {"question": "what is the sun", "choices": ["a big red sun", "water", "one small word", "the city"], "label": 2},
    {"question": "how is the river", "choices": ["blue", "good and fast", "bad"], "label": 1},
    {"question": "what is in the city", "choices": ["a dog", "three red trees"], "label": 0},
    {"question": "name one number", "choices": ["five", "the cat", "water"], "label": 0},
    {"question": "this is not scored", "choices": ["a", "b"], "label": 0},
]
LIMIT = 6


def write_task(folder: Path) -> None:
    folder.mkdir()
    (folder / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in TASK_DOCS))
    (folder / "tiny_mc.yaml").write_text(
        "task: tiny_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {folder / 'docs.jsonl'}\n"
        "test_split: test\noutput_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: label\n'
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
        "  - metric: acc_norm\n    aggregation: mean\n    higher_is_better: true\nmetadata:\n  version: 1.0\n"
    )


def expected_scores(model_dir: Path) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    return hand_scored_multiple_choice(model, tok, TASK_DOCS[:LIMIT])


def test_real_tiny_evaluation(tmp_path, checkpoint_factory):
    model_dir = checkpoint_factory(kv_heads=2, layers=2, name="tiny")
    tasks_dir = tmp_path / "tasks"
    write_task(tasks_dir)
    out = tmp_path / "tiny_eval"
    summary = evaluate.main([str(model_dir), str(out), "--tasks", "tiny_mc", "--limit", str(LIMIT),
                             "--device", "cpu", "--batch_size", "4", "--include_path", str(tasks_dir)])
    stored = read_json(out / "mop_eval.json")  # the file, checked against hand-scored answers below
    assert set(stored["tasks"]) == {"tiny_mc"}
    scores = stored["tasks"]["tiny_mc"]
    expected = expected_scores(model_dir)
    for metric in ("acc", "acc_norm", "acc_stderr"):
        assert scores[metric] == pytest.approx(expected[metric], abs=1e-9), metric
    assert 0 < expected["acc"] < 1  # neither all right nor all wrong: the comparison says something
    assert stored["n_samples"] == {"tiny_mc": LIMIT} and stored["limit"] == LIMIT
    raw = read_json(out / "lm_eval_results.json")
    assert raw["results"]["tiny_mc"]["acc,none"] == scores["acc"]
    assert raw["n-shot"]["tiny_mc"] == 0
    assert "--tasks tiny_mc" in stored["command"]


@torch.no_grad()
def hand_scored_rolling_perplexity(model, tokenizer, texts: list[str]) -> dict:
    """lm_eval's rolling perplexity by hand: each text's tokens (no special tokens) scored after
    one prefix token (bos), summed; word / byte perplexity = exp(-total log-likelihood / total
    words or bytes), words split on whitespace; bits per byte = -total / bytes / ln 2."""
    import math
    import re

    total = words = size = 0
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        full = torch.tensor([[tokenizer.bos_token_id] + ids])
        assert full.shape[1] <= model.config.max_position_embeddings  # one window: no rolling overlap
        logp = model(full).logits[0, :-1].float().log_softmax(-1)
        total += logp.gather(-1, full[0, 1:, None]).sum().item()
        words += len(re.split(r"\s+", text))
        size += len(text.encode("utf-8"))
    return {"word_perplexity": math.exp(-total / words), "byte_perplexity": math.exp(-total / size),
            "bits_per_byte": -total / size / math.log(2)}


def test_heldout_perplexity_task_equals_a_hand_computation(tmp_path, checkpoint_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mop.evaluate.heldout import heldout_texts

    model_dir = checkpoint_factory(kv_heads=2, layers=2, name="tiny")
    out = tmp_path / "ppl_eval"
    evaluate.main([str(model_dir), str(out), "--tasks", "mop_heldout_ppl", "--limit", "3", "--device", "cpu",
                   "--batch_size", "2"])
    scores = read_json(out / "mop_eval.json")["tasks"]["mop_heldout_ppl"]
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    expected = hand_scored_rolling_perplexity(model, AutoTokenizer.from_pretrained(model_dir), heldout_texts()[:3])
    for metric, value in expected.items():
        assert scores[metric] == pytest.approx(value, rel=1e-5), metric
    assert scores["acc"] is None  # a perplexity task reports no accuracy
    assert 1 < expected["word_perplexity"] < 1e6  # a real number, not a degenerate one


def test_an_earlier_llama_typed_folder_is_scored(tmp_path):
    """A heads-pruned folder written before checkpoints were in stock form (the 4.57-era fixture,
    whose config stock transformers 5 refuses) is scored by lm_eval through the project's loader,
    with the answers of hand scoring on the same model."""
    from mop.models.loading import load_model

    model_dir = REPO / "tests" / "fixtures" / "pre_stock" / "llama_mha_heads"
    tasks_dir = tmp_path / "tasks"
    write_task(tasks_dir)
    out = tmp_path / "eval"
    evaluate.main([str(model_dir), str(out), "--tasks", "tiny_mc", "--limit", str(LIMIT), "--device", "cpu",
                   "--batch_size", "4", "--include_path", str(tasks_dir)])
    scores = read_json(out / "mop_eval.json")["tasks"]["tiny_mc"]
    model, tokenizer = load_model(str(model_dir), torch.float32, "cpu")
    expected = hand_scored_multiple_choice(model, tokenizer, TASK_DOCS[:LIMIT])
    for metric in ("acc", "acc_norm"):
        assert scores[metric] == pytest.approx(expected[metric], abs=1e-9), metric
