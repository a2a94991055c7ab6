"""The comparison behind `python -m mop.deploy.compare` (compare.py, the command line): every
model answers the same prompt, one column each; compare_web.py and compare_llamacpp.py build on it.

Each column is headed by the model's name, parameter count and compression (against the first
model, taken as the dense one) and ends with its time to first token, decode speed and memory.
The columns stream together: the models take turns, one new token each (`Turns`), so each
model computes alone and its figures are its own, while the text of all of them grows at once.
Tokens are exactly what `model.generate` gives for that model alone (greedy by default,
`--sample --seed` for seeded sampling). `--sequential` (automatic when the models do not fit in
memory together) loads, runs and frees one model after the other.

Names are read as everywhere in the project (an embedded name, a hub id, a folder); a results
folder's checkpoint may also be named as the tables name it, `<run folder>/<iteration>` (the
pruned checkpoint), `<run folder>/<iteration>/ft` (recovered with sft) or `.../kd`, `.../kd+sft`.
`--web` shows the same page in a browser (mop/deploy/compare_web.py, optional requirements);
`--backend llamacpp` compares GGUF conversions in llama.cpp (mop/deploy/compare_llamacpp.py).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..core.io import UsageError, check_writable_target, read_text_file, write_json
from ..core.layout import ITERATION_DIR, OBJECTIVE_SUFFIX
from ..models.adapter import check_supported, count_parameters, is_multimodal, wrapper_plugin
from ..models.loading import (load_config, load_model, resolve_device, resolve_dtype, resolve_model_dir, saved_dtype,
                              text_tokenizer)

GB = 1024 ** 3
DEFAULT_PROMPTS = ["What is the capital of France?", "Give three tips for staying healthy.",
                   "Explain why the sky is blue in one sentence."]


# ----------------------------------------------------------------------------- names


def resolve_entry(name: str) -> str:
    """A model name as everywhere (mop.models.loading.resolve_model_dir), or a results checkpoint named
    the way the tables name it: `<run>/<i>` -> `<run>/prune_iteration_<i>`, `<run>/<i>/ft` (or
    `kd`, `kd+sft`) -> the single recovered folder `prune_iteration_<i>_ft_<e>ep<suffix>`."""
    match = re.match(r"^(?P<run>.+?)/(?P<i>\d+)(?:/(?P<objective>ft|sft|kd|kd\+sft))?/?$", name)
    if match and Path(match["run"]).expanduser().is_dir():
        run, i, objective = Path(match["run"]).expanduser(), int(match["i"]), match["objective"]
        pruned = run / ITERATION_DIR.format(i)
        if objective is None:
            return resolve_model_dir(str(pruned))
        suffix = OBJECTIVE_SUFFIX["sft" if objective == "ft" else objective]
        pattern = re.compile(rf"^{re.escape(pruned.name)}_ft_[\d.]+ep{re.escape(suffix)}$")
        found = sorted(p for p in run.iterdir() if pattern.match(p.name) and p.is_dir())
        if len(found) != 1:
            what = "no" if not found else f"{len(found)}"
            raise UsageError(f"{name}: {what} recovered checkpoint(s) of iteration {i} ({objective}) in {run}"
                             + (f": {', '.join(p.name for p in found)}; name the folder" if found else ""))
        return resolve_model_dir(str(found[0]))
    return resolve_model_dir(name)


# ----------------------------------------------------------------------------- settings and inputs


@dataclass
class GenerationSettings:
    """How every model generates (the same for all columns)."""

    max_new_tokens: int = 64
    sample: bool = False
    seed: int = 0
    temperature: float = 0.7
    top_p: float = 0.9
    chat: bool = True  # the model's chat template when it has one

    def generate_kwargs(self, tokenizer) -> dict:
        """`model.generate` arguments: greedy (overriding the checkpoint's generation_config, which
        may ask for sampling) or seeded nucleus sampling."""
        kwargs = {"max_new_tokens": self.max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
        if self.sample:
            return {**kwargs, "do_sample": True, "temperature": self.temperature, "top_p": self.top_p, "top_k": 0}
        return {**kwargs, "do_sample": False, "temperature": None, "top_p": None, "top_k": None}


def check_settings(settings: GenerationSettings) -> None:
    if settings.max_new_tokens < 1:
        raise UsageError(f"--max_new_tokens must be at least 1, got {settings.max_new_tokens}")
    if settings.sample and not (settings.temperature > 0 and 0 < settings.top_p <= 1):
        raise UsageError("--temperature must be above 0 and --top_p in (0, 1]")


def prompt_text(tokenizer, prompt: str, chat: bool) -> str:
    """The prompt as the model reads it: one user turn in its chat template, else the bare text."""
    if chat and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
    return prompt


def model_inputs(model, processing, prompt: str, image: Path | None, chat: bool) -> dict:
    """Token ids (and pixels for a multimodal model with an image) on the model's device."""
    if is_multimodal(model.config):
        if image is None:
            raise UsageError(f"{model.name_or_path} is a {model.config.model_type} model: give --image PATH")
        plugin = wrapper_plugin(model.config)  # the wrapper's own prompt form (mop.families.WRAPPER_PLUGINS)
        enc = processing(text=[plugin.image_question_prompt(processing, prompt)], images=[plugin.open_image(image)],
                         return_tensors="pt")
        inputs = {k: enc[k].to(model.device) for k in ("input_ids", "attention_mask")}
        inputs["pixel_values"] = enc["pixel_values"].to(model.device, model.dtype)
        return inputs
    tokenizer = text_tokenizer(processing)
    enc = tokenizer(prompt_text(tokenizer, prompt, chat), return_tensors="pt", add_special_tokens=not chat)
    return {k: enc[k].to(model.device) for k in ("input_ids", "attention_mask")}


