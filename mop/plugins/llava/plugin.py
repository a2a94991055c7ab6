"""LLaVA-1.5 support: image + question calibration, the vision guard, recovery and scoring.

MoP prunes only LLaVA's language model (the adapter points the engine at
`model.model.language_model`); the CLIP vision tower and the 2-layer MLP projector must come
out of pruning and recovery bit-identical. This module provides
- image + question calibration batches (`--calibration_images questions.json`);
- `vision_fingerprint` / `check_vision_unchanged` to prove the vision half was not touched;
- `LlavaRecovery`: the hooks with which mop.recover.job's `finetune_checkpoint` recovers the
  language model text-only and merges it back;
- `LlavaEval`: the backend with which mop.evaluate.harness's `score_checkpoint` scores text and image tasks;
- `python -m mop.plugins.llava check`: reload a checkpoint with plain transformers and answer an image question.
The embedded tiny LLaVA itself is built in mop/models/tiny_llava.py.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

import torch

from ...core.args import OneLineParser
from ...core.io import UsageError, exit_on_usage_error, read_json_list, read_metadata, software_versions, write_json
from ...core.layout import CALIBRATION_RECORD
from ...evaluate.harness import (TASKS_DIR, EvalBackend, add_eval_arguments, command_line, merge_result_dicts,
                                 parse_limit, resolve_eval_dtype, score_checkpoint)
from ...models.adapter import get_adapter
from ...models.data import report_shortfall
from ...models.loading import reading_checkpoint, resolve_device, resolve_model_name, saved_dtype
from ...recover.job import RecoveryHooks, finetune_checkpoint

TASKS_VISION = Path(__file__).resolve().parent / "tasks_vision"
SHIPPED_QUESTIONS = TASKS_VISION / "data" / "shapes.jsonl"
DEFAULT_TASKS = "mop_mini,mop_shapes"


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
    if not path.exists():
        raise UsageError(f"image questions file not found: {path}")
    entries = read_json_list(path, "{'image': ..., 'question': ...} entries")
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
        # `padding=True` switches padding on inside a fast tokenizer, which would then be saved
        # into every checkpoint's tokenizer.json (and differ after a resume): switch it off again.
        if getattr(tokenizer, "backend_tokenizer", None) is not None:
            tokenizer.backend_tokenizer.no_padding()


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
        report_shortfall("--num_calibration_prompts", settings.num_calibration_prompts, len(entries), questions_path)
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
        stored = read_metadata(target)
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


def cast_llava(model, dtype: torch.dtype):
    """Cast weights and record the dtype in the config *and* its sub-configs: `dtype="auto"`
    loading reads each sub-model's dtype from its own sub-config."""
    model = model.to(dtype)
    for cfg in (model.config, model.config.text_config, model.config.vision_config):
        cfg.dtype = dtype
    return model


class LlavaRecovery(RecoveryHooks):
    """Text-only LoRA recovery of a LLaVA's language model, merged back; vision untouched.

    LoRA goes on the whole LLaVA with a target regex that only matches language-model
    projections: peft freezes every other weight and merging only rewrites the targeted Linear
    layers, so the vision tower and projector are never written -- checked bit for bit after
    merging. Text batches (no pixel_values) run through the LLaVA forward, whose language path
    is exactly the language model's decoder + lm_head. Weights stay in their saved dtype under bf16
    autocast (GPU); CPU trains in float32 and casts back (half -> float32 -> half round-trips
    exactly, so the vision half stays bit-identical).
    """

    def load_dtype(self, config, bf16: bool) -> torch.dtype:
        return saved_dtype(config, torch.float32) if bf16 else torch.float32

    def merge_dtype(self, config, bf16: bool) -> torch.dtype:
        """Merged in the training dtype: the vision check compares against the model as loaded, and
        `after_merge` then casts to the saved dtype (exactly, for the vision half)."""
        return self.load_dtype(config, bf16)

    def before_training(self, model) -> dict[str, str]:
        return vision_fingerprint(model)

    def after_merge(self, merged, config, before) -> tuple[object, dict]:
        check_vision_unchanged(before, merged)
        merged = cast_llava(merged, saved_dtype(config, torch.float32))
        return merged, {"vision_digest": combined_digest(before), "vision_unchanged": True}

    def done_message(self, meta: dict) -> str:
        return (f"final loss {meta['final_train_loss']}, {meta['train_tokens']:,} tokens; "
                "vision tower and projector bit-identical")


