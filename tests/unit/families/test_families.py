"""Every supported family (mop/families) on a tiny random model of its own: the layer formula,
width steps equal to masking, Gemma-3's layer kinds across depth steps, streamed passes, metric
paths with views, Custom/ end to end (prune, reload in a fresh process, recover, evaluate), a
LLaVA around Qwen2, the shipped configs' dry runs and the refusal of other families."""

import copy
import hashlib
import json
import subprocess
import sys

import pytest
import torch
from conftest import (FAMILIES, REPO, WORDS, family_config, family_model, gemma_layer_types,
                      hand_scored_multiple_choice, save_checkpoint)
from torch.testing import assert_close

from mop.models.adapter import count_parameters, get_adapter
from mop.prune.budget import WidthCarry
from mop.prune.importance import ImportanceScores, amp_scores, amp_scores_streamed, batch_prompts
from mop.prune.pruner import PruneSettings, run_pruning
from mop.prune.steps import depth_step, layer_shape, plan_live_width_step, simulate_path, width_step
from mop.prune.streaming import stream_decoder

NEW_FAMILIES = FAMILIES[1:]  # llama has its own tests everywhere else
# Two prompts longer than Gemma-3's tiny sliding window (4 tokens), so that the window matters.
TOKENS = torch.tensor([[1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45], [1, 6, 10, 14, 18, 22, 26, 30, 34, 38, 42, 46]])
PROMPTS = [" ".join(WORDS[(i * 5 + j) % len(WORDS)] for j in range(4 + 3 * i)) for i in range(7)]
CUSTOM = REPO / "Custom"

pytestmark = pytest.mark.usefixtures("one_thread")


@torch.no_grad()
def logits(model, ids=TOKENS):
    return model(ids).logits


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def config_mismatches(model) -> list[str]:
    """Config fields that disagree with the weight shapes (empty: a stock from_pretrained builds
    exactly these shapes)."""
    adapter = get_adapter(model)
    cfg, d = adapter.text_config, adapter.head_dim
    wrong = []
    for i, layer in enumerate(adapter.layers()):
        q, k, v, o = adapter.attention_projections(layer)
        gate, up, down = adapter.mlp_projections(layer)
        if q.out_features != cfg.num_attention_heads * d or o.in_features != q.out_features:
            wrong.append(f"layer {i}: q/o vs num_attention_heads")
        if k.out_features != cfg.num_key_value_heads * d or v.out_features != k.out_features:
            wrong.append(f"layer {i}: k/v vs num_key_value_heads")
        if gate.out_features != cfg.intermediate_size or up.out_features != cfg.intermediate_size \
                or down.in_features != cfg.intermediate_size:
            wrong.append(f"layer {i}: MLP vs intermediate_size")
    if len(adapter.layers()) != cfg.num_hidden_layers:
        wrong.append("num_hidden_layers")
    if getattr(cfg, "layer_types", None) is not None and len(cfg.layer_types) != cfg.num_hidden_layers:
        wrong.append("layer_types")
    return wrong


# ----------------------------------------------------------------------------- the layer formula


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kv_heads", [4, 2], ids=["mha", "gqa"])
def test_family_formula_counts_one_layer_with_its_norms_and_biases(family, kv_heads):
    """The budget of a width step is one layer as the family builds it: the formula equals the
    layer's real parameter count, and its never-pruned part equals the layer's norm weights
    counted by name (Gemma-3: four norms and q/k norms; Qwen3: q/k norms of head_dim)."""
    model = family_model(family, kv_heads)
    adapter = get_adapter(model)
    layer = adapter.layers()[0]
    shape = layer_shape(adapter)
    assert shape.layer_params == count_parameters(layer) == adapter.family.parameters_per_layer(model.config)
    norm_weights = sum(p.numel() for n, p in layer.named_parameters() if "norm" in n)
    assert shape.layer_params - shape.attention_params - shape.mlp_params == norm_weights
    expected_norms = {"gemma3_text": 4 * 64 + 2 * 16, "qwen3": 2 * 64 + 2 * 16}.get(family, 2 * 64)
    assert norm_weights == expected_norms
    q, k, v, o = adapter.attention_projections(layer)
    assert (q.bias is not None, k.bias is not None, v.bias is not None, o.bias is not None) == (
        (True, True, True, False) if family == "qwen2" else (False,) * 4)


