"""Dense and pruned side by side in llama.cpp: `python -m mop.deploy.compare --backend llamacpp ...`.

The same comparison as mop/deploy/compare.py (same prompt text, same columns, summary and JSON), with
every model run by llama.cpp from a GGUF conversion (mop/deploy/gguf.py) instead of by transformers:

    python -m mop.deploy.compare --backend llamacpp --models smollm2-135m \\
        Llama3/results_llama3_embedded/run_seed_1_block_influence/8 --prompt "Why is the sky blue?"

A model is a checkpoint folder or any name mop.deploy.compare reads (embedded name, `<run>/<i>`,
`<run>/<i>/ft`), converted once into the GGUF cache (`$MOP_CACHE/gguf`, default ~/.cache/mop/gguf;
or $MOP_GGUF_CACHE; the file is keyed by the folder and the size and mtime of its files, so a
rewritten checkpoint is converted again), or an existing `.gguf` file, used as it is. The GGUF type is
`--gguf_type` (f32, f16, bf16 or q8_0; default q8_0); llama.cpp's threads are
$MOP_LLAMA_CPP_THREADS (default: torch's thread count, what the transformers backend uses).

A checkpoint folder's prompt is tokenized by its own tokenizer exactly as mop.deploy.compare does
(`prompt_text`, the chat template), so both backends read the same token ids; a bare .gguf
file uses the chat template stored in it, rendered by llama.cpp. Generation is greedy
(argmax of llama.cpp's logits: in f32 the tokens are transformers' greedy tokens) or seeded
nucleus sampling (`--sample --seed`, drawn from the same logits in numpy; not the same draws as
transformers). The models take turns one token each, as in mop.deploy.compare; each one's time to
first token and decode speed are only its own. Memory is llama.cpp's weights plus its context
state (KV cache in use).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..core.io import UsageError, check_writable_target
from ..families import check_supported, is_multimodal
from ..models.embedded import cache_root
from ..models.loading import load_config
from .comparison import (DEFAULT_PROMPTS, GB, Answer, Column, Comparison, GenerationSettings, TerminalDisplay,
                         check_settings, prompt_text, publish, read_prompts, report, resolve_entry)
from .gguf import LlamaCpp, LlamaCppBuild, Sampling, cached_gguf, find_build, load_bindings

THREADS_ENV, CACHE_ENV = "MOP_LLAMA_CPP_THREADS", "MOP_GGUF_CACHE"
CONTEXT_MARGIN = 16  # tokens beyond prompt + max_new_tokens in llama.cpp's context


# ----------------------------------------------------------------------------- inputs


def thread_count() -> int:
    """$MOP_LLAMA_CPP_THREADS, else torch's own count (the transformers backend's)."""
    value = os.environ.get(THREADS_ENV)
    if value is None:
        import torch

        return torch.get_num_threads()
    if not value.strip().isdigit() or int(value) < 1:
        raise UsageError(f"{THREADS_ENV}={value}: a whole number of threads, at least 1")
    return int(value)


@dataclass
class GgufSource:
    """One column's model: a checkpoint folder to convert (its tokenizer reads the prompt), or a
    GGUF file given as such (`folder` None)."""

    name: str
    folder: Path | None = None
    gguf: Path | None = None


def source_of(name: str) -> GgufSource:
    """A .gguf file as it is, else a local text checkpoint named as mop.deploy.compare names them."""
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise UsageError(f"{name}: GGUF file not found")
        return GgufSource(name, gguf=path)
    folder = Path(resolve_entry(name))
    if not folder.is_dir():
        raise UsageError(f"{name}: --backend llamacpp converts local checkpoint folders, not hub ids; download it "
                         "first or name a folder")
    config = load_config(str(folder))
    check_supported(config)
    if is_multimodal(config):
        raise UsageError(f"{name} is a {config.model_type} model: --backend llamacpp compares text models")
    return GgufSource(name, folder=folder)


@dataclass
class GgufPlan:
    """A llama.cpp comparison, every input checked before any conversion or model load."""

    comparison: Comparison
    sources: list[GgufSource]
    build: LlamaCppBuild
    outtype: str
    threads: int


def plan_gguf(args) -> GgufPlan:
    """The build first (nothing else is worth doing without it), then what mop.deploy.compare checks."""
    build = find_build()
    outtype, threads = args.gguf_type, thread_count()
    settings = GenerationSettings(args.max_new_tokens, args.sample, args.seed, args.temperature, args.top_p,
                                  not args.no_chat_template)
    check_settings(settings)
    if not args.models:
        raise UsageError("--models needs at least one model")
    if getattr(args, "image", None):
        raise UsageError("--image: --backend llamacpp compares text models only")
    sources = [source_of(name) for name in args.models]
    prompts = read_prompts(Path(args.prompts)) if args.prompts else [args.prompt or DEFAULT_PROMPTS[0]]
    if args.out:
        check_writable_target(args.out, "--out")
    paths = [str(s.folder or s.gguf) for s in sources]
    comparison = Comparison(list(args.models), paths, prompts, None, settings, "cpu", outtype, bool(args.sequential))
    return GgufPlan(comparison, sources, build, outtype, threads)


def gguf_cache() -> Path:
    """$MOP_GGUF_CACHE, else `gguf/` in the project's cache (beside the embedded checkpoints)."""
    return Path(os.environ.get(CACHE_ENV) or cache_root() / "gguf").expanduser()


def convert_sources(plan: GgufPlan) -> None:
    """Every checkpoint folder's GGUF of the plan's type, from the cache or converted now."""
    cache = gguf_cache()
    for source in plan.sources:
        if source.gguf is None:
            source.gguf = cached_gguf(plan.build, source.folder, plan.outtype, cache)