RECOVERY_HOOKS = LlavaRecovery  # found by mop.recover.job.recovery_hooks through mop.families.WRAPPER_PLUGINS


def finetune_llava_checkpoint(pruned_model_dir, tuned_model_dir, settings, **kwargs) -> dict | None:
    """Recover a pruned LLaVA folder into a complete merged LLaVA folder (with its processor)."""
    return finetune_checkpoint(pruned_model_dir, tuned_model_dir, settings, scope="multimodal", **kwargs)


# ----------------------------------------------------------------------------- evaluation

# lm_eval 0.4.13's own image tasks (generate_until through `hf-multimodal`), for GPU runs.
HUB_IMAGE_TASKS = ("mmmu_val", "chartqa")


def task_needs_images(manager, name: str) -> bool:
    """True when a task (or any task of a group / tag) feeds images (`doc_to_image`)."""
    from lm_eval.tasks._index import Kind  # heavy: imported on use

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


def merge_lm_eval_results(parts: list[dict]) -> dict:
    """Two lm_eval result dictionaries (text pass, image pass) as one: per-task tables merged,
    run-level entries from the first pass, each pass's config kept under `mop_passes`."""
    merged = merge_result_dicts(parts, later_wins=False)
    merged["mop_passes"] = [raw.get("config") for raw in parts]
    return merged


def llava_batch_size(text: str | None, device: str) -> int:
    """hf-multimodal has no automatic batch size: 8 on CPU, 16 on a GPU unless given."""
    if text is None:
        return 16 if device.startswith("cuda") else 8
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"batch size must be a positive integer for LLaVA (hf-multimodal), not {text!r}")
    return int(text)


class LlavaEval(EvalBackend):
    """One `hf-multimodal` model serves both passes: text tasks (loglikelihood; hf-multimodal
    hands requests without images to the `hf` model's own code) zero-shot without a chat
    template, as the Llama scripts score them; image tasks (generate_until) with the
    processor's chat template, the prompt format LLaVA was trained on."""

    multimodal = True
    wrong_kind = "{path} is not a LLaVA checkpoint; use Llama2/eval.sh or Llama3/eval.sh"

    def settings(self, args) -> dict:
        device = resolve_device(args.device)
        return {"device": device, "dtype": resolve_eval_dtype(args.dtype, device),
                "batch_size": llava_batch_size(args.batch_size, device), "limit": parse_limit(args.limit),
                "model": "hf-multimodal"}

    def task_manager(self, tasks: list[str], include_path: Path):
        """The project's text tasks and image tasks (mop/plugins/llava/tasks_vision); lm_eval's full index
        (slow to build) only when a requested task is not local."""
        from lm_eval.tasks import TaskManager  # heavy: imported on use

        include = [str(include_path), str(TASKS_VISION)]
        local = TaskManager(include_path=include, include_defaults=False)
        if all(t in local.all_tasks for t in tasks):
            return local
        manager = TaskManager(include_path=include)
        unknown = [t for t in tasks if t not in manager.all_tasks]
        if unknown:
            raise UsageError(f"unknown lm_eval task(s): {', '.join(unknown)}")
        return manager

    def run(self, model_path, tasks, settings, manager, include_path, out_dir) -> tuple[dict, dict]:
        from lm_eval import simple_evaluate  # heavy: imported on use
        from lm_eval.models.hf_vlms import HFMultimodalLM

        image_tasks = [t for t in tasks if task_needs_images(manager, t)]
        text_tasks = [t for t in tasks if t not in image_tasks]
        with reading_checkpoint(model_path):
            lm = HFMultimodalLM(pretrained=model_path, device=settings["device"], dtype=settings["dtype"],
                                batch_size=settings["batch_size"])
        parts = []
        for group, chat in ((text_tasks, False), (image_tasks, True)):
            if group:
                parts.append(simple_evaluate(model=lm, tasks=group, num_fewshot=0, limit=settings["limit"],
                                             task_manager=manager, log_samples=False, apply_chat_template=chat))
        extra = {"text_tasks": text_tasks, "image_tasks": image_tasks, "chat_template_tasks": image_tasks}
        return merge_lm_eval_results(parts), extra


