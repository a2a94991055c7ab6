"""The depth rules: `third_to_last` (the paper's) and `block_influence` (the layer that turns the
residual stream least on the calibration prompts), their records and their checks."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_model
from safetensors.torch import load_file
from test_pruning import run_cli, settings, snapshot

from mop.models.adapter import get_adapter
from mop.prune.budget import WidthCarry
from mop.prune.importance import amp_scores, batch_prompts
from mop.prune.path_selection import PathSelector, build_reference
from mop.prune.pruner import run_pruning
from mop.prune.steps import depth_choice, placeholder_scores

pytestmark = pytest.mark.usefixtures("one_thread")


def make_pass_through(model, layer: int) -> None:
    """Zero what decoder layer `layer` adds to the residual stream: its output equals its input."""
    block = model.model.layers[layer]
    with torch.no_grad():
        block.self_attn.o_proj.weight.zero_()
        block.mlp.down_proj.weight.zero_()


def checkpoint_with_pass_through(tokenizer_dir, path, layers: int, pass_through: list[int], seed: int = 0):
    from conftest import save_checkpoint

    model = tiny_model(kv_heads=2, layers=layers, seed=seed)
    for layer in pass_through:
        make_pass_through(model, layer)
    return save_checkpoint(model, tokenizer_dir, path)


def prompt_batches(tokenizer_dir, calibration_file, batch_size):
    from transformers import AutoTokenizer

    from mop.models.data import calibration_prompt, load_alpaca_records

    prompts = [calibration_prompt(r) for r in load_alpaca_records(calibration_file, 12)]
    return batch_prompts(AutoTokenizer.from_pretrained(tokenizer_dir), prompts, batch_size, 64)


@torch.no_grad()
def block_influence_by_hand(model, batches) -> torch.Tensor:
    """Each prompt alone (no padding): hidden states before and after every layer from
    `output_hidden_states`, 1 - cos per token, mean over the prompt's tokens, mean over prompts.
    The model's last entry is after the final norm, so only layers 0..n-2 are compared."""
    per_prompt = []
    for batch in batches:
        for ids, mask in zip(batch["input_ids"], batch["attention_mask"]):
            ids = ids[mask.bool()][None]
            states = model(ids, output_hidden_states=True).hidden_states  # n + 1 of (1, T, hidden)
            per_prompt.append(torch.stack([
                (1 - F.cosine_similarity(states[i].float(), states[i + 1].float(), dim=-1)).mean()
                for i in range(len(states) - 2)]))
    return torch.stack(per_prompt).mean(0)


def test_block_influence_equals_a_direct_computation_for_any_batching(tokenizer_dir, calibration_file):
    model = tiny_model(kv_heads=2, layers=5)
    adapter = get_adapter(model)
    expected = block_influence_by_hand(model, prompt_batches(tokenizer_dir, calibration_file, 1))
    for batch_size in (1, 5):
        batches = prompt_batches(tokenizer_dir, calibration_file, batch_size)
        scores = amp_scores(adapter, batches, with_heads=False, progress=False, with_layers=True)
        assert scores.layers.shape == (5,)
        torch.testing.assert_close(scores.layers[:-1], expected, rtol=1e-5, atol=1e-6)
    assert amp_scores(adapter, batches, with_heads=False, progress=False).layers is None  # only when asked


def test_block_influence_removes_the_pass_through_layer(tokenizer_dir, calibration_file, tmp_path):
    base = checkpoint_with_pass_through(tokenizer_dir, tmp_path / "base", layers=6, pass_through=[1])
    runs = {}
    for rule in ("block_influence", "third_to_last"):
        out = tmp_path / rule
        run_pruning(settings(base, out, calibration_file, num_iterations=1, decision_sequence="L", depth_rule=rule),
                    progress=False)
        runs[rule] = json.loads((out / "prune_iteration_1" / "mop_prune.json").read_text())["details"]
    scores = runs["block_influence"]["layer_scores"]
    assert len(scores) == 6 and scores[1] == pytest.approx(0, abs=1e-6) and min(scores[2:5]) > 1e-3
    assert runs["block_influence"]["removed_layer_index"] == 1 == runs["block_influence"]["removed_original_layer"]
    assert runs["third_to_last"] == {"removed_layer_index": 3, "removed_original_layer": 3}  # len - 3, no scores


