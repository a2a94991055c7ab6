"""LLaVA: language-model surgery, the untouched vision half, image calibration, recovery, reload.

A tiny random LLaVA (Llama text model: hidden 64, 4 layers, 4 heads; CLIP tower: 32x32 images,
16x16 patches -> 4 image tokens) with the word-level test tokenizer keeps every step on CPU
to about a second.
"""

import copy
import json
import os
import re

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest
import torch
from conftest import REPO, LoraCaptured, decoder_projections, hand_scored_multiple_choice, lora_modules, run_script
from torch.testing import assert_close

from mop.core.io import UsageError, read_json, write_json
from mop.evaluate.harness import TASKS_DIR
from mop.models.adapter import get_adapter
from mop.models.tiny_llava import build_llava
from mop.plugins.llava.plugin import (SHIPPED_QUESTIONS, TASKS_VISION, answer_image_question, check_text_config,
                                      check_vision_unchanged, finetune_llava_checkpoint, image_calibration_builder,
                                      image_question_batches, load_image_questions, merge_lm_eval_results, open_image,
                                      record_calibration_images, vision_fingerprint)
from mop.prune.pruner import PruneSettings, run_pruning
from mop.prune.surgery import remove_groups, remove_neurons, sync_config
from mop.run.cli import finetune_main

RECORDS = [
    {"instruction": f"describe the {w} .", "input": "the sun" if i % 3 == 0 else "",
     "output": " ".join(["the", w, "is"] + ["good"] * (i % 5 + 1)) + " ."}
    for i, w in enumerate(["cat", "dog", "tree", "city", "river", "water", "sun", "word"] * 2)
]
TEXT_CONFIG = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4,
                   num_key_value_heads=4, head_dim=16, max_position_embeddings=256, tie_word_embeddings=False)
VISION_CONFIG = dict(image_size=32, patch_size=16, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=2)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread per module


