"""Held-out next-token loss of a checkpoint: a quick quality measure that shows a collapse plainly.

At 135M parameters the multiple-choice tasks sit near chance, so a pruned model that has lost
its language modelling can still score like the dense one there. The mean next-token
cross-entropy (and its exponential, the token perplexity) over held-out instruction texts does
not hide it: a uniform guess over SmolLM2's 49,152-token vocabulary is ln 49152 = 10.8.

Texts: the calibration format followed by the answer (`calibration_prompt(record) + " " +
output`), the text the lm_eval task `mop_heldout_ppl` scores (mop/evaluate/tasks/), from
mop/evaluate/tasks/data/mop_heldout.jsonl, which no calibration or recovery reads. `tail_texts` gives the
same format for the last records of the shipped instruction set (used for training by the
embedded recovery, so not held out; kept to compare with figures measured that way).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ..models.adapter import get_adapter
from ..models.data import calibration_prompt, load_alpaca_records
from ..prune.importance import batch_prompts
from ..prune.path_selection import final_hidden_states, next_token_logprobs, split_outputs

HELDOUT_FILE = Path(__file__).resolve().parent / "tasks" / "data" / "mop_heldout.jsonl"
SHIPPED_INSTRUCTIONS = Path(__file__).resolve().parents[1] / "assets" / "instructions.json"


def heldout_texts(path: Path = HELDOUT_FILE) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def tail_texts(count: int = 8, path: Path = SHIPPED_INSTRUCTIONS) -> list[str]:
    return [calibration_prompt(r) + " " + r["output"] for r in load_alpaca_records(path)[-count:]]


@torch.inference_mode()
def mean_token_loss(model, tokenizer, texts: list[str], batch_size: int = 8, max_length: int = 512) -> float:
    """Mean next-token cross-entropy (nats) over every position whose next token is real, pooled
    over the texts (right-padded batches; padding predicts and is predicted by nothing). The
    positions and the chunked vocabulary head are the metric paths' own (mop/prune/path_selection.py)."""
    batches = batch_prompts(tokenizer, texts, batch_size, max_length)
    total, count = 0.0, 0
    adapter = get_adapter(model)
    for batch, hidden in zip(batches, final_hidden_states(adapter, batches)):
        _, pred_hidden, targets = split_outputs(hidden, batch)  # (P, H), (P,)
        for start, logprobs in next_token_logprobs(adapter, pred_hidden):
            total -= logprobs.gather(-1, targets[start:start + logprobs.shape[0], None]).double().sum().item()
            count += logprobs.shape[0]
    return total / count


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else float("inf")
