"""LLaVA-1.5 support: the embedded tiny LLaVA, image + question calibration, and the vision guard.

MoP prunes only LLaVA's language model (adapter.py points the engine at
`model.model.language_model`); the CLIP vision tower and the 2-layer MLP projector must come
out of pruning and recovery bit-identical. This module provides

- `tiny_llava_checkpoint()`: a CPU-sized LLaVA for the embedded pipeline -- the embedded
  SmolLM2-135M (multi-head version, Llama-2 style like Vicuna) as language model, plus a small
  randomly initialised CLIP tower and projector, with a LlavaProcessor. Its vision half is
  untrained: it exercises the pipeline, not visual accuracy.
- image + question calibration batches (`--calibration_images questions.json`);
- `vision_state` / `check_vision_unchanged` to prove the vision half was not touched;
- `language_model_as_causal_lm` / `lora_target_modules` for text-only recovery.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .io import UsageError, atomic_directory, read_json, write_json

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
def answer_image_question(model, processor, image, question: str, max_new_tokens: int = 8) -> tuple[list[int], str]:
    """Greedy answer to one image + question: (new token ids, decoded text)."""
    prompt = image_question_prompt(processor, question)
    inputs = processor(text=[prompt], images=[image], return_tensors="pt").to(model.device)
    inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
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

    The questions file is recorded (path + content) in the run folder, and a resumed run must
    use the same one, since the importance scores depend on it.
    """
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
    """Vision tower and projector parameters (everything of a LLaVA outside the language model)."""
    return "vision_tower." in name or "multi_modal_projector." in name


def vision_state(model) -> dict[str, torch.Tensor]:
    """CPU copies of the vision tower and projector weights, to compare after an edit."""
    return {n: t.detach().cpu().clone() for n, t in model.state_dict().items() if is_vision_parameter(n)}


def check_vision_unchanged(before: dict[str, torch.Tensor], model) -> None:
    """Raise if any vision tower / projector tensor differs from `before` in any bit."""
    after = vision_state(model)
    if set(after) != set(before):
        raise RuntimeError(f"vision parameters changed names: {sorted(set(after) ^ set(before))[:5]}")
    changed = [n for n in before if before[n].dtype != after[n].dtype or not torch.equal(before[n], after[n])]
    if changed:
        raise RuntimeError(f"vision parameters changed: {changed[:5]}")


# ----------------------------------------------------------------------------- text-only recovery

# LoRA targets inside the language model only (the vision tower has q/k/v projections too).
LANGUAGE_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


def language_model_as_causal_lm(model):
    """A LlamaForCausalLM that *shares* (does not copy) the LLaVA's decoder and lm_head.

    Training or merging LoRA on it edits the LLaVA in place; the vision half is not reachable
    from it, so it cannot change.
    """
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        causal_lm = LlamaForCausalLM(model.config.text_config)
    causal_lm.model = model.model.language_model
    causal_lm.lm_head = model.lm_head
    causal_lm.generation_config = model.generation_config
    return causal_lm
