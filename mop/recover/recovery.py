"""LoRA recovery fine-tuning of a pruned checkpoint (peft + transformers Trainer).

Published setup: LoRA r=32, alpha=10, dropout 0.05, no bias, on q/k/v/o/gate/up/down; AdamW
lr 3e-4; effective batch 16; max length 512; 2 epochs over Alpaca data in the standard Alpaca
template, loss on the response only; the adapter is merged into the weights and saved.

Differences from the published scripts, for speed, none changing the objective:
- Micro-batches of 4 examples x 4 accumulation instead of 1 x 16, the examples of a micro-batch
  packed end to end without padding (mop/recover/batches.py, `--no-packing` for padded rows), attending
  one example at a time (mop/recover/packed_attention.py). The loss is still the mean over all response
  tokens of the 16 examples of an optimizer step (the Trainer counts them across accumulation).
- The vocabulary head runs only where a loss is, by chunks (mop/recover/distill.py, which also holds the
  distillation objectives).
- bf16 autocast on GPUs that support it, with the LoRA weights kept in fp32 (fp16 LoRA can give
  NaN losses); fp32 on CPU.

Layers, for reuse:
- `recovery_collator` (mop/recover/batches.py: `encode_records`, packing): the data side (one BOS, prompt
  labels -100, EOS).
- `train_adapter`: in-memory model + tokenizer + records -> trained PEFT model and statistics.
- `recover_model`: the same, merged.
- `finetune_checkpoint`: checkpoint folder -> merged checkpoint folder, atomically, resumable;
  `RecoveryHooks` carry what differs between model families (mop/plugins/llava/plugin.py subclasses them).

Runs unchanged under `torchrun` / `accelerate launch` (DDP through the Trainer); only the main
process writes the merged checkpoint. `grad_accum` is split across the processes, so the
effective batch stays batch_size x grad_accum (16) on any number of GPUs. Under FSDP
(`accelerate launch --config_file configs/fsdp.yaml`, GPU only) the processes hold shards of the
model: the trained weights are gathered in full on the main process, which rebuilds the LoRA
model from the pruned checkpoint, merges and saves it exactly as a single-GPU run does.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from ..core.args import check_seed
from ..core.io import (UsageError, atomic_directory, check_writable_target, json_type_name, locked_result,
                       read_metadata, remove_stale_temporaries, software_versions, write_json)
from ..core.layout import FINETUNE_META, LOSS_LOG, PRUNE_META, TRAINER_STATE, WORK_SETTINGS, work_dir_for
from ..models.adapter import LORA_PROJECTIONS, family_of, get_adapter, is_multimodal, text_config_of, wrapper_plugin
from ..models.checkpoint import save_checkpoint
from ..models.data import HUB_ALPACA, load_alpaca_records, resolve_data_source
from ..models.loading import check_weights, load_config, load_model, resolve_model_name, saved_dtype
from .batches import RecoveryCollator, training_examples
from .distill import check_objective, recovery_trainer_class, teacher_of, unwrapped, use_bf16
from .lora_cpu import register_cpu_lora, use_mask_dropout
from .memory import fit_recovery_settings, model_parameter_count
from .packed_attention import packed_attention
from .teacher_cache import TeacherCache, build_cache, cache_dtype, cache_key, check_cache_dir, pad_id_of

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


@dataclass
class TrainReport:
    """What `train_adapter` returns: the PEFT-wrapped model and how the run went."""

    peft_model: torch.nn.Module
    log_history: list[dict]
    stats: dict = field(default_factory=dict)
    # Under FSDP each process holds a shard of `peft_model`: the full state dict, gathered on the
    # main process (CPU), is what the merged model is rebuilt from (`merged_model`).
    full_state_dict: dict | None = None


# ----------------------------------------------------------------------------- data


def recovery_collator(tokenizer, settings: RecoverySettings, teacher_cache=None) -> RecoveryCollator:
    """Packed or padded batches (mop/recover/batches.py); filler takes the pad token (EOS where the
    tokenizer has none: it is never attended to nor predicted)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return RecoveryCollator(pad, packing=settings.packing, row_tokens=settings.max_length * settings.batch_size,
                            teacher_cache=teacher_cache)


# ----------------------------------------------------------------------------- training


