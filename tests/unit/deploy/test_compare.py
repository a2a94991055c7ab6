"""mop.deploy.compare on the embedded model: dense and a pruned checkpoint side by side.

Each column must hold exactly what `model.generate` gives for that model alone (greedy), with
figures that are present and positive; turns, --sequential and --prompts must not change a
token; bad inputs are one line, exit 2, nothing written.
"""

import json
import threading
import time
from pathlib import Path

import pytest
import torch
from test_bad_inputs import assert_one_line_exit_2, call_main, gpt2_config, tree  # noqa: F401 (a fixture)

from mop.deploy import compare, comparison
from mop.models.loading import load_model, resolve_model_name
from mop.prune.pruner import PruneSettings, run_pruning

DENSE = "smollm2-135m"
PROMPT = "What is the capital of France?"
NEW_TOKENS = 12


@pytest.fixture(scope="module")
def pruned_run(tmp_path_factory, calibration_file):
    """Two iterations (L, then an MLP-width step) of the embedded model, few calibration prompts."""
    run = tmp_path_factory.mktemp("compare") / "run"
    run_pruning(PruneSettings(model_name=DENSE, save_dir=str(run), num_iterations=2, decision_sequence="LG",
                              mlp_only=True, calibration_data=str(calibration_file), num_calibration_prompts=8,
                              device="cpu"), progress=False)
    return run


def greedy_alone(name: str, prompt: str, new_tokens: int = NEW_TOKENS) -> list[int]:
    """The reference: the model loaded by itself, `generate` with greedy decoding."""
    model, processing = load_model(resolve_model_name(name) if name == DENSE else name, torch.float32, "cpu")
    inputs = comparison.model_inputs(model, processing, prompt, None, chat=True)
    out = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False, temperature=None, top_p=None,
                         top_k=None, pad_token_id=processing.pad_token_id)
    return out[0, inputs["input_ids"].shape[1]:].tolist()


def run_compare(capsys, *argv) -> tuple[dict, str]:
    capsys.readouterr()
    data = compare.main(["--device", "cpu", "--max_new_tokens", str(NEW_TOKENS), *argv])
    return data, capsys.readouterr().out


def answers_of(data: dict, prompt_index: int = 0) -> list[dict]:
    return data["prompts"][prompt_index]["answers"]


def test_each_column_holds_what_generate_gives_that_model_alone(pruned_run, tmp_path, capsys):
    pruned = str(pruned_run / "prune_iteration_2")
    out = tmp_path / "compare.json"
    data, printed = run_compare(capsys, "--models", DENSE, pruned, "--prompt", PROMPT, "--out", str(out))
    dense_answer, pruned_answer = answers_of(data)
    assert dense_answer["model"] == DENSE and pruned_answer["model"] == pruned
    assert dense_answer["token_ids"] == greedy_alone(DENSE, PROMPT)
    assert pruned_answer["token_ids"] == greedy_alone(pruned, PROMPT)
    assert json.loads(out.read_text()) == json.loads(json.dumps(data))
    for answer in (dense_answer, pruned_answer):
        assert answer["text"] and answer["text"] in printed.replace("\n", " ") or answer["text"][:10] in printed
        assert answer["time_to_first_token_s"] > 0 and answer["decode_tokens_per_s"] > 0
        assert answer["memory_gb"] > 0 and answer["prompt_tokens"] > 5
    dense_column, pruned_column = data["models"]
    assert dense_column["compression"] is None and 0 < pruned_column["compression"] < 0.2
    assert pruned_column["params"] < dense_column["params"]
    assert "| model | parameters | compression |" in printed and f"| {comparison.short_name(pruned)} |" in printed


def test_sequential_gives_the_same_tokens(pruned_run, capsys):
    pruned = str(pruned_run / "prune_iteration_2")
    together, _ = run_compare(capsys, "--models", DENSE, pruned, "--prompt", PROMPT)
    one_by_one, _ = run_compare(capsys, "--models", DENSE, pruned, "--prompt", PROMPT, "--sequential")
    assert one_by_one["sequential"] and not together["sequential"]
    assert [a["token_ids"] for a in answers_of(one_by_one)] == [a["token_ids"] for a in answers_of(together)]