# ----------------------------------------------------------------------------- running


class GgufModel:
    """A loaded GGUF with what turns a prompt into its token ids and tokens back into text."""

    def __init__(self, C, source: GgufSource, n_ctx: int, threads: int):
        self.source = source
        self.runtime = LlamaCpp(C, source.gguf, n_ctx=n_ctx, threads=threads)
        self.tokenizer = None
        if source.folder is not None:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(source.folder)

    def prompt_ids(self, prompt: str, chat: bool) -> list[int]:
        """mop.deploy.compare's token ids for a checkpoint; llama.cpp's template and tokenizer for a .gguf."""
        if self.tokenizer is not None:
            return self.tokenizer(prompt_text(self.tokenizer, prompt, chat), add_special_tokens=not chat)["input_ids"]
        templated = self.runtime.chat_prompt(prompt) if chat else None
        return self.runtime.tokenize(templated or prompt, add_special=templated is None)

    def text(self, token_ids: list[int]) -> str:
        if self.tokenizer is not None:
            return self.tokenizer.decode(token_ids, skip_special_tokens=True)
        return self.runtime.detokenize(token_ids)

    def close(self) -> None:
        self.runtime.close()


def context_size(plan: GgufPlan) -> int:
    """Room for the longest prompt (its characters bound its tokens) and every new token."""
    longest = max(len(p) for p in plan.comparison.prompts)
    return longest + 64 + plan.comparison.settings.max_new_tokens + CONTEXT_MARGIN


def sampling_of(settings: GenerationSettings) -> Sampling:
    return Sampling(settings.sample, settings.seed, settings.temperature, settings.top_p)


def answer_in_turns(models: Sequence[GgufModel], prompt: str, settings: GenerationSettings,
                    on_text: Callable[[int, str], None]) -> list[Answer]:
    """Every model answers `prompt`, one token each in turn (as mop.deploy.compare's Turns); the time of
    a token is measured inside that model's own step only."""
    answers, streams = [], []
    for model in models:
        ids = model.prompt_ids(prompt, settings.chat)
        answers.append(Answer(model.source.name, prompt, prompt_tokens=len(ids)))
        streams.append(model.runtime.stream(ids, settings.max_new_tokens, sampling_of(settings)))
    seconds: list[list[float]] = [[] for _ in models]
    active = list(range(len(models)))
    while active:
        for i in list(active):
            step = next(streams[i], None)
            if step is None:
                active.remove(i)
                continue
            answers[i].token_ids.append(step[0])
            seconds[i].append(step[1])
            on_text(i, models[i].text(answers[i].token_ids))
    for model, answer, times in zip(models, answers, seconds):
        finish(answer, model, times)
    return answers


def finish(answer: Answer, model: GgufModel, token_seconds: list[float]) -> None:
    """The figures mop.deploy.compare reports, from the measured times of each token."""
    answer.text = model.text(answer.token_ids)
    if token_seconds:
        answer.time_to_first_token_s = token_seconds[0]
        decode = sum(token_seconds[1:])
        answer.decode_tokens_per_s = (len(token_seconds) - 1) / decode if decode > 0 else None
    answer.memory_gb = (model.runtime.weight_bytes + model.runtime.state_bytes()) / GB


def columns_of(sources: Sequence[GgufSource], params: Sequence[int]) -> list[Column]:
    """Parameters as llama.cpp counts them in each GGUF; compression against the first model."""
    return [Column(s.name, str(s.gguf), n, None if i == 0 else 1 - n / params[0])
            for i, (s, n) in enumerate(zip(sources, params))]


def compare_together(C, plan: GgufPlan, display) -> tuple[list[Column], list[list[Answer]]]:
    models = [GgufModel(C, s, context_size(plan), plan.threads) for s in plan.sources]
    try:
        columns = columns_of(plan.sources, [m.runtime.n_params for m in models])
        settings = plan.comparison.settings
        results = [display.show(columns, prompt, lambda on_text: answer_in_turns(models, prompt, settings, on_text))
                   for prompt in plan.comparison.prompts]
    finally:
        for model in models:
            model.close()
    return columns, results


def compare_one_by_one(C, plan: GgufPlan, display) -> tuple[list[Column], list[list[Answer]]]:
    """`--sequential`: one GGUF loaded at a time, answering every prompt, then freed."""
    per_model, params = [], []
    for index, source in enumerate(plan.sources):
        model = GgufModel(C, source, context_size(plan), plan.threads)
        try:
            per_model.append([answer_in_turns([model], prompt, plan.comparison.settings, display.quiet(index))[0]
                              for prompt in plan.comparison.prompts])
            params.append(model.runtime.n_params)
        finally:
            model.close()
    columns = columns_of(plan.sources, params)
    results = [[answers[p] for answers in per_model] for p in range(len(plan.comparison.prompts))]
    for prompt, answers in zip(plan.comparison.prompts, results):
        display.show_final(columns, prompt, answers)
    return columns, results


def compare_gguf(args, display=None) -> dict:
    """mop.deploy.compare's main for `--backend llamacpp`: plan, convert, compare, print, write --out."""
    plan = plan_gguf(args)
    convert_sources(plan)
    C = load_bindings(plan.build)
    run = compare_one_by_one if plan.comparison.sequential else compare_together
    columns, results = run(C, plan, display or TerminalDisplay())
    data = {**report(columns, results, plan.comparison), "backend": "llamacpp", "gguf_type": plan.outtype,
            "threads": plan.threads, "checkpoints": [str(s.folder) if s.folder else None for s in plan.sources]}
    return publish(columns, results, data, args.out)