def lora_config(settings: RecoverySettings, target_modules: Sequence[str] | str | None = None,
                cpu_layers: bool = True):
    """LoRA on the given modules: a list of module-name suffixes, or one regex over full names.
    cpu_layers=False keeps peft's own LoRA Linear (what recovery ran before mop/recover/lora_cpu.py)."""
    from peft import LoraConfig

    targets = LORA_PROJECTIONS if target_modules is None else target_modules
    config = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        bias="none",
        task_type="CAUSAL_LM",
        target_modules=targets if isinstance(targets, str) else list(targets),
    )
    if cpu_layers:
        register_cpu_lora(config)  # one addmm for the update on CPU (mop/recover/lora_cpu.py)
    return config


def distributed_state():
    """The process group of torchrun / accelerate launch, if any (set up on first call, as the
    Trainer sets it up). Without CUDA it is a CPU (gloo) group: accelerate >= 1.13 forms one only
    when told the run is on the CPU, as the Trainer is told by `use_cpu`."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def process_count() -> int:
    """Processes of this run: those of torchrun / accelerate launch, 1 without a launcher."""
    return distributed_state().num_processes


def accumulation_per_process(grad_accum: int, num_processes: int) -> int:
    """Accumulation steps each process runs: every process adds a micro-batch per step, so
    splitting --grad_accum across them keeps the effective batch at batch_size x grad_accum for
    any NUM_GPUS (the paper's 16), where running it whole on each would multiply it. A split that
    does not divide would change the effective batch: refused."""
    if grad_accum % num_processes:
        raise UsageError(f"--grad_accum {grad_accum} does not split across {num_processes} processes (NUM_GPUS): "
                         f"give a --grad_accum that is a multiple of {num_processes}, or another process count")
    return grad_accum // num_processes


def effective_batch(args) -> int:
    """Examples per optimizer step over all processes, as the Trainer's arguments run them
    (recorded, so that a run shows what it did rather than what was asked)."""
    return args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size


def training_arguments(settings: RecoverySettings, work_dir: Path, bf16: bool, progress: bool):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(work_dir),
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=accumulation_per_process(settings.grad_accum, process_count()),
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.num_epochs,
        max_steps=settings.max_steps if settings.max_steps > 0 else -1,
        warmup_steps=settings.warmup_steps,
        lr_scheduler_type=settings.lr_scheduler,
        optim="adamw_torch",
        weight_decay=0.0,
        train_sampling_strategy="group_by_length" if settings.group_by_length else "random",
        bf16=bf16,
        gradient_checkpointing=settings.gradient_checkpointing,
        # Non-reentrant checkpointing lets gradients reach the adapters even though the frozen
        # embeddings' outputs do not require grad.
        gradient_checkpointing_kwargs={"use_reentrant": False},
        logging_steps=settings.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
        seed=settings.seed,
        data_seed=settings.seed,
        report_to=[],
        remove_unused_columns=False,
        label_names=["labels"],
        include_num_input_tokens_seen="non_padding",
        ddp_find_unused_parameters=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=not progress,
    )


def wrap_with_lora(model, settings: RecoverySettings, target_modules=None, cpu_layers: bool = True):
    """PEFT model with fp32 LoRA weights on a frozen (possibly bf16) base; cpu_layers=False: peft's
    own LoRA layers and dropout, without mop/recover/lora_cpu.py's."""
    from peft import get_peft_model
    from transformers import set_seed

    set_seed(settings.seed)  # LoRA's A matrices are random: same seed, same start on every rank
    peft_model = get_peft_model(model, lora_config(settings, target_modules, cpu_layers), autocast_adapter_dtype=True)
    for param in peft_model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    if cpu_layers:
        use_mask_dropout(peft_model)  # the same dropout, its CPU mask drawn cheaper (mop/recover/lora_cpu.py)
    if settings.gradient_checkpointing:
        # Belt and braces for models that force reentrant checkpointing.
        peft_model.enable_input_require_grads()
    return peft_model


def log_last_step_callback():
    """A callback that also logs the final step, so the final loss is the loss at the end of the
    run even when the step count is not a multiple of logging_steps."""
    from transformers import TrainerCallback

    class LogLastStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps:
                control.should_log = True
            return control

    return LogLastStep()


def _loss_rows(log_history: list[dict]) -> list[dict]:
    keys = ("step", "epoch", "loss", "learning_rate", "grad_norm", "num_input_tokens_seen")
    return [{k: entry.get(k) for k in keys} for entry in log_history if "loss" in entry]


def loss_summary(log_history: list[dict]) -> dict:
    """Final and mean training loss from the Trainer's logs (survives a resume, unlike
    TrainOutput.training_loss, which only averages the part after the resume)."""
    rows = _loss_rows(log_history)
    if not rows:
        return {"final_train_loss": None, "mean_train_loss": None}
    # Each logged loss averages the steps since the previous log: weight by that span.
    total, steps, previous = 0.0, 0, 0
    for row in rows:
        span = max(row["step"] - previous, 1)
        total += row["loss"] * span
        steps += span
        previous = row["step"]
    return {"final_train_loss": rows[-1]["loss"], "mean_train_loss": total / steps}


def train_adapter(model, tokenizer, records: Sequence[dict], settings: RecoverySettings, work_dir,
                  target_modules: Sequence[str] | str | None = None, resume: bool = False,
                  callbacks: Sequence = (), progress: bool = True, teacher=None, teacher_cache=None,
                  examples: list[dict] | None = None) -> TrainReport:
    """Train LoRA adapters on `model` (modified in place: it becomes the PEFT base).

    `settings.objective` other than `sft` distils from `teacher` (the dense model, in memory) or
    from `teacher_cache` (a mop.recover.teacher_cache.TeacherCache over these records).

    Trainer checkpoints go to `work_dir` every `save_steps`; with `resume` the run continues
    from the newest one there (optimizer, scheduler, RNG and data position included).
    `target_modules` overrides the default projections: a list of module-name suffixes, or a
    regex matched against full module names (e.g. to reach only LLaVA's language model).
    `examples`: `records` already encoded (mop.recover.batches.training_examples), else encoded here.
    """

    settings.check()
    work_dir = Path(work_dir)
    if examples is None:
        examples = training_examples(tokenizer, records, settings.max_length)
    bf16 = use_bf16(settings.precision)
    args = training_arguments(settings, work_dir, bf16, progress)
    peft_model = wrap_with_lora(model, settings, target_modules)
    if settings.objective != "sft" and teacher is None and teacher_cache is None:
        raise UsageError(f"--objective {settings.objective} needs the dense model as teacher")
    collator = recovery_collator(tokenizer, settings, teacher_cache)
    trainer = recovery_trainer_class()(
        model=peft_model, args=args, train_dataset=examples, data_collator=collator,
        processing_class=tokenizer, callbacks=[log_last_step_callback(), *callbacks],
        objective=settings.objective, temperature=settings.kd_temperature, teacher=teacher,
    )
    checkpoint = last_complete_checkpoint(work_dir) if resume else None
    if resume and args.process_index == 0:
        print(f"resuming from {checkpoint}" if checkpoint else f"no checkpoint in {work_dir}; starting afresh")
    tokens_before = _tokens_at(checkpoint)  # read now: checkpoint rotation may delete it while training
    began = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if settings.packing:  # each example's attention alone (mop/recover/packed_attention.py), student and teacher
            for network in (unwrapped(peft_model), teacher):
                if network is not None:
                    stack.enter_context(packed_attention(network))
        output = trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - began
    state = trainer.state
    stats = {
        **loss_summary(state.log_history),
        "global_steps": state.global_step,
        "epochs": state.epoch,
        "train_examples": len(examples),
        "dropped_examples": len(records) - len(examples),
        "train_tokens": state.num_input_tokens_seen,  # non-padding tokens, all processes
        "train_seconds": round(seconds, 3),
        "train_runtime_trainer": output.metrics.get("train_runtime"),
        "resumed_from": checkpoint,
        "world_size": args.world_size,
        "grad_accum_per_process": trainer.args.gradient_accumulation_steps,
        "effective_batch": effective_batch(trainer.args),
        "bf16": bf16,
        "device": str(args.device),
        "trainable_parameters": sum(p.numel() for p in peft_model.parameters() if p.requires_grad),
    }
    # Tokens of this session over this session's time (a resumed run counts only its part).
    tokens_now = state.num_input_tokens_seen - tokens_before
    stats["tokens_per_second"] = round(tokens_now / seconds, 1) if seconds > 0 else None
    stats["fsdp"] = trainer.is_fsdp_enabled
    # Gathering is collective: every process takes part; the main process gets the tensors.
    full_state = trainer.accelerator.get_state_dict(trainer.model) if trainer.is_fsdp_enabled else None
    return TrainReport(peft_model=trainer.model, log_history=list(state.log_history), stats=stats,
                       full_state_dict=full_state)


# What the Trainer writes into checkpoint-<step>/, trainer_state.json last: a checkpoint without
# all of them was cut short (the process was killed while saving it).
CHECKPOINT_FILES = ("adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json")
CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")


def is_complete_checkpoint(path: Path) -> bool:
    """All files present and trainer_state.json (written last) readable."""
    if not all((path / name).is_file() for name in CHECKPOINT_FILES):
        return False
    try:
        json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def trainer_checkpoints(work_dir: Path) -> list[Path]:
    """checkpoint-<step> folders, newest (highest step) first."""
    if not work_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in work_dir.iterdir() if (m := CHECKPOINT_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found, reverse=True)]


