"""The recovery losses (`finetune.py --objective sft | kd | kd+sft`), computed where they are needed.

The paper recovers a pruned checkpoint with LoRA and the cross-entropy of the Alpaca responses
(`sft`, the default). Distillation instead trains the student (the pruned model with LoRA) to give
the next-token distributions of its teacher (the dense model it was pruned from): every real
token of an example, prompt and response, carries a full distribution as its target rather than
one token, which is why it recovers more per token (NVIDIA's Minitron recovers pruned models
this way).

- `sft`: next-token cross-entropy of the response tokens; an optimizer step averages over all
  response tokens of its examples (as the Trainer does for a causal LM).
- `kd`: KL(p_teacher || p_student) of the next-token distributions at `--kd_temperature` T (both
  softmax(logits / T)), times T^2 (the gradients keep their scale when T changes; T = 1 is plain
  KL), averaged over every position whose next token belongs to the same example. The teacher
  runs online (its full distribution), or its stored top-k targets come from a teacher cache
  (mop/recover/teacher_cache.py; KL over the k tokens plus one bucket for the rest, `coarse_kl`).
- `kd+sft`: the mean KL plus the mean response cross-entropy of each micro-batch.

Where the vocabulary head runs: the model's own head is fed nothing (a forward pre-hook takes its
input, the final hidden states, and hands it an empty slice), and the head is applied here only to
the positions that carry a loss, a chunk of positions at a time, each chunk under activation
checkpointing. So no (positions, vocabulary) fp32 tensor larger than one chunk ever exists, in
the forward or the backward pass: for a 128k vocabulary the full-logit tensor of a 16 x
512 batch would be 4.3 GB in fp32. The model itself still runs through its (DDP) wrapper, so
gradient synchronisation is untouched.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch.utils.checkpoint import checkpoint

from ..core.io import UsageError, json_type_name, read_metadata
from ..core.layout import OBJECTIVES, PRUNE_META  # noqa: F401 (OBJECTIVES: named here for its users)
from ..models.adapter import get_adapter
from ..models.divergence import coarse_kl, full_kl
from .batches import next_tokens, prediction_positions, response_positions

# fp32 elements of one (chunk, vocabulary) block of logits: 2^25 = 128 MB, so a chunk is 1048
# positions for a 32k vocabulary, 682 for 49k, 261 for 128k.
CHUNK_ELEMENTS = 2 ** 25
MODEL_INPUTS = ("input_ids", "position_ids", "attention_mask")


def check_objective(objective: str, temperature: float) -> None:
    if objective not in OBJECTIVES:
        raise UsageError(f"unknown --objective {objective!r}; choose from {', '.join(OBJECTIVES)}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise UsageError(f"--kd_temperature must be a finite number above 0, got {temperature:g}")


def teacher_of(pruned_dir: Path, teacher: str | None) -> str:
    """`--teacher`, else the dense model the checkpoint was pruned from (its mop_prune.json)."""
    if teacher:
        return teacher
    meta_path = Path(pruned_dir) / PRUNE_META
    if not meta_path.exists():
        raise UsageError(f"{pruned_dir} has no {PRUNE_META} naming the dense model it was pruned from; "
                         "give the teacher with --teacher")
    source = read_metadata(meta_path).get("source_model")
    if not isinstance(source, str) or not source:
        raise UsageError(f"{meta_path}: source_model must name the dense model, found {json_type_name(source)}; "
                         "give the teacher with --teacher")
    return source


# ----------------------------------------------------------------------------- the head, by chunks


def head_chunk_positions(vocab: int) -> int:
    """Positions per chunk of the head: CHUNK_ELEMENTS logits, at least 64 positions."""
    return max(64, CHUNK_ELEMENTS // vocab)


def unwrapped(model):
    """The transformers model under DDP / PEFT wrappers (where the output head lives)."""
    model = getattr(model, "module", model)
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class OutputHead:
    """The vocabulary projection of a causal LM as its forward applies it (the family adapter's
    `logits`: the head, then a final soft cap where the family and config have one)."""

    def __init__(self, model):
        self.adapter = get_adapter(unwrapped(model))
        self.module = self.adapter.output_head()

    def log_probs(self, hidden: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """(P, H) -> (P, V) fp32 log-softmax of logits / temperature (no division at T = 1: a pass
        over the whole (P, V) block, forward and backward, for nothing)."""
        logits = self.adapter.logits(hidden).float()
        return (logits if temperature == 1 else logits / temperature).log_softmax(-1)

    def chunk_size(self) -> int:
        return head_chunk_positions(self.module.weight.shape[0])


@contextlib.contextmanager
def head_bypassed(model) -> Iterator[list]:
    """While inside, every forward of `model` hands its head an empty slice of positions and
    appends the head's input (the final hidden states, (R, L, H)) to the yielded list."""
    captured: list[torch.Tensor] = []

    def take(module, args):
        captured.append(args[0])
        return (args[0][..., :0, :],)

    handle = OutputHead(model).module.register_forward_pre_hook(take)
    try:
        yield captured
    finally:
        handle.remove()


def final_hidden(model, batch: dict) -> torch.Tensor:
    """(R, L, H) input of the vocabulary head for a batch in mop/recover/batches.py's layout; the model runs
    through its wrapper (DDP hooks, autocast) with the KV cache off (packed rows need that)."""
    inputs = {k: batch[k] for k in MODEL_INPUTS if k in batch}
    if bool(batch.get("packed", False)):
        inputs.pop("attention_mask", None)  # transformers then masks by the restarts of position_ids
    with head_bypassed(model) as captured:
        model(**inputs, use_cache=False)
    return captured[-1]


