"""LoRA recovery: label masking, merge, resume, gradient checkpointing, command-line errors.

A tiny random Llama (hidden 64, 2 layers) with the embedded SmolLM2 tokenizer keeps every
Trainer run to a second or two on CPU.
"""

import copy
import hashlib
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest
import torch
from transformers import TrainerCallback

from mop.core.io import UsageError, write_json
from mop.core.layout import LOSS_LOG, PRUNE_META, work_dir_for
from mop.models.data import alpaca_prompt
from mop.recover.batches import IGNORE_INDEX, encode_records, tokenizer_adds_bos
from mop.recover.settings import RecoverySettings
from mop.recover.trainer import (CHECKPOINT_FILES, discard_incomplete_checkpoints, last_complete_checkpoint, merge_lora,
                                 recover_model, recovery_collator, train_lora)
from mop.run.cli import finetune_main

REPO = Path(__file__).resolve().parents[3]
DEFAULTS = dict(pruned_model_dir="unused", tuned_model_dir=None, num_epochs=1, data="auto")
RECORDS = [
    {"instruction": f"Describe item {i}.", "input": "a red box" if i % 3 == 0 else "",
     "output": " ".join(["Item", str(i), "is"] + ["fine"] * (i % 7 + 1)) + "."}
    for i in range(24)
]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread per module


@pytest.fixture(scope="module")
def tokenizer():
    """The embedded SmolLM2 tokenizer (adds no BOS); converted on first use if not cached."""
    from transformers import AutoTokenizer

    from mop.models.loading import resolve_model_name

    return AutoTokenizer.from_pretrained(resolve_model_name("smollm2-135m"))


@pytest.fixture(scope="module")
def bos_tokenizer(tokenizer):
    """The same vocabulary, but prepending its BOS like the Llama-2/3 tokenizers.

    Fast tokenizers add it in their post-processor (a GPT-2 tokenizer ignores `add_bos_token`).
    """
    from tokenizers import processors

    tok = copy.deepcopy(tokenizer)
    bos = tok.bos_token
    tok.backend_tokenizer.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                      special_tokens=[(bos, tok.bos_token_id)]),
    ])
    return tok


@pytest.fixture(scope="module")
def base_model(tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, base_model, tokenizer):
    """A 'pruned' checkpoint folder as mop.prune.pruner writes it (weights, tokenizer, mop_prune.json)."""
    path = tmp_path_factory.mktemp("ckpt") / "prune_iteration_1"
    base_model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    write_json(path / PRUNE_META, {"iteration": 1, "settings": {"model_name": "smollm2-135m"}})
    return path


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "alpaca.json"
    write_json(path, RECORDS)
    return path


def tiny_settings(**overrides) -> RecoverySettings:
    base = dict(lora_r=4, lora_alpha=8, lora_dropout=0.0, learning_rate=1e-2, batch_size=4, grad_accum=2,
                max_length=64, max_steps=4, save_steps=100, logging_steps=1, precision="fp32", seed=3)
    return RecoverySettings(**{**base, **overrides})


def lora_state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k}