def read_prompts(path: Path) -> list[str]:
    """Prompts from a .txt file (one a line) or a JSON list of strings."""
    text = read_text_file(path)
    if path.suffix == ".json":
        try:
            prompts = json.loads(text)
        except json.JSONDecodeError as err:
            raise UsageError(f"{path} is not valid JSON: {err}") from None
        if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            raise UsageError(f"{path} must hold a JSON list of prompt strings")
    else:
        prompts = [line.strip() for line in text.splitlines() if line.strip()]
    prompts = [p for p in prompts if p.strip()]
    if not prompts:
        raise UsageError(f"{path} holds no prompt")
    return prompts


# ----------------------------------------------------------------------------- turns and timing


class Turns:
    """Round-robin turns between generating threads: one model computes at a time, each in turn
    makes one token. The columns grow together, and a model's time is only its own."""

    def __init__(self, count: int):
        self.active = list(range(count))
        self.current = 0 if count else None
        self.cond = threading.Condition()

    def wait(self, index: int) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.current == index)

    def _next_after(self, index: int) -> int | None:
        later = [i for i in self.active if i > index]
        return (later or self.active or [None])[0]

    def pass_on(self, index: int) -> None:
        with self.cond:
            self.current = self._next_after(index)
            self.cond.notify_all()

    def finish(self, index: int) -> None:
        with self.cond:
            if index in self.active:
                self.active.remove(index)
            if self.current == index:
                self.current = self._next_after(index)
            self.cond.notify_all()


@dataclass
class Answer:
    """One model's answer to one prompt, with its figures."""

    model: str
    prompt: str
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    time_to_first_token_s: float | None = None
    decode_tokens_per_s: float | None = None
    memory_gb: float | None = None


class TimedStreamer:
    """A `generate` streamer that records each new token, the time the model spent on it (only
    while holding its turn) and the text so far, and hands the turn on after every token."""

    def __init__(self, index: int, tokenizer, turns: Turns | None, on_text: Callable[[int, str], None]):
        self.index, self.tokenizer, self.turns, self.on_text = index, tokenizer, turns, on_text
        self.prompt_seen = False
        self.token_ids: list[int] = []
        self.token_seconds: list[float] = []
        self.started = time.perf_counter()

    def begin_turn(self) -> None:
        if self.turns is not None:
            self.turns.wait(self.index)
        self.started = time.perf_counter()

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate hands the prompt over first
            self.prompt_seen = True
            return
        now = time.perf_counter()
        self.token_ids.extend(value.reshape(-1).tolist())
        self.token_seconds.append(now - self.started)
        self.on_text(self.index, self.tokenizer.decode(self.token_ids, skip_special_tokens=True))
        if self.turns is not None:
            self.turns.pass_on(self.index)
        self.begin_turn()

    def end(self) -> None:
        if self.turns is not None:
            self.turns.finish(self.index)