def last_complete_checkpoint(work_dir: Path) -> str | None:
    """The newest complete Trainer checkpoint (the Trainer's own choice takes the newest folder,
    even one a killed process left half-written)."""
    return next((str(p) for p in trainer_checkpoints(Path(work_dir)) if is_complete_checkpoint(p)), None)


def discard_incomplete_checkpoints(work_dir: Path) -> None:
    """Delete checkpoint folders newer than the last complete one (the Trainer would save into
    them again, next to stale files)."""
    for path in trainer_checkpoints(work_dir):
        if is_complete_checkpoint(path):
            break
        shutil.rmtree(path, ignore_errors=True)


def _tokens_at(checkpoint: str | None) -> int:
    """Tokens already seen at the resumed checkpoint (0 for a fresh run)."""
    if not checkpoint:
        return 0
    return read_metadata(Path(checkpoint) / TRAINER_STATE).get("num_input_tokens_seen", 0)


def merge_adapter(peft_model):
    """Fold the LoRA weights into the base weights; a plain transformers model comes back."""
    merged = peft_model.merge_and_unload()
    if getattr(merged, "is_gradient_checkpointing", False):
        merged.gradient_checkpointing_disable()
    merged.config.use_cache = True  # the Trainer turns the KV cache off for checkpointing
    merged.requires_grad_(False)
    merged.eval()
    return merged


