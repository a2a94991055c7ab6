"""LLaVA-1.5 support: the embedded tiny LLaVA, image + question calibration, and the vision guard.

MoP prunes only LLaVA's language model (adapter.py points the engine at
`model.model.language_model`); the CLIP vision tower and the 2-layer MLP projector must come
out of pruning and recovery bit-identical. This module provides

- `tiny_llava_checkpoint()`: a CPU-sized LLaVA for the embedded pipeline -- the embedded
  SmolLM2-135M (multi-head version, Llama-2 style like Vicuna) as language model, plus a small
  randomly initialised CLIP tower and projector, with a LlavaProcessor. Its vision half is
  untrained: it exercises the pipeline, not visual accuracy.
- image + question calibration batches (`--calibration_images questions.json`);
- `vision_fingerprint` / `check_vision_unchanged` to prove the vision half was not touched;
- `finetune_llava_checkpoint`: text-only LoRA recovery of the language model, merged back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import torch

from .io import UsageError, atomic_directory, exit_on_usage_error, read_json, software_versions, write_json

IMAGE_TOKEN = "<image>"
TINY_LLAVA = "tiny-llava"
TINY_TEXT_MODEL = "smollm2-135m-mha"
TINY_SEED = 0
# A deliberately small CLIP tower: 64x64 images in 16x16 patches -> 16 image tokens per image.
TINY_VISION = dict(
    image_size=64, patch_size=16, hidden_size=64, intermediate_size=128,
    num_hidden_layers=2, num_attention_heads=2, projection_dim=64,
)
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
# Vocabulary padded like llava-1.5-7b-hf (32000 + <image> + padding -> 32064).
VOCAB_MULTIPLE = 64
# ChatML (SmolLM2-Instruct's format) with LLaVA-style content lists: images render as
# "<image>\n" where they occur, so the processor can expand them into image tokens.
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}{{ '<image>\\n' }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Where the shipped shape/colour image questions live (calibration example + lm_eval task).
TASKS_VISION = Path(__file__).resolve().parent / "tasks_vision"
SHIPPED_QUESTIONS = TASKS_VISION / "data" / "shapes.jsonl"
CALIBRATION_RECORD = "calibration_images.json"


# ----------------------------------------------------------------------------- the tiny LLaVA


def tiny_vision_config():
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(**TINY_VISION)


def add_image_token(tokenizer) -> int:
    """Add `<image>` as a special token (never split, never normalised); returns its id."""
    from transformers import AddedToken

    tokenizer.add_tokens([AddedToken(IMAGE_TOKEN, special=True, normalized=False)], special_tokens=True)
    return tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)


def tiny_image_processor(image_size: int):
    """CLIP preprocessing at `image_size` (the slow processor: torchvision is not required)."""
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        do_resize=True, size={"shortest_edge": image_size},
        do_center_crop=True, crop_size={"height": image_size, "width": image_size},
        do_rescale=True, do_normalize=True, image_mean=CLIP_MEAN, image_std=CLIP_STD,
        do_convert_rgb=True,
    )


def build_llava(causal_lm, tokenizer, vision_config, seed: int = TINY_SEED):
    """Wrap a Llama causal LM into a LLaVA-1.5 model with a fresh vision tower and projector.

    The language model's weights are copied unchanged (embeddings resized for `<image>`); the
    vision tower and projector are randomly initialised from `seed`. Returns (model, processor).
    """
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    torch.manual_seed(seed)
    image_token_id = add_image_token(tokenizer)
    causal_lm.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=VOCAB_MULTIPLE)
    text_config = causal_lm.config
    num_patches = (vision_config.image_size // vision_config.patch_size) ** 2
    config = LlavaConfig(
        vision_config=vision_config.to_dict(), text_config=text_config.to_dict(),
        image_token_index=image_token_id, projector_hidden_act="gelu",
        vision_feature_select_strategy="default", vision_feature_layer=-2,
        image_seq_length=num_patches, tie_word_embeddings=text_config.tie_word_embeddings,
    )
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(config, key, getattr(text_config, key, None))
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.model.language_model.load_state_dict(causal_lm.model.state_dict())
    model.lm_head.load_state_dict(causal_lm.lm_head.state_dict())
    model.tie_weights()
    model.generation_config = causal_lm.generation_config
    model.eval()
    processor = LlavaProcessor(
        image_processor=tiny_image_processor(vision_config.image_size), tokenizer=tokenizer,
        patch_size=vision_config.patch_size, vision_feature_select_strategy="default",
        chat_template=TINY_CHAT_TEMPLATE, image_token=IMAGE_TOKEN, num_additional_image_tokens=1,
    )
    return model, processor


def build_tiny_llava(text_dir: str | os.PathLike, seed: int = TINY_SEED):
    """The embedded tiny LLaVA from a Llama checkpoint folder (in memory)."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    causal_lm = LlamaForCausalLM.from_pretrained(text_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(text_dir)
    tokenizer.padding_side = "right"
    return build_llava(causal_lm, tokenizer, tiny_vision_config(), seed)