def weight_bytes(model) -> int:
    return sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))


def cache_bytes(past) -> int:
    """Bytes held by a generate call's KV cache (every tensor it keeps)."""
    if past is None:
        return 0
    tensors = []
    for layer in getattr(past, "layers", []):
        tensors += [getattr(layer, name, None) for name in ("keys", "values")]
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


def finish_answer(answer: Answer, streamer: TimedStreamer, model, past, peak_extra: int) -> Answer:
    """Figures from the streamer's record: time to first token (prefill + first token), decode
    tokens/s over the tokens after the first, memory = weights + KV cache (+ the measured
    transient peak on CUDA)."""
    answer.token_ids = list(streamer.token_ids)
    answer.text = streamer.tokenizer.decode(answer.token_ids, skip_special_tokens=True)
    if streamer.token_seconds:
        answer.time_to_first_token_s = streamer.token_seconds[0]
        decode = sum(streamer.token_seconds[1:])
        answer.decode_tokens_per_s = (len(streamer.token_seconds) - 1) / decode if decode > 0 else None
    answer.memory_gb = (weight_bytes(model) + cache_bytes(past) + peak_extra) / GB
    return answer


# ----------------------------------------------------------------------------- generation


@dataclass
class Loaded:
    """A model ready to answer: its name as given, folder, weights and processing, size."""

    name: str
    path: str
    model: object
    processing: object
    params: int


def load_entry(name: str, path: str, dtype_name: str, device: str) -> Loaded:
    config = load_config(path)
    dtype = resolve_dtype(dtype_name, device, saved_dtype(config))
    model, processing = load_model(path, dtype, device)
    return Loaded(name, path, model, processing, count_parameters(model))


def generate_one(index: int, entry: Loaded, inputs: dict, settings: GenerationSettings, turns: Turns | None,
                 on_text: Callable[[int, str], None]) -> Answer:
    """`entry.model.generate` on `inputs`, streamed through a TimedStreamer (in turn with the
    other models when `turns` is given)."""
    tokenizer = text_tokenizer(entry.processing)
    streamer = TimedStreamer(index, tokenizer, turns, on_text)
    answer = Answer(entry.name, "", prompt_tokens=int(inputs["input_ids"].shape[1]))
    cuda = str(entry.model.device).startswith("cuda")
    try:
        streamer.begin_turn()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() if cuda else 0
        if settings.sample:
            torch.manual_seed(settings.seed)
        with torch.inference_mode():
            out = entry.model.generate(**inputs, **settings.generate_kwargs(tokenizer), streamer=streamer,
                                       return_dict_in_generate=True)
        peak_extra = max(torch.cuda.max_memory_allocated() - base, 0) if cuda else 0
        return finish_answer(answer, streamer, entry.model, out.past_key_values, peak_extra)
    finally:
        streamer.end()


def generate_together(entries: Sequence[Loaded], inputs: Sequence[dict], settings: GenerationSettings,
                      on_text: Callable[[int, str], None]) -> list[Answer]:
    """Every model on its own thread, taking turns token by token; the first error is raised."""
    turns = Turns(len(entries))
    answers: list[Answer | None] = [None] * len(entries)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            answers[i] = generate_one(i, entries[i], inputs[i], settings, turns, on_text)
        except BaseException as err:  # handed to the main thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(entries))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return answers


# ----------------------------------------------------------------------------- memory plan


def folder_weight_bytes(path: str) -> int | None:
    """Bytes of a local checkpoint's weight files (None for a hub id)."""
    folder = Path(path)
    return sum(f.stat().st_size for f in folder.glob("*.safetensors")) if folder.is_dir() else None


def available_bytes(device: str) -> int | None:
    """Free memory where the models would live: the GPU's free memory, or MemAvailable on CPU."""
    if device.startswith("cuda"):
        return torch.cuda.mem_get_info(torch.device(device))[0]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def needs_sequential(paths: Sequence[str], device: str) -> bool:
    """True when the models' weight files together exceed 80% of the free memory (activations
    and KV caches need the rest)."""
    sizes = [folder_weight_bytes(p) for p in paths]
    free = available_bytes(device)
    return None not in sizes and free is not None and sum(sizes) > 0.8 * free


# ----------------------------------------------------------------------------- the comparison


