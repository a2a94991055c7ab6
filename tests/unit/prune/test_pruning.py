"""The iteration loop, the budget, resume, checkpoints and bad input."""

import dataclasses
import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO, tiny_config
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from mop.models.adapter import count_parameters
from mop.models.configs import config_for_dry_run
from mop.prune.budget import LayerShape, parse_decisions, plan_width_step
from mop.prune.pruner import PruneSettings, run_pruning
from mop.prune.steps import simulate_path
from mop.run.cli import prune_main

DEFAULTS = dict(model_name="x", save_dir="x", num_iterations=4, decision_sequence="LGGL", seed=1,
                mlp_only=False, calibration_data="auto", num_calibration_prompts=16)


def settings(model, save_dir, data, **kw):
    base = dict(model_name=str(model), save_dir=str(save_dir), num_iterations=4, decision_sequence="LGGL",
                calibration_data=str(data), num_calibration_prompts=16, calibration_batch_size=5)
    return PruneSettings(**{**base, **kw})


# ------------------------------------------------------------------ the budget


def budget_gaps(config, sequence, mode, n):
    """For each G step: (|params removed - params of one current layer|, the documented bound).

    The layer's parameter count is taken by hand from the shapes before the step (q and o:
    heads x head_dim x hidden each, k and v: KV heads x head_dim x hidden each, three MLP
    matrices, two norms). mop/prune/budget.py: the exact rule removes it to within half a neuron per
    layer, a neuron being a gate row, an up row and a down column (3 x hidden parameters).
    """
    text = getattr(config, "text_config", config)
    h = text.hidden_size
    d = getattr(text, "head_dim", None) or h // text.num_attention_heads
    rows = simulate_path(config, parse_decisions(sequence, n), mode, "exact")
    gaps = []
    for prev, row in zip(rows, rows[1:]):
        if row["decision"] == "G":
            layer = 2 * h * d * (prev["query_heads"] + prev["kv_heads"]) + 3 * h * prev["intermediate_size"] + 2 * h
            removed = prev["params"] - row["params"]
            assert removed == row["removed_params"] and row["target_params"] == layer
            gaps.append((abs(removed - layer), 3 * h * prev["layers"] / 2))
    return gaps


@pytest.mark.parametrize("name,mode", [
    ("meta-llama/Llama-2-7b-hf", "attention_mlp"),
    ("meta-llama/Meta-Llama-3-8B", "mlp_only"),
    ("meta-llama/Meta-Llama-3-8B", "attention_mlp"),
    ("llava-hf/llava-1.5-7b-hf", "attention_mlp"),
])
def test_every_width_step_removes_one_layer_worth_of_parameters(name, mode):
    gaps = budget_gaps(config_for_dry_run(name), "G" * 12 + "LGLG", mode, 16)
    assert len(gaps) == 14
    for gap, bound in gaps:
        assert gap <= bound


@pytest.mark.parametrize("kv_heads", [4, 2])
@pytest.mark.parametrize("mode", ["attention_mlp", "mlp_only"])
def test_budget_on_tiny_models_in_both_modes(kv_heads, mode):
    gaps = budget_gaps(tiny_config(kv_heads=kv_heads, layers=8), "GGLGG", mode, 5)
    assert len(gaps) == 4  # every G of the path was checked
    for gap, bound in gaps:
        assert gap <= bound


def test_gqa_accumulator_removes_whole_groups_and_carries_the_fraction():
    shape = LayerShape(32, 4096, 128, 32, 8, 14336)
    step = plan_width_step(shape, "attention_mlp", "exact", 0.0)
    # Attention share: 8 groups / 32 layers = 0.25 groups (plus norms' share) -> none yet.
    assert step.groups == 0 and 0.25 < step.accumulator < 0.2501
    step = plan_width_step(shape, "attention_mlp", "exact", 0.8)
    assert step.groups == 1 and 0.05 < step.accumulator < 0.0501
    assert abs(step.removed_params - shape.layer_params) <= 3 * 4096 * 32 / 2


