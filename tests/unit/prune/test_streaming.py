"""Streamed AMP importance (mop/prune/streaming.py): one decoder layer at a time, same scores.

On this CPU-only machine the "device" is the CPU too, so these tests also stream with layers
whose weights are *not in memory at all* (meta tensors) and are loaded from the checkpoint file
only while their turn lasts: that shows the pass never needs more than one decoder layer.
"""

import hashlib
import json

import pytest
import torch
from conftest import tiny_model
from safetensors import safe_open
from test_importance import PROMPTS
from test_llava import make_tiny_llava
from torch.testing import assert_close

from mop.core.io import UsageError
from mop.models.adapter import get_adapter
from mop.plugins.llava.plugin import SHIPPED_QUESTIONS, image_question_batches, load_image_questions
from mop.prune.importance import amp_scores, amp_scores_streamed, batch_prompts
from mop.prune.pruner import PruneSettings, run_pruning
from mop.prune.streaming import capture_layer_inputs, resident_modules, resolve_offload, stream_decoder, swapped


@pytest.fixture
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def assert_same_scores(a, b, rtol=1e-5):
    assert len(a.heads) == len(b.heads) and len(a.neurons) == len(b.neurons)
    for x, y in zip(a.heads + a.neurons, b.heads + b.neurons):
        assert x.shape == y.shape
        assert_close(y, x, rtol=rtol, atol=1e-9 + rtol * x.abs().max().item())


@pytest.mark.parametrize("kv_heads", [4, 2], ids=["mha", "gqa"])
def test_streamed_scores_equal_the_in_memory_pass(tokenizer, kv_heads):
    adapter = get_adapter(tiny_model(kv_heads=kv_heads))
    batches = batch_prompts(tokenizer, PROMPTS, 4, 64)  # padded batches: masks matter
    assert_same_scores(amp_scores(adapter, batches, progress=False),
                       amp_scores_streamed(adapter, batches, "cpu", progress=False))
    mlp_only = amp_scores_streamed(adapter, batches, "cpu", with_heads=False, progress=False)
    assert all(h.numel() == 0 for h in mlp_only.heads)


def test_streamed_decoder_output_equals_the_model_before_its_final_norm(tokenizer):
    model = tiny_model(kv_heads=2)
    adapter = get_adapter(model)
    batches = batch_prompts(tokenizer, PROMPTS, 3, 64)
    streamed = stream_decoder(adapter, batches, "cpu")
    with torch.no_grad():
        for batch, out in zip(batches, streamed):
            assert_close(model.model.norm(out), model.model(**batch).last_hidden_state, rtol=1e-5, atol=1e-6)


