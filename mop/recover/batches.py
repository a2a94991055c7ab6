"""Recovery batches: padded (one example per row) or packed (several examples per row).

`encode_records` turns Alpaca records into examples (the recovery and the teacher cache share it).
Both layouts carry the same fields, so one loss serves both (mop/recover/distill.py):

- `input_ids`, `labels` (R, L): labels are -100 on BOS, prompt and filler tokens;
- `position_ids` (R, L): 0, 1, 2, ... restarting at each example;
- `segments` (R, L): 1, 2, ... numbers the examples of a row, 0 marks filler. Position t carries a
  next-token prediction exactly when `segments[t] == segments[t + 1] != 0`;
- `attention_mask` (R, L): 1 on real tokens; `packed`: a bool. The model is given the mask only
  for padded rows. Packed rows go without: with `position_ids` and no mask, transformers builds a
  block-diagonal causal mask from the restarts of the positions, so no token attends across an
  example boundary (this needs the KV cache off: with a cache present transformers does not look
  for packed sequences). The recovery goes further and attends example by example
  (mop/recover/packed_attention.py).

Packing removes the padding a padded batch computes on: the examples of a micro-batch are laid
end to end, first fit, into rows of at most `row_tokens` tokens (a row never splits an example),
and only the last bit of each row is filler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..core.io import UsageError
from ..models.data import alpaca_prompt

IGNORE_INDEX = -100  # label value the losses skip


# ----------------------------------------------------------------------------- examples


def tokenizer_adds_bos(tokenizer) -> bool:
    """True when the tokenizer itself prepends its BOS token (Llama-2/3 do; SmolLM2's does not).

    Asked of the tokenizer rather than read from a flag, because fast tokenizers hide the
    behaviour in their post-processor.
    """
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    ids = tokenizer("a").input_ids
    return len(ids) > 0 and ids[0] == bos


def _prompt_token_count(tokenizer, prompt: str, offsets: Sequence[tuple[int, int]] | None) -> int:
    """Number of leading tokens of prompt+response that belong to the prompt.

    With a fast tokenizer this reads the character offsets of the joint tokenisation: a token
    that starts before the response's first character is prompt (also one straddling the
    boundary). Slow tokenizers lack offsets; the prompt is then tokenised alone, which can
    differ by one token where a merge crosses the boundary.
    """
    if offsets is not None:
        return sum(1 for start, _ in offsets if start < len(prompt))
    return len(tokenizer(prompt, add_special_tokens=False).input_ids)


def encode_records(tokenizer, records: Sequence[dict], max_length: int, chunk: int = 1000) -> list[dict]:
    """Alpaca records -> training examples {input_ids, attention_mask, labels}.

    Prompt (standard Alpaca template) and response are tokenised as one text, so BPE merges
    and the absence of a second BOS are those of the full sequence; the tokenizer's own BOS (if
    it uses one) is put once in front, EOS is appended, the result is cut at `max_length`.
    Labels are -100 on BOS and prompt tokens. Examples left without a response token after
    truncation are dropped (they would give a 0/0 loss).
    """
    if tokenizer.eos_token_id is None:
        raise UsageError("the tokenizer has no EOS token; cannot mark the end of a response")
    prefix = [tokenizer.bos_token_id] if tokenizer_adds_bos(tokenizer) else []
    examples = []
    for begin in range(0, len(records), chunk):
        part = records[begin:begin + chunk]
        prompts = [alpaca_prompt(r) for r in part]
        texts = [p + r["output"] for p, r in zip(prompts, part)]
        enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=tokenizer.is_fast)
        for i, prompt in enumerate(prompts):
            ids = enc["input_ids"][i]
            offsets = enc["offset_mapping"][i] if tokenizer.is_fast else None
            n_prompt = len(prefix) + _prompt_token_count(tokenizer, prompt, offsets)
            ids = (prefix + ids + [tokenizer.eos_token_id])[:max_length]
            labels = [IGNORE_INDEX] * min(n_prompt, len(ids)) + ids[n_prompt:]
            if all(label == IGNORE_INDEX for label in labels):
                continue
            examples.append({"input_ids": ids, "labels": labels, "index": len(examples)})
    return examples


MIN_RESPONSE_SHARE = 0.5  # recovery data in which fewer records keep a response word is refused


def training_examples(tokenizer, records: Sequence[dict], max_length: int) -> list[dict]:
    """`encode_records`, refused in one line when fewer than MIN_RESPONSE_SHARE of the records
    keep a response token other than end-of-sequence (empty outputs, or responses cut away by
    `max_length`): training on such data teaches the model to stop, and looks like a recovery."""
    examples = encode_records(tokenizer, records, max_length)
    eos = tokenizer.eos_token_id
    worded = sum(1 for e in examples if any(label not in (IGNORE_INDEX, eos) for label in e["labels"]))
    if worded < MIN_RESPONSE_SHARE * len(records):
        raise UsageError(f"only {worded} of {len(records)} recovery records keep a response token within --max_length "
                         f"{max_length} (empty 'output' fields, or prompts longer than the cut); at least "
                         f"{MIN_RESPONSE_SHARE:.0%} must")
    return examples


# ----------------------------------------------------------------------------- batches


def first_fit_rows(lengths: Sequence[int], row_tokens: int) -> list[list[int]]:
    """Example indices grouped into rows of at most `row_tokens` tokens, first fit in the given
    order (an example longer than a row gets a row of its own)."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i, n in enumerate(lengths):
        slot = next((r for r, free in enumerate(room) if free >= n), None)
        if slot is None:
            rows.append([i])
            room.append(row_tokens - n)
        else:
            rows[slot].append(i)
            room[slot] -= n
    return rows