def tiny_llava_checkpoint() -> Path:
    """Path of the cached tiny LLaVA (built once, atomically, from the embedded SmolLM2-MHA)."""
    from .embedded import cache_root, embedded_checkpoint

    target = cache_root() / TINY_LLAVA
    if (target / "config.json").exists():
        return target
    model, processor = build_tiny_llava(embedded_checkpoint(TINY_TEXT_MODEL))
    model.config.name_or_path = f"tiny-llava ({TINY_TEXT_MODEL} + random CLIP tower, seed {TINY_SEED})"
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
    return target


# ----------------------------------------------------------------------------- prompts


def image_question_prompt(processor, question: str) -> str:
    """One user turn holding an image and a question, ready for the assistant's answer."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


@torch.inference_mode()
def answer_image_question(model, processor, image, question: str, max_new_tokens: int = 8,
                          min_new_tokens: int = 0) -> tuple[list[int], str]:
    """Greedy answer to one image + question: (new token ids, decoded text).

    `min_new_tokens` > 0 forbids an immediate end-of-sequence, so a check sees real text.
    """
    prompt = image_question_prompt(processor, question)
    enc = processor(text=[prompt], images=[image], return_tensors="pt").to(model.device)
    inputs = {k: enc[k] for k in ("input_ids", "attention_mask")}  # not token_type_ids
    inputs["pixel_values"] = enc["pixel_values"].to(model.dtype)
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1]:].tolist()
    return new, processor.tokenizer.decode(new, skip_special_tokens=True)


# ----------------------------------------------------------------------------- image questions


def load_image_questions(path: str | os.PathLike, limit: int | None = None) -> list[dict]:
    """Validated entries {"image": absolute Path, "question": str, ...} from JSON or JSONL.

    Image paths are relative to the questions file's folder.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"image questions file not found: {path}")
    text = path.read_text()
    try:
        if path.suffix == ".jsonl":
            entries = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            entries = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{path} must hold a non-empty list of {{'image': ..., 'question': ...}} entries")
    out = []
    for i, entry in enumerate(entries[:limit] if limit else entries):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("image", "question")):
            raise UsageError(f"entry {i} of {path} needs string fields 'image' and 'question'")
        image = (path.parent / entry["image"]).resolve()
        if not image.is_file():
            raise UsageError(f"entry {i} of {path}: image not found: {image}")
        out.append({**entry, "image": image})
    return out


def open_image(path: Path):
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("RGB")


def image_question_batches(processor, entries: list[dict], batch_size: int) -> list[dict]:
    """Right-padded processor batches: input_ids (B, T) with each `<image>` expanded into its
    image tokens, attention_mask (B, T) over exactly those positions, pixel_values (B, 3, S, S).
    """
    tokenizer = processor.tokenizer
    prompts = [image_question_prompt(processor, e["question"]) for e in entries]
    # Sorting by prompt length keeps padding small; scores do not depend on the order.
    order = sorted(range(len(entries)), key=lambda i: len(tokenizer(prompts[i])["input_ids"]))
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        batches = []
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            enc = processor(
                text=[prompts[i] for i in chunk], images=[open_image(entries[i]["image"]) for i in chunk],
                padding=True, return_tensors="pt",
            )
            batches.append({k: enc[k] for k in ("input_ids", "attention_mask", "pixel_values")})
        return batches
    finally:
        tokenizer.padding_side = old_side