@dataclass
class Column:
    """What heads a model's column."""

    name: str
    path: str
    params: int
    compression: float | None = None  # against the first model

    def heading(self) -> str:
        share = "" if self.compression is None else f", {100 * self.compression:.1f}% pruned"
        return f"{short_name(self.name)}\n{self.params / 1e6:,.1f}M parameters{share}"


def short_name(name: str, parts: int = 3) -> str:
    """A column's title: a long folder path shortened to its last `parts` components."""
    pieces = Path(name).parts
    return name if len(pieces) <= parts else "…/" + "/".join(pieces[-parts:])


def figures_line(answer: Answer | None) -> str:
    if answer is None or answer.time_to_first_token_s is None:
        return ""
    speed = f"{answer.decode_tokens_per_s:.1f} tok/s" if answer.decode_tokens_per_s else "- tok/s"
    return (f"first token {1000 * answer.time_to_first_token_s:.0f} ms · {speed} · "
            f"{len(answer.token_ids)} tokens · {answer.memory_gb:.2f} GB")


@dataclass
class Comparison:
    """The inputs of a comparison, checked before any model is loaded."""

    names: list[str]
    paths: list[str]
    prompts: list[str]
    image: Path | None
    settings: GenerationSettings
    device: str
    dtype: str
    sequential: bool


def plan_comparison(args) -> Comparison:
    """Every input checked (names, kinds, image, numbers, output) before anything is loaded."""
    settings = GenerationSettings(args.max_new_tokens, args.sample, args.seed, args.temperature, args.top_p,
                                  not args.no_chat_template)
    check_settings(settings)
    if len(args.models) < 1:
        raise UsageError("--models needs at least one model")
    paths = [resolve_entry(name) for name in args.models]
    multimodal = []
    for name, path in zip(args.models, paths):
        config = load_config(path)
        check_supported(config)
        multimodal.append(is_multimodal(config))
    image = Path(args.image).expanduser() if args.image else None
    if image is not None:
        if not image.is_file():
            raise UsageError(f"--image {args.image}: file not found")
        text_only = [n for n, m in zip(args.models, multimodal) if not m]
        if text_only:
            raise UsageError(f"--image given, but {', '.join(text_only)} reads no images (a text model)")
    elif any(multimodal):
        raise UsageError(f"{args.models[multimodal.index(True)]} is a multimodal model: give --image PATH")
    prompts = read_prompts(Path(args.prompts)) if args.prompts else [args.prompt or DEFAULT_PROMPTS[0]]
    if args.out:
        check_writable_target(args.out, "--out")
    device = resolve_device(args.device)
    resolve_dtype(args.dtype, device)
    sequential = args.sequential or needs_sequential(paths, device)
    if sequential and not args.sequential:
        print("the models do not fit in memory together: running them one after the other (--sequential)",
              flush=True)
    return Comparison(list(args.models), paths, prompts, image, settings, device, args.dtype, sequential)


def columns_of(entries: Sequence[Loaded]) -> list[Column]:
    dense = entries[0].params
    return [Column(e.name, e.path, e.params, None if i == 0 else 1 - e.params / dense) for i, e in enumerate(entries)]


def run_prompt(entries: Sequence[Loaded], comparison: Comparison, prompt: str,
               on_text: Callable[[int, str], None]) -> list[Answer]:
    inputs = [model_inputs(e.model, e.processing, prompt, comparison.image, comparison.settings.chat) for e in entries]
    answers = generate_together(entries, inputs, comparison.settings, on_text)
    for answer in answers:
        answer.prompt = prompt
    return answers


def compare_loaded(comparison: Comparison, display) -> tuple[list[Column], list[list[Answer]]]:
    """All models loaded at once, each prompt answered by all of them in turns."""
    entries = [load_entry(n, p, comparison.dtype, comparison.device) for n, p in zip(comparison.names, comparison.paths)]
    columns = columns_of(entries)
    results = []
    for prompt in comparison.prompts:
        answers = display.show(columns, prompt, lambda on_text: run_prompt(entries, comparison, prompt, on_text))
        results.append(answers)
    return columns, results


