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
- `train_lora`: in-memory model + tokenizer + records -> trained PEFT model and statistics.
- `recover_model`: the same, merged (`merge_lora`).
- the checkpoint folder -> merged checkpoint folder job, atomic and resumable, is mop/recover/job.py.

Runs unchanged under `torchrun` / `accelerate launch` (DDP through the Trainer); only the main
process writes the merged checkpoint. `grad_accum` is split across the processes, so the
effective batch stays batch_size x grad_accum (16) on any number of GPUs. Under FSDP
(`accelerate launch --config_file configs/fsdp.yaml`, GPU only) the processes hold shards of the
model: the trained weights are gathered in full on the main process, which rebuilds the LoRA
model from the pruned checkpoint, merges and saves it exactly as a single-GPU run does.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from ..core.io import UsageError, read_metadata
from ..core.layout import TRAINER_STATE
from ..models.adapter import LORA_PROJECTIONS
from ..models.loading import load_model
from .batches import RecoveryCollator, training_examples
from .distill import recovery_trainer_class, unwrapped, use_bf16
from .lora_cpu import register_cpu_lora, use_mask_dropout
from .packed_attention import packed_attention
from .settings import RecoverySettings


@dataclass
class TrainReport:
    """What `train_lora` returns: the PEFT-wrapped model and how the run went."""

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


def loss_rows(log_history: list[dict]) -> list[dict]:
    keys = ("step", "epoch", "loss", "learning_rate", "grad_norm", "num_input_tokens_seen")
    return [{k: entry.get(k) for k in keys} for entry in log_history if "loss" in entry]


def loss_summary(log_history: list[dict]) -> dict:
    """Final and mean training loss from the Trainer's logs (survives a resume, unlike
    TrainOutput.training_loss, which only averages the part after the resume)."""
    rows = loss_rows(log_history)
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


def train_lora(model, tokenizer, records: Sequence[dict], settings: RecoverySettings, work_dir,
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


def merge_lora(peft_model):
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
        return merge_lora(report.peft_model)
    if state is None:
        state = {k: v for k, v in report.peft_model.state_dict().items() if "lora_" in k}
    model, _ = load_model(str(pruned_dir), dtype, "cpu")
    return merge_lora(load_adapter_state(wrap_with_lora(model, settings, targets), state))


def recover_model(model, tokenizer, records: Sequence[dict], settings: RecoverySettings, work_dir,
                  target_modules: Sequence[str] | str | None = None, resume: bool = False,
                  callbacks: Sequence = (), progress: bool = True):
    """LoRA-train and merge: in-memory model in, merged model out (see `train_lora`)."""
    report = train_lora(model, tokenizer, records, settings, work_dir, target_modules, resume, callbacks, progress)
    return merge_lora(report.peft_model)