# Prefixes that wrappers (FSDP, activation checkpointing, DDP) may leave in state-dict keys.
WRAPPER_PREFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "module.")


def load_adapter_state(peft_model, state_dict: dict):
    """Copy the LoRA weights of a gathered state dict into `peft_model` (a fresh wrap_with_lora of
    the same checkpoint and settings); every adapter weight must be found."""
    def clean(key: str) -> str:
        for prefix in WRAPPER_PREFIXES:
            key = key.replace(prefix, "")
        return key

    wanted = {k for k in peft_model.state_dict() if "lora_" in k}
    lora = {clean(k): v for k, v in state_dict.items() if clean(k) in wanted}
    missing = wanted - lora.keys()
    if missing:
        raise RuntimeError(f"the gathered state dict lacks {len(missing)} LoRA weights, e.g. {min(missing)}")
    peft_model.load_state_dict(lora, strict=False)
    return peft_model


def base_weight_dtype(peft_model) -> torch.dtype:
    """The dtype the frozen base was loaded in (the LoRA weights are fp32 whatever it is)."""
    return peft_model.get_input_embeddings().weight.dtype


def merged_model(report: TrainReport, pruned_dir: Path, settings: RecoverySettings, dtype: torch.dtype, targets):
    """The recovered model with its adapter merged in `dtype` (main process only): the in-memory
    PEFT model when its base is already in `dtype`; else rebuilt from the pruned checkpoint loaded
    in `dtype` and the trained adapter weights -- under FSDP (the gathered ones), and for a float16
    checkpoint trained on a bf16 or fp32 copy, whose merge in the copy's dtype would round every
    weight a second time."""
    state = report.full_state_dict
    if state is None and base_weight_dtype(report.peft_model) == dtype:
        return merge_adapter(report.peft_model)
    if state is None:
        state = {k: v for k, v in report.peft_model.state_dict().items() if "lora_" in k}
    model, _ = load_model(str(pruned_dir), dtype, "cpu")
    return merge_adapter(load_adapter_state(wrap_with_lora(model, settings, targets), state))


def recover_model(model, tokenizer, records: Sequence[dict], settings: RecoverySettings, work_dir,
                  target_modules: Sequence[str] | str | None = None, resume: bool = False,
                  callbacks: Sequence = (), progress: bool = True):
    """LoRA-train and merge: in-memory model in, merged model out (see `train_adapter`)."""
    report = train_adapter(model, tokenizer, records, settings, work_dir, target_modules, resume, callbacks, progress)
    return merge_adapter(report.peft_model)