def make_text_model(tokenizer_dir, seed: int = 0):
    """(random Llama causal LM, its tokenizer)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    # No token_type_ids: LLaVA's generate (and lm_eval's hf-multimodal) would reject them.
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, model_input_names=["input_ids", "attention_mask"])
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=1, eos_token_id=2, pad_token_id=3, **TEXT_CONFIG)
    torch.manual_seed(seed)
    causal_lm = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # random norms, so that every weight matters
        for name, p in causal_lm.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return causal_lm, tokenizer


def make_tiny_llava(tokenizer_dir, seed: int = 0):
    """(model, processor): a random Llama wrapped by mop.models.tiny_llava.build_llava with a random CLIP tower."""
    from transformers import CLIPVisionConfig

    causal_lm, tokenizer = make_text_model(tokenizer_dir, seed)
    return build_llava(causal_lm, tokenizer, CLIPVisionConfig(**VISION_CONFIG), seed)


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory, tokenizer_dir):
    model, processor = make_tiny_llava(tokenizer_dir)
    path = tmp_path_factory.mktemp("llava") / "dense"
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def questions():
    return load_image_questions(SHIPPED_QUESTIONS)


@pytest.fixture(scope="module")
def pruned_run(tmp_path_factory, llava_dir):
    """Three iterations (G, L, G) calibrated on the shipped image questions."""
    save_dir = tmp_path_factory.mktemp("run") / "run_seed_1"
    settings = PruneSettings(model_name=str(llava_dir), save_dir=str(save_dir), num_iterations=3,
                             decision_sequence="GLG", num_calibration_prompts=6, calibration_batch_size=4,
                             dtype="float32", device="cpu")
    rows = run_pruning(settings, progress=False, batch_builder=image_calibration_builder(SHIPPED_QUESTIONS))
    return save_dir, rows


def load_llava(path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    return AutoModelForImageTextToText.from_pretrained(path).eval(), AutoProcessor.from_pretrained(path)


# ----------------------------------------------------------------------------- the model and its batches


def test_build_is_deterministic_and_keeps_the_language_model(tokenizer_dir):
    from transformers import CLIPVisionConfig

    source, tokenizer = make_text_model(tokenizer_dir, seed=0)
    original = copy.deepcopy(source.state_dict())
    a, processor = build_llava(source, tokenizer, CLIPVisionConfig(**VISION_CONFIG), seed=0)
    b, _ = make_tiny_llava(tokenizer_dir, seed=0)
    c, _ = make_tiny_llava(tokenizer_dir, seed=1)
    assert vision_fingerprint(a) == vision_fingerprint(b) != vision_fingerprint(c)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    # The language model is copied unchanged; only rows for <image> and padding are new.
    state = a.state_dict()
    for key, value in original.items():
        target = "lm_head.weight" if key == "lm_head.weight" else key.replace("model.", "model.language_model.", 1)
        assert torch.equal(state[target][: value.shape[0]], value), key
    # <image> is one token, known to the config; the vocabulary is padded to a multiple of 64.
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    # The test tokenizer holds 4 special tokens, 60 words and 6 punctuation marks (ids 0-69), so
    # <image> is the new id 70, and 71 tokens padded to a multiple of 64 make 128 rows.
    assert a.config.image_token_index == image_id == 70
    assert a.config.text_config.vocab_size == 128


def test_image_batches_expand_image_tokens_with_a_matching_mask(tokenizer_dir, questions):
    _, processor = make_tiny_llava(tokenizer_dir)
    batches = image_question_batches(processor, questions[:5], batch_size=3)
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    tokens_per_image = (VISION_CONFIG["image_size"] // VISION_CONFIG["patch_size"]) ** 2
    assert [b["input_ids"].shape[0] for b in batches] == [3, 2]
    lengths = []
    for batch in batches:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        assert mask.shape == ids.shape
        assert batch["pixel_values"].shape == (ids.shape[0], 3, 32, 32)
        for row_ids, row_mask in zip(ids, mask):
            n = int(row_mask.sum())
            assert row_mask[:n].all() and not row_mask[n:].any()  # right padding
            assert int((row_ids[:n] == image_id).sum()) == tokens_per_image
            assert (row_ids[n:] == processor.tokenizer.pad_token_id).all()
            lengths.append(n)
    assert len(set(lengths)) > 1  # prompts differ in length, so padding is exercised


def test_image_calibration_scores_do_not_depend_on_batching(tokenizer_dir, questions):
    from mop.prune.importance import amp_scores

    model, processor = make_tiny_llava(tokenizer_dir)
    adapter = get_adapter(model)
    one = amp_scores(adapter, image_question_batches(processor, questions[:4], 1), progress=False)
    four = amp_scores(adapter, image_question_batches(processor, questions[:4], 4), progress=False)
    for a, b in zip(one.heads + one.neurons, four.heads + four.neurons):
        assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_bad_question_files_are_usage_errors(tmp_path):
    missing = tmp_path / "q.json"
    missing.write_text(json.dumps([{"image": "nope.png", "question": "what ?"}]))
    with pytest.raises(UsageError, match="image not found"):
        load_image_questions(missing)
    (tmp_path / "bad.json").write_text("[{")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_image_questions(tmp_path / "bad.json")
    (tmp_path / "field.json").write_text(json.dumps([{"image": "x.png"}]))
    with pytest.raises(UsageError, match="'image' and 'question'"):
        load_image_questions(tmp_path / "field.json")
    with pytest.raises(UsageError, match="not found"):
        load_image_questions(tmp_path / "absent.json")


def test_resume_with_other_image_questions_is_refused(tmp_path):
    q1, q2 = tmp_path / "a.json", tmp_path / "b.json"
    q1.write_text('[{"image": "x.png", "question": "one"}]')
    q2.write_text('[{"image": "x.png", "question": "two"}]')
    record_calibration_images(tmp_path / "run", q1, 1)
    record_calibration_images(tmp_path / "run", q1, 1)  # same file again: fine
    with pytest.raises(UsageError, match="other image questions"):
        record_calibration_images(tmp_path / "run", q2, 1)


# ----------------------------------------------------------------------------- surgery on the language model


def image_batch(processor, questions):
    return image_question_batches(processor, questions[:2], batch_size=2)[0]


@torch.no_grad()
def test_removing_a_head_equals_zeroing_its_o_proj_columns(tokenizer_dir, questions):
    model, processor = make_tiny_llava(tokenizer_dir)
    batch = image_batch(processor, questions)
    reference = copy.deepcopy(model)
    d = TEXT_CONFIG["head_dim"]
    for layer, head in ((0, 1), (2, 3)):
        o_proj = get_adapter(reference).layers()[layer].self_attn.o_proj
        o_proj.weight[:, head * d:(head + 1) * d] = 0
    before = vision_fingerprint(model)
    adapter = get_adapter(model)
    for layer, head in ((0, 1), (2, 3)):
        remove_groups(adapter, adapter.layers()[layer], [head])
    # Layers now differ in shape, which sync_config refuses; prune the rest the same way.
    for layer in (1, 3):
        o_proj = get_adapter(reference).layers()[layer].self_attn.o_proj
        o_proj.weight[:, 0:d] = 0
        remove_groups(adapter, adapter.layers()[layer], [0])
    sync_config(adapter)
    assert_close(model(**batch).logits, reference(**batch).logits, rtol=0, atol=1e-4)
    check_vision_unchanged(before, model)
    assert model.config.text_config.num_attention_heads == 3 and not check_text_config(model)


@torch.no_grad()
def test_removing_neurons_equals_zeroing_down_proj_columns(tokenizer_dir, questions):
    model, processor = make_tiny_llava(tokenizer_dir)
    batch = image_batch(processor, questions)
    reference = copy.deepcopy(model)
    neurons = [0, 5, 17, 95]
    for layer in get_adapter(reference).layers():
        layer.mlp.down_proj.weight[:, neurons] = 0
    before = vision_fingerprint(model)
    adapter = get_adapter(model)
    for layer in adapter.layers():
        remove_neurons(adapter, layer, neurons)
    sync_config(adapter)
    assert_close(model(**batch).logits, reference(**batch).logits, rtol=0, atol=1e-4)
    check_vision_unchanged(before, model)
    assert model.config.text_config.intermediate_size == 92 and not check_text_config(model)


# ----------------------------------------------------------------------------- a pruning run


def test_pruned_llava_keeps_vision_and_reloads_with_plain_transformers(pruned_run, llava_dir, questions):
    save_dir, rows = pruned_run
    dense, _ = load_llava(llava_dir)
    reference = vision_fingerprint(dense)
    assert [r["layers"] for r in rows] == [4, 4, 3, 3]
    assert [r["query_heads"] for r in rows] == [4, 3, 3, 2]  # heads really pruned in G steps
    assert read_json(save_dir / "calibration_images.json")["num_prompts"] == 6
    for i in (1, 2, 3):
        model, processor = load_llava(save_dir / f"prune_iteration_{i}")
        assert vision_fingerprint(model) == reference  # bit-identical tower and projector
        assert not check_text_config(model)
        assert model.config.text_config.num_attention_heads == rows[i]["query_heads"]
        assert model.config.text_config.intermediate_size == rows[i]["intermediate_size"]
        assert type(processor).__name__ == "LlavaProcessor"
    image, question = open_image(questions[0]["image"]), questions[0]["question"]
    tokens, _ = answer_image_question(model, processor, image, question, max_new_tokens=4, min_new_tokens=4)
    assert tokens == greedy_by_hand(model, processor, image, question, 4)


@torch.no_grad()
def greedy_by_hand(model, processor, image, question: str, steps: int) -> list[int]:
    """Greedy decoding replayed without generate(): each step runs the whole sequence again and
    takes the argmax of the last position, end-of-sequence excluded (what min_new_tokens asks)."""
    from mop.plugins.llava.plugin import image_question_prompt

    enc = processor(text=[image_question_prompt(processor, question)], images=[image], return_tensors="pt")
    ids, pixels = enc["input_ids"], enc["pixel_values"].to(model.dtype)
    new = []
    for _ in range(steps):
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=pixels).logits[0, -1].clone()
        logits[processor.tokenizer.eos_token_id] = float("-inf")
        new.append(int(logits.argmax()))
        ids = torch.cat([ids, torch.tensor([[new[-1]]])], dim=1)
    return new


def test_interrupted_llava_run_resumes_to_the_same_weights(pruned_run, llava_dir, tmp_path):
    """The G L G image-calibrated run stopped after iteration 1 (and mid-save of iteration 2), then
    resumed, gives bit-identical checkpoints and the same summary as the uninterrupted run."""
    from safetensors.torch import load_file

    full, _ = pruned_run
    part = tmp_path / "run_seed_1"

    def prune(iterations, resume):
        settings = PruneSettings(model_name=str(llava_dir), save_dir=str(part), num_iterations=iterations,
                                 decision_sequence="GLG", num_calibration_prompts=6, calibration_batch_size=4,
                                 dtype="float32", device="cpu", resume=resume)
        return run_pruning(settings, progress=False, batch_builder=image_calibration_builder(SHIPPED_QUESTIONS))

    prune(1, resume=False)
    assert not (part / "prune_iteration_2").exists()
    (part / ".tmp-prune_iteration_2").mkdir()  # what an interruption mid-save leaves behind
    prune(3, resume=True)
    for i in (1, 2, 3):
        a = load_file(full / f"prune_iteration_{i}" / "model.safetensors")
        b = load_file(part / f"prune_iteration_{i}" / "model.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), i
        assert read_json(part / f"prune_iteration_{i}" / "mop_prune.json")["accumulator_after"] == \
            read_json(full / f"prune_iteration_{i}" / "mop_prune.json")["accumulator_after"]
    assert read_json(part / "pruning_summary.json") == read_json(full / "pruning_summary.json")
    assert not (part / ".tmp-prune_iteration_2").exists()


def test_recovered_llava_equals_pruned_llava_with_the_merged_language_model(pruned_run, tokenizer_dir, tmp_path):
    """The LLaVA pipeline (LoRA on the whole LLaVA with a language-model regex) gives the same weights
    as recovering the extracted language model as a causal LM (of its written type: heads pruned,
    the Mistral twin) and putting it back."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mop.recover.settings import RecoverySettings
    from mop.recover.trainer import recover_model

    save_dir, _ = pruned_run
    pruned_dir = save_dir / "prune_iteration_3"
    data = tmp_path / "records.json"
    write_json(data, RECORDS)
    settings = RecoverySettings(lora_r=4, lora_alpha=8, lora_dropout=0.0, learning_rate=1e-2, batch_size=4,
                                grad_accum=2, max_length=64, max_steps=2, save_steps=100, logging_steps=1,
                                precision="fp32", seed=3)
    tuned_dir = tmp_path / "prune_iteration_3_ft_1ep"
    meta = finetune_llava_checkpoint(pruned_dir, tuned_dir, settings, data=str(data), progress=False)
    assert meta["lora_targets"] == r"model\.language_model\.layers\.\d+\.(self_attn|mlp)\." \
        "(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)" and meta["global_steps"] == 2
    assert read_json(tuned_dir / "mop_prune.json") == read_json(pruned_dir / "mop_prune.json")
    tuned, processor = load_llava(tuned_dir)
    pruned, _ = load_llava(pruned_dir)
    assert vision_fingerprint(tuned) == vision_fingerprint(pruned)

    causal_lm = AutoModelForCausalLM.from_config(pruned.config.text_config)
    causal_lm.model.load_state_dict(pruned.model.language_model.state_dict())
    causal_lm.lm_head.load_state_dict(pruned.lm_head.state_dict())
    tokenizer = AutoTokenizer.from_pretrained(pruned_dir)
    merged = recover_model(causal_lm, tokenizer, RECORDS, settings, tmp_path / "work", progress=False)
    expected = copy.deepcopy(pruned)
    expected.model.language_model.load_state_dict(merged.model.state_dict())
    expected.lm_head.load_state_dict(merged.lm_head.state_dict())
    got, before = tuned.state_dict(), pruned.state_dict()
    for key, value in expected.state_dict().items():
        assert_close(got[key], value, rtol=0, atol=1e-6, msg=key)
    # Exactly the 7 targeted projections of each of the 3 language-model layers moved.
    changed = {key for key, value in got.items() if not torch.equal(value, before[key])}
    projections = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    assert changed == {f"model.language_model.layers.{i}.{'self_attn' if p[0] in 'qkvo' else 'mlp'}.{p}.weight"
                       for i in range(3) for p in projections}
    tokens, _ = answer_image_question(tuned, processor, open_image(SHIPPED_QUESTIONS.parent / "images/red_circle.png"),
                                      "what ?", max_new_tokens=3, min_new_tokens=3)
    assert len(tokens) == 3