# ----------------------------------------------------------------------------- width steps = masking


def random_scores(adapter, seed: int = 1) -> ImportanceScores:
    gen = torch.Generator().manual_seed(seed)
    return ImportanceScores([torch.rand(adapter.query_heads(l), generator=gen) for l in adapter.layers()],
                            [torch.rand(adapter.intermediate_size(l), generator=gen) for l in adapter.layers()])


def mask_units(model, units, group_size: int, head_dim: int) -> None:
    """Zero what the units feed: the o_proj columns of a removed group's query heads, the
    down_proj columns of removed neurons."""
    adapter = get_adapter(model)
    with torch.no_grad():
        for layer, (groups, neurons) in zip(adapter.layers(), units):
            o = adapter.attention_projections(layer)[3]
            for g in groups:
                o.weight[:, g * group_size * head_dim:(g + 1) * group_size * head_dim] = 0
            adapter.mlp_projections(layer)[2].weight[:, neurons] = 0


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("unit", ["heads", "groups"])
def test_width_step_equals_masking_and_removes_one_layer(family, unit):
    """A G step removing heads (MHA) or GQA groups and neurons gives the logits of the unpruned
    model with those units zeroed (1e-5), removes one current layer's parameters (the family's
    count) to within half a neuron per layer, and leaves a config that matches the weights."""
    sizes = dict(kv_heads=4) if unit == "heads" else dict(kv_heads=4, heads=8, head_dim=8)
    model = family_model(family, layers=4, **sizes)
    reference = copy.deepcopy(model)
    adapter = get_adapter(model)
    group_size, head_dim, hidden = adapter.group_size(), adapter.head_dim, adapter.hidden_size
    assert group_size == (1 if unit == "heads" else 2)
    scores = random_scores(adapter)
    carry = WidthCarry(accumulator=0.5)  # owes half a group already: this step removes one
    one_layer, before = count_parameters(adapter.layers()[0]), count_parameters(model)
    step, units = plan_live_width_step(adapter, lambda a, h: scores, "attention_mlp", "exact", carry)
    assert step.groups >= 1 and step.neurons >= 1
    mask_units(reference, units, group_size, head_dim)
    width_step(adapter, lambda a, h: scores, "attention_mlp", "exact", carry)
    assert_close(logits(model), logits(reference), atol=1e-5, rtol=0)
    assert step.target_params == one_layer
    assert abs((before - count_parameters(model)) - one_layer) <= 3 * hidden * 4 / 2
    assert not config_mismatches(model)


# ----------------------------------------------------------------------------- Gemma-3's layer kinds


