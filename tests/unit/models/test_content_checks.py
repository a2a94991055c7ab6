"""Issue 32: inputs wrong in their content are refused before any work (one stderr line naming the
problem, exit 2, nothing created or changed): checkpoints whose weights disagree with their own
config or hold NaN, a list-shaped mop_prune.json, recovery data without responses, teacher caches
that are files or built for another dtype; and a run whose scores or losses turn NaN stops in
one line, keeping what it had written.

Each case corrupts a copy of the tiny random Llama of test_bad_inputs, so each takes well under a second.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from test_bad_inputs import assert_one_line_exit_2, call_main, checkpoint, tree  # noqa: F401 (a fixture)

from mop.core.io import UsageError
from mop.core.layout import PRUNE_META, iteration_dir
from mop.evaluate import harness as evaluate
from mop.evaluate import latency
from mop.models.data import report_shortfall
from mop.models.loading import load_model
from mop.prune.importance import ImportanceScores, amp_scores
from mop.prune.pruner import PruneSettings, run_pruning
from mop.recover import teacher_cache
from mop.recover.settings import RecoverySettings
from mop.recover.trainer import train_lora
from mop.run.cli import finetune_main, prune_main

WEIGHTS = "model.safetensors"


def edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def edit_weights(folder: Path, change) -> None:
    tensors = load_file(folder / WEIGHTS)
    change(tensors)
    save_file(tensors, folder / WEIGHTS, metadata={"format": "pt"})


def nan_entries(tensors: dict) -> None:
    """A few NaN in one layer's down projection, as an fp16 overflow leaves them."""
    tensors["model.layers.1.mlp.down_proj.weight"][0, :3] = float("nan")


# What each corruption does to a 4-layer checkpoint, and what the one line must say.
CORRUPTIONS = {
    "nan-weights": (lambda f: edit_weights(f, nan_entries),
                    ["model.layers.1.mlp.down_proj.weight holds 3 NaN/inf value(s)"]),
    "inf-weights": (lambda f: edit_weights(f, lambda t: t["model.norm.weight"].__setitem__(0, float("inf"))),
                    ["model.norm.weight holds 1 NaN/inf value(s)"]),
    "config-fewer-layers": (lambda f: edit_config(f, num_hidden_layers=2),
                            ["model.layers.2.", "config.json does not imply", "config.json says 2 layers, the weights hold 4"]),
    "config-more-layers": (lambda f: edit_config(f, num_hidden_layers=6),
                           ["lack model.layers.4.", "config.json implies", "config.json says 6 layers, the weights hold 4"]),
    "config-heads": (lambda f: edit_config(f, num_attention_heads=2, num_key_value_heads=2, head_dim=16),
                     ["config.json disagrees with the weights", "self_attn", "the config implies"]),
    "config-width": (lambda f: edit_config(f, intermediate_size=64),
                     ["config.json disagrees with the weights: model.layers.0.mlp.down_proj.weight has shape (64, 96)"]),
    "missing-tensor": (lambda f: edit_weights(f, lambda t: t.pop("model.layers.3.self_attn.k_proj.weight")),
                       ["the weight files lack model.layers.3.self_attn.k_proj.weight", "(1 tensor(s) missing)"]),
    "extra-tensor": (lambda f: edit_weights(f, lambda t: t.update({"model.layers.0.mlp.extra.weight": torch.ones(2)})),
                     ["the weight files hold model.layers.0.mlp.extra.weight", "(1 tensor(s) unused)"]),
}


def corrupted(checkpoint, tmp_path: Path, name: str) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(checkpoint["base"], folder)
    CORRUPTIONS[name][0](folder)
    return folder


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_prune_refuses_a_checkpoint_that_disagrees_with_itself(name, checkpoint, tmp_path, capsys):
    model = corrupted(checkpoint, tmp_path, name)
    before = tree(tmp_path)
    argv = ["--model_name", str(model), "--save_dir", str(tmp_path / "run"), "--num_iterations", "1",
            "--decision_sequence", "G", "--mlp_only", "--calibration_data", str(checkpoint["data"]),
            "--num_calibration_prompts", "4"]
    code, err = call_main(lambda: prune_main({"model_name": "x", "save_dir": "y"}, "test", argv), capsys)
    assert_one_line_exit_2(code, err, str(model), *CORRUPTIONS[name][1])
    assert tree(tmp_path) == before