def folder_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        h.update(str(f.relative_to(path)).encode())
        if f.is_file():
            h.update(f.read_bytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------- labels


def test_prompt_masked_response_and_eos_learned(tokenizer):
    rec = {"instruction": "Name a colour.", "input": "", "output": "Blue is a colour."}
    ex = encode_records(tokenizer, [rec], max_length=512)[0]
    ids, labels = ex["input_ids"], ex["labels"]
    prompt_ids = tokenizer(alpaca_prompt(rec), add_special_tokens=False).input_ids
    assert not tokenizer_adds_bos(tokenizer)
    assert ids[: len(prompt_ids)] == prompt_ids  # no BOS: the sequence starts with the prompt
    assert labels[: len(prompt_ids)] == [IGNORE_INDEX] * len(prompt_ids)
    assert ids[-1] == tokenizer.eos_token_id and labels[-1] == tokenizer.eos_token_id
    learned = [t for t in labels if t != IGNORE_INDEX]
    assert tokenizer.decode(learned[:-1]) == rec["output"]
    assert tokenizer.bos_token_id not in ids


def test_bos_tokenizer_gets_exactly_one_bos(bos_tokenizer, tokenizer):
    assert tokenizer_adds_bos(bos_tokenizer)
    rec = {"instruction": "Add the numbers.", "input": "2 and 3", "output": "2 plus 3 is 5."}
    ex = encode_records(bos_tokenizer, [rec], max_length=512)[0]
    ids, labels = ex["input_ids"], ex["labels"]
    assert ids[0] == bos_tokenizer.bos_token_id
    assert ids.count(bos_tokenizer.bos_token_id) == 1
    assert labels[0] == IGNORE_INDEX
    learned = [t for t in labels if t != IGNORE_INDEX]
    assert learned[-1] == bos_tokenizer.eos_token_id
    assert bos_tokenizer.decode(learned[:-1]) == rec["output"]
    # Same tokens as the no-BOS tokenizer after the BOS: one joint tokenisation.
    assert not tokenizer_adds_bos(tokenizer)
    assert encode_records(tokenizer, [rec], 512)[0]["input_ids"] == ids[1:]


def test_truncation_and_dropped_records(tokenizer):
    long = {"instruction": "Talk.", "input": "", "output": "word " * 200}
    prompt_len = len(tokenizer(alpaca_prompt(long), add_special_tokens=False).input_ids)
    ex = encode_records(tokenizer, [long], max_length=prompt_len + 5)[0]
    assert len(ex["input_ids"]) == len(ex["labels"]) == prompt_len + 5 and ex["index"] == 0
    assert ex["input_ids"][-1] != tokenizer.eos_token_id  # cut before the EOS
    assert sum(t != IGNORE_INDEX for t in ex["labels"]) == 5
    # A prompt that fills max_length leaves no response token: the record is dropped.
    assert encode_records(tokenizer, [long], max_length=prompt_len) == []


def test_collator_pads_labels_with_ignore_index(tokenizer):
    examples = encode_records(tokenizer, RECORDS[:2] + [RECORDS[6]], max_length=128)
    side = tokenizer.padding_side
    batch = recovery_collator(tokenizer, RecoverySettings(packing=False))(examples)
    longest = max(len(e["input_ids"]) for e in examples)
    assert batch["input_ids"].shape == batch["labels"].shape == (3, longest)
    for row, ex in enumerate(examples):
        n = len(ex["input_ids"])
        assert batch["labels"][row, n:].eq(IGNORE_INDEX).all()
        assert batch["attention_mask"][row, n:].eq(0).all() and batch["attention_mask"][row, :n].eq(1).all()
        assert batch["labels"][row, :n].tolist() == ex["labels"]
    assert tokenizer.padding_side == side  # right padding above, the caller's tokenizer untouched


# ----------------------------------------------------------------------------- training


def test_merged_model_equals_base_plus_adapter(base_model, tokenizer, tmp_path):
    model = copy.deepcopy(base_model)
    # 3 steps of 4 x 2 examples = exactly one pass over the 24 records.
    report = train_lora(model, tokenizer, RECORDS, tiny_settings(max_steps=3), tmp_path / "work", progress=False)
    peft_model = report.peft_model.eval()
    ids = torch.tensor([encode_records(tokenizer, RECORDS[:1], 64)[0]["input_ids"]])
    with torch.no_grad():
        with_adapter = peft_model(input_ids=ids).logits
        merged = merge_lora(peft_model)
        merged_logits = merged(input_ids=ids).logits
        base_logits = base_model(input_ids=ids).logits
    # A plain model again: the base model's parameter names and shapes, no LoRA layer left inside.
    assert same_layout(merged, base_model)
    assert (with_adapter - base_logits).abs().max() > 1e-3  # the adapter did change the model
    torch.testing.assert_close(merged_logits, with_adapter, atol=1e-4, rtol=1e-4)
    assert report.stats["global_steps"] == 3 and report.stats["train_examples"] == 24
    # Every record seen once: the non-padding tokens counted are all of the records' tokens.
    assert report.stats["train_tokens"] == sum(len(e["input_ids"]) for e in encode_records(tokenizer, RECORDS, 64))
    # One logged loss per step (logging_steps=1): the final is the third, the mean their plain mean.
    losses = [entry["loss"] for entry in report.log_history if "loss" in entry]
    assert len(losses) == 3 and report.stats["final_train_loss"] == losses[2]
    assert report.stats["mean_train_loss"] == pytest.approx(sum(losses) / 3)


class Interrupt(Exception):
    pass


class StopAfterSave(TrainerCallback):
    """Simulates a crash right after the Trainer wrote checkpoint-<step>."""

    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Interrupt(f"simulated crash after checkpoint {self.step}")


class CountSteps(TrainerCallback):
    """Optimizer steps this session actually ran (a restart from scratch would run all of them)."""

    def __init__(self):
        self.steps = 0

    def on_step_end(self, args, state, control, **kwargs):
        self.steps += 1


def test_resume_continues_from_checkpoint(base_model, tokenizer, tmp_path):
    settings = tiny_settings(max_steps=6, save_steps=2, lora_dropout=0.05)
    whole = train_lora(copy.deepcopy(base_model), tokenizer, RECORDS, settings, tmp_path / "a", progress=False)

    work = tmp_path / "b"
    with pytest.raises(Interrupt):
        train_lora(copy.deepcopy(base_model), tokenizer, RECORDS, settings, work,
                      callbacks=[StopAfterSave(2)], progress=False)
    assert (work / "checkpoint-2").is_dir() and not (work / "checkpoint-4").exists()
    counter = CountSteps()
    resumed = train_lora(copy.deepcopy(base_model), tokenizer, RECORDS, settings, work, resume=True,
                            callbacks=[counter], progress=False)
    assert resumed.stats["resumed_from"].endswith("checkpoint-2")
    assert counter.steps == 4
    assert resumed.stats["global_steps"] == 6
    logged_steps = [e["step"] for e in resumed.log_history if "loss" in e]
    assert logged_steps == [1, 2, 3, 4, 5, 6]  # history of the interrupted part is kept
    # checkpoint-2, resumed from, was rotated away meanwhile (save_total_limit 2): the token
    # count of the resumed part must not need it any more.
    assert not (work / "checkpoint-2").exists() and resumed.stats["tokens_per_second"] > 0
    a, b = lora_state(whole.peft_model), lora_state(resumed.peft_model)
    assert a.keys() == b.keys() and a
    for k in a:  # bit-identical: optimizer, scheduler, RNG (dropout) and data position all restored
        assert torch.equal(b[k], a[k]), k


def fake_checkpoint(path: Path, complete: bool = True) -> Path:
    path.mkdir(parents=True)
    for name in CHECKPOINT_FILES:
        (path / name).write_text("{}" if name == "trainer_state.json" else "x")
    if not complete:  # killed while saving: trainer_state.json (written last) is missing or cut
        (path / "trainer_state.json").write_text('{"global_st')
    return path


def test_resume_skips_a_checkpoint_cut_short_by_a_kill(tmp_path):
    fake_checkpoint(tmp_path / "checkpoint-2")
    fake_checkpoint(tmp_path / "checkpoint-10")
    fake_checkpoint(tmp_path / "checkpoint-12", complete=False)
    (tmp_path / "checkpoint-14").mkdir()  # the kill came before the first file
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")  # numeric, not text order
    discard_incomplete_checkpoints(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-2"]
    assert last_complete_checkpoint(tmp_path / "missing") is None


def test_gradient_checkpointing_trains_adapters(base_model, tokenizer, tmp_path):
    model = copy.deepcopy(base_model)
    settings = tiny_settings(gradient_checkpointing=True, max_steps=2, logging_steps=10)
    report = train_lora(model, tokenizer, RECORDS, settings, tmp_path / "work", progress=False)
    # The last step is logged although 2 is no multiple of logging_steps: the final loss is the end's.
    assert [e["step"] for e in report.log_history if "loss" in e] == [1, 2]
    assert report.peft_model.base_model.model.is_gradient_checkpointing
    lora_b = {k: v for k, v in lora_state(report.peft_model).items() if "lora_B" in k}
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b.values())  # B starts at zero


def test_recover_model_accepts_regex_targets(base_model, tokenizer, tmp_path):
    model = copy.deepcopy(base_model)
    targets = r".*layers\.1\.self_attn\.(q_proj|v_proj)"
    report = train_lora(model, tokenizer, RECORDS[:8], tiny_settings(max_steps=1), tmp_path / "w",
                           target_modules=targets, progress=False)
    names = {k.split(".lora_")[0] for k in lora_state(report.peft_model)}
    assert names == {"base_model.model.model.layers.1.self_attn.q_proj", "base_model.model.model.layers.1.self_attn.v_proj"}
    merged = recover_model(copy.deepcopy(base_model), tokenizer, RECORDS[:8], tiny_settings(max_steps=1),
                           tmp_path / "w2", target_modules=["o_proj"], progress=False)
    assert same_layout(merged, base_model)
    base = base_model.state_dict()
    changed = {k for k, v in merged.state_dict().items() if not torch.equal(v, base[k])}
    assert changed and all(k.endswith("self_attn.o_proj.weight") for k in changed), changed  # only the targets moved


def same_layout(model, reference) -> bool:
    """Same parameter names and shapes as `reference`, and no peft LoRA module anywhere: what a
    merged model must be to save and load like the checkpoint it came from."""
    from peft.tuners.lora import LoraLayer

    ours, theirs = model.state_dict(), reference.state_dict()
    return ({k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
            and not any(isinstance(m, LoraLayer) for m in model.modules()))


# ----------------------------------------------------------------------------- checkpoint folders / CLI


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as info:
        finetune_main(DEFAULTS, "test", argv)
    err = capsys.readouterr().err.strip()
    return info.value.code, err


def test_end_to_end_checkpoint(checkpoint, data_file, tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "prune_iteration_1_ft_1ep"
    meta = finetune_main(DEFAULTS, "test", [
        "--pruned_model_dir", str(checkpoint), "--tuned_model_dir", str(out), "--data", str(data_file),
        "--max_steps", "3", "--save_steps", "2", "--batch_size", "4", "--grad_accum", "1", "--lora_r", "4",
        "--logging_steps", "1", "--precision", "fp32", "--num_samples", "12",
    ])
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    assert (out / PRUNE_META).read_text() == (checkpoint / PRUNE_META).read_text()
    assert meta["global_steps"] == 3 and meta["num_records"] == 12 and meta["settings"]["lora_r"] == 4
    log = (out / LOSS_LOG).read_text().splitlines()
    assert log[0].startswith("step,") and len(log) == 4
    assert not work_dir_for(out).exists() and not (tmp_path / f".tmp-{out.name}").exists()
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in k for k in reloaded.state_dict())
    # --resume on a complete folder is a no-op that reports the stored result.
    assert finetune_main(DEFAULTS, "test", ["--pruned_model_dir", str(checkpoint), "--tuned_model_dir", str(out),
                                            "--resume"])["global_steps"] == 3


class KeepAdapter(TrainerCallback):
    """The trained LoRA weights at the end of training (the work folder holding them is deleted)."""

    lora: dict = {}

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.lora = {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if "lora_" in k}


def test_float16_checkpoint_is_merged_and_saved_in_float16(base_model, tokenizer, data_file, tmp_path):
    """A float16 checkpoint (Llama-2's hub dtype) comes back in float16, equal to merging the trained
    adapter into its float16 weights by hand: W16 + B A x alpha/r, rounded once (what peft's
    merge_and_unload does in float16); the weights LoRA does not wrap stay bit-identical. A merge
    in the training copy's dtype (fp32 here, bf16 on a GPU) would save that dtype or re-round."""
    from peft import get_peft_model
    from safetensors.torch import load_file
    from transformers import AutoConfig, LlamaForCausalLM

    from mop.recover.job import finetune_checkpoint
    from mop.recover.trainer import lora_config

    pruned = tmp_path / "prune_iteration_1"
    copy.deepcopy(base_model).half().save_pretrained(pruned)
    tokenizer.save_pretrained(pruned)
    write_json(pruned / PRUNE_META, {"iteration": 1, "settings": {"model_name": "smollm2-135m"}})
    assert AutoConfig.from_pretrained(pruned).dtype == torch.float16
    settings, keep = tiny_settings(max_steps=3), KeepAdapter()
    out = tmp_path / "tuned"
    meta = finetune_checkpoint(pruned, out, settings, data=str(data_file), callbacks=[keep], progress=False)
    saved, before = load_file(out / "model.safetensors"), load_file(pruned / "model.safetensors")
    assert meta["dtype"] == "torch.float16" and AutoConfig.from_pretrained(out).dtype == torch.float16
    assert saved.keys() == before.keys() and {t.dtype for t in saved.values()} == {torch.float16}

    by_hand = get_peft_model(LlamaForCausalLM.from_pretrained(pruned, dtype=torch.float16), lora_config(settings))
    missing, unexpected = by_hand.load_state_dict(keep.lora, strict=False)
    assert not unexpected and not [k for k in missing if "lora_" in k]
    by_hand = by_hand.merge_and_unload().state_dict()
    wrapped = [k for k in saved if k.endswith("_proj.weight")]
    assert len(wrapped) == 2 * 7
    for key, tensor in saved.items():
        assert torch.equal(tensor, by_hand[key]), key
        assert torch.equal(tensor, before[key]) == (key not in wrapped), key  # training changed every wrapped one
    prefix = "base_model.model.model.layers.1.mlp.down_proj"
    delta = keep.lora[f"{prefix}.lora_B.default.weight"] @ keep.lora[f"{prefix}.lora_A.default.weight"]
    expected = (before["model.layers.1.mlp.down_proj.weight"].float() + delta * settings.lora_alpha / settings.lora_r)
    assert torch.equal(saved["model.layers.1.mlp.down_proj.weight"], expected.half())


def test_memory_plan_reaches_metadata(checkpoint, data_file, tmp_path, capsys):
    """An explicit --max_memory_gb is honoured on CPU: the plan changes the micro-batch, keeps the
    effective batch, is printed, and is stored in mop_finetune.json."""
    import json

    out = tmp_path / "planned"
    meta = finetune_main(DEFAULTS, "test", [
        "--pruned_model_dir", str(checkpoint), "--tuned_model_dir", str(out), "--data", str(data_file),
        "--max_steps", "2", "--batch_size", "4", "--grad_accum", "2", "--max_length", "64", "--lora_r", "4",
        "--precision", "fp32", "--num_samples", "16", "--max_memory_gb", "0.7",
    ])
    stored = json.loads((out / "mop_finetune.json").read_text())
    plan = stored["memory_plan"]
    assert plan == meta["memory_plan"] and plan["budget_gb"] == 0.7
    assert plan["estimate"]["total_gb"] <= 0.9 * 0.7 - 0.5  # headroom and runtime reserve
    assert plan["micro_batch"] < 4 and plan["micro_batch"] * plan["grad_accum"] == 8  # effective batch kept
    assert stored["settings"]["batch_size"] == plan["micro_batch"] and stored["settings"]["grad_accum"] == plan["grad_accum"]
    assert stored["settings"]["gradient_checkpointing"] == plan["gradient_checkpointing"]
    assert stored["grad_accum_per_process"] == plan["grad_accum"] and stored["effective_batch"] == 8  # as the Trainer ran
    assert stored["global_steps"] == 2
    assert "memory plan for 0.7 GB" in capsys.readouterr().out
    # Without a budget on CPU there is no plan and the settings stay as given.
    plain = finetune_main(DEFAULTS, "test", [
        "--pruned_model_dir", str(checkpoint), "--tuned_model_dir", str(tmp_path / "plain"), "--data", str(data_file),
        "--max_steps", "1", "--batch_size", "4", "--grad_accum", "2", "--max_length", "64", "--lora_r", "4",
        "--precision", "fp32", "--num_samples", "8",
    ])
    assert plain["memory_plan"] is None and plain["settings"]["batch_size"] == 4


def test_interrupted_checkpoint_run_resumes(checkpoint, data_file, tmp_path):
    from mop.core.io import UsageError
    from mop.recover.job import finetune_checkpoint

    out = tmp_path / "prune_iteration_1_ft_1ep"
    settings = tiny_settings(max_steps=3, save_steps=2, batch_size=2, grad_accum=1)
    with pytest.raises(Interrupt):
        finetune_checkpoint(checkpoint, out, settings, data=str(data_file), callbacks=[StopAfterSave(2)], progress=False)
    assert not out.exists() and (work_dir_for(out) / "checkpoint-2").is_dir()
    with pytest.raises(UsageError, match="learning_rate"):
        finetune_checkpoint(checkpoint, out, tiny_settings(max_steps=3, save_steps=2, batch_size=2, grad_accum=1,
                                                           learning_rate=1e-3), data=str(data_file), resume=True)
    meta = finetune_checkpoint(checkpoint, out, settings, data=str(data_file), resume=True, progress=False)
    assert meta["resumed_from"].endswith("checkpoint-2") and meta["global_steps"] == 3
    assert len((out / LOSS_LOG).read_text().splitlines()) == 1 + 3  # header + steps 1..3
    assert not work_dir_for(out).exists()


def test_missing_pruned_dir_is_one_line_error(tmp_path, capsys):
    code, err = run_cli(["--pruned_model_dir", str(tmp_path / "nope"), "--tuned_model_dir", str(tmp_path / "o")], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "not found" in err
    assert not (tmp_path / "o").exists()


def test_empty_data_file_is_one_line_error(checkpoint, tmp_path, capsys):
    for text in ("", "[]"):
        empty = tmp_path / "empty.json"
        empty.write_text(text)
        code, err = run_cli(["--pruned_model_dir", str(checkpoint), "--tuned_model_dir", str(tmp_path / "o"),
                             "--data", str(empty)], capsys)
        assert code == 2 and len(err.splitlines()) == 1 and "empty.json" in err
    assert not (tmp_path / "o").exists() and not work_dir_for(tmp_path / "o").exists()


def test_existing_output_is_refused_and_untouched(checkpoint, data_file, tmp_path, capsys):
    out = tmp_path / "done"
    out.mkdir()
    (out / "keep.txt").write_text("earlier result")
    before = folder_digest(out)
    code, err = run_cli(["--pruned_model_dir", str(checkpoint), "--tuned_model_dir", str(out),
                         "--data", str(data_file)], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "already exists" in err
    assert folder_digest(out) == before


def test_interrupted_work_needs_resume(checkpoint, data_file, tmp_path, capsys):
    out = tmp_path / "o"
    (work_dir_for(out) / "checkpoint-2").mkdir(parents=True)
    code, err = run_cli(["--pruned_model_dir", str(checkpoint), "--tuned_model_dir", str(out),
                         "--data", str(data_file)], capsys)
    assert code == 2 and "--resume" in err and len(err.splitlines()) == 1
    assert (work_dir_for(out) / "checkpoint-2").is_dir()


def test_bad_numbers_are_one_line_errors(checkpoint, tmp_path, capsys):
    for flags in (["--batch_size", "0"], ["--num_samples", "0"], ["--lora_r", "x"], ["--max_memory_gb", "-1"]):
        code, err = run_cli(["--pruned_model_dir", str(checkpoint), "--tuned_model_dir", str(tmp_path / "o"), *flags],
                            capsys)
        assert code == 2 and len(err.splitlines()) == 1


def test_grad_accum_is_split_across_processes_and_a_split_that_does_not_divide_is_refused(
        checkpoint, monkeypatch, capsys):
    """NUM_GPUS=N runs --grad_accum / N accumulation steps per process, with the memory plan's
    micro-batch too (the plan is made for one process's share); NUM_GPUS=3 with --grad_accum 4
    would change the effective batch: a one-line error before anything is loaded."""
    import mop.recover.job as recovery
    from mop.models.loading import load_config

    config = load_config(str(checkpoint))
    settings = tiny_settings(batch_size=4, grad_accum=4, max_memory_gb=0.7)  # fits micro-batch 2, not 4
    for processes in (1, 2, 4):
        fitted, plan, _ = recovery.plan_memory(settings, config, torch.float32, processes)
        per_process = recovery.accumulation_per_process(fitted.grad_accum, processes)
        assert (fitted.batch_size, per_process) == (plan["micro_batch"], plan["grad_accum"]) == (2, 8 // processes)
        assert fitted.batch_size * per_process * processes == 16 == fitted.batch_size * fitted.grad_accum
    with pytest.raises(UsageError, match="--grad_accum 4 does not split across 3 processes"):
        recovery.plan_memory(settings, config, torch.float32, 3)
    monkeypatch.setattr(recovery, "process_count", lambda: 3)
    code, err = run_cli(["--pruned_model_dir", str(checkpoint), "--tuned_model_dir", "/nonexistent/o",
                         "--grad_accum", "4"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "--grad_accum 4 does not split across 3 processes" in err


@pytest.mark.slow  # 6-17 s: make test-slow (CI) runs it
def test_two_ddp_processes_keep_the_effective_batch(checkpoint, tokenizer, tmp_path):
    """NUM_GPUS=2 on 2 CPU processes (torchrun, gloo), with a memory plan that lowers the micro-batch:
    one epoch over 48 examples at effective batch 4 x 4 = 16 is 3 optimizer steps (not 2, as with
    the whole accumulation on each process), every example seen once."""
    import json

    data = tmp_path / "data.json"
    records = [{"instruction": f"Count to {i}.", "input": "", "output": " ".join(map(str, range(i + 1)))}
               for i in range(48)]
    write_json(data, records)
    out = tmp_path / "tuned"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(REPO / "Llama3" / "finetune.py"), "--pruned_model_dir", str(checkpoint), "--tuned_model_dir", str(out),
        "--data", str(data), "--num_epochs", "1", "--batch_size", "4", "--grad_accum", "4", "--max_length", "64",
        "--lora_r", "4", "--precision", "fp32", "--max_memory_gb", "0.7", "--logging_steps", "1",
    ], capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    meta = json.loads((out / "mop_finetune.json").read_text())
    examples = encode_records(tokenizer, records, 64)
    assert meta["world_size"] == 2 and meta["memory_plan"]["num_processes"] == 2
    micro, per_process = meta["memory_plan"]["micro_batch"], meta["grad_accum_per_process"]
    assert micro == meta["settings"]["batch_size"] < 4 and per_process == meta["memory_plan"]["grad_accum"]
    assert micro * per_process * 2 == meta["effective_batch"] == 16
    assert meta["global_steps"] == len(examples) // 16 == 3 and meta["epochs"] == 1
    assert meta["train_tokens"] == sum(len(e["input_ids"]) for e in examples)


@pytest.mark.slow  # two torchrun processes, about a minute: `make test-all`
def test_ddp_two_cpu_processes(tmp_path):
    """torchrun --nproc_per_node 2 (gloo) trains a tiny model and only rank 0 writes the output."""
    result = subprocess.run(["bash", str(REPO / "scripts" / "ddp_smoke.sh"), str(tmp_path)],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHON": sys.executable})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "DDP SMOKE OK" in result.stdout
