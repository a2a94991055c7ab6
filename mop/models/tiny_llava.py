"""The embedded tiny LLaVA-1.5: a CPU-sized LLaVA for the embedded pipeline.

The embedded SmolLM2-135M (multi-head version, Llama-2 style like Vicuna) is the language model;
a small randomly initialised CLIP tower and a 2-layer projector complete it, with a
LlavaProcessor. Its vision half is untrained: it exercises the pipeline (pruning only the
language model, a bit-identical vision half, image scoring), not visual accuracy. Built once and
cached next to the other embedded checkpoints.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..core.io import atomic_directory
from .checkpoint import save_checkpoint
from .embedded import TINY_LLAVA, cache_entry_lock, cache_root, embedded_checkpoint, is_cached

IMAGE_TOKEN = "<image>"
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
    """Wrap a causal LM of any supported family (mop/families) into a LLaVA-1.5 model with a
    fresh vision tower and projector.

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
    """The embedded tiny LLaVA from a causal-LM checkpoint folder (in memory)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    causal_lm = AutoModelForCausalLM.from_pretrained(text_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(text_dir)
    tokenizer.padding_side = "right"
    return build_llava(causal_lm, tokenizer, tiny_vision_config(), seed)


def tiny_llava_checkpoint() -> Path:
    """Path of the cached tiny LLaVA (built once, atomically, from the embedded SmolLM2-MHA)."""
    target = cache_root() / TINY_LLAVA
    if is_cached(target):
        return target
    text_model = embedded_checkpoint(TINY_TEXT_MODEL)  # its own lock, taken first (no nesting)
    with cache_entry_lock(target):
        if is_cached(target):  # built by another process while we waited
            return target
        model, processor = build_tiny_llava(text_model)
        model.config.name_or_path = f"tiny-llava ({TINY_TEXT_MODEL} + random CLIP tower, seed {TINY_SEED})"
        with atomic_directory(target) as tmp:
            save_checkpoint(model, processor, tmp)
    return target