# ----------------------------------------------------------------------------- checkpoint folders


def resolve_finetune_data(source: str, pruned_dir: Path) -> str:
    """`auto`: decide from the pruned checkpoint's mop_prune.json (settings.model_name): the
    shipped instruction set for the embedded models, yahma/alpaca-cleaned otherwise -- also for
    folders without mop_prune.json (any hub-style checkpoint)."""
    meta = prune_metadata(pruned_dir)
    if source != "auto":
        return source
    if meta is None:
        return HUB_ALPACA
    return resolve_data_source("auto", meta.get("settings", {}).get("model_name", ""))


def prune_metadata(pruned_dir: Path) -> dict | None:
    """The checkpoint's mop_prune.json, checked by shape (mop.core.layout.METADATA_TYPES and the
    settings' model name), None when the folder has none: a file of another shape is one line,
    whether or not this run reads it, since it is copied into the recovered checkpoint."""
    meta_path = pruned_dir / PRUNE_META
    if not meta_path.exists():
        return None
    meta = read_metadata(meta_path)
    model_name = meta.get("settings", {}).get("model_name", "")
    if not isinstance(model_name, str):
        raise UsageError(f"{meta_path}: settings.model_name must be text, found {json_type_name(model_name)} (corrupt?)")
    return meta


# Settings a resumed run must share with the interrupted one (others, e.g. save_steps, may change).
RESUME_KEYS = ("lora_r", "lora_alpha", "lora_dropout", "learning_rate", "num_epochs", "batch_size",
               "grad_accum", "max_length", "max_steps", "warmup_steps", "lr_scheduler", "group_by_length",
               "seed", "objective", "kd_temperature", "packing", "kd_top_k")


def resolve_teacher(settings: RecoverySettings, pruned_dir: Path, teacher: str | None) -> str | None:
    """The teacher checkpoint folder of a distillation objective (None for sft), checked to be a
    model of the student's kind (a LLaVA distils from a LLaVA, text only like its recovery) and
    vocabulary, before anything is loaded."""
    if settings.objective == "sft":
        return None
    path = resolve_model_name(teacher_of(pruned_dir, teacher))
    teacher_config, student_config = load_config(path), load_config(str(pruned_dir))
    if is_multimodal(teacher_config) != is_multimodal(student_config):
        raise UsageError(f"teacher {path} is a {teacher_config.model_type} model, the student a "
                         f"{student_config.model_type} one; distil from the dense model of the same kind")
    teacher_vocab = getattr(text_config_of(teacher_config), "vocab_size", None)
    student_vocab = getattr(text_config_of(student_config), "vocab_size", None)
    if teacher_vocab != student_vocab:
        raise UsageError(f"teacher {path} has a vocabulary of {teacher_vocab} tokens, the student {student_vocab}")
    return path


def teacher_cache_for(job: dict, tokenizer, examples, settings: RecoverySettings, bf16: bool, state, progress: bool):
    """The teacher cache of this run's data (`examples`, as encoded for training), built first (by
    the main process, the teacher on the GPU if there is one) when the folder does not hold it yet."""
    dtype = cache_dtype(bf16)
    key = cache_key(job["teacher"], tokenizer, examples, settings.max_length, settings.kd_top_k,
                    settings.kd_temperature, dtype)
    folder = Path(job["teacher_cache_dir"])
    if state.is_main_process:
        device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
        with locked_result(folder, f"the teacher cache {folder}", wait=True):
            if not (folder / "complete.json").exists():
                teacher = load_model(job["teacher"], torch.bfloat16 if bf16 else torch.float32, device)[0]
                build_cache(folder, key, teacher, pad_id_of(tokenizer), examples, progress=progress)
                del teacher
    state.wait_for_everyone()
    return TeacherCache.open(folder, key)


def check_folders(pruned_dir: Path, tuned_dir: Path, resume: bool) -> bool:
    """All folder checks, before anything is loaded or written. True: the work is already done."""
    if not pruned_dir.is_dir():
        raise UsageError(f"--pruned_model_dir {pruned_dir} not found")
    if not (pruned_dir / "config.json").exists():
        raise UsageError(f"--pruned_model_dir {pruned_dir} holds no config.json (not a checkpoint)")
    if tuned_dir.exists():
        if resume and (tuned_dir / FINETUNE_META).exists():
            return True
        raise UsageError(f"--tuned_model_dir {tuned_dir} already exists; refusing to overwrite it")
    work = work_dir_for(tuned_dir)
    if not resume and any(work.glob("checkpoint-*")):
        raise UsageError(f"{work} holds checkpoints of an interrupted run; pass --resume to continue "
                         "it, or delete the folder to start over")
    return False


