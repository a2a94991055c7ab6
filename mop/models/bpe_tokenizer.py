"""The embedded model's tokenizer as a GPT-2-style byte-level BPE `tokenizer.json`.

Why not let transformers convert it: loading the GGUF with `gguf_file=` gives a
LlamaTokenizerFast whose vocab file *is* the GGUF, so `save_pretrained` copies the 98 MB GGUF as
`tokenizer.model` into every checkpoint, and its `tokenizer.json` is shaped like a sentencepiece
vocabulary (byte_fallback, `▁` decoder). llama.cpp's `convert_hf_to_gguf.py` then fails on the
"sentencepiece model" and, without it, reads the vocabulary as a Llama one.

The GGUF itself declares `tokenizer.ggml.model = gpt2` with pre-tokenizer `smollm`: byte-level
BPE over its vocabulary and merges, text first split into single digits, then by the GPT-2
pattern (llama.cpp's `\\p{N}` then the GPT-2 regex; in `tokenizers` terms Digits(individual)
then ByteLevel). That is exactly the original SmolLM2 `tokenizer.json`, and this module builds it
from the GGUF's own token list and merges, so llama.cpp recognises the pre-tokenizer (its check
hash is SmolLM's) and both runtimes give the same ids.

transformers' GGUF loader skips the digit split. Both agree on every text except a run of two
or more whitespace characters followed by a digit ("a   2", "x\\n 1"): the loader splits off the
last space as its own token, the GGUF's declared pre-tokenizer (and llama.cpp) keeps the run
whole. This module follows the GGUF.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

from ..core.io import UsageError

CONTROL_TOKEN_TYPE = 3  # llama.cpp token type of special (control) tokens
PRE_TOKENIZERS = ("smollm", "gpt2", "default")  # GGUF pre-tokenizer names this module can rebuild
DIGIT_SPLITTING = ("smollm",)


@dataclass(frozen=True)
class GGUFVocabulary:
    """What a GGUF stores about its BPE tokenizer (token ids are list positions)."""

    tokens: list[str]
    token_types: list[int]
    merges: list[str]  # "left right", in priority order
    pre: str
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None
    unk_id: int | None
    context_length: int | None

    def token(self, token_id: int | None) -> str | None:
        return None if token_id is None else self.tokens[token_id]

    @property
    def special_tokens(self) -> list[str]:
        return [t for t, kind in zip(self.tokens, self.token_types) if kind == CONTROL_TOKEN_TYPE]


def _field(reader, key: str, default=None):
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def read_gguf_vocabulary(path: str | Path) -> GGUFVocabulary:
    """The tokenizer fields of a GGUF file (reads metadata only, not the weights)."""
    import gguf  # optional heavy dependency: only the embedded model needs it

    reader = gguf.GGUFReader(str(path))
    model = _field(reader, "tokenizer.ggml.model")
    if model != "gpt2":
        raise UsageError(f"{path}: tokenizer model {model!r} is not byte-level BPE (gpt2); cannot rebuild it")
    pre = _field(reader, "tokenizer.ggml.pre", "default")
    if pre not in PRE_TOKENIZERS:
        raise UsageError(f"{path}: pre-tokenizer {pre!r} is not supported; known: {', '.join(PRE_TOKENIZERS)}")
    arch = _field(reader, "general.architecture")
    tokens = list(_field(reader, "tokenizer.ggml.tokens"))
    return GGUFVocabulary(
        tokens=tokens,
        token_types=[int(t) for t in _field(reader, "tokenizer.ggml.token_type", [1] * len(tokens))],
        merges=list(_field(reader, "tokenizer.ggml.merges")),
        pre=pre,
        bos_id=_field(reader, "tokenizer.ggml.bos_token_id"),
        eos_id=_field(reader, "tokenizer.ggml.eos_token_id"),
        pad_id=_field(reader, "tokenizer.ggml.padding_token_id"),
        unk_id=_field(reader, "tokenizer.ggml.unknown_token_id"),
        context_length=_field(reader, f"{arch}.context_length"),
    )


def byte_level_bpe(vocab: GGUFVocabulary):
    """A `tokenizers.Tokenizer` equal to the GGUF's: byte-level BPE, no byte fallback, no unk.

    Every byte has a token in a byte-level vocabulary, so no text needs an unknown token. The
    ByteLevel post-processor adds nothing (no BOS), as in the original SmolLM2 tokenizer.
    """
    bpe = models.BPE(
        vocab={token: i for i, token in enumerate(vocab.tokens)},
        merges=[tuple(merge.split(" ")) for merge in vocab.merges],
        byte_fallback=False,
        fuse_unk=False,
    )
    tokenizer = Tokenizer(bpe)
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    if vocab.pre in DIGIT_SPLITTING:
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), byte_level]
        )
    else:
        tokenizer.pre_tokenizer = byte_level
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in vocab.special_tokens])
    return tokenizer


def gguf_bpe_tokenizer(path: str | Path):
    """A transformers fast tokenizer rebuilt from a GGUF, of the generic class that runs its
    `tokenizer.json` as written.

    Not GPT2TokenizerFast, as SmolLM2 ships: transformers 5's GPT2 tokenizer rebuilds its own
    pre-tokenizer (plain ByteLevel) and drops the digit split, so "a   2" would get other ids than
    the GGUF and llama.cpp give. Special tokens come from the GGUF's ids; no BOS is added. Saving
    it writes `tokenizer.json`, never a copy of the GGUF.
    """
    from transformers import PreTrainedTokenizerFast  # heavy import, as elsewhere in the package

    vocab = read_gguf_vocabulary(path)
    return PreTrainedTokenizerFast(
        tokenizer_object=byte_level_bpe(vocab),
        bos_token=vocab.token(vocab.bos_id),
        eos_token=vocab.token(vocab.eos_id),
        pad_token=vocab.token(vocab.pad_id),
        unk_token=vocab.token(vocab.unk_id),
        clean_up_tokenization_spaces=False,
        model_max_length=vocab.context_length or int(1e30),
    )