def test_first_and_last_layers_are_never_removed(tokenizer_dir, calibration_file, tmp_path):
    model = tiny_model(kv_heads=2, layers=5)
    for layer in (0, 4):
        make_pass_through(model, layer)  # the lowest possible scores, and still kept
    adapter = get_adapter(model)
    batches = prompt_batches(tokenizer_dir, calibration_file, 4)

    def score_fn(a, with_heads):
        return amp_scores(a, batches, with_heads=with_heads, progress=False, with_layers=True)

    index, scores = depth_choice(adapter, "block_influence", score_fn)
    assert scores[0] == pytest.approx(0, abs=1e-6) and scores[4] == pytest.approx(0, abs=1e-6)
    assert index == 1 + min(range(3), key=lambda i: scores[1 + i])


def test_no_depth_step_leaves_fewer_than_three_layers(tokenizer_dir, calibration_file, tmp_path, capsys):
    base = checkpoint_with_pass_through(tokenizer_dir, tmp_path / "base", layers=4, pass_through=[])
    out = tmp_path / "run"
    code, err = run_cli(["--model_name", str(base), "--save_dir", str(out), "--calibration_data",
                         str(calibration_file), "--decision_sequence", "LL", "--num_iterations", "2",
                         "--depth_rule", "block_influence"], capsys)
    assert code == 2 and "at least 3 must remain" in err and len(err.splitlines()) == 1 and not out.exists()
    # One step is possible and leaves exactly three.
    rows = run_pruning(settings(base, out, calibration_file, num_iterations=1, decision_sequence="L",
                                depth_rule="block_influence"), progress=False)
    assert rows[-1]["layers"] == 3


def surviving_original_layers(base, run_dir, iterations: int) -> list[int]:
    """The original layer numbers whose weights the last checkpoint holds, found by comparing
    weights (independent of what the run recorded)."""
    original = load_file(base / "model.safetensors")
    pruned = load_file(run_dir / f"prune_iteration_{iterations}" / "model.safetensors")
    n_original = 1 + max(int(k.split(".")[2]) for k in original if k.startswith("model.layers."))
    n_pruned = 1 + max(int(k.split(".")[2]) for k in pruned if k.startswith("model.layers."))
    found = []
    for j in range(n_pruned):
        key = f"model.layers.{j}.mlp.up_proj.weight"
        found.append(next(i for i in range(n_original)
                          if torch.equal(pruned[key], original[f"model.layers.{i}.mlp.up_proj.weight"])))
    return found


def test_recorded_original_indices_map_back_after_several_steps_and_a_resume(tokenizer_dir, calibration_file,
                                                                            tmp_path):
    # Layers 1 and 2 go first, so every later removal's current index differs from its original one.
    base = checkpoint_with_pass_through(tokenizer_dir, tmp_path / "base", layers=8, pass_through=[1, 2], seed=3)
    full, part = tmp_path / "full", tmp_path / "part"
    kw = dict(num_iterations=4, decision_sequence="LLLL", depth_rule="block_influence")
    run_pruning(settings(base, full, calibration_file, **kw), progress=False)
    run_pruning(settings(base, part, calibration_file, **{**kw, "num_iterations": 2}), progress=False)
    run_pruning(settings(base, part, calibration_file, **kw, resume=True), progress=False)
    for run in (full, part):
        details = [json.loads((run / f"prune_iteration_{i}" / "mop_prune.json").read_text())["details"]
                   for i in range(1, 5)]
        removed = [d["removed_original_layer"] for d in details]
        assert set(removed[:2]) == {1, 2}  # the pass-through layers go first
        assert all(d["removed_layer_index"] < d["removed_original_layer"] for d in details[2:])
        assert len(set(removed)) == 4 and 0 not in removed and 7 not in removed
        assert surviving_original_layers(base, run, 4) == [i for i in range(8) if i not in removed]
        summary = json.loads((run / "pruning_summary.json").read_text())
        assert [r.get("removed_original_layer") for r in summary[1:]] == removed
        assert "removed_original_layer" in (run / "pruning_summary.csv").read_text().splitlines()[0]
    assert removed == [json.loads((full / f"prune_iteration_{i}" / "mop_prune.json").read_text())["details"]
                       ["removed_original_layer"] for i in range(1, 5)]


