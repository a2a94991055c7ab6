"""Recovery by distillation from the dense model (`finetune.py --objective kd | kd+sft`).

The paper recovers a pruned checkpoint with LoRA and the cross-entropy of the Alpaca responses
(`--objective sft`, the default). Distillation instead trains the student (the pruned model with
LoRA) to give the next-token distributions of its teacher (the dense model it was pruned from):
every real token of an example, prompt and response, carries a full distribution as its target
rather than one token, which is why it recovers more per token (NVIDIA's Minitron recovers
pruned models this way).

- `kd`: mean over every position whose next token is real of KL(p_teacher || p_student), both
  softmax(logits / T) at `--kd_temperature` T, multiplied by T^2 (so the gradients keep their
  scale when T changes; T = 1 is plain KL).
- `kd+sft`: that plus the response cross-entropy of `sft`.

The teacher runs online, under no_grad, on the same batch (the student's memory plus the
teacher's weights and one batch of its logits). Each micro-batch's loss is its own mean; the
Trainer divides by the accumulation steps, so an optimizer step averages its micro-batches.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from .io import UsageError, json_type_name, read_metadata
from .layout import PRUNE_META

OBJECTIVES = ("sft", "kd", "kd+sft")


def check_objective(objective: str, temperature: float) -> None:
    if objective not in OBJECTIVES:
        raise UsageError(f"unknown --objective {objective!r}; choose from {', '.join(OBJECTIVES)}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise UsageError(f"--kd_temperature must be a finite number above 0, got {temperature:g}")


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, attention_mask: torch.Tensor,
            temperature: float = 1.0) -> torch.Tensor:
    """Mean KL(teacher || student) of the next-token distributions over the positions whose next
    token is real, times T^2. Logits (B, T, V), mask (B, T) with 1 for real tokens (right padding)."""
    predicts = (attention_mask[:, :-1] & attention_mask[:, 1:]).bool()  # (B, T-1)
    student = (student_logits[:, :-1][predicts].float() / temperature).log_softmax(-1)  # (P, V)
    teacher = (teacher_logits[:, :-1][predicts].float() / temperature).log_softmax(-1)  # (P, V)
    kl = F.kl_div(student, teacher, log_target=True, reduction="none").sum(-1)  # (P,)
    return kl.mean() * temperature ** 2


def response_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The `sft` loss: mean next-token cross-entropy over the tokens whose label is not -100."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100)


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


def distillation_trainer_class():
    """A Trainer whose loss is `kd` or `kd+sft` against a frozen teacher (built on use: transformers
    is heavy to import)."""
    from transformers import Trainer  # heavy: imported on use

    class DistillationTrainer(Trainer):
        def __init__(self, *args, teacher=None, objective: str = "kd", temperature: float = 1.0, **kwargs):
            super().__init__(*args, **kwargs)
            self.teacher = teacher.eval().requires_grad_(False)
            self.objective = objective
            self.temperature = temperature
            self.model_accepts_loss_kwargs = False  # the Trainer then averages the micro-batch means

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            ids, mask = inputs["input_ids"], inputs["attention_mask"]
            outputs = model(input_ids=ids, attention_mask=mask, use_cache=False)
            device = outputs.logits.device
            if next(self.teacher.parameters()).device != device:
                self.teacher.to(device)
            with torch.no_grad():
                teacher_logits = self.teacher(input_ids=ids, attention_mask=mask, use_cache=False).logits
            loss = kd_loss(outputs.logits, teacher_logits, mask, self.temperature)
            if self.objective == "kd+sft":
                loss = loss + response_cross_entropy(outputs.logits, inputs["labels"])
            return (loss, outputs) if return_outputs else loss

    return DistillationTrainer