def image_calibration_builder(questions_path: str | os.PathLike):
    """A `run_pruning` batch builder for image + question calibration prompts.

    The file is validated at once (before any model is loaded). It is recorded (path + content)
    in the run folder, and a resumed run must use the same one, since the scores depend on it.
    """
    load_image_questions(questions_path)

    def build(settings, processor) -> list[dict]:
        if not hasattr(processor, "image_processor"):
            raise UsageError("--calibration_images needs a LLaVA model (its processor handles images)")
        entries = load_image_questions(questions_path, settings.num_calibration_prompts)
        batches = image_question_batches(processor, entries, settings.calibration_batch_size)
        record_calibration_images(Path(settings.save_dir), questions_path, len(entries))
        return batches

    return build


def record_calibration_images(save_dir: Path, questions_path, count: int) -> None:
    """Store which image questions calibrated the run; refuse a resume with different ones."""
    record = {"questions": str(Path(questions_path).resolve()), "num_prompts": count,
              "content": Path(questions_path).read_text()}
    target = save_dir / CALIBRATION_RECORD
    if target.exists():
        stored = read_json(target)
        if stored.get("content") != record["content"] or stored.get("num_prompts") != count:
            raise UsageError(f"{save_dir} was calibrated with other image questions ({stored.get('questions')})")
        return
    save_dir.mkdir(parents=True, exist_ok=True)
    write_json(target, record)


# ----------------------------------------------------------------------------- vision guard


def is_vision_parameter(name: str) -> bool:
    """Vision tower and projector tensors (everything of a LLaVA outside the language model)."""
    return "vision_tower." in name or "multi_modal_projector." in name