def test_prompts_file_runs_each_prompt_and_results_names_read_as_the_tables_give_them(pruned_run, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Name a color.\n\nWhat is two plus two?\n")
    data, printed = run_compare(capsys, "--models", f"{pruned_run}/1", f"{pruned_run}/2", "--prompts", str(prompts),
                                "--max_new_tokens", "4")
    assert [p["prompt"] for p in data["prompts"]] == ["Name a color.", "What is two plus two?"]
    assert [m["path"] for m in data["models"]] == [str((pruned_run / f"prune_iteration_{i}").resolve()) for i in (1, 2)]
    assert all(len(a["token_ids"]) <= 4 for p in data["prompts"] for a in p["answers"])
    assert printed.count(f"| {comparison.short_name(f'{pruned_run}/2')} |") == 1  # one summary row per model


def test_seeded_sampling_repeats(pruned_run, capsys):
    argv = ["--models", DENSE, "--prompt", PROMPT, "--sample", "--seed", "3", "--temperature", "1.5"]
    first, _ = run_compare(capsys, *argv)
    second, _ = run_compare(capsys, *argv)
    assert answers_of(first)[0]["token_ids"] == answers_of(second)[0]["token_ids"]
    assert answers_of(first)[0]["token_ids"] != greedy_alone(DENSE, PROMPT)  # it did sample


@pytest.mark.parametrize("case,fragments", [
    ("missing", ["model folder not found"]),
    ("gpt2", ["gpt2"]),
    ("image-for-text", ["--image given, but smollm2-135m reads no images"]),
    ("zero-tokens", ["--max_new_tokens must be at least 1, got 0"]),
    ("no-iteration", ["no recovered checkpoint(s) of iteration 2 (ft)"]),
])
def test_bad_inputs_are_one_line_and_write_nothing(case, fragments, pruned_run, gpt2_config, tmp_path, capsys):
    image = tmp_path / "cat.png"
    image.write_bytes(b"not really a png")
    argv = {"missing": ["--models", DENSE, str(tmp_path / "nope")],
            "gpt2": ["--models", DENSE, str(gpt2_config)],
            "image-for-text": ["--models", DENSE, "--image", str(image)],
            "zero-tokens": ["--models", DENSE, "--max_new_tokens", "0"],
            "no-iteration": ["--models", DENSE, f"{pruned_run}/2/ft"]}[case]
    before = tree(tmp_path)
    code, err = call_main(lambda: compare.main([*argv, "--out", str(tmp_path / "out.json")]), capsys)
    assert_one_line_exit_2(code, err, *fragments)
    assert tree(tmp_path) == before


def test_turns_alternate_and_skip_finished_models():
    """Three workers making 3, 1 and 2 tokens: one at a time, in turn, the finished ones skipped."""
    turns, log, lock = comparison.Turns(3), [], threading.Lock()

    def worker(index: int, count: int) -> None:
        turns.wait(index)
        for token in range(count):
            with lock:
                log.append(index)
            time.sleep(0.001)
            if token < count - 1:
                turns.pass_on(index)
                turns.wait(index)
        turns.finish(index)

    threads = [threading.Thread(target=worker, args=(i, n)) for i, n in enumerate((3, 1, 2))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert log == [0, 1, 2, 0, 2, 0]


def test_results_names_pick_the_recovered_checkpoint(tmp_path):
    run = tmp_path / "run"
    for name in ("prune_iteration_8", "prune_iteration_8_ft_1ep", "prune_iteration_8_ft_1ep_kd"):
        (run / name).mkdir(parents=True)
        (run / name / "config.json").write_text("{}")
    assert comparison.resolve_entry(f"{run}/8") == str((run / "prune_iteration_8").resolve())
    assert comparison.resolve_entry(f"{run}/8/ft") == str((run / "prune_iteration_8_ft_1ep").resolve())
    assert comparison.resolve_entry(f"{run}/8/kd") == str((run / "prune_iteration_8_ft_1ep_kd").resolve())


def test_a_llava_checkpoint_answers_about_the_image(capsys):
    """tiny-llava (random vision tower): the column holds the greedy answer of mop.plugins.llava.plugin's own
    image-question path; without --image it is one line."""
    from mop.models.loading import resolve_model_name
    from mop.plugins.llava.plugin import SHIPPED_QUESTIONS, answer_image_question, load_image_questions, open_image

    entry = load_image_questions(SHIPPED_QUESTIONS, limit=1)[0]
    data, _ = run_compare(capsys, "--models", "tiny-llava", "--image", str(entry["image"]), "--prompt",
                          entry["question"], "--max_new_tokens", "6")
    model, processor = load_model(resolve_model_name("tiny-llava"), torch.float32, "cpu")
    expected, _ = answer_image_question(model, processor, open_image(entry["image"]), entry["question"], 6)
    assert answers_of(data)[0]["token_ids"] == expected
    code, err = call_main(lambda: compare.main(["--models", "tiny-llava", "--prompt", "hi"]), capsys)
    assert_one_line_exit_2(code, err, "tiny-llava is a multimodal model: give --image PATH")