def test_a_group_costing_more_than_the_step_is_deferred():
    # 8 layers of 3 GQA groups (4 query heads of 16 each, hidden 64) and 40 neurons, by hand:
    #   one group  = q + o rows/columns of its 4 heads + k and v of its KV head
    #              = 2*4*16*64 + 2*16*64 = 10240 per layer; attention = 3 groups = 30720
    #   one neuron = 3*64 = 192; MLP = 40*192 = 7680; layer = 30720 + 7680 + 2*64 = 38528
    # A group in every layer costs 8*10240 = 81920 > 38528 + 8*96 (a layer + half a neuron per layer).
    # Attention's share of the layer, 38528 * 30720/38400 = 30822.4 params = 0.37625 of a group in
    # every layer, takes the accumulator from 0.9 to 1.27625; the group is owed but deferred, and
    # the MLP takes the step: round(38528 / (8*192)) = round(25.08) = 25 neurons per layer.
    shape = LayerShape(num_layers=8, hidden=64, head_dim=16, query_heads=12, kv_heads=3, intermediate=40)
    assert (shape.params_per_group, shape.params_per_neuron, shape.layer_params) == (10240, 192, 38528)
    step = plan_width_step(shape, "attention_mlp", "exact", 0.9)
    assert (step.groups, step.neurons, step.target_params) == (0, 25, 38528)
    assert step.accumulator == pytest.approx(1.27625)  # the debt is kept
    assert step.removed_params == 8 * 25 * 192 == 38400  # 128 short: within half a neuron per layer (768)
    # The same debt on 3 layers, where a group in every layer (30720) fits the budget, is paid:
    # share 30822.4 / 30720 = 1.003333 groups -> 1.903333, one group removed, 0.903333 carried;
    # neurons round((38528 - 30720) / (3*192)) = round(13.56) = 14.
    paid = plan_width_step(dataclasses.replace(shape, num_layers=3), "attention_mlp", "exact", 0.9)
    assert (paid.groups, paid.neurons) == (1, 14)
    assert paid.accumulator == pytest.approx(0.9 + 30822.4 / 30720 - 1)
    assert paid.removed_params == 3 * (10240 + 14 * 192) == 38784


def test_published_rule_compensates_heads_in_neuron_units():
    # 25 layers, 31 heads: 31/25 = 1.24 heads per layer -> 1 head, 0.24 "heads" made up by neurons.
    shape = LayerShape(25, 4096, 128, 31, 31, 10000)
    published = plan_width_step(shape, "attention_mlp", "published")
    exact = plan_width_step(shape, "attention_mlp", "exact")
    assert published.groups == exact.groups == 1
    assert published.removed_params < exact.removed_params  # the published shortfall
    assert abs(exact.removed_params - shape.layer_params) <= 3 * 4096 * 25 // 2 + 1


def test_dry_run_reproduces_published_sizes():
    llava = simulate_path(config_for_dry_run("llava-hf/llava-1.5-7b-hf"),
                          parse_decisions("LGGLLLGGLLGLGLLGGL", 7), "attention_mlp", "published")
    assert round(llava[0]["params"] / 1e9, 2) == 7.06 and round(llava[7]["params"] / 1e9, 2) == 5.71
    llama3 = simulate_path(config_for_dry_run("meta-llama/Meta-Llama-3-8B"),
                           parse_decisions("LGGLLLGGLLGLGLLGGL", 17), "mlp_only", "published")
    assert round(llama3[0]["params"] / 1e9, 2) == 8.03 and round(llama3[17]["params"] / 1e9, 2) == 4.74
    exact = simulate_path(config_for_dry_run("llava-hf/llava-1.5-7b-hf"),
                          parse_decisions("LGGLLLGGLLGLGLLGGL", 7), "attention_mlp", "exact")
    assert abs(exact[7]["params"] - 5.71e9) < 0.02e9


def test_dry_run_counts_equal_an_independent_count_from_shapes():
    config = config_for_dry_run("meta-llama/Llama-2-7b-hf")
    rows = simulate_path(config, parse_decisions("LGGLLLGGLL", 10), "attention_mlp", "exact")
    for row in rows:
        h, d, v, layers = 4096, 128, 32000, row["layers"]
        q, kv, inter = row["query_heads"], row["kv_heads"], row["intermediate_size"]
        per_layer = h * q * d * 2 + 2 * h * kv * d + 3 * h * inter + 2 * h
        assert row["params"] == 2 * v * h + h + layers * per_layer


# ------------------------------------------------------------------ the run