def test_finetune_script_lora_defaults_reach_peft(llava_dir, tmp_path, monkeypatch, lora_spy):
    """Published for LLaVA: LoRA r=8, alpha=16 (scaling 2), dropout 0.05, on the seven projections of
    the language model's layers only -- none of the CLIP tower's q/k/v/out projections."""
    script = REPO / "Llava" / "finetune.py"
    data = tmp_path / "records.json"
    write_json(data, RECORDS)
    argv = ["--pruned_model_dir", str(llava_dir), "--tuned_model_dir", str(tmp_path / "tuned"), "--data", str(data),
            "--max_steps", "1"]
    with pytest.raises(LoraCaptured):
        run_script(script, argv, monkeypatch)
    config = lora_spy["model"].peft_config["default"]
    assert (config.r, config.lora_alpha, config.lora_dropout, config.bias) == (8, 16, 0.05, "none")
    wrapped = lora_modules(lora_spy["model"])
    assert set(wrapped) == decoder_projections("model.language_model", range(4))
    assert set(wrapped.values()) == {(8, 2.0, 0.05)}


def test_probe_uses_the_published_llava_lora(llava_dir, calibration_file, tmp_path, lora_spy):
    settings = PruneSettings(model_name=str(llava_dir), save_dir=str(tmp_path / "run"), num_iterations=1, path="kl",
                             probe_steps=1, calibration_data=str(calibration_file), num_calibration_prompts=8,
                             num_reference_prompts=8, probe_samples=8, calibration_batch_size=8, dtype="float32",
                             device="cpu")
    with pytest.raises(LoraCaptured):
        run_pruning(settings, progress=False)
    config = lora_spy["model"].peft_config["default"]
    assert (config.r, config.lora_alpha, config.lora_dropout) == (8, 16, 0.05)
    # The L candidate is probed first: the language model without its layer 1 (third-to-last of 4).
    wrapped = lora_modules(lora_spy["model"])
    assert set(wrapped) == decoder_projections("model.language_model", (0, 2, 3))
    assert set(wrapped.values()) == {(8, 2.0, 0.05)}