def tensor_digest(t: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and raw bytes: equal digests mean bit-identical."""
    data = t.detach().cpu().contiguous()
    h = hashlib.sha256(f"{data.dtype}{tuple(data.shape)}".encode())
    h.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return h.hexdigest()


def vision_fingerprint(model) -> dict[str, str]:
    """Digest of every vision tower / projector tensor, to prove later that none changed.

    Digests instead of copies: a 7B LLaVA's tower would otherwise need another 0.6 GB.
    """
    return {n: tensor_digest(t) for n, t in model.state_dict().items() if is_vision_parameter(n)}


def combined_digest(fingerprint: dict[str, str]) -> str:
    """One digest of the whole vision half (stored in mop_finetune.json)."""
    return hashlib.sha256("".join(f"{k}={v};" for k, v in sorted(fingerprint.items())).encode()).hexdigest()


def check_vision_unchanged(before: dict[str, str], model) -> None:
    """Raise if any vision tower / projector tensor differs from `before` in any bit."""
    after = vision_fingerprint(model)
    if not before:
        raise RuntimeError("no vision tower / projector parameters found: not a LLaVA model")
    changed = sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))
    if changed:
        raise RuntimeError(f"vision tower / projector tensors changed: {changed[:5]}")


# ----------------------------------------------------------------------------- text-only recovery

# LoRA targets inside the language model only (the CLIP tower has q/k/v projections too).
LANGUAGE_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def stored_dtype(config) -> torch.dtype:
    """The dtype a checkpoint was saved in (float32 when the config does not say)."""
    name = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "float32"
    return name if isinstance(name, torch.dtype) else DTYPES.get(str(name).replace("torch.", ""), torch.float32)


def training_dtype(saved: torch.dtype, bf16: bool) -> torch.dtype:
    """Weights stay in their saved dtype under bf16 autocast (GPU); CPU trains in float32.

    Either way the vision half is saved back in its saved dtype, and half -> float32 -> half
    round-trips exactly, so it stays bit-identical.
    """
    return saved if bf16 else torch.float32


def require_llava(path: Path):
    """The config of a LLaVA checkpoint folder; anything else is a usage error."""
    from .pruner import load_config

    config = load_config(str(path))
    if config.model_type != "llava":
        raise UsageError(f"{path} is not a LLaVA checkpoint (model_type {config.model_type!r}); "
                         "use Llama2/finetune.py or Llama3/finetune.py")
    return config


def cast_llava(model, dtype: torch.dtype):
    """Cast weights and record the dtype in the config *and* its sub-configs: `dtype="auto"`
    loading reads each sub-model's dtype from its own sub-config."""
    model = model.to(dtype)
    for cfg in (model.config, model.config.text_config, model.config.vision_config):
        cfg.dtype = dtype
    return model


def load_llava_for_training(pruned_dir: Path, bf16: bool):
    """A pruned LLaVA checkpoint (on CPU; the Trainer places it), its processor and saved dtype."""
    from .pruner import load_model

    saved = stored_dtype(require_llava(pruned_dir))
    model, processor = load_model(str(pruned_dir), training_dtype(saved, bf16), "cpu")
    return model, processor, saved


def recover_llava(model, tokenizer, records, settings, work_dir, resume: bool = False, progress: bool = True):
    """Text-only LoRA on the language model of an in-memory LLaVA, merged; vision untouched.

    LoRA goes on the whole LLaVA with a target regex that only matches language-model
    projections: peft freezes every other weight and merging only rewrites the targeted
    Linear layers, so the vision tower and projector are never written. Text batches
    (input_ids, attention_mask, labels, no pixel_values) run through the LLaVA forward, whose
    language path is exactly the Llama decoder + lm_head. Returns (merged model, TrainReport).
    """
    from .recovery import merge_adapter, train_adapter

    before = vision_fingerprint(model)
    report = train_adapter(model, tokenizer, records, settings, work_dir, target_modules=LANGUAGE_LORA_TARGETS,
                           resume=resume, progress=progress)
    merged = merge_adapter(report.peft_model)
    check_vision_unchanged(before, merged)
    return merged, report


def finetune_llava_checkpoint(pruned_model_dir, tuned_model_dir, settings, data: str = "auto",
                              num_samples: int | None = None, resume: bool = False, progress: bool = True) -> dict | None:
    """Recover a pruned LLaVA folder into a complete merged LLaVA folder (with its processor).

    Mirrors mop.recovery.finetune_checkpoint (same folder checks, resume rules and metadata),
    with LoRA restricted to the language model and the checkpoint kept in its saved dtype.
    """
    from accelerate import PartialState

    from . import recovery as rec
    from .data import load_alpaca_records

    settings.check()
    pruned_dir, tuned_dir = Path(pruned_model_dir), Path(tuned_model_dir)
    if num_samples is not None and num_samples < 1:
        raise UsageError(f"--num_samples must be at least 1, got {num_samples}")
    if rec.check_folders(pruned_dir, tuned_dir, resume):
        print(f"{tuned_dir} is already complete")
        return read_json(tuned_dir / rec.FINETUNE_META)
    require_llava(pruned_dir)
    source = rec.resolve_finetune_data(data, pruned_dir)
    records = load_alpaca_records(source, num_samples)
    work = rec.work_dir_for(tuned_dir)
    bf16 = rec.use_bf16(settings.precision)
    settings, memory_plan = rec.plan_memory(settings, pruned_dir, bf16)
    job = {"pruned_model_dir": str(pruned_dir), "tuned_model_dir": str(tuned_dir), "data": source,
           "num_samples": num_samples, "settings": dataclasses.asdict(settings)}
    if resume:
        rec.check_resumable(work, job)
    model, processor, saved = load_llava_for_training(pruned_dir, bf16)
    vision = combined_digest(vision_fingerprint(model))
    state = PartialState()
    if state.is_main_process:
        work.mkdir(parents=True, exist_ok=True)
        write_json(work / rec.WORK_SETTINGS, job)
    merged, report = recover_llava(model, processor.tokenizer, records, settings, work, resume, progress)
    merged = cast_llava(merged, saved)
    meta = None
    if state.is_main_process:
        meta = {**job, "num_records": len(records), "dtype": str(merged.dtype), "lora_targets": LANGUAGE_LORA_TARGETS,
                "vision_digest": vision, "vision_unchanged": True, "memory_plan": memory_plan, **report.stats,
                "command": " ".join(sys.argv), "versions": software_versions()}
        meta.pop("is_main_process", None)
        rec.save_merged(merged, processor, pruned_dir, tuned_dir, meta, report.log_history)
        shutil.rmtree(work, ignore_errors=True)
        print(f"saved {tuned_dir} (final loss {meta['final_train_loss']}, {meta['train_tokens']:,} tokens; "
              f"vision tower and projector bit-identical)")
    state.wait_for_everyone()
    return meta


def finetune_llava_main(defaults: dict, description: str, argv: list[str] | None = None) -> dict | None:
    """Entry point of Llava/finetune.py: the flags of the Llama scripts, LLaVA recovery."""
    from .recovery import finetune_main

    return finetune_main(defaults, description, argv, job=finetune_llava_checkpoint)


# ----------------------------------------------------------------------------- evaluation

# lm_eval 0.4.13's own image tasks (generate_until through `hf-multimodal`), for GPU runs.
HUB_IMAGE_TASKS = ("mmmu_val", "chartqa")


def task_needs_images(manager, name: str) -> bool:
    """True when a task (or any task of a group / tag) feeds images (`doc_to_image`)."""
    from lm_eval.tasks._index import Kind

    entry = manager.task_index.get(name)
    if entry is None:
        raise UsageError(f"unknown lm_eval task {name!r}")
    cfg = entry.cfg or {}
    if entry.kind == Kind.TASK:
        return bool(cfg.get("doc_to_image"))
    if entry.kind == Kind.GROUP:
        members = cfg.get("task") or []
        members = members if isinstance(members, list) else [members]
        return any(task_needs_images(manager, m if isinstance(m, str) else m.get("task", "")) for m in members)
    return any(name in e.tags and task_needs_images(manager, n) for n, e in manager.task_index.items()
               if e.kind == Kind.TASK)


def llava_task_manager(tasks: list[str]):
    """A TaskManager knowing the project's text tasks (mop/tasks) and image tasks (mop/tasks_vision);
    lm_eval's full index (slow to build) only when a requested task is not local."""
    from lm_eval.tasks import TaskManager

    from .evaluate import TASKS_DIR

    include = [str(TASKS_DIR), str(TASKS_VISION)]
    local = TaskManager(include_path=include, include_defaults=False)
    if all(t in local.all_tasks for t in tasks):
        return local
    manager = TaskManager(include_path=include)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise UsageError(f"unknown lm_eval task(s): {', '.join(unknown)}")
    return manager


def merge_lm_eval_results(parts: list[dict]) -> dict:
    """Two lm_eval result dictionaries (text pass, image pass) as one: per-task tables merged,
    run-level entries from the first pass, each pass's config kept under `mop_passes`."""
    merged: dict = {}
    for raw in parts:
        for key, value in raw.items():
            if key == "samples":
                continue
            if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "config":
                merged[key] = {**merged[key], **value}
            else:
                merged.setdefault(key, value)
    merged["mop_passes"] = [raw.get("config") for raw in parts]
    return merged


def llava_batch_size(text: str | None, device: str) -> int:
    """hf-multimodal has no automatic batch size: 8 on CPU, 16 on a GPU unless given."""
    if text is None:
        return 16 if device.startswith("cuda") else 8
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"batch size must be a positive integer for LLaVA (hf-multimodal), not {text!r}")
    return int(text)