def test_resume_refuses_a_changed_depth_rule(tokenizer_dir, calibration_file, tmp_path, capsys):
    base = checkpoint_with_pass_through(tokenizer_dir, tmp_path / "base", layers=6, pass_through=[])
    out = tmp_path / "run"
    run_pruning(settings(base, out, calibration_file, num_iterations=1, decision_sequence="LL"), progress=False)
    before = snapshot(out)
    code, err = run_cli(["--model_name", str(base), "--save_dir", str(out), "--calibration_data",
                         str(calibration_file), "--decision_sequence", "LL", "--num_iterations", "2", "--resume",
                         "--depth_rule", "block_influence"], capsys)
    assert code == 2 and "depth_rule='third_to_last'" in err and len(err.splitlines()) == 1
    assert snapshot(out) == before


@pytest.mark.parametrize("kv_heads,mode,with_heads", [(2, "mlp_only", False), (4, "attention_mlp", True)])
def test_metric_path_l_candidate_is_the_block_influence_layer_as_view_and_copy(kv_heads, mode, with_heads,
                                                                              tokenizer_dir, calibration_file):
    model = tiny_model(kv_heads=kv_heads, layers=6)
    make_pass_through(model, 2)
    adapter = get_adapter(model)
    batches = prompt_batches(tokenizer_dir, calibration_file, 4)
    calls = []

    def score_fn(a, with_heads):
        calls.append(with_heads)
        return amp_scores(a, batches, with_heads=with_heads, progress=False, with_layers=True)

    reference = build_reference(adapter, batches, top_k=8, progress=False)
    results = {}
    for by_copy in (False, True):
        selector = PathSelector("ppl", reference, mode, "exact", by_copy=by_copy, depth_rule="block_influence")
        # A carried fraction of a group near 1 makes the MHA G step remove a head (an AMP pass with heads).
        choice = selector.choose(adapter, score_fn, WidthCarry(accumulator=0.99 if with_heads else 0.0))
        results[by_copy] = choice.candidates["L"]["scores"]
    assert calls == [with_heads, with_heads]  # one calibration pass per choice serves both candidates
    torch.testing.assert_close(torch.tensor(list(results[False].values())), torch.tensor(list(results[True].values())),
                               rtol=1e-5, atol=1e-6)
    # The L candidate is the model without the pass-through layer: its outputs equal the unpruned model's.
    assert results[False]["cosine"] == pytest.approx(1.0, abs=1e-6)
    assert results[False]["ppl"] == pytest.approx(reference.info["original_ppl"], rel=1e-5)


def test_dry_run_names_the_rule_and_sizes_do_not_depend_on_it(capsys):
    from mop.run.cli import prune_main

    outputs = {}
    for rule in ("third_to_last", "block_influence"):
        rows = prune_main({"model_name": "meta-llama/Llama-2-7b-hf", "save_dir": "/nonexistent"}, "test",
                          ["--num_iterations", "6", "--dry_run", "--depth_rule", rule])
        outputs[rule] = (rows, capsys.readouterr().out)
    assert outputs["third_to_last"][0] == outputs["block_influence"][0]
    assert "depth rule block_influence" in outputs["block_influence"][1]
    assert "depth rule third_to_last" in outputs["third_to_last"][1]


def test_placeholder_scores_give_a_layer_score_each():
    adapter = get_adapter(tiny_model(kv_heads=2, layers=5))
    assert placeholder_scores(adapter, False).layers.shape == (5,)


def test_real_run_of_the_default_rule_is_unchanged_by_a_layer_scoring_pass(checkpoint_factory, calibration_file,
                                                                          tmp_path):
    """Scoring layers in the AMP pass changes no G step: a GLG path gives the same weights
    whether the pass also scores layers (block_influence, whose only L step is then compared
    separately) or not. Here: G steps only, so both rules must give identical checkpoints."""
    base = checkpoint_factory(kv_heads=2, layers=6)
    runs = {}
    for rule in ("third_to_last", "block_influence"):
        out = tmp_path / rule
        run_pruning(settings(base, out, calibration_file, num_iterations=2, decision_sequence="GG", depth_rule=rule),
                    progress=False)
        runs[rule] = load_file(out / "prune_iteration_2" / "model.safetensors")
    a, b = runs.values()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