def check_resumable(work: Path, job: dict) -> None:
    stored_path = work / WORK_SETTINGS
    if not stored_path.exists():
        return
    stored = read_metadata(stored_path, ("settings", "pruned_model_dir", "data", "num_samples"))
    defaults = {f.name: f.default for f in dataclasses.fields(RecoverySettings)}  # runs older than a setting
    for key in RESUME_KEYS:
        if stored["settings"].get(key, defaults[key]) != job["settings"][key]:
            raise UsageError(f"cannot resume {work}: it was started with {key}={stored['settings'].get(key)!r}, "
                             f"not {job['settings'][key]!r}")
    for key in ("pruned_model_dir", "data", "num_samples"):
        if stored.get(key) != job[key]:
            raise UsageError(f"cannot resume {work}: it was started with {key}={stored.get(key)!r}, not {job[key]!r}")


def write_loss_log(path: Path, log_history: list[dict]) -> None:
    rows = _loss_rows(log_history)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["step", "loss"])
        writer.writeheader()
        writer.writerows(rows)


def plan_memory(settings: RecoverySettings, config, dtype: torch.dtype, num_processes: int = 1,
                teacher_path: str | None = None) -> tuple[RecoverySettings, dict | None, str | None]:
    """Settings fitted to --max_memory_gb (micro-batch, accumulation, checkpointing; the effective
    batch is kept), the plan as stored in mop_finetune.json (None: no budget) and how a
    distillation run gets its teacher (None for sft).

    Each process holds one micro-batch, so the plan is made for one process's share of the
    effective batch (batch_size x grad_accum / processes); the settings returned keep grad_accum
    as the whole run's (the plan's accumulation x processes), as `training_arguments` splits it.
    `--teacher_mode auto` takes the teacher online when the plan fits it beside the student (always
    without a plan, e.g. on CPU), else from a teacher cache.
    """
    share = dataclasses.replace(settings, grad_accum=accumulation_per_process(settings.grad_accum, num_processes))
    mode = settings.teacher_mode if teacher_path else None
    if mode in ("auto", "online"):
        teacher_params = model_parameter_count(load_config(teacher_path))
        try:
            fitted, plan = fit_recovery_settings(share, config, dtype, LORA_PROJECTIONS, teacher_params=teacher_params)
            mode = "online"
        except UsageError:
            if mode == "online":
                raise
            mode = "cache"
    if mode in (None, "cache"):
        fitted, plan = fit_recovery_settings(share, config, dtype, LORA_PROJECTIONS,
                                             cached_top_k=settings.kd_top_k if mode == "cache" else 0)
    if mode:
        print(f"teacher: {mode}" + (" (student and teacher do not fit the memory plan together)"
                                    if mode == "cache" and settings.teacher_mode == "auto" else ""), flush=True)
    if plan is None:
        return settings, None, mode
    print(plan.describe() + (f" (per process, {num_processes} processes)" if num_processes > 1 else ""), flush=True)
    return (dataclasses.replace(fitted, grad_accum=fitted.grad_accum * num_processes),
            {**plan.as_dict(), "num_processes": num_processes}, mode)


def set_fsdp_wrap_class(config, environ=os.environ) -> None:
    """Under FSDP (accelerate launch --config_file configs/fsdp.yaml) every decoder layer is one
    unit: the family names its layer class here, so one config file serves every family (a class
    set in the environment or the config file wins)."""
    if environ.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        environ.setdefault("FSDP_TRANSFORMER_CLS_TO_WRAP", family_of(config).decoder_layer_class)