def evaluate_llava(model_dir: str, out_dir: str, tasks: list[str], batch_size: str | None = None,
                   device: str = "auto", dtype: str = "auto", limit: str | None = None,
                   command: str = "") -> dict | None:
    """Score a LLaVA checkpoint with stock lm_eval and write OUT_DIR/mop_eval.json atomically.

    One `hf-multimodal` model serves both passes: text tasks (loglikelihood; hf-multimodal hands
    requests without images to the `hf` model's own code) zero-shot without a chat template, as
    the Llama scripts score them; image tasks (generate_until) with the processor's chat template,
    the prompt format LLaVA was trained on. An OUT_DIR holding mop_eval.json is skipped.
    """
    import time

    from lm_eval import simple_evaluate
    from lm_eval.models.hf_vlms import HFMultimodalLM

    from . import evaluate as ev
    from .pruner import load_config

    out = Path(out_dir)
    if (out / ev.EVAL_META).exists():
        print(f"{out}: already complete -- skipped (it holds {ev.EVAL_META})")
        return None
    if out.exists():
        raise UsageError(f"{out} exists but holds no {ev.EVAL_META}; remove it or choose another OUT_DIR")
    model_path = ev.resolve_model_dir(model_dir)
    if load_config(model_path).model_type != "llava":
        raise UsageError(f"{model_dir} is not a LLaVA checkpoint; use Llama2/eval.sh or Llama3/eval.sh")
    device = ev.resolve_eval_device(device)
    settings = {"device": device, "dtype": ev.resolve_eval_dtype(dtype, device),
                "batch_size": llava_batch_size(batch_size, device), "limit": ev.parse_limit(limit),
                "model": "hf-multimodal"}
    manager = llava_task_manager(tasks)
    image_tasks = [t for t in tasks if task_needs_images(manager, t)]
    text_tasks = [t for t in tasks if t not in image_tasks]
    began = time.perf_counter()
    lm = HFMultimodalLM(pretrained=model_path, device=device, dtype=settings["dtype"],
                        batch_size=settings["batch_size"])
    parts = []
    for group, chat in ((text_tasks, False), (image_tasks, True)):
        if group:
            parts.append(simple_evaluate(model=lm, tasks=group, num_fewshot=0, limit=settings["limit"],
                                         task_manager=manager, log_samples=False, apply_chat_template=chat))
    raw = merge_lm_eval_results(parts)
    extra = {"requested_tasks": tasks, "text_tasks": text_tasks, "image_tasks": image_tasks,
             "chat_template_tasks": image_tasks, "limit": settings["limit"], "settings": settings,
             "seconds": round(time.perf_counter() - began, 1)}
    summary = ev.summarize(raw, model_path, command, num_fewshot=0, extra=extra)
    ev.write_outputs(out, raw, summary)
    ev.print_summary(summary, out)
    return summary