def test_float16_checkpoint_is_recovered_and_saved_in_float16(tokenizer_dir, tmp_path):
    """llava-1.5-7b-hf is stored in float16: CPU recovery trains in float32 and must save float16
    again (sub-configs included, or dtype="auto" reloads float32) with the vision half unchanged."""
    from mop.recover.settings import RecoverySettings

    model, processor = make_tiny_llava(tokenizer_dir)
    pruned_dir = tmp_path / "prune_iteration_1"
    model.half().save_pretrained(pruned_dir)
    processor.save_pretrained(pruned_dir)
    data = tmp_path / "records.json"
    write_json(data, RECORDS)
    settings = RecoverySettings(lora_r=4, lora_alpha=8, batch_size=4, grad_accum=1, max_length=64, max_steps=1,
                                save_steps=100, precision="fp32")
    meta = finetune_llava_checkpoint(pruned_dir, tmp_path / "tuned", settings, data=str(data), progress=False)
    assert meta["dtype"] == "torch.float16"
    from transformers import AutoModelForImageTextToText

    tuned = AutoModelForImageTextToText.from_pretrained(tmp_path / "tuned", dtype="auto")
    assert {p.dtype for p in tuned.parameters()} == {torch.float16}
    assert vision_fingerprint(tuned) == vision_fingerprint(model)