def lazy_model(checkpoint):
    """The checkpoint's model with every decoder layer's weights left on the meta device, and a
    `place` that loads one layer from the safetensors file for the duration of its turn."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(checkpoint)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    file = checkpoint / "model.safetensors"
    with safe_open(file, "pt") as f:
        resident = {k: f.get_tensor(k) for k in f.keys() if ".layers." not in k}
    model.load_state_dict(resident, strict=False, assign=True)
    if config.tie_word_embeddings:
        model.tie_weights()
    adapter = get_adapter(model.eval())
    loaded = []

    def place(index, layer):
        prefix = f"model.layers.{index}."
        with safe_open(file, "pt") as f:
            tensors = {k[len(prefix):]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}
        loaded.append(sum(1 for l in adapter.layers() for p in l.parameters() if not p.is_meta))
        return swapped([layer], lambda name, tensor: tensors[name])

    return adapter, place, loaded


def test_streaming_needs_only_one_decoder_layer_in_memory(tokenizer, checkpoint_factory):
    checkpoint = checkpoint_factory(kv_heads=2)
    reference = amp_scores(get_adapter(tiny_model(kv_heads=2)), batch_prompts(tokenizer, PROMPTS, 4, 64),
                           progress=False)
    adapter, place, loaded = lazy_model(checkpoint)
    batches = batch_prompts(tokenizer, PROMPTS, 4, 64)
    scores = amp_scores_streamed(adapter, batches, "cpu", place=place, progress=False)
    assert_same_scores(reference, scores)
    assert loaded == [0] * adapter.num_layers  # no layer was materialised outside its turn
    assert all(p.is_meta for layer in adapter.layers() for p in layer.parameters())  # and none is left


def test_streamed_scores_of_the_embedded_model(tmp_path):
    from mop.models.data import calibration_prompt, load_alpaca_records, resolve_data_source
    from mop.models.loading import load_model, resolve_model_name

    model, tokenizer = load_model(resolve_model_name("smollm2-135m"), torch.float32, "cpu")
    records = load_alpaca_records(resolve_data_source("auto", "smollm2-135m"), 12)
    batches = batch_prompts(tokenizer, [calibration_prompt(r) for r in records], 4, 128)
    adapter = get_adapter(model)
    assert_same_scores(amp_scores(adapter, batches, progress=False),
                       amp_scores_streamed(adapter, batches, "cpu", progress=False))


def test_streamed_image_calibration_of_llava(tokenizer_dir):
    model, processor = make_tiny_llava(tokenizer_dir)
    adapter = get_adapter(model)
    batches = image_question_batches(processor, load_image_questions(SHIPPED_QUESTIONS)[:4], 2)
    assert_same_scores(amp_scores(adapter, batches, progress=False),
                       amp_scores_streamed(adapter, batches, "cpu", progress=False))
    names = {type(m).__name__ for m in resident_modules(adapter)}
    assert {"CLIPVisionModel", "LlavaMultiModalProjector", "Embedding", "LlamaRotaryEmbedding"} <= names
    assert not any(m is adapter.layers() or m is model.lm_head for m in resident_modules(adapter))


def test_capture_removes_its_hook_and_swapped_restores_weights_on_error(tokenizer):
    adapter = get_adapter(tiny_model())
    batches = batch_prompts(tokenizer, PROMPTS[:2], 2, 64)
    inputs = capture_layer_inputs(adapter, batches, "cpu")
    assert len(inputs) == 1 and inputs[0].hidden.shape[:2] == batches[0]["input_ids"].shape
    assert not adapter.layers()[0]._forward_pre_hooks
    layer = adapter.layers()[0]
    before = {n: p for n, p in layer.named_parameters()}
    with pytest.raises(RuntimeError, match="boom"):
        with swapped([layer], lambda name, t: torch.zeros_like(t)):
            assert layer.mlp.down_proj.weight.abs().sum() == 0
            raise RuntimeError("boom")
    assert all(p is before[n] for n, p in layer.named_parameters())


def test_offload_decision():
    gib = 2**30
    assert resolve_offload("auto", "cuda:0", 30 * gib, free_bytes=24 * gib) is True
    assert resolve_offload("auto", "cuda:0", 14 * gib, free_bytes=24 * gib) is False
    assert resolve_offload("auto", "cpu", 10**15) is False  # the model is in CPU memory anyway
    assert resolve_offload("on", "cpu", 1) is True and resolve_offload("off", "cuda", 10**15) is False
    with pytest.raises(UsageError):
        resolve_offload("sometimes", "cpu", 1)


def test_offloaded_pruning_writes_the_same_checkpoints(checkpoint_factory, calibration_file, tmp_path):
    checkpoint = checkpoint_factory(kv_heads=2)
    digests = {}
    for mode in ("off", "on"):
        settings = PruneSettings(model_name=str(checkpoint), save_dir=str(tmp_path / mode), num_iterations=3,
                                 decision_sequence="GLG", calibration_data=str(calibration_file),
                                 num_calibration_prompts=12, calibration_batch_size=5, device="cpu", offload=mode)
        run_pruning(settings, progress=False)
        digests[mode] = [hashlib.sha256((tmp_path / mode / f"prune_iteration_{i}" / "model.safetensors").read_bytes())
                         .hexdigest() for i in (1, 2, 3)]
        assert json.loads((tmp_path / mode / "run_config.json").read_text())["settings"]["offload"] == mode
    assert digests["on"] == digests["off"]


# ----------------------------------------------------------------------------- candidate scoring


@pytest.mark.parametrize("kv_heads", [4, 2], ids=["mha", "gqa"])
def test_streamed_candidate_scores_equal_the_in_memory_ones(tokenizer, kv_heads):
    """The reference and both candidate views scored layer by layer (--offload) give the
    in-memory scores (1e-5 relative), and the G view's masking hooks act on the streamed layers."""
    from mop.prune.budget import WidthCarry
    from mop.prune.candidates import candidate
    from mop.prune.path_selection import build_reference, score_candidate

    adapter = get_adapter(tiny_model(kv_heads=kv_heads, layers=4))
    batches = batch_prompts(tokenizer, PROMPTS, 3, 64)
    in_memory = build_reference(adapter, batches, 8, progress=False)
    streamed = build_reference(adapter, batches, 8, progress=False, stream_device="cpu")
    for name in ("topk_logprobs", "rest_logprob", "hidden"):
        assert_close(getattr(streamed, name), getattr(in_memory, name), rtol=1e-5, atol=1e-5)
    assert streamed.topk_indices.equal(in_memory.topk_indices)
    scores = amp_scores(adapter, batches, progress=False)
    for decision in "LG":
        with candidate(adapter, decision, lambda a, heads: scores, "attention_mlp", "exact", WidthCarry()):
            a = score_candidate(adapter, in_memory)
            b = score_candidate(adapter, in_memory, stream_device="cpu")
        assert a.keys() == b.keys() and all(abs(b[k] - a[k]) <= 1e-5 * abs(a[k]) for k in a), (decision, a, b)
    unpruned = score_candidate(adapter, in_memory, stream_device="cpu")
    assert unpruned["kl"] < 1e-5 and abs(unpruned["cosine"] - 1) < 1e-5  # the views were undone
    assert b != unpruned  # the G view really changed what the streamed layers computed


def test_offloaded_ppl_path_takes_the_same_decisions(checkpoint_factory, calibration_file, tmp_path):
    """--path ppl with --offload on scores its candidates streamed: same decisions, candidate
    scores within 1e-5 relative and the same checkpoints as the in-memory run."""
    checkpoint = checkpoint_factory(kv_heads=2)
    runs = {}
    for mode in ("off", "on"):
        settings = PruneSettings(model_name=str(checkpoint), save_dir=str(tmp_path / mode), num_iterations=3,
                                 path="ppl", calibration_data=str(calibration_file), num_calibration_prompts=8,
                                 num_reference_prompts=8, calibration_batch_size=4, device="cpu", offload=mode)
        run_pruning(settings, progress=False)
        runs[mode] = [json.loads((tmp_path / mode / f"prune_iteration_{i}" / "mop_prune.json").read_text())
                      for i in (1, 2, 3)]
    for off, on in zip(runs["off"], runs["on"]):
        assert on["decision"] == off["decision"] and on["path"]["chosen_by"] == off["path"]["chosen_by"]
        for d, cand in off["path"]["candidates"].items():
            for metric, value in cand.get("scores", {}).items():
                assert abs(on["path"]["candidates"][d]["scores"][metric] - value) <= 1e-5 * abs(value), (d, metric)
    assert [r["params"] for r in runs["on"]] == [r["params"] for r in runs["off"]]