ENTRY_POINTS = {
    "finetune": lambda model, checkpoint, out: lambda: finetune_main(
        {"pruned_model_dir": str(model)}, "test",
        ["--pruned_model_dir", str(model), "--tuned_model_dir", str(out), "--data", str(checkpoint["data"]),
         "--max_steps", "1"]),
    "eval": lambda model, checkpoint, out: lambda: evaluate.main([str(model), str(out), "--tasks", "mop_arc",
                                                             "--limit", "2"]),
    "latency": lambda model, checkpoint, out: lambda: latency.main(["--model", str(model), "--runs", "2", "--warmup", "1",
                                                               "--new_tokens", "2", "--out", str(out)]),
    "teacher_cache": lambda model, checkpoint, out: lambda: teacher_cache.main(
        ["--teacher", str(model), "--cache_dir", str(out), "--data", str(checkpoint["data"])]),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("name", ["nan-weights", "config-fewer-layers"])
def test_every_entry_point_checks_the_checkpoint(entry, name, checkpoint, tmp_path, capsys):
    model = corrupted(checkpoint, tmp_path, name)
    before = tree(tmp_path)
    code, err = call_main(ENTRY_POINTS[entry](model, checkpoint, tmp_path / "out"), capsys)
    assert_one_line_exit_2(code, err, str(model), *CORRUPTIONS[name][1])
    assert tree(tmp_path) == before


def test_a_sound_checkpoint_loads_as_before(checkpoint):
    """The checked load gives the weights transformers gives (the check reads, never changes)."""
    from transformers import AutoModelForCausalLM

    checked, _ = load_model(str(checkpoint["base"]), torch.float32, "cpu")
    plain = AutoModelForCausalLM.from_pretrained(checkpoint["base"], dtype=torch.float32)
    plain_state = plain.state_dict()
    assert checked.state_dict().keys() == plain_state.keys()
    assert all(torch.equal(value, plain_state[key]) for key, value in checked.state_dict().items())


# ----------------------------------------------------------------------------- during the work


def test_nan_importance_stops_the_run_and_keeps_the_checkpoints_written(checkpoint, tmp_path):
    calls = []

    def scores_nan_from_the_second_call(adapter, with_heads):
        scores = amp_scores(adapter, batches, with_heads=with_heads, progress=False, with_layers=False)
        calls.append(1)
        if len(calls) >= 2:
            scores.neurons[2] = scores.neurons[2].clone()
            scores.neurons[2][5] = float("nan")
        return scores

    from transformers import AutoTokenizer

    from mop.prune.pruner import calibration_batches

    settings = PruneSettings(model_name=str(checkpoint["base"]), save_dir=str(tmp_path / "run"), num_iterations=3,
                             decision_sequence="GGG", calibration_data=str(checkpoint["data"]), num_calibration_prompts=4,
                             mlp_only=True)
    batches = calibration_batches(settings, AutoTokenizer.from_pretrained(checkpoint["base"]))
    with pytest.raises(UsageError, match="the layer 2 neuron importance scores are NaN/inf") as stop:
        run_pruning(settings, score_fn=scores_nan_from_the_second_call, progress=False)
    assert "checkpoints already written are kept" in str(stop.value)
    first = iteration_dir(tmp_path / "run", 1)
    assert (first / PRUNE_META).exists() and not iteration_dir(tmp_path / "run", 2).exists()
    load_model(str(first), torch.float32, "cpu")  # the kept checkpoint is whole and finite


def test_importance_scores_name_where_they_turn_non_finite():
    finite = ImportanceScores(heads=[torch.ones(4)] * 2, neurons=[torch.ones(8)] * 2, layers=torch.ones(2))
    assert finite.non_finite() is None
    heads = ImportanceScores(heads=[torch.ones(4), torch.tensor([1.0, float("inf"), 1.0, 1.0])], neurons=[torch.ones(8)] * 2)
    assert heads.non_finite() == "layer 1 head"
    layers = ImportanceScores(heads=[], neurons=[torch.ones(8)] * 2, layers=torch.tensor([0.1, float("nan")]))
    assert layers.non_finite() == "layer 1 block-influence"


def test_nan_loss_stops_recovery_and_keeps_the_trainer_checkpoints(checkpoint, tmp_path):
    from transformers import AutoTokenizer, TrainerCallback

    model, _ = load_model(str(checkpoint["base"]), torch.float32, "cpu")
    tokenizer = AutoTokenizer.from_pretrained(checkpoint["base"])
    records = json.loads(checkpoint["data"].read_text())

    class PoisonAfterStep2(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step == 2:
                with torch.no_grad():
                    for name, param in model.named_parameters():
                        if name.endswith("model.norm.weight"):
                            param.fill_(float("nan"))
            return control

    settings = RecoverySettings(max_steps=4, batch_size=2, grad_accum=1, save_steps=1, save_total_limit=10,
                                logging_steps=1)
    work = tmp_path / "work"
    with pytest.raises(UsageError, match="recovery step 3: the training loss is nan") as stop:
        train_lora(model, tokenizer, records, settings, work, progress=False, callbacks=[PoisonAfterStep2()])
    assert str(work) in str(stop.value)
    assert sorted(p.name for p in work.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]


# ----------------------------------------------------------------------------- metadata and data


@pytest.mark.parametrize("data", ["explicit", "auto"])
def test_a_list_shaped_mop_prune_json_is_refused_whatever_the_data(data, checkpoint, tmp_path, capsys):
    pruned = tmp_path / "prune_iteration_1"
    shutil.copytree(checkpoint["base"], pruned)
    (pruned / PRUNE_META).write_text("[1, 2]")
    before = tree(tmp_path)
    argv = ["--pruned_model_dir", str(pruned), "--max_steps", "1", "--data",
            str(checkpoint["data"]) if data == "explicit" else "auto"]
    code, err = call_main(lambda: finetune_main({"pruned_model_dir": str(pruned)}, "test", argv), capsys)
    assert_one_line_exit_2(code, err, "mop_prune.json does not hold a JSON object")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("outputs,worded", [([""] * 8, 0), (["", " ", "", "x .", "", "", "", ""], 1)])
def test_recovery_data_without_responses_is_refused(outputs, worded, checkpoint, tmp_path, capsys):
    data = tmp_path / "empty.json"
    data.write_text(json.dumps([{"instruction": f"say {i} .", "input": "", "output": out} for i, out in enumerate(outputs)]))
    pruned = tmp_path / "pruned"
    shutil.copytree(checkpoint["base"], pruned)
    before = tree(tmp_path)
    argv = ["--pruned_model_dir", str(pruned), "--data", str(data), "--max_steps", "1"]
    code, err = call_main(lambda: finetune_main({"pruned_model_dir": str(pruned)}, "test", argv), capsys)
    assert_one_line_exit_2(code, err, f"only {worded} of 8 recovery records keep a response token", "at least 50%")
    assert tree(tmp_path) == before


def test_a_calibration_request_larger_than_the_data_says_what_it_used(checkpoint, capsys):
    from transformers import AutoTokenizer

    from mop.prune.pruner import calibration_batches

    tokenizer = AutoTokenizer.from_pretrained(checkpoint["base"])
    settings = PruneSettings(model_name="x", save_dir="y", calibration_data=str(checkpoint["data"]),
                             num_calibration_prompts=100000, calibration_batch_size=4)
    capsys.readouterr()
    batches = calibration_batches(settings, tokenizer)
    assert sum(len(b["input_ids"]) for b in batches) == 8
    assert capsys.readouterr().out.strip() == f"--num_calibration_prompts 100000: {checkpoint['data']} holds 8, all of them used"
    settings.num_calibration_prompts = 8
    calibration_batches(settings, tokenizer)
    assert capsys.readouterr().out == ""
    report_shortfall("--x", None, 3, "d")  # no request: nothing to say
    assert capsys.readouterr().out == ""


# ----------------------------------------------------------------------------- teacher caches


def test_teacher_cache_defaults_to_what_recovery_asks_for_here(checkpoint, tmp_path):
    """The documented command's cache is then taken by a CPU kd recovery (float32 both sides)."""
    cache = tmp_path / "cache"
    teacher_cache.main(["--teacher", str(checkpoint["base"]), "--cache_dir", str(cache), "--data", str(checkpoint["data"])])
    assert json.loads((cache / "key.json").read_text())["dtype"] == "float32"
    pruned = tmp_path / "pruned"
    shutil.copytree(checkpoint["base"], pruned)
    meta = finetune_main({"pruned_model_dir": str(pruned)}, "test", [
        "--pruned_model_dir", str(pruned), "--data", str(checkpoint["data"]), "--max_steps", "1", "--objective", "kd",
        "--teacher", str(checkpoint["base"]), "--teacher_mode", "cache", "--teacher_cache_dir", str(cache)])
    assert meta["teacher_mode"] == "cache" and meta["teacher_cache_dir"] == str(cache)


def test_a_teacher_cache_dir_that_is_a_file_is_one_line(checkpoint, tmp_path, capsys):
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("x")
    pruned = tmp_path / "pruned"
    shutil.copytree(checkpoint["base"], pruned)
    before = tree(tmp_path)
    code, err = call_main(lambda: finetune_main({"pruned_model_dir": str(pruned)}, "test", [
        "--pruned_model_dir", str(pruned), "--data", str(checkpoint["data"]), "--max_steps", "1", "--objective", "kd",
        "--teacher", str(checkpoint["base"]), "--teacher_mode", "cache", "--teacher_cache_dir", str(not_a_folder)]), capsys)
    assert_one_line_exit_2(code, err, f"--teacher_cache_dir {not_a_folder} is a file, not a folder")
    code, err = call_main(lambda: teacher_cache.main(["--teacher", str(checkpoint["base"]), "--cache_dir", str(not_a_folder),
                                                      "--data", str(checkpoint["data"])]), capsys)
    assert_one_line_exit_2(code, err, f"--cache_dir {not_a_folder} is a file, not a folder")
    assert tree(tmp_path) == before


def test_a_missing_teacher_is_named(tmp_path, capsys):
    before = tree(tmp_path)
    code, err = call_main(lambda: teacher_cache.main(["--teacher", str(tmp_path / "no_such_model"),
                                                      "--cache_dir", str(tmp_path / "cache")]), capsys)
    assert_one_line_exit_2(code, err, f"--teacher: model folder not found: {tmp_path / 'no_such_model'}")
    assert tree(tmp_path) == before


# ----------------------------------------------------------------------------- files read back


GOOD_KEY = {"teacher": "t@1", "tokenizer": "k", "data": "8 examples@d", "max_length": 512, "top_k": 64,
            "temperature": 1.0, "dtype": "float32"}


def read_teacher_cache(folder: Path):
    return teacher_cache.TeacherCache.open(folder, GOOD_KEY)


def read_trainer_state(folder: Path):
    from mop.recover.trainer import _tokens_at

    return _tokens_at(str(folder))


def read_calibration_record(folder: Path):
    from mop.plugins.llava.plugin import record_calibration_images

    questions = folder / "questions.json"
    questions.write_text("[]")
    return record_calibration_images(folder, questions, 0)


@pytest.mark.parametrize("reader,files,fragment", [
    (read_teacher_cache, {"key.json": "[1]", "complete.json": "{}"}, "key.json does not hold a JSON object"),
    (read_teacher_cache, {"key.json": json.dumps({**GOOD_KEY, "top_k": "64"}), "complete.json": "{}"},
     "key.json: 'top_k' must be a whole number, found text"),
    (read_teacher_cache, {"key.json": json.dumps(GOOD_KEY), "complete.json": '{"shards": "2"}'},
     "complete.json: 'shards' must be a whole number, found text"),
    (read_teacher_cache, {"key.json": json.dumps(GOOD_KEY), "complete.json": "{}"}, "complete.json lacks shards"),
    (read_trainer_state, {"trainer_state.json": '{"num_input_tokens_seen": null}'},
     "trainer_state.json: 'num_input_tokens_seen' must be a whole number, found null"),
    (read_calibration_record, {"calibration_images.json": '["a"]'}, "calibration_images.json does not hold a JSON object"),
], ids=["cache-key-list", "cache-key-type", "cache-complete-type", "cache-complete-field", "trainer-state", "image-record"])
def test_files_read_back_are_checked_by_shape(reader, files, fragment, tmp_path):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(UsageError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        reader(tmp_path)