def test_run_saves_reloadable_checkpoints_with_consistent_configs(checkpoint_factory, calibration_file, tmp_path):
    base = checkpoint_factory(kv_heads=2, layers=6)
    out = tmp_path / "run"
    rows = run_pruning(settings(base, out, calibration_file), progress=False)
    assert [r["decision"] for r in rows] == ["-", "L", "G", "G", "L"]
    assert [r["layers"] for r in rows] == [6, 5, 5, 5, 4]
    summary = json.loads((out / "pruning_summary.json").read_text())
    assert summary == rows and (out / "pruning_summary.csv").read_text().count("\n") == 6
    for i in range(1, 5):
        ckpt = out / f"prune_iteration_{i}"
        model = AutoModelForCausalLM.from_pretrained(ckpt)
        cfg = model.config
        assert count_parameters(model) == rows[i]["params"]
        attn, mlp = model.model.layers[0].self_attn, model.model.layers[0].mlp
        assert attn.q_proj.out_features == cfg.num_attention_heads * cfg.head_dim
        assert attn.k_proj.out_features == cfg.num_key_value_heads * cfg.head_dim
        assert mlp.up_proj.out_features == cfg.intermediate_size
        assert len(model.model.layers) == cfg.num_hidden_layers
        meta = json.loads((ckpt / "mop_prune.json").read_text())
        assert meta["decision"] == "LGGL"[i - 1] and meta["settings"]["decision_sequence"] == "LGGL"
        assert "transformers" in meta["versions"]
    assert not list(out.glob(".tmp-*"))


def test_reloaded_logits_equal_in_memory_logits(checkpoint_factory, calibration_file, tmp_path):
    from mop.models.adapter import get_adapter
    from mop.models.loading import load_model
    from mop.prune.importance import amp_scores
    from mop.prune.pruner import calibration_batches

    base = checkpoint_factory(kv_heads=4, layers=5)
    captured = {}

    def scores_and_capture(adapter, with_heads):
        captured["model"] = adapter.model  # the live, in-memory model
        return amp_scores(adapter, batches, with_heads=with_heads, progress=False)

    s = settings(base, tmp_path / "run", calibration_file, num_iterations=2, decision_sequence="GL")
    _, tok = load_model(str(base), torch.float32, "cpu")
    batches = calibration_batches(s, tok)
    run_pruning(s, score_fn=scores_and_capture, progress=False)
    live = captured["model"]  # after the loop it holds iteration 2's weights
    ids = torch.tensor([[1, 5, 9, 13, 17, 21]])
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "prune_iteration_2")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, live(ids).logits, rtol=0, atol=1e-6)
    assert get_adapter(live).num_layers == 4


def test_resumed_run_equals_uninterrupted_run(checkpoint_factory, calibration_file, tmp_path):
    from safetensors.torch import load_file

    base = checkpoint_factory(kv_heads=2, layers=7)
    full = tmp_path / "full"
    run_pruning(settings(base, full, calibration_file, num_iterations=5, decision_sequence="GLGGL"), progress=False)
    part = tmp_path / "part"
    run_pruning(settings(base, part, calibration_file, num_iterations=2, decision_sequence="GLGGL"), progress=False)
    (part / ".tmp-prune_iteration_3").mkdir()  # what an interruption mid-save leaves behind
    run_pruning(settings(base, part, calibration_file, num_iterations=5, decision_sequence="GLGGL", resume=True),
                progress=False)
    for i in range(1, 6):
        a = load_file(full / f"prune_iteration_{i}" / "model.safetensors")
        b = load_file(part / f"prune_iteration_{i}" / "model.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((full / "pruning_summary.json").read_text()) == json.loads((part / "pruning_summary.json").read_text())


def test_thirty_one_of_thirty_two_heads_reloads_and_runs(tmp_path, tokenizer_dir):
    """hidden 4096 is not a multiple of 31 heads (LLaMA-2-7B with one head pruned): the project's
    writer stores it as its Mistral twin, with an explicit head_dim, which stock from_pretrained
    loads with the same logits."""
    from mop.models.adapter import get_adapter
    from mop.models.checkpoint import save_checkpoint
    from mop.prune.surgery import remove_groups, sync_config

    config = LlamaConfig(hidden_size=4096, intermediate_size=32, num_hidden_layers=1, num_attention_heads=32,
                         num_key_value_heads=32, vocab_size=16, max_position_embeddings=32)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    adapter = get_adapter(model)
    remove_groups(adapter, adapter.layers()[0], [7])
    sync_config(adapter)
    save_checkpoint(model, AutoTokenizer.from_pretrained(tokenizer_dir), tmp_path / "m")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    assert reloaded.config.num_attention_heads == 31 and reloaded.config.head_dim == 128
    assert reloaded.config.model_type == "mistral" and reloaded.config.sliding_window is None
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, model(ids).logits, rtol=0, atol=0)
        assert reloaded.generate(ids, max_new_tokens=3, do_sample=False).shape == (1, 7)


