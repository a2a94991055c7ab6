"""Recovering a checkpoint folder: `finetune_checkpoint` (what every finetune.py runs) takes a
pruned checkpoint folder to a merged recovered one, atomically and resumably: it resolves the data,
the teacher and its cache, makes the memory plan, trains through mop/recover/trainer.py (resuming
the Trainer's checkpoints of an interrupted run) and writes the merged model with its metadata.
`RecoveryHooks` carry what differs between model kinds; a multimodal wrapper's plugin supplies its
own (found by model_type: mop.families.WRAPPER_PLUGINS), the text families use the defaults.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Sequence

import torch

from ..core.io import (UsageError, atomic_directory, check_writable_target, json_type_name, locked_result,
                       read_metadata, remove_stale_temporaries, software_versions, write_json)
from ..core.layout import FINETUNE_META, LOSS_LOG, PRUNE_META, WORK_SETTINGS, work_dir_for
from ..models.adapter import LORA_PROJECTIONS, family_of, get_adapter, is_multimodal, text_config_of, wrapper_plugin
from ..models.checkpoint import save_checkpoint
from ..models.data import HUB_ALPACA, load_alpaca_records, resolve_data_source
from ..models.loading import check_weights, load_config, load_model, resolve_model_name, saved_dtype
from .batches import training_examples
from .distill import teacher_of, use_bf16
from .memory import fit_recovery_settings, model_parameter_count
from .settings import RecoverySettings
from .teacher_cache import TeacherCache, build_cache, cache_dtype, cache_key, check_cache_dir, pad_id_of
from .trainer import (accumulation_per_process, discard_incomplete_checkpoints, distributed_state, loss_rows,
                      merged_model, process_count, train_lora)

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
    rows = loss_rows(log_history)
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
    report = train_lora(model, tokenizer, records, settings, work, target_modules=targets, resume=resume,
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