def test_finetune_refuses_a_text_checkpoint(checkpoint_factory, tmp_path, capsys):
    base = checkpoint_factory(layers=4)
    with pytest.raises(SystemExit) as exit_info:
        finetune_main(dict(pruned_model_dir=str(base), tuned_model_dir=None, num_epochs=1, data="auto"),
                      "test", argv=["--max_steps", "1"], scope="multimodal")
    assert exit_info.value.code == 2
    assert "is not a multimodal checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "base_ft_1ep").exists()


def test_llava_recovery_is_found_from_the_config(pruned_run, tmp_path, capsys):
    """No script chooses LLaVA's recovery: Custom/finetune.py's scope (any) and Llava/finetune.py's
    (multimodal) give byte-identical merged weights; the Llama scripts' scope (text) refuses it."""
    pruned_dir = pruned_run[0] / "prune_iteration_3"
    data = tmp_path / "records.json"
    write_json(data, RECORDS)
    argv = ["--max_steps", "2", "--lora_r", "4", "--lora_alpha", "8", "--batch_size", "4", "--grad_accum", "1",
            "--max_length", "64", "--precision", "fp32", "--data", str(data)]

    def finetune(scope: str, name: str):
        defaults = dict(pruned_model_dir=str(pruned_dir), tuned_model_dir=str(tmp_path / name), num_epochs=1)
        return finetune_main(defaults, "test", argv=argv, scope=scope)

    llava_meta, custom_meta = finetune("multimodal", "llava"), finetune("any", "custom")
    assert llava_meta["vision_unchanged"] and custom_meta["vision_unchanged"]
    llava_weights = (tmp_path / "llava" / "model.safetensors").read_bytes()
    assert llava_weights == (tmp_path / "custom" / "model.safetensors").read_bytes()
    assert llava_weights != (pruned_dir / "model.safetensors").read_bytes()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        finetune("text", "text")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "is a llava checkpoint (a multimodal wrapper)" in err and "Custom/finetune.py" in err
    assert not (tmp_path / "text").exists()