@dataclass(frozen=True)
class RecoveryCollator:
    """Examples {input_ids, labels[, index]} -> a batch in the layout above.

    `packing`: examples end to end in rows of `row_tokens` (None: the whole micro-batch in one
    row); otherwise one right-padded row per example (Llama derives positions from the index, so
    padding goes on the right). `teacher_cache`: a mop.recover.teacher_cache.TeacherCache whose stored
    top-k targets are attached per token (each example needs its `index` in the cache).
    """

    pad_token_id: int
    packing: bool = True
    row_tokens: int | None = None
    teacher_cache: object | None = None

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        if self.packing:
            rows = first_fit_rows([len(f["input_ids"]) for f in features], self.row_tokens or 10**12)
        else:
            rows = [[i] for i in range(len(features))]
        width = max(sum(len(features[i]["input_ids"]) for i in row) for row in rows)
        batch = {
            "input_ids": torch.full((len(rows), width), self.pad_token_id, dtype=torch.long),
            "labels": torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long),
            "position_ids": torch.zeros((len(rows), width), dtype=torch.long),
            "segments": torch.zeros((len(rows), width), dtype=torch.long),
        }
        targets = self.teacher_cache.empty_targets(len(rows), width) if self.teacher_cache is not None else {}
        for r, row in enumerate(rows):
            start = 0
            for number, i in enumerate(row, 1):
                feature, n = features[i], len(features[i]["input_ids"])
                span = slice(start, start + n)
                batch["input_ids"][r, span] = torch.tensor(feature["input_ids"])
                batch["labels"][r, span] = torch.tensor(feature["labels"])
                batch["labels"][r, start] = IGNORE_INDEX  # never predicted from the previous example
                batch["position_ids"][r, span] = torch.arange(n)
                batch["segments"][r, span] = number
                if targets:
                    self.teacher_cache.fill_targets(targets, r, start, feature["index"])
                start += n
            if self.packing:  # filler: its own short "sequence" of restarting positions
                batch["position_ids"][r, start:] = torch.arange(width - start)
        # Real tokens (the Trainer counts them); the model sees this mask only for padded rows.
        batch["attention_mask"] = batch["segments"].ne(0).long()
        batch["packed"] = torch.tensor(self.packing)
        return {**batch, **targets}


def prediction_positions(segments: torch.Tensor) -> torch.Tensor:
    """(R, L) bool: position t predicts a token of its own example (t + 1 in the same segment).
    The last column never does."""
    same = (segments[:, :-1] == segments[:, 1:]) & segments[:, :-1].ne(0)
    return torch.cat([same, torch.zeros_like(same[:, :1])], dim=1)


def response_positions(labels: torch.Tensor) -> torch.Tensor:
    """(R, L) bool: position t's next token carries a response label (the `sft` loss)."""
    carries = labels[:, 1:].ne(IGNORE_INDEX)
    return torch.cat([carries, torch.zeros_like(carries[:, :1])], dim=1)


def next_tokens(labels: torch.Tensor) -> torch.Tensor:
    """(R, L): the label of position t + 1 at position t (-100 in the last column)."""
    return torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], IGNORE_INDEX)], dim=1)