def test_gemma3_depth_steps_keep_each_layers_kind(tmp_path, tokenizer_dir):
    """Each Gemma-3 layer keeps its sliding / global kind through depth steps, in memory and in the
    saved config (a stock from_pretrained builds each layer's attention from `layer_types`); the
    reloaded model gives the in-memory logits."""
    from transformers import AutoModelForCausalLM

    model = family_model("gemma3_text", layers=6)
    adapter = get_adapter(model)
    kinds = gemma_layer_types(6)
    assert kinds == ["sliding_attention", "sliding_attention", "full_attention"] * 2
    for _ in range(2):  # removes layers 3 (sliding), then 2 (global)
        removed = depth_step(adapter)["removed_layer_index"]
        del kinds[removed]
        assert model.config.layer_types == kinds == [layer.self_attn.layer_type for layer in adapter.layers()]
        assert [layer.self_attn.is_sliding for layer in adapter.layers()] == [k == "sliding_attention" for k in kinds]
    assert kinds == ["sliding_attention", "sliding_attention", "sliding_attention", "full_attention"]
    save_checkpoint(model, tokenizer_dir, tmp_path / "g")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "g").eval()
    assert [layer.self_attn.is_sliding for layer in reloaded.model.layers] == [True, True, True, False]
    assert_close(logits(reloaded), logits(model), atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- streamed passes


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_streamed_pass_equals_the_in_memory_pass(family, tokenizer):
    """Layer by layer, each layer with the arguments of its own kind: the same AMP scores and the
    same last hidden states as the model's own forward pass (Gemma-3's global layers would see
    the sliding-window mask otherwise)."""
    model = family_model(family)
    adapter = get_adapter(model)
    batches = batch_prompts(tokenizer, PROMPTS, 3, 64)
    a = amp_scores(adapter, batches, progress=False)
    b = amp_scores_streamed(adapter, batches, "cpu", progress=False)
    for x, y in zip(a.heads + a.neurons, b.heads + b.neurons):
        assert_close(y, x, rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        for batch, out in zip(batches, stream_decoder(adapter, batches, "cpu")):
            assert_close(model.model.norm(out), model.model(**batch).last_hidden_state, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_metric_paths_score_the_logits_the_model_makes(family, tokenizer):
    """The reference perplexity of a metric path equals the one of the model's own logits (Gemma-3's
    soft cap included: its tiny model caps at 3, far from the raw head's logits), streamed or not."""
    from mop.prune.path_selection import build_reference

    model = family_model(family)
    adapter = get_adapter(model)
    batches = batch_prompts(tokenizer, PROMPTS, 3, 64)
    nll, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            logprobs = model(**batch).logits.float().log_softmax(-1)[:, :-1]
            keep = batch["attention_mask"][:, 1:].bool()
            nll -= logprobs.gather(-1, batch["input_ids"][:, 1:, None])[..., 0][keep].double().sum().item()
            count += int(keep.sum())
    expected = float(torch.tensor(nll / count).exp())
    for stream_device in (None, "cpu"):
        reference = build_reference(adapter, batches, 8, progress=False, stream_device=stream_device)
        assert reference.info["original_ppl"] == pytest.approx(expected, rel=1e-5)


def prune_settings(base, save_dir, data, family, **kw) -> PruneSettings:
    """GLG with heads pruned where the family's checkpoints can be written with pruned heads
    (Gemma-3's cannot: mop.models.stock), MLP-only for Gemma-3."""
    return PruneSettings(**{**dict(model_name=str(base), save_dir=str(save_dir), num_iterations=3,
                                   decision_sequence="GLG", calibration_data=str(data), num_calibration_prompts=8,
                                   calibration_batch_size=4, device="cpu", mlp_only=family == "gemma3_text"), **kw})


def weight_digests(run, iterations) -> list[str]:
    return [hashlib.sha256((run / f"prune_iteration_{i}" / "model.safetensors").read_bytes()).hexdigest()
            for i in iterations]


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_offload_on_writes_the_same_weights(family, tokenizer_dir, calibration_file, tmp_path):
    base = save_checkpoint(family_model(family), tokenizer_dir, tmp_path / "base")
    for mode in ("off", "on"):
        run_pruning(prune_settings(base, tmp_path / mode, calibration_file, family, offload=mode), progress=False)
    assert weight_digests(tmp_path / "on", (1, 2, 3)) == weight_digests(tmp_path / "off", (1, 2, 3))


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_ppl_path_takes_the_same_decisions_with_views_as_with_copies(family, tokenizer_dir, calibration_file, tmp_path):
    base = save_checkpoint(family_model(family, kv_heads=4), tokenizer_dir, tmp_path / "base")
    runs = {}
    for mode in ("view", "copy"):
        run_pruning(prune_settings(base, tmp_path / mode, calibration_file, family, path="ppl", num_reference_prompts=6,
                                   candidates=mode), progress=False)
        runs[mode] = [json.loads((tmp_path / mode / f"prune_iteration_{i}" / "mop_prune.json").read_text())
                      for i in (1, 2, 3)]
    assert [m["decision"] for m in runs["view"]] == [m["decision"] for m in runs["copy"]]
    for view, copied in zip(runs["view"], runs["copy"]):
        for d, cand in copied["path"]["candidates"].items():
            if "scores" in cand:
                assert view["path"]["candidates"][d]["scores"]["ppl"] == pytest.approx(cand["scores"]["ppl"], rel=1e-5)
    assert weight_digests(tmp_path / "view", (1, 2, 3)) == weight_digests(tmp_path / "copy", (1, 2, 3))


# ----------------------------------------------------------------------------- Custom/ end to end


def run_script(path, argv) -> None:
    import runpy

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", [str(path), *argv])
        runpy.run_path(str(path), run_name="__main__")


@pytest.fixture(scope="module")
def custom_runs(tmp_path_factory, tokenizer_dir, calibration_file):
    """Custom/prune.py LGGL on each new family's tiny model (the family's width mode), with the
    live model's logits recorded as each checkpoint is saved."""
    import mop.prune.pruner

    runs = {}
    for family in NEW_FAMILIES:
        root = tmp_path_factory.mktemp(family)
        base = save_checkpoint(family_model(family, kv_heads=2), tokenizer_dir, root / "base")
        live = []
        real_save = mop.prune.pruner.save_checkpoint

        def save_and_record(model, processing, directory):
            live.append(logits(model))
            real_save(model, processing, directory)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(mop.prune.pruner, "save_checkpoint", save_and_record)
            run_script(CUSTOM / "prune.py", [
                "--model_name", str(base), "--num_iterations", "4", "--decision_sequence", "LGGL",
                "--save_dir", str(root / "run"), "--calibration_data", str(calibration_file),
                "--num_calibration_prompts", "8", "--calibration_batch_size", "4", "--device", "cpu"])
        runs[family] = (root, live)
    return runs


RELOAD = """
import sys, torch
from transformers import AutoModelForCausalLM
ids = torch.tensor({ids})
out = {{}}
for path in sys.argv[2:]:
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    with torch.no_grad():
        out[path] = model(ids).logits
torch.save(out, sys.argv[1])
"""


def hand_layer_count(family: str, config) -> int:
    """One decoder layer of `config`, counted by hand for each family (see independent_count)."""
    d = config.head_dim
    return independent_count(family, config.hidden_size, config.intermediate_size, 1, config.num_attention_heads,
                             config.num_key_value_heads, d, 0, True) - config.hidden_size


def test_every_custom_checkpoint_reloads_in_a_fresh_process(custom_runs, tmp_path):
    """Stock from_pretrained in a new interpreter builds every checkpoint of every family and
    gives the logits the live model had when it was saved; configs match the weights; each G step
    removed one layer of the checkpoint before it, counted by hand with the family's norms and
    biases, to within half a neuron per layer (mop/prune/budget.py)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    paths, expected = [], []
    for family, (root, live) in custom_runs.items():
        summary = json.loads((root / "run" / "pruning_summary.json").read_text())
        assert [r["decision"] for r in summary] == ["-", "L", "G", "G", "L"] and len(live) == 4
        assert [r["layers"] for r in summary] == [6, 5, 5, 5, 4]
        assert summary[2]["intermediate_size"] < summary[1]["intermediate_size"]
        for i in range(1, 5):
            path = root / "run" / f"prune_iteration_{i}"
            model = AutoModelForCausalLM.from_pretrained(path)
            assert not config_mismatches(model) and count_parameters(model) == summary[i]["params"]
            if summary[i]["decision"] == "G":
                before = AutoConfig.from_pretrained(root / "run" / f"prune_iteration_{i - 1}")
                removed = summary[i - 1]["params"] - summary[i]["params"]
                assert abs(removed - hand_layer_count(family, before)) <= 3 * 64 * before.num_hidden_layers / 2
            paths.append(str(path))
            expected.append(live[i - 1])
    out = tmp_path / "logits.pt"
    code = RELOAD.format(ids=TOKENS.tolist())
    subprocess.run([sys.executable, "-c", code, str(out), *paths], check=True, cwd=tmp_path)
    reloaded = torch.load(out)
    for path, want in zip(paths, expected):
        assert_close(reloaded[path], want, atol=1e-6, rtol=0, msg=path)


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_custom_recovery_merges_and_lm_eval_scores_the_result(family, custom_runs, calibration_file, tmp_path):
    """Custom/finetune.py trains a few LoRA steps with the family's LoRA (r=32, alpha=10), merges
    and saves a model of the pruned layout; a local lm_eval task scores it as a hand count does."""
    from test_evaluate import LIMIT, TASK_DOCS, write_task
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mop.evaluate import harness as evaluate

    root, _ = custom_runs[family]
    pruned, tuned = root / "run" / "prune_iteration_4", tmp_path / "tuned"
    run_script(CUSTOM / "finetune.py", [
        "--pruned_model_dir", str(pruned), "--tuned_model_dir", str(tuned), "--data", str(calibration_file),
        "--max_steps", "2", "--batch_size", "2", "--grad_accum", "1", "--precision", "fp32", "--num_samples", "8",
        "--max_memory_gb", "0"])
    meta = json.loads((tuned / "mop_finetune.json").read_text())
    assert meta["global_steps"] == 2 and (meta["settings"]["lora_r"], meta["settings"]["lora_alpha"]) == (32, 10)
    before = AutoModelForCausalLM.from_pretrained(pruned).state_dict()
    after = AutoModelForCausalLM.from_pretrained(tuned).state_dict()
    assert {k: v.shape for k, v in after.items()} == {k: v.shape for k, v in before.items()}
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.endswith("_proj.weight") for k in changed)
    write_task(tmp_path / "tasks")
    evaluate.main([str(tuned), str(tmp_path / "eval"), "--tasks", "tiny_mc", "--limit", str(LIMIT), "--device", "cpu",
                   "--batch_size", "4", "--include_path", str(tmp_path / "tasks")])
    scores = json.loads((tmp_path / "eval" / "mop_eval.json").read_text())["tasks"]["tiny_mc"]
    model = AutoModelForCausalLM.from_pretrained(tuned, dtype=torch.float32).eval()
    expected = hand_scored_multiple_choice(model, AutoTokenizer.from_pretrained(tuned), TASK_DOCS[:LIMIT])
    for metric in ("acc", "acc_norm"):
        assert scores[metric] == pytest.approx(expected[metric], abs=1e-9), metric


# ----------------------------------------------------------------------------- LLaVA around Qwen2


def test_llava_around_qwen2_goes_through_the_wrapper_code(tokenizer_dir, tmp_path):
    """A tiny LLaVA whose language model is a Qwen2 (q/k/v biases): pruned by the same wrapper code
    (image calibration), vision tower untouched, text config consistent, reloadable, LLaVA's LoRA."""
    from test_llava import VISION_CONFIG
    from transformers import AutoModelForImageTextToText, AutoTokenizer, CLIPVisionConfig

    from mop.models.adapter import published_lora
    from mop.models.tiny_llava import build_llava
    from mop.plugins.llava.plugin import SHIPPED_QUESTIONS, image_calibration_builder, vision_fingerprint

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, model_input_names=["input_ids", "attention_mask"])
    causal_lm = family_model("qwen2", kv_heads=4, layers=4)
    model, processor = build_llava(causal_lm, tokenizer, CLIPVisionConfig(**VISION_CONFIG), 0)
    model.save_pretrained(tmp_path / "dense")
    processor.save_pretrained(tmp_path / "dense")
    assert published_lora(model.config) == (8, 16) and get_adapter(model).family.model_type == "qwen2"
    settings = PruneSettings(model_name=str(tmp_path / "dense"), save_dir=str(tmp_path / "run"), num_iterations=2,
                             decision_sequence="GL", num_calibration_prompts=6, calibration_batch_size=3,
                             dtype="float32", device="cpu", mlp_only=False)
    rows = run_pruning(settings, progress=False, batch_builder=image_calibration_builder(SHIPPED_QUESTIONS))
    assert [r["layers"] for r in rows] == [4, 4, 3] and rows[1]["query_heads"] < 4
    for i in (1, 2):
        pruned = AutoModelForImageTextToText.from_pretrained(tmp_path / "run" / f"prune_iteration_{i}").eval()
        assert vision_fingerprint(pruned) == vision_fingerprint(model)
        assert pruned.config.text_config.model_type == "qwen2" and not config_mismatches(pruned)
        assert pruned.model.language_model.layers[0].self_attn.q_proj.bias.shape == (rows[i]["query_heads"] * 16,)


# ----------------------------------------------------------------------------- shipped configs


PUBLISHED = {  # name: (model_type, hidden, MLP, layers, heads, KV heads, head_dim, vocabulary), as published
    "mistralai/Mistral-7B-v0.3": ("mistral", 4096, 14336, 32, 32, 8, 128, 32768),
    "Qwen/Qwen2.5-7B": ("qwen2", 3584, 18944, 28, 28, 4, 128, 152064),
    "Qwen/Qwen3-8B": ("qwen3", 4096, 12288, 36, 32, 8, 128, 151936),
    "google/gemma-3-1b-pt": ("gemma3_text", 1152, 6912, 26, 4, 1, 256, 262144),
}


def independent_count(model_type, hidden, intermediate, layers, heads, kv, head_dim, vocab, tied) -> int:
    """Parameters by hand: q/o and k/v matrices, three MLP matrices, each family's norms and
    biases, embeddings (and an untied head), the final norm."""
    norms = {"gemma3_text": 4 * hidden + 2 * head_dim, "qwen3": 2 * hidden + 2 * head_dim}.get(model_type, 2 * hidden)
    bias = (heads + 2 * kv) * head_dim if model_type == "qwen2" else 0
    layer = 2 * hidden * head_dim * (heads + kv) + 3 * hidden * intermediate + norms + bias
    return layers * layer + vocab * hidden * (1 if tied else 2) + hidden


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_shipped_config_dry_run_sizes_equal_an_independent_count(name, capsys):
    from mop.models.configs import config_for_dry_run

    model_type, hidden, intermediate, layers, heads, kv, head_dim, vocab = PUBLISHED[name]
    config = config_for_dry_run(name)
    d = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    assert (config.model_type, config.hidden_size, config.intermediate_size, config.num_hidden_layers,
            config.num_attention_heads, config.num_key_value_heads, d, config.vocab_size) == PUBLISHED[name]
    run_script(CUSTOM / "prune.py", ["--model_name", name, "--num_iterations", "12", "--dry_run"])
    printed = [line.split() for line in capsys.readouterr().out.splitlines() if line.split()[:1] and
               line.split()[0].isdigit()]
    assert len(printed) == 13
    tied = bool(config.tie_word_embeddings)
    for it, dec, n_layers, heads_kv, inter, params, _ in printed:
        q, k = map(int, heads_kv.split("/"))
        count = independent_count(model_type, hidden, int(inter), int(n_layers), q, k, head_dim, vocab, tied)
        assert int(params.replace(",", "")) == count, (name, it)
    assert printed[-1][4] != str(intermediate) and int(printed[-1][2]) < layers  # both kinds of step happened


def test_width_mode_and_lora_default_to_the_family():
    from mop.models.adapter import default_mlp_only, published_lora
    from mop.models.configs import config_for_dry_run

    for name in PUBLISHED:
        config = config_for_dry_run(name)
        assert default_mlp_only(config) is True and published_lora(config) == (32, 10)  # all grouped-query
    assert default_mlp_only(config_for_dry_run("meta-llama/Llama-2-7b-hf")) is False  # MHA: heads and neurons
    assert default_mlp_only(config_for_dry_run("meta-llama/Meta-Llama-3-8B")) is True  # the published Llama-3 mode
    assert published_lora(config_for_dry_run("llava-hf/llava-1.5-7b-hf")) == (8, 16)


@pytest.mark.parametrize("family", FAMILIES)
def test_memory_formula_counts_every_parameter(family):
    """mop.recover.memory counts a causal LM by the family's formula; it equals the built model."""
    from mop.recover.memory import model_parameter_count

    config = family_config(family)
    assert model_parameter_count(config) == count_parameters(family_model(family))


def test_other_families_are_refused_in_one_line_naming_the_supported_ones(tmp_path):
    from transformers import GPT2Config

    GPT2Config(n_layer=2, n_embd=16, n_head=2).save_pretrained(tmp_path / "gpt2")
    proc = subprocess.run([sys.executable, str(CUSTOM / "prune.py"), "--model_name", str(tmp_path / "gpt2"),
                           "--save_dir", str(tmp_path / "run"), "--num_iterations", "2", "--mlp_only"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "unsupported model type 'gpt2'" in proc.stderr
    assert all(t in proc.stderr for t in FAMILIES) and not (tmp_path / "run").exists()