# ----------------------------------------------------------------------------- checkpoint check


def check_text_config(model) -> list[str]:
    """Mismatches between the language model's config and its weight shapes (empty: consistent)."""
    from .adapter import get_adapter

    adapter = get_adapter(model)
    cfg = adapter.text_config
    problems = []
    if cfg.num_hidden_layers != adapter.num_layers:
        problems.append(f"num_hidden_layers {cfg.num_hidden_layers} != {adapter.num_layers} layers")
    for i, layer in enumerate(adapter.layers()):
        q, k, _, o = adapter.attention_projections(layer)
        gate, _, down = adapter.mlp_projections(layer)
        expected = {
            "q_proj rows": (q.out_features, cfg.num_attention_heads * cfg.head_dim),
            "k_proj rows": (k.out_features, cfg.num_key_value_heads * cfg.head_dim),
            "o_proj columns": (o.in_features, cfg.num_attention_heads * cfg.head_dim),
            "gate_proj rows": (gate.out_features, cfg.intermediate_size),
            "down_proj columns": (down.in_features, cfg.intermediate_size),
            "hidden size": (o.out_features, cfg.hidden_size),
        }
        problems += [f"layer {i} {what}: {got} != {want}" for what, (got, want) in expected.items() if got != want]
        if layer.self_attn.layer_idx != i:
            problems.append(f"layer {i} has layer_idx {layer.self_attn.layer_idx}")
    return problems


def reference_fingerprint(reference: str) -> dict[str, str]:
    """Vision digests of a reference checkpoint (loaded in its saved dtype, on CPU)."""
    from transformers import AutoModelForImageTextToText

    return vision_fingerprint(AutoModelForImageTextToText.from_pretrained(reference, dtype="auto"))


