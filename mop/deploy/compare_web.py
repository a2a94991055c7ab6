"""mop.deploy.compare as a local web page (Gradio): dense and pruned answering side by side in a browser.

    .cache/web-venv/bin/python -m mop.deploy.compare --web --models smollm2-135m <pruned folder> [--port 7860]

The page has one column per model (name, parameters, compression against the first model), one
prompt box shared by all of them and, under each column, the figures the terminal shows (time to
first token, decode speed, tokens, memory). The columns stream: the request handler is a
generator that runs `mop.deploy.compare.run_prompt` on a thread (the models take turns, one token each,
exactly as in the terminal) and yields every column's text as `on_text` reports it.

The models are loaded once, at start. When they do not fit in memory together
(`--sequential`, or chosen by mop.deploy.compare's memory plan) each request loads, runs and frees one
model after the other instead, so the columns fill one after another. For multimodal (LLaVA)
models the page shows an image upload; `--image` is then required, as in the terminal, and is
the image used until another one is uploaded.

The page listens on 127.0.0.1 only. gradio is an optional requirement (requirements-web.txt,
installed by `make install-web` into .cache/web-venv), imported only here.
"""

from __future__ import annotations

import dataclasses
import html
import os
import queue
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator

import torch

from ..core.io import UsageError, one_line
from .comparison import (Answer, Column, Comparison, Loaded, columns_of, figures_line, load_entry, plan_comparison,
                         run_prompt)

HOST = "127.0.0.1"  # never 0.0.0.0: the page runs models for whoever reaches it
INSTALL_HINT = ("--web needs gradio (an optional extra): make install-web, then run it with "
                ".cache/web-venv/bin/python -m mop.deploy.compare --web ...")


def import_gradio():
    """gradio, or the one-line hint to install it (it is not in the main .venv)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local page: no calls home
    try:
        import gradio
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return gradio


def check_web_args(args) -> None:
    """Options of the terminal comparison that mean nothing on the page are refused, not ignored."""
    if args.out:
        raise UsageError("--out writes the terminal comparison's answers; the page (--web) writes no file")
    if getattr(args, "backend", "transformers") != "transformers":
        raise UsageError(f"--web runs the transformers backend only, not --backend {args.backend}")
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be in 1..65535, got {args.port}")


# ----------------------------------------------------------------------------- the models


class PageModels:
    """The page's models: loaded once at start, or (sequential) loaded and freed on every request
    so that models which do not fit in memory together can still be compared."""

    def __init__(self, comparison: Comparison):
        self.comparison = comparison
        self.entries = [self.load(i) for i in range(len(comparison.names))]
        self.columns: list[Column] = columns_of(self.entries)
        if comparison.sequential:  # only the sizes stay, for the headings
            self.entries = [Loaded(e.name, e.path, None, None, e.params) for e in self.entries]
            free_device_memory(comparison.device)

    def load(self, index: int) -> Loaded:
        c = self.comparison
        return load_entry(c.names[index], c.paths[index], c.dtype, c.device)

    def answer(self, comparison: Comparison, prompt: str, on_text: Callable[[int, str], None]) -> list[Answer]:
        """Every model's answer to `prompt`, streamed through `on_text(model_index, text_so_far)`."""
        if not comparison.sequential:
            return run_prompt(self.entries, comparison, prompt, on_text)
        answers = []
        for m in range(len(self.entries)):
            entry = self.load(m)
            try:
                answers.append(run_prompt([entry], comparison, prompt, lambda _i, text, m=m: on_text(m, text))[0])
            finally:
                del entry
                free_device_memory(comparison.device)
        return answers


