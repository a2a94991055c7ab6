"""The recovery's settings (finetune.py's flags as one dataclass), each checked where it is made,
so that a bad value stops a run before any model is loaded."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.args import check_seed
from ..core.io import UsageError
from .distill import check_objective

TEACHER_MODES = ("auto", "online", "cache")


@dataclass
class RecoverySettings:
    """Hyperparameters of one recovery run (stored in mop_finetune.json)."""

    lora_r: int = 32
    lora_alpha: int = 10
    lora_dropout: float = 0.05
    learning_rate: float = 3e-4
    num_epochs: float = 2.0
    batch_size: int = 4  # micro-batch of each process
    grad_accum: int = 4  # of the whole run, split across processes: effective batch = batch_size x grad_accum
    max_length: int = 512
    max_steps: int = -1  # > 0 overrides num_epochs (optimizer steps)
    warmup_steps: int = 0
    lr_scheduler: str = "linear"  # the Trainer's default schedule
    group_by_length: bool = True  # padded batches of similar length (False: random order)
    gradient_checkpointing: bool = False
    max_memory_gb: float | None = None  # None: the CUDA device's memory, no plan on CPU; 0: no plan (mop/recover/memory.py)
    precision: str = "auto"  # auto: bf16 on a CUDA GPU that supports it, else fp32
    save_steps: int = 200  # Trainer checkpoint period, for --resume
    save_total_limit: int = 2
    logging_steps: int = 10
    seed: int = 1
    objective: str = "sft"  # sft (the paper's) | kd | kd+sft: distillation from the dense model (mop/recover/distill.py)
    kd_temperature: float = 1.0
    packing: bool = True  # examples end to end in rows, no padding (mop/recover/batches.py); False: padded rows
    teacher_mode: str = "auto"  # kd: online (teacher beside the student) | cache (mop/recover/teacher_cache.py) | auto
    kd_top_k: int = 64  # tokens per position a teacher cache keeps

    def check(self) -> None:
        """Reject values the Trainer would only fail on later (or silently accept). Real numbers are
        checked with `finite_positive`: NaN and inf pass a plain `<= 0` test and then fail inside
        AdamW, after the model is loaded and the work folder written."""
        positive = ("lora_r", "batch_size", "grad_accum", "save_steps", "logging_steps", "save_total_limit")
        for name in positive:
            if getattr(self, name) < 1:
                raise UsageError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.max_length < 8:
            raise UsageError(f"--max_length must be at least 8, got {self.max_length}")
        if self.warmup_steps < 0:
            raise UsageError(f"warmup_steps must be 0 or more, got {self.warmup_steps}")
        finite_positive("--learning_rate", self.learning_rate)
        finite_positive("--lora_alpha", self.lora_alpha)
        if self.max_steps <= 0 or not math.isfinite(self.num_epochs):  # the epochs name the output folder
            finite_positive("--num_epochs", self.num_epochs, "(or give --max_steps)")
        if not 0 <= self.lora_dropout < 1:
            raise UsageError(f"--lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.max_memory_gb is not None and not (math.isfinite(self.max_memory_gb) and self.max_memory_gb >= 0):
            raise UsageError(f"--max_memory_gb must be a positive number of GB (or 0 for no plan), got {self.max_memory_gb:g}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise UsageError(f"--precision must be auto, bf16 or fp32, got {self.precision!r}")
        check_seed(self.seed)
        check_objective(self.objective, self.kd_temperature)
        if self.teacher_mode not in TEACHER_MODES:
            raise UsageError(f"--teacher_mode must be one of {', '.join(TEACHER_MODES)}, got {self.teacher_mode!r}")
        if self.kd_top_k < 1:
            raise UsageError(f"--kd_top_k must be at least 1, got {self.kd_top_k}")


def finite_positive(flag: str, value: float, note: str = "") -> None:
    """A real-valued setting must be a finite number above 0 (NaN compares false with everything)."""
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"{flag} must be a finite number above 0{' ' + note if note else ''}, got {value:g}")