def compare_sequential(comparison: Comparison, display) -> tuple[list[Column], list[list[Answer]]]:
    """One model in memory at a time: each answers every prompt, then is freed."""
    per_model: list[list[Answer]] = []
    entries_seen: list[Loaded] = []
    for name, path in zip(comparison.names, comparison.paths):
        entry = load_entry(name, path, comparison.dtype, comparison.device)
        answers = [run_prompt([entry], comparison, prompt, display.quiet(len(entries_seen)))[0]
                   for prompt in comparison.prompts]
        per_model.append(answers)
        entries_seen.append(Loaded(name, path, None, None, entry.params))
        del entry
        if comparison.device.startswith("cuda"):
            torch.cuda.empty_cache()
    columns = columns_of(entries_seen)
    results = [[per_model[m][p] for m in range(len(columns))] for p in range(len(comparison.prompts))]
    for prompt, answers in zip(comparison.prompts, results):
        display.show_final(columns, prompt, answers)
    return columns, results


# ----------------------------------------------------------------------------- terminal


class TerminalDisplay:
    """Columns in the terminal (rich): live while the models stream, printed once at the end of
    each prompt when the output is not a terminal."""

    def __init__(self):
        from rich.console import Console

        self.console = Console()

    def table(self, columns: Sequence[Column], prompt: str, texts: Sequence[str], answers=None):
        from rich.table import Table

        table = Table(title=f"Prompt: {prompt}", show_lines=True, expand=True)
        for column in columns:
            table.add_column(column.heading(), ratio=1, overflow="fold")
        table.add_row(*texts)
        if answers is not None:
            table.add_row(*[figures_line(a) for a in answers])
        return table

    def show(self, columns, prompt, run):
        from rich.live import Live

        texts = [""] * len(columns)
        with Live(self.table(columns, prompt, texts), console=self.console, auto_refresh=False,
                  transient=not self.console.is_terminal) as live:
            def on_text(i: int, text: str) -> None:
                texts[i] = text
                if self.console.is_terminal:
                    live.update(self.table(columns, prompt, texts), refresh=True)

            answers = run(on_text)
            live.update(self.table(columns, prompt, [a.text for a in answers], answers), refresh=True)
        if not self.console.is_terminal:
            self.console.print(self.table(columns, prompt, [a.text for a in answers], answers))
        return answers

    def quiet(self, index: int) -> Callable[[int, str], None]:
        return lambda i, text: None

    def show_final(self, columns, prompt, answers) -> None:
        self.console.print(self.table(columns, prompt, [a.text for a in answers], answers))


def median_of(values) -> float | None:
    import statistics

    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summary_markdown(columns: Sequence[Column], results: Sequence[Sequence[Answer]]) -> str:
    """Per model: parameters, compression, median time to first token and decode speed over the
    prompts, its largest memory and the tokens it wrote."""
    lines = ["| model | parameters | compression | first token (ms) | decode (tok/s) | memory (GB) | tokens |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for m, column in enumerate(columns):
        answers = [row[m] for row in results]
        ttft, speed = median_of(a.time_to_first_token_s for a in answers), median_of(a.decode_tokens_per_s for a in answers)
        cells = [short_name(column.name), f"{column.params / 1e6:,.1f}M",
                 "-" if column.compression is None else f"{100 * column.compression:.1f}%",
                 "-" if ttft is None else f"{1000 * ttft:.0f}", "-" if speed is None else f"{speed:.1f}",
                 f"{max(a.memory_gb or 0 for a in answers):.2f}", str(sum(len(a.token_ids) for a in answers))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(columns: Sequence[Column], results: Sequence[Sequence[Answer]], comparison: Comparison) -> dict:
    return {"models": [asdict(c) for c in columns], "settings": asdict(comparison.settings),
            "device": comparison.device, "dtype": comparison.dtype, "sequential": comparison.sequential,
            "prompts": [{"prompt": prompt, "answers": [asdict(a) for a in answers]}
                        for prompt, answers in zip(comparison.prompts, results)]}


def compare(comparison: Comparison, display=None) -> tuple[list[Column], list[list[Answer]]]:
    display = display or TerminalDisplay()
    run = compare_sequential if comparison.sequential else compare_loaded
    return run(comparison, display)


# ----------------------------------------------------------------------------- command line


def publish(columns: Sequence[Column], results: Sequence[Sequence[Answer]], data: dict, out: str | None) -> dict:
    """The end of a comparison, whatever the backend: the summary table, then `data` in --out."""
    print(summary_markdown(columns, results), flush=True)
    if out:
        write_json(out, data)
        print(f"wrote {out}")
    return data