def free_device_memory(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- streaming


def drain(events: queue.Queue) -> list:
    """Every event already waiting: tokens that arrived together reach the page as one update."""
    waiting = []
    while True:
        try:
            waiting.append(events.get_nowait())
        except queue.Empty:
            return waiting


def stream_answers(run: Callable[[Callable[[int, str], None]], list[Answer]],
                   count: int) -> Iterator[tuple[list[str], list[Answer] | None]]:
    """Runs `run(on_text)` on a thread and yields (every column's text, None) as tokens arrive,
    then (final texts, answers). The generation thread never waits on the page: `on_text` only
    puts the text in a queue, so a slow browser cannot slow the models or bend their figures."""
    events: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            events.put(("done", run(lambda i, text: events.put(("text", i, text)))))
        except BaseException as err:  # raised again on the page's thread
            events.put(("error", err))

    threading.Thread(target=work, daemon=True, name="mop-compare-web").start()
    texts = [""] * count
    while True:
        for kind, *payload in [events.get()] + drain(events):
            if kind == "text":
                texts[payload[0]] = payload[1]
            elif kind == "error":
                raise payload[0]
            else:
                answers = payload[0]
                yield [a.text for a in answers], answers
                return
        yield list(texts), None


def request_comparison(comparison: Comparison, image: str | None) -> Comparison:
    """The comparison for one request: the uploaded image (a file path) replaces --image; with
    the upload cleared, --image answers again."""
    return dataclasses.replace(comparison, image=Path(image)) if image else comparison


def multimodal_page(comparison: Comparison) -> bool:
    """Whether the page reads images: plan_comparison accepts multimodal models only with --image
    (and an image only when every model reads it), so --image marks a multimodal comparison."""
    return comparison.image is not None


# ----------------------------------------------------------------------------- the page


def heading_html(column: Column) -> str:
    """A column's heading (name, parameters, compression) as escaped HTML: names are paths, which
    Markdown would mangle (underscores, asterisks)."""
    name, _, size = column.heading().partition("\n")
    return f"<div><strong>{html.escape(name)}</strong><br>{html.escape(size)}</div>"


def answer_handler(gr, models: PageModels, comparison: Comparison) -> Callable:
    """The submit event: a generator yielding every column's text, then the figures under them."""
    count = len(models.columns)

    def handle(prompt: str, image: str | None = None):
        if not prompt or not prompt.strip():
            raise gr.Error("type a prompt first")
        try:
            request = request_comparison(comparison, image)
            stream = stream_answers(lambda on_text: models.answer(request, prompt, on_text), count)
            for texts, answers in stream:
                figures = [figures_line(a) for a in answers] if answers else [""] * count
                yield *texts, *figures
        except UsageError as err:
            raise gr.Error(" ".join(str(err).split())) from None
        except Exception as err:  # the page shows one line; the server's log keeps the trace
            print(f"error: {one_line(err)}", file=sys.stderr, flush=True)
            raise gr.Error(one_line(err)) from None

    return handle


def build_page(gr, models: PageModels, comparison: Comparison, first_prompt: str | None):
    """The Blocks page; every element a browser test reads has a stable elem_id."""
    with gr.Blocks(title="MoP: dense and pruned side by side", analytics_enabled=False) as page:
        gr.Markdown("## Dense and pruned, side by side")
        prompt = gr.Textbox(label="Prompt", value=first_prompt or "", lines=2, elem_id="prompt")
        image = None
        if multimodal_page(comparison):
            image = gr.Image(label="Image", type="filepath", value=str(comparison.image), elem_id="image")
        submit = gr.Button("Generate", variant="primary", elem_id="submit")
        if len(comparison.prompts) > 1:  # --prompts: offered as examples
            gr.Examples(examples=[[p] for p in comparison.prompts], inputs=[prompt])
        answers, figures = [], []
        with gr.Row():
            for i, column in enumerate(models.columns):
                with gr.Column():
                    gr.HTML(heading_html(column), elem_id=f"heading-{i}")
                    answers.append(gr.Textbox(label="Answer", lines=10, interactive=False, elem_id=f"answer-{i}"))
                    figures.append(gr.Textbox(label="Figures", interactive=False, elem_id=f"figures-{i}"))
        handle = answer_handler(gr, models, comparison)
        inputs = [prompt] + ([image] if image is not None else [])
        for trigger in (submit.click, prompt.submit):
            trigger(handle, inputs=inputs, outputs=answers + figures, concurrency_limit=1)
    return page


def launch(page, port: int) -> None:
    """Starts the server on 127.0.0.1:port, prints the address (what a script waits for) and
    blocks until interrupted."""
    try:
        page.queue(default_concurrency_limit=1)  # one comparison at a time: the models are shared
        page.launch(server_name=HOST, server_port=port, prevent_thread_lock=True, ssr_mode=False, quiet=True,
                    show_error=True)
    except OSError as err:
        raise UsageError(f"--port {port}: cannot listen on {HOST}:{port} ({one_line(err)})") from None
    print(f"http://{HOST}:{port}", flush=True)
    page.block_thread()


def serve(args) -> dict:
    """`python -m mop.deploy.compare --web ...`: checks everything, loads the models, serves the page."""
    gr = import_gradio()
    check_web_args(args)
    comparison = plan_comparison(args)
    models = PageModels(comparison)
    page = build_page(gr, models, comparison, args.prompt)
    launch(page, args.port)
    return {"models": [dataclasses.asdict(c) for c in models.columns], "url": f"http://{HOST}:{args.port}"}