# ------------------------------------------------------------------ bad input


def snapshot(path):
    return sorted((str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*"))


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        prune_main(DEFAULTS, "test", argv)
    err = capsys.readouterr().err.strip()
    return exc.value.code, err


@pytest.mark.parametrize("extra,message", [
    (["--decision_sequence", "LXG"], "only L and G"),
    (["--num_iterations", "0"], "at least 1"),
    (["--decision_sequence", "L", "--num_iterations", "4"], "at least 3 must remain"),
    (["--decision_sequence", "G", "--num_iterations", "30", "--mlp_only"], "at least one must remain"),
    (["--calibration_data", "/nonexistent/data.json"], "data file not found"),
    (["--model_name", "/nonexistent/model"], "model path not found"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(extra, message, checkpoint_factory, calibration_file,
                                                         tmp_path, capsys):
    base = checkpoint_factory(kv_heads=4, layers=6)
    out = tmp_path / "new_run"
    argv = ["--model_name", str(base), "--save_dir", str(out), "--calibration_data", str(calibration_file)] + extra
    code, err = run_cli(argv, capsys)
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("heads,kv_heads,head_dim,message", [
    (2, 2, 32, "leave 0 head(s) per layer (minimum 1)"),
    (4, 2, 16, "leave 1 GQA group(s) per layer (minimum 2)"),
])
def test_last_head_and_last_two_gqa_groups_are_protected(heads, kv_heads, head_dim, message,
                                                         checkpoint_factory, calibration_file, tmp_path, capsys):
    # Few layers and a wide MLP: attention runs out of heads before the MLP runs out of neurons.
    base = checkpoint_factory(kv_heads=kv_heads, layers=3, heads=heads, head_dim=head_dim, intermediate=2048)
    code, err = run_cli(["--model_name", str(base), "--save_dir", str(tmp_path / "o"), "--decision_sequence", "G",
                         "--num_iterations", "10", "--calibration_data", str(calibration_file)], capsys)
    assert code == 2 and message in err and not (tmp_path / "o").exists()


def test_existing_run_is_never_overwritten(checkpoint_factory, calibration_file, tmp_path, capsys):
    base = checkpoint_factory(kv_heads=4, layers=6)
    out = tmp_path / "run"
    run_pruning(settings(base, out, calibration_file, num_iterations=1, decision_sequence="L"), progress=False)
    before = snapshot(out)
    code, err = run_cli(["--model_name", str(base), "--save_dir", str(out), "--calibration_data",
                         str(calibration_file), "--num_iterations", "1", "--decision_sequence", "L"], capsys)
    assert code == 2 and "not empty" in err
    code, err = run_cli(["--model_name", str(base), "--save_dir", str(out), "--calibration_data",
                         str(calibration_file), "--decision_sequence", "GG", "--resume"], capsys)
    assert code == 2 and "decision_sequence" in err
    assert snapshot(out) == before


def test_non_llama_model_is_refused(tmp_path, capsys):
    from transformers import GPT2Config

    GPT2Config(n_layer=2, n_embd=32, n_head=2).save_pretrained(tmp_path / "gpt2")
    code, err = run_cli(["--model_name", str(tmp_path / "gpt2"), "--save_dir", str(tmp_path / "o")], capsys)
    assert code == 2 and "unsupported model type 'gpt2'" in err and not (tmp_path / "o").exists()


def test_script_entry_point_reports_bad_input_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "Llama3" / "prune.py"), "--decision_sequence", "LQ",
                           "--save_dir", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "L and G" in proc.stderr