def check_checkpoint(path: str, reference: dict[str, str] | None = None, max_new_tokens: int = 8) -> dict:
    """Reload a LLaVA folder the standard way and answer an image question with it.

    Loads with AutoModelForImageTextToText + AutoProcessor (no project code), checks the text
    config against the weights and, given a `reference` checkpoint (e.g. the dense model), that
    the vision tower and projector are bit-identical to it (`reference`: its vision digests).
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    entry = load_image_questions(SHIPPED_QUESTIONS, limit=1)[0]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForImageTextToText.from_pretrained(path, dtype="auto").to(device).eval()
    processor = AutoProcessor.from_pretrained(path)
    problems = check_text_config(model)
    if problems:
        raise RuntimeError(f"{path}: config does not match the weights: {problems[:3]}")
    fingerprint = vision_fingerprint(model)
    if reference is not None:
        check_vision_unchanged(reference, model)
    # At least 3 tokens: a pruned, unrecovered model may otherwise end at once with EOS.
    tokens, text = answer_image_question(model, processor, open_image(entry["image"]), entry["question"],
                                         max_new_tokens, min_new_tokens=3)
    if not tokens:
        raise RuntimeError(f"{path}: generated no tokens")
    return {"path": str(path), "layers": model.config.text_config.num_hidden_layers,
            "params": sum(p.numel() for p in model.parameters()), "vision_digest": combined_digest(fingerprint),
            "dtype": str(model.dtype), "vision_matches_reference": reference is not None,
            "question": entry["question"], "answer": text, "new_tokens": len(tokens)}


# ----------------------------------------------------------------------------- command line


def build_parser():
    import argparse

    from .cli import OneLineParser

    p = OneLineParser(prog="python -m mop.llava", description="LLaVA checkpoints: evaluate or check")
    sub = p.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="lm_eval scores (text + image tasks) into OUT_DIR/mop_eval.json")
    ev.add_argument("model_dir")
    ev.add_argument("out_dir")
    ev.add_argument("--tasks", default="mop_mini,mop_shapes", help="comma list of lm_eval tasks or groups")
    ev.add_argument("--batch_size", default=os.environ.get("EVAL_BATCH_SIZE") or None)
    ev.add_argument("--device", default=os.environ.get("EVAL_DEVICE") or "auto")
    ev.add_argument("--dtype", default=os.environ.get("EVAL_DTYPE") or "auto")
    ev.add_argument("--limit", default=os.environ.get("EVAL_LIMIT") or None, help="quick runs only: N docs per task")
    ck = sub.add_parser("check", help="reload a checkpoint with plain transformers and answer an image question")
    ck.add_argument("model_dir", nargs="+")
    ck.add_argument("--reference", default=None, help="checkpoint whose vision tower must be bit-identical")
    ck.add_argument("--out", default=None, help="write the reports (JSON) here when every check passed")
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    return p


def main(argv: list[str] | None = None):
    import shlex

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)

    @exit_on_usage_error
    def run():
        if args.command == "evaluate":
            from .evaluate import parse_tasks

            knobs = [f"{k}={shlex.quote(os.environ[k])}" for k in ("EVAL_BATCH_SIZE", "EVAL_DEVICE", "EVAL_DTYPE",
                                                                  "EVAL_LIMIT") if os.environ.get(k)]
            command = " ".join(knobs + ["python -m mop.llava", shlex.join(argv)])
            return evaluate_llava(args.model_dir, args.out_dir, parse_tasks(args.tasks), args.batch_size,
                                  args.device, args.dtype, args.limit, command)
        for path in args.model_dir:
            if not (Path(path) / "config.json").exists():
                raise UsageError(f"{path} holds no config.json: not a (complete) checkpoint")
        from .embedded import resolve_model_name

        reference = reference_fingerprint(resolve_model_name(args.reference)) if args.reference else None
        reports = []
        for path in args.model_dir:
            try:
                reports.append(check_checkpoint(path, reference))
            except RuntimeError as err:
                print(f"FAILED {path}: {err}", file=sys.stderr)
                raise SystemExit(1) from None
            r = reports[-1]
            print(f"ok {path}: layers={r['layers']} params={r['params']:,} vision={r['vision_digest'][:12]}"
                  f"{' (= reference)' if reference else ''} answer={r['answer']!r}", flush=True)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            write_json(args.out, {"reference": args.reference, "checks": reports, "versions": software_versions()})
        return reports

    return run()


if __name__ == "__main__":
    main()
