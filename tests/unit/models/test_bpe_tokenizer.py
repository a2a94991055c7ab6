"""The embedded tokenizer as byte-level BPE, and the tokenizer files of every checkpoint the project writes.

Reference ids: transformers' own GGUF tokenizer (`gguf_file=`) and, for the one case where it
ignores the GGUF's declared `smollm` pre-tokenizer (a whitespace run before a digit), the same
tokenizer applied to the pieces of llama.cpp's first `smollm` split (`\\p{N}`: every digit alone).
"""

import json

import pytest
import regex
import torch
from conftest import WORDS

from mop.models.checkpoint import remove_gguf_copy, save_checkpoint
from mop.models.embedded import BOS, CHATML_TEMPLATE, EOS, embedded_checkpoint, gguf_path, is_cached

TEXTS = [
    "The year 2024 had 366 days.",
    "Call 555-0123 or   42 and\n 7 items",  # whitespace runs before digits
    "naïve café, Zürich → 東京 🚀 😶\u200d🌫️",
    "def add(a, b):\n    return a + b  # sum\n\tx = [1, 2, 3]\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
    "  leading spaces and trailing   ",
    "I've been 'told he's there, 'RE you sure?",
    "3.14159 and 1,000,000 and 33333333",
]
# Ids of the GGUF's tokenizer, recorded from transformers' GGUF loader (and llama.cpp for the last two).
KNOWN_IDS = {
    "hello world": [28120, 905],
    "<|im_start|>user\nhi<|im_end|>\n": [1, 4093, 198, 6004, 2, 198],
    "a 2024": [81, 216, 34, 32, 34, 36],
    "a   2": [81, 333, 34],  # "a", "   ", "2": the digit is split off first, the run stays whole
    "x\n 1": [104, 3805, 33],
}


def whitespace_run_before_digit(text: str) -> bool:
    return regex.search(r"\s{2,}\p{N}", text) is not None


def smollm_pieces(text: str) -> list[str]:
    """llama.cpp's first smollm pre-tokenizer pass: every numeric character is its own piece."""
    return [p for p in regex.split(r"(\p{N})", text) if p]


@pytest.fixture(scope="module")
def embedded_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_checkpoint("smollm2-135m"))


def test_embedded_checkpoint_files(embedded_tokenizer):
    folder = embedded_checkpoint("smollm2-135m")
    assert not (folder / "tokenizer.model").exists()
    data = json.loads((folder / "tokenizer.json").read_text())
    assert data["model"]["type"] == "BPE" and not data["model"]["byte_fallback"]
    assert data["decoder"]["type"] == "ByteLevel" and data["post_processor"]["type"] == "ByteLevel"
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["chat_template"] == (folder / "chat_template.jinja").read_text() == CHATML_TEMPLATE
    assert "add_bos_token" not in config  # llama.cpp's converter sets it itself for this vocabulary size
    generation = json.loads((folder / "generation_config.json").read_text())
    assert (generation["bos_token_id"], generation["eos_token_id"], generation["pad_token_id"]) == (1, 2, 2)


def test_special_tokens_and_template_unchanged(embedded_tokenizer):
    tok = embedded_tokenizer
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == (BOS, EOS, EOS)
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (1, 2, 2)
    assert tok("hello world")["input_ids"] == [28120, 905]  # no BOS added
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert chat == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("text,ids", KNOWN_IDS.items())
def test_known_ids(embedded_tokenizer, text, ids):
    assert embedded_tokenizer(text)["input_ids"] == ids
    assert embedded_tokenizer.decode(ids) == text


@pytest.mark.slow  # transformers' GGUF tokenizer takes ~15 s to build
def test_ids_equal_the_gguf_tokenizer_on_the_text_set(embedded_tokenizer):
    from transformers import AutoTokenizer

    path = gguf_path()
    reference = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)

    def ref_ids(text):
        return reference(text, add_special_tokens=False)["input_ids"]

    for text in TEXTS + list(KNOWN_IDS):
        ids = embedded_tokenizer(text)["input_ids"]
        assert ids == [i for piece in smollm_pieces(text) for i in ref_ids(piece)], text
        if not whitespace_run_before_digit(text):
            assert ids == ref_ids(text), text
        assert embedded_tokenizer.decode(ids) == text


# ------------------------------------------------------------------ files of every checkpoint


def test_pruned_and_recovered_checkpoints_carry_no_gguf_copy_and_the_template(
        embedded_tokenizer, calibration_file, tmp_path):
    """A tiny Llama with the embedded tokenizer, through run_pruning and recovery's save_merged."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from mop.prune.pruner import PruneSettings, run_pruning
    from mop.recover.job import save_merged

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(embedded_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
        num_attention_heads=2, num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
        bos_token_id=1, eos_token_id=2, pad_token_id=2))
    base = tmp_path / "base"
    save_checkpoint(model, embedded_tokenizer, base)
    run_pruning(PruneSettings(model_name=str(base), save_dir=str(tmp_path / "run"), num_iterations=1,
                              decision_sequence="G", calibration_data=str(calibration_file),
                              num_calibration_prompts=4, calibration_batch_size=4), progress=False)
    pruned = tmp_path / "run" / "prune_iteration_1"
    tuned = tmp_path / "tuned"
    save_merged(LlamaForCausalLM.from_pretrained(pruned), AutoTokenizer.from_pretrained(pruned), pruned, tuned,
                {"test": True}, [])
    for folder in (base, pruned, tuned):
        assert not (folder / "tokenizer.model").exists()
        config = json.loads((folder / "tokenizer_config.json").read_text())
        assert config["chat_template"] == CHATML_TEMPLATE
        reloaded = AutoTokenizer.from_pretrained(folder)
        assert reloaded("a   2 " + " ".join(WORDS[:5]))["input_ids"] == embedded_tokenizer(
            "a   2 " + " ".join(WORDS[:5]))["input_ids"]


def test_only_a_gguf_copy_is_removed(tmp_path):
    (tmp_path / "tokenizer.model").write_bytes(b"GGUF\x03\x00\x00\x00rest")
    assert remove_gguf_copy(tmp_path) and not (tmp_path / "tokenizer.model").exists()
    (tmp_path / "tokenizer.model").write_bytes(b"\x0a\x0b<unk>sentencepiece")
    assert not remove_gguf_copy(tmp_path) and (tmp_path / "tokenizer.model").exists()


def test_a_cache_written_with_the_gguf_copy_is_rebuilt(tmp_path):
    stale = tmp_path / "smollm2-135m"
    stale.mkdir()
    (stale / "config.json").write_text("{}")
    (stale / "tokenizer.model").write_bytes(b"GGUF\x03\x00\x00\x00")
    assert not is_cached(stale) and not stale.exists() and not list(tmp_path.iterdir())
    fresh = tmp_path / "smollm2-135m-mha"
    fresh.mkdir()
    (fresh / "config.json").write_text("{}")
    assert is_cached(fresh)