class RecoveryHooks:
    """What differs between kinds of checkpoint when a folder is recovered.

    The defaults serve causal LMs (every text family): train in bf16 on a GPU that has it, else
    fp32. A multimodal wrapper's plugin overrides them (mop/plugins/llava/plugin.py: keep LLaVA's saved dtype and
    prove its vision half untouched). LoRA always targets the decoder's projections only
    (`DecoderAdapter.lora_targets`).
    """

    def load_dtype(self, config, bf16: bool) -> torch.dtype:
        return torch.bfloat16 if bf16 else torch.float32

    def merge_dtype(self, config, bf16: bool) -> torch.dtype:
        """The dtype the adapter is merged and saved in: a float16 checkpoint (Llama-2's hub weights)
        stays float16, so weights LoRA did not wrap are saved bit-identical and the wrapped ones are
        rounded once; any other checkpoint keeps the training dtype."""
        if saved_dtype(config) == torch.float16:
            return torch.float16
        return self.load_dtype(config, bf16)

    def before_training(self, model) -> object:
        """State to compare against after merging (nothing for a causal LM)."""
        return None

    def after_merge(self, merged, config, before) -> tuple[object, dict]:
        """(the model to save, extra metadata for mop_finetune.json)."""
        return merged, {}

    def done_message(self, meta: dict) -> str:
        return (f"final loss {meta['final_train_loss']}, {meta['train_tokens']:,} tokens, "
                f"{meta['tokens_per_second']} tokens/s")


SCOPES = ("text", "multimodal", "any")


def recovery_hooks(path: Path, config, scope: str = "text") -> RecoveryHooks:
    """The hooks a checkpoint is recovered with, found from its config: a multimodal wrapper's
    plugin registers its own (`RECOVERY_HOOKS`), text families share the defaults. `scope` is
    what the calling script recovers (Llama2/ and Llama3/: text models, Llava/: LLaVA, Custom/:
    either); a checkpoint outside it is refused in one line naming the scripts that take it."""
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r}: one of {', '.join(SCOPES)}")
    multimodal = is_multimodal(config)
    if scope == "text" and multimodal:
        raise UsageError(f"{path} is a {config.model_type} checkpoint (a multimodal wrapper): recover it with "
                         "Llava/finetune.py or Custom/finetune.py, which tune its language model only")
    if scope == "multimodal" and not multimodal:
        raise UsageError(f"{path} is not a multimodal checkpoint (model_type {config.model_type!r}); use "
                         "Llama2/finetune.py, Llama3/finetune.py or Custom/finetune.py")
    return wrapper_plugin(config).RECOVERY_HOOKS() if multimodal else RecoveryHooks()


def finetune_checkpoint(pruned_model_dir, tuned_model_dir, settings: RecoverySettings, data: str = "auto",
                        num_samples: int | None = None, resume: bool = False, progress: bool = True,
                        callbacks: Sequence = (), scope: str = "text",
                        teacher: str | None = None, teacher_cache_dir: str | None = None) -> dict | None:
    """Recover one pruned checkpoint folder into a merged checkpoint folder.

    The output appears under its final name only when complete; Trainer checkpoints live in
    `.work-<name>/` beside it (for `resume`) and are deleted after success. Every input is
    checked before the model is loaded; the main process holds a lock on the output
    (`.<name>.lock` beside it) while it works, so a second run on the same output stops with a
    one-line error. Returns the contents of mop_finetune.json on the main process, None on the
    others. `teacher` (distillation objectives): the dense model, by default the one named in the
    checkpoint's mop_prune.json; with a teacher cache (`teacher_mode`, decided by the memory plan
    under `auto`) its targets are read from, or first written to, `teacher_cache_dir` (default:
    `teacher_cache/` beside the pruned checkpoint's run folder, shared by the runs of a grid).
    `scope`: the kinds of checkpoint the calling script recovers (see `recovery_hooks`).
    """

    settings.check()
    num_processes = process_count()
    accumulation_per_process(settings.grad_accum, num_processes)  # a split that does not divide: refused now
    pruned_dir, tuned_dir = Path(pruned_model_dir), Path(tuned_model_dir)
    if num_samples is not None and num_samples < 1:
        raise UsageError(f"--num_samples must be at least 1, got {num_samples}")
    if check_folders(pruned_dir, tuned_dir, resume) and not work_dir_for(tuned_dir).exists():
        print(f"{tuned_dir} is already complete")
        return read_metadata(tuned_dir / FINETUNE_META)
    config = load_config(str(pruned_dir))
    hooks = recovery_hooks(pruned_dir, config, scope)
    check_weights(pruned_dir)
    source = resolve_finetune_data(data, pruned_dir)
    records = load_alpaca_records(source, num_samples)
    teacher_path = resolve_teacher(settings, pruned_dir, teacher)
    check_writable_target(tuned_dir, "--tuned_model_dir")
    bf16 = use_bf16(settings.precision)
    settings, memory_plan, mode = plan_memory(settings, config, hooks.load_dtype(config, bf16), num_processes,
                                              teacher_path)
    job = {"pruned_model_dir": str(pruned_dir), "tuned_model_dir": str(tuned_dir), "data": source,
           "num_samples": num_samples, "settings": dataclasses.asdict(settings), "memory_plan": memory_plan,
           "teacher": teacher_path, "teacher_mode": mode,
           "teacher_cache_dir": str(teacher_cache_dir or pruned_dir.parent.parent / "teacher_cache") if mode == "cache"
           else None}
    if job["teacher_cache_dir"]:
        check_cache_dir(Path(job["teacher_cache_dir"]), "--teacher_cache_dir")
    # The process group first: under FSDP with cpu_ram_efficient_loading, only the main process
    # then reads the weights (the others get empty ones, filled by FSDP from the main process).
    set_fsdp_wrap_class(config)
    state = distributed_state()
    lock = (locked_result(tuned_dir, f"the recovery of {tuned_dir}") if state.is_main_process
            else contextlib.nullcontext())
    with lock:
        work = work_dir_for(tuned_dir)
        if check_folders(pruned_dir, tuned_dir, resume):  # complete (a run was killed while tidying up)
            if state.is_main_process:
                shutil.rmtree(work, ignore_errors=True)
                remove_stale_temporaries(tuned_dir.parent, re.escape(tuned_dir.name))
            print(f"{tuned_dir} is already complete")
            return read_metadata(tuned_dir / FINETUNE_META)
        if resume:
            check_resumable(work, job)
            if state.is_main_process:
                discard_incomplete_checkpoints(work)
        return _finetune_locked(pruned_dir, tuned_dir, work, job, config, records, settings, bf16, resume, progress,
                                callbacks, hooks, state)