def chunked_sum(term: Callable[..., torch.Tensor], chunk: int, *rows: torch.Tensor) -> torch.Tensor:
    """sum over chunks of term(*row_chunks) (each a scalar), each chunk checkpointed: its logits are
    made again in the backward pass instead of being kept."""
    total = rows[0].new_zeros((), dtype=torch.float32)
    for start in range(0, rows[0].shape[0], chunk):
        parts = [r[start:start + chunk] for r in rows]
        if torch.is_grad_enabled() and rows[0].requires_grad:
            total = total + checkpoint(term, *parts, use_reentrant=False)
        else:
            total = total + term(*parts)
    return total


# ----------------------------------------------------------------------------- the losses


def response_ce_sum(head: OutputHead, hidden: torch.Tensor, batch: dict) -> tuple[torch.Tensor, int]:
    """(sum of the response tokens' cross-entropy, their count)."""
    where = response_positions(batch["labels"])
    targets = next_tokens(batch["labels"])[where]  # (P,)

    def term(h, t):
        return -head.log_probs(h).gather(-1, t[:, None]).sum()

    return chunked_sum(term, head.chunk_size(), hidden[where], targets), int(where.sum())


def kd_sum(head: OutputHead, hidden: torch.Tensor, batch: dict, temperature: float,
           teacher_head: OutputHead | None = None, teacher_hidden: torch.Tensor | None = None
           ) -> tuple[torch.Tensor, int]:
    """(sum over prediction positions of T^2 KL(teacher || student), their count), against the
    online teacher's hidden states or the cached top-k targets in the batch."""
    where = prediction_positions(batch["segments"])
    if teacher_hidden is not None:
        def term(h, th):
            with torch.no_grad():
                teacher = teacher_head.log_probs(th, temperature)
            return full_kl(head.log_probs(h, temperature), teacher).sum()

        rows = (hidden[where], teacher_hidden[where])
    else:
        def term(h, top, idx, rest):
            return coarse_kl(head.log_probs(h, temperature), top, idx, rest).sum()

        rows = (hidden[where], batch["teacher_top"][where].float(), batch["teacher_ids"][where].long(),
                batch["teacher_rest"][where].float())
    return chunked_sum(term, head.chunk_size(), *rows) * temperature ** 2, int(where.sum())


def use_bf16(precision: str) -> bool:
    """bf16 autocast only where the hardware has it; CPU runs stay fp32."""
    cuda_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if precision == "bf16" and not cuda_bf16:
        raise UsageError("--precision bf16 needs a CUDA GPU with bf16 support")
    return cuda_bf16 if precision == "auto" else precision == "bf16"


def recovery_trainer_class():
    """The Trainer of every objective (built on use: transformers is heavy to import)."""
    from transformers import Trainer  # heavy: imported on use

    class RecoveryTrainer(Trainer):
        """`sft`, `kd` or `kd+sft` on batches of mop/recover/batches.py, the head run by chunks.

        `sft` keeps the Trainer's token weighting: it counts the response tokens of the whole
        accumulation window (all processes) and passes the count in (`model_accepts_loss_kwargs`).
        The distillation objectives return the micro-batch's mean and the Trainer divides by the
        accumulation steps.
        """

        def __init__(self, *args, objective: str = "sft", temperature: float = 1.0, teacher=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.objective = objective
            self.temperature = temperature
            self.teacher = teacher.eval().requires_grad_(False) if teacher is not None else None
            self.model_accepts_loss_kwargs = objective == "sft"

        def teacher_hidden(self, batch: dict, device) -> torch.Tensor | None:
            if self.teacher is None:
                return None
            if next(self.teacher.parameters()).device != device:
                self.teacher.to(device)
            with torch.no_grad():
                return final_hidden(self.teacher, batch)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            head = OutputHead(model)
            hidden = final_hidden(model, inputs)
            if self.objective == "sft":
                total, count = response_ce_sum(head, hidden, inputs)
                loss = total / (num_items_in_batch if num_items_in_batch is not None else max(count, 1))
                if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                    loss = loss * self.accelerator.num_processes  # DDP averages the processes' gradients
            else:
                teacher_hidden = self.teacher_hidden(inputs, hidden.device)
                teacher_head = OutputHead(self.teacher) if self.teacher is not None else None
                total, count = kd_sum(head, hidden, inputs, self.temperature, teacher_head, teacher_hidden)
                loss = total / max(count, 1)
                if self.objective == "kd+sft":
                    ce, ce_count = response_ce_sum(head, hidden, inputs)
                    loss = loss + ce / max(ce_count, 1)
            stop_on_non_finite(loss, self.state.global_step + 1, self.args.output_dir)
            return (loss, {"loss": loss}) if return_outputs else loss

    return RecoveryTrainer


def stop_on_non_finite(loss: torch.Tensor, step: int, work_dir: str) -> None:
    """A NaN or infinite loss stops recovery at once, in one line naming the step: the Trainer
    would step on NaN gradients (and its logs filter NaN losses out), merging a broken model. The
    Trainer checkpoints written so far stay in `work_dir`."""
    if not bool(torch.isfinite(loss.detach()).all()):
        raise UsageError(f"recovery step {step}: the training loss is {loss.item()}; stopped, the Trainer "
                         f"checkpoints so far are kept in {work_dir} (an overflow? try a lower --learning_rate or --precision fp32)")