# ----------------------------------------------------------------------------- the image question task


def test_shipped_task_files_are_reproducible_and_small():
    import subprocess
    import sys

    script = TASKS_VISION / "make_shapes.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    size = sum(f.stat().st_size for f in TASKS_VISION.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
    assert size < 300_000


def test_task_scoring_and_loading():
    import importlib.util

    spec = importlib.util.spec_from_file_location("shapes_utils", TASKS_VISION / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    docs = utils.load_shapes()["test"]
    assert len(docs) == 24 and {d["answer"] for d in docs} >= {"red", "circle", "triangle"}
    image = utils.doc_to_image(docs[0])[0]
    assert image.mode == "RGB" and image.size == (64, 64)
    assert utils.process_results({"answer": "red"}, [" Red."]) == {"acc": 1.0}
    assert utils.process_results({"answer": "red"}, ["It is red"]) == {"acc": 0.0}


def test_merged_results_keep_both_passes():
    text = {"results": {"mop_arc": {"acc,none": 0.5}}, "configs": {"mop_arc": {}}, "config": {"pass": 1},
            "n-shot": {"mop_arc": 0}, "lm_eval_version": "x"}
    image = {"results": {"mop_shapes": {"acc,none": 0.25}}, "configs": {"mop_shapes": {}}, "config": {"pass": 2},
             "n-shot": {"mop_shapes": 0}, "samples": {"mop_shapes": []}}
    merged = merge_lm_eval_results([text, image])
    assert set(merged["results"]) == {"mop_arc", "mop_shapes"} and set(merged["n-shot"]) == {"mop_arc", "mop_shapes"}
    assert merged["mop_passes"] == [{"pass": 1}, {"pass": 2}] and "samples" not in merged


def generated_shape_answers(llava_dir, limit: int) -> list[tuple[dict, str]]:
    """(document, generated text) of the first `limit` mop_shapes questions, from lm_eval's own
    per-sample log with the settings the project scores with (hf-multimodal, chat template)."""
    from lm_eval import simple_evaluate
    from lm_eval.models.hf_vlms import HFMultimodalLM

    from mop.plugins.llava.plugin import LlavaEval

    lm = HFMultimodalLM(pretrained=str(llava_dir), device="cpu", dtype="float32", batch_size=1)
    raw = simple_evaluate(model=lm, tasks=["mop_shapes"], num_fewshot=0, limit=limit, log_samples=True,
                          task_manager=LlavaEval().task_manager(["mop_shapes"], TASKS_DIR), apply_chat_template=True)
    answers = []
    for sample in raw["samples"]["mop_shapes"]:
        text = sample["filtered_resps"][0]
        answers.append((sample["doc"], text[0] if isinstance(text, list) else text))
    return answers


def test_llava_evaluation_scores_text_and_image_tasks(llava_dir, tmp_path):
    """lm_eval end to end on the tiny LLaVA: a text task (loglikelihood) and the image task."""
    from mop.plugins.llava.plugin import evaluate_llava

    out = tmp_path / "dense_eval"
    # Batch 1: lm_eval then scores each choice unpadded, exactly as the hand computation, so equal
    # scores (several choices are all <unk> to the test tokenizer) tie the same way in both.
    summary = evaluate_llava(str(llava_dir), str(out), ["mop_arc", "mop_shapes"], batch_size="1",
                             device="cpu", limit="3", command="test")
    meta = read_json(out / "mop_eval.json")
    assert meta["image_tasks"] == ["mop_shapes"] and meta["text_tasks"] == ["mop_arc"]
    assert set(meta["tasks"]) == {"mop_arc", "mop_shapes"} and meta["n_samples"] == {"mop_arc": 3, "mop_shapes": 3}
    # The image task's accuracy against a recount of exact first-word matches in the answers lm_eval
    # generates for the same documents (its per-sample log, not its aggregation).
    answers = generated_shape_answers(llava_dir, limit=3)
    recount = sum(re.findall(r"[a-z]+", text.lower())[:1] == [doc["answer"]] for doc, text in answers) / len(answers)
    assert len(answers) == 3 and meta["tasks"]["mop_shapes"]["acc"] == pytest.approx(recount, abs=1e-12)
    model, processor = load_llava(llava_dir)
    docs = [json.loads(line) for line in (TASKS_DIR / "data" / "mop_arc.jsonl").read_text().splitlines()[:3]]
    expected = hand_scored_multiple_choice(model, processor.tokenizer, docs)
    for metric in ("acc", "acc_norm", "acc_stderr"):
        assert meta["tasks"]["mop_arc"][metric] == pytest.approx(expected[metric], abs=1e-9), metric
    assert summary["tasks"] == meta["tasks"]
    assert evaluate_llava(str(llava_dir), str(out), ["mop_arc"], command="again") is None  # complete: skipped


def test_mop_evaluate_scores_a_llava_through_its_plugin(llava_dir, tmp_path):
    """`python -m mop.evaluate` (Custom/eval.sh) finds LLaVA's backend from the config: the same
    text-task scores as mop.plugins.llava.plugin's own scoring, written the same way."""
    from mop.evaluate.harness import main as evaluate_main
    from mop.plugins.llava.plugin import evaluate_llava

    evaluate_llava(str(llava_dir), str(tmp_path / "llava"), ["mop_arc"], batch_size="1", device="cpu", limit="3",
                   command="test")
    evaluate_main([str(llava_dir), str(tmp_path / "generic"), "--tasks", "mop_arc", "--batch_size", "1",
                   "--device", "cpu", "--limit", "3"])
    llava, generic = read_json(tmp_path / "llava" / "mop_eval.json"), read_json(tmp_path / "generic" / "mop_eval.json")
    assert generic["tasks"] == llava["tasks"] and generic["text_tasks"] == ["mop_arc"]


def test_llava_distils_text_only_from_the_dense_llava(pruned_run, llava_dir, tmp_path):
    """--objective kd on a LLaVA: the teacher is the dense LLaVA (recorded in mop_prune.json) run on
    text; the result equals distilling the extracted pruned language model from the extracted
    dense one, and the vision half is untouched."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mop.recover.settings import RecoverySettings
    from mop.recover.trainer import merge_lora, train_lora

    save_dir, _ = pruned_run
    pruned_dir = save_dir / "prune_iteration_3"
    assert read_json(pruned_dir / "mop_prune.json")["source_model"] == str(llava_dir)
    data = tmp_path / "records.json"
    write_json(data, RECORDS)
    settings = RecoverySettings(lora_r=4, lora_alpha=8, lora_dropout=0.0, learning_rate=1e-2, batch_size=4,
                                grad_accum=2, max_length=64, max_steps=2, save_steps=100, logging_steps=1,
                                precision="fp32", seed=3, objective="kd")
    tuned_dir = tmp_path / "prune_iteration_3_ft_1ep_kd"
    meta = finetune_llava_checkpoint(pruned_dir, tuned_dir, settings, data=str(data), progress=False)
    assert meta["teacher"] == str(llava_dir) and meta["teacher_mode"] == "online" and meta["global_steps"] == 2
    tuned, _ = load_llava(tuned_dir)
    pruned, _ = load_llava(pruned_dir)
    dense, _ = load_llava(llava_dir)
    assert vision_fingerprint(tuned) == vision_fingerprint(pruned)

    def language_model(llava):
        causal_lm = AutoModelForCausalLM.from_config(llava.config.text_config)
        causal_lm.model.load_state_dict(llava.model.language_model.state_dict())
        causal_lm.lm_head.load_state_dict(llava.lm_head.state_dict())
        return causal_lm.eval()

    tokenizer = AutoTokenizer.from_pretrained(pruned_dir)
    report = train_lora(language_model(pruned), tokenizer, RECORDS, settings, tmp_path / "work", progress=False,
                           teacher=language_model(dense))
    merged = merge_lora(report.peft_model)
    got = tuned.model.language_model.state_dict()
    for key, value in merged.model.state_dict().items():
        assert_close(got[key], value, rtol=0, atol=1e-6, msg=key)
    assert not torch.equal(got["layers.0.self_attn.q_proj.weight"],
                           pruned.model.language_model.state_dict()["layers.0.self_attn.q_proj.weight"])