def _finetune_locked(pruned_dir: Path, tuned_dir: Path, work: Path, job: dict, config, records, settings,
                     bf16: bool, resume: bool, progress: bool, callbacks, hooks: RecoveryHooks, state) -> dict | None:
    """Load, train, merge and save, with every input already checked and the output locked."""
    # On CPU; the Trainer places the model on each process's device.
    model, processing = load_model(str(pruned_dir), hooks.load_dtype(config, bf16), "cpu")
    tokenizer = getattr(processing, "tokenizer", processing)
    examples = training_examples(tokenizer, records, settings.max_length)  # refused before anything is written
    targets = get_adapter(model).lora_targets()
    before = hooks.before_training(model)
    teacher, cache = None, None
    if job["teacher_mode"] == "online":
        teacher = load_model(job["teacher"], hooks.load_dtype(config, bf16), "cpu")[0]
    elif job["teacher_mode"] == "cache":
        cache = teacher_cache_for(job, tokenizer, examples, settings, bf16, state, progress)
    if state.is_main_process:
        work.mkdir(parents=True, exist_ok=True)
        write_json(work / WORK_SETTINGS, job)
    report = train_adapter(model, tokenizer, records, settings, work, target_modules=targets, resume=resume,
                           callbacks=callbacks, progress=progress, teacher=teacher, teacher_cache=cache,
                           examples=examples)
    del teacher
    meta = None
    if state.is_main_process:
        merged = merged_model(report, pruned_dir, settings, hooks.merge_dtype(config, bf16), targets)
        merged, extra = hooks.after_merge(merged, config, before)
        meta = {**job, "num_records": len(records), "dtype": str(merged.dtype), "lora_targets": targets, **extra,
                **report.stats, "command": " ".join(sys.argv), "versions": software_versions()}
        save_merged(merged, processing, pruned_dir, tuned_dir, meta, report.log_history)
        shutil.rmtree(work, ignore_errors=True)
        print(f"saved {tuned_dir} ({hooks.done_message(meta)})")
    state.wait_for_everyone()
    return meta


def save_merged(merged, processing, pruned_dir: Path, tuned_dir: Path, meta: dict, log_history: list[dict]) -> None:
    """A plain HF checkpoint + tokenizer/processor + how it was made, appearing only when complete."""
    with atomic_directory(tuned_dir) as tmp:
        save_checkpoint(merged, processing, tmp)
        if (pruned_dir / PRUNE_META).exists():
            shutil.copy2(pruned_dir / PRUNE_META, tmp / PRUNE_META)
        write_loss_log(tmp / LOSS_LOG, log_history)
        write_json(tmp / FINETUNE_META, meta)