EVAL_BACKEND = LlavaEval  # found by mop.evaluate.harness.eval_backend through mop.families.WRAPPER_PLUGINS


def evaluate_llava(model_dir: str, out_dir: str, tasks: list[str], batch_size: str | None = None,
                   device: str = "auto", dtype: str = "auto", limit: str | None = None,
                   command: str = "") -> dict | None:
    """Score a LLaVA checkpoint with stock lm_eval into OUT_DIR/mop_eval.json (see LlavaEval)."""
    args = argparse.Namespace(model_dir=model_dir, out_dir=out_dir, tasks=",".join(tasks), batch_size=batch_size,
                              device=device, dtype=dtype, limit=limit, include_path=str(TASKS_DIR))
    return score_checkpoint(args, command, LlavaEval())


# ----------------------------------------------------------------------------- checkpoint check


def check_text_config(model) -> list[str]:
    """Mismatches between the language model's config and its weight shapes (empty: consistent)."""
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
        if adapter.layer_index(layer) != i:
            problems.append(f"layer {i} has layer_idx {adapter.layer_index(layer)}")
    return problems


def reference_fingerprint(reference: str) -> dict[str, str]:
    """Vision digests of a reference checkpoint (loaded in its saved dtype, on CPU)."""
    from transformers import AutoModelForImageTextToText  # heavy: imported on use

    return vision_fingerprint(AutoModelForImageTextToText.from_pretrained(reference, dtype="auto"))


def check_checkpoint(path: str, reference: dict[str, str] | None = None, max_new_tokens: int = 8) -> dict:
    """Reload a LLaVA folder the standard way and answer an image question with it.

    Loads with AutoModelForImageTextToText + AutoProcessor (no project code), checks the text
    config against the weights and, given a `reference` checkpoint (e.g. the dense model), that
    the vision tower and projector are bit-identical to it (`reference`: its vision digests).
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor  # heavy: imported on use

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


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m mop.plugins.llava", description="LLaVA checkpoints: evaluate or check",
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="lm_eval scores (text + image tasks) into OUT_DIR/mop_eval.json")
    add_eval_arguments(ev, DEFAULT_TASKS)
    ck = sub.add_parser("check", help="reload a checkpoint with plain transformers and answer an image question")
    ck.add_argument("model_dir", nargs="+")
    ck.add_argument("--reference", default=None, help="checkpoint whose vision tower must be bit-identical")
    ck.add_argument("--out", default=None, help="write the reports (JSON) here when every check passed")
    return p


def check_checkpoints(args: argparse.Namespace) -> list[dict]:
    """`check`: every folder reloads, matches its config, answers; exit 1 on the first failure."""
    for path in args.model_dir:
        if not (Path(path) / "config.json").exists():
            raise UsageError(f"{path} holds no config.json: not a (complete) checkpoint")
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


def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.command == "evaluate":
        return exit_on_usage_error(score_checkpoint)(args, command_line("mop.plugins.llava", argv), LlavaEval())
    return exit_on_usage_error(check_checkpoints)(args)


if __name__ == "__main__":
    main()
