"""mop.deploy.compare --web in a real browser: the page must show, for each model, exactly what
`model.generate` gives that model alone (greedy), headed by its size and followed by its figures.

The page runs in the web environment (`make install-web`: .cache/web-venv with gradio and
playwright, and Debian's chromium); the test builds it when it is missing, and skips only when
it cannot be built here and chromium cannot be installed (no apt-get, or not root). Playwright
runs in the web environment too (a small script, DRIVER), so the main .venv needs neither.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from test_bad_inputs import assert_one_line_exit_2

from mop.deploy import comparison
from mop.deploy.compare_web import INSTALL_HINT
from mop.models.loading import load_model, resolve_model_name
from mop.prune.pruner import PruneSettings, run_pruning

REPO = Path(__file__).resolve().parents[3]
WEB_VENV = REPO / os.environ.get("WEB_VENV", ".cache/web-venv")
WEB_PYTHON = WEB_VENV / "bin" / "python"
DENSE = "smollm2-135m"
PROMPT = "What is the capital of France?"
NEW_TOKENS = 12
START_TIMEOUT_S = 300  # importing gradio and torch and loading both models, on a busy CI machine
PAGE_TIMEOUT_MS = 180_000

# Runs in the web environment: opens the page, submits the prompt, watches the columns while the
# models write (was an answer visible before its figures, i.e. did the page stream?), waits for
# every column's figures and prints what the page shows as JSON.
DRIVER = r"""
import json, shutil, sys
from playwright.sync_api import sync_playwright

url, prompt, count, timeout_ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
WATCH = '''count => { window.__streamed = false; window.__watch = setInterval(() => {
    for (let i = 0; i < count; i++) {
        const answer = document.querySelector(`#answer-${i} textarea`);
        const figures = document.querySelector(`#figures-${i} textarea, #figures-${i} input`);
        if (answer && answer.value && figures && !figures.value) window.__streamed = true;
    } }, 5); }'''
DONE = '''count => [...Array(count).keys()].every(i => {
    const f = document.querySelector(`#figures-${i} textarea, #figures-${i} input`); return f && f.value; })'''
# root needs --no-sandbox; the rest keep Chromium from calling out of a machine with no network
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"]
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_FLAGS)
    try:
        page = browser.new_page()
        page.goto(url, timeout=timeout_ms)
        page.fill("#prompt textarea", prompt, timeout=timeout_ms)
        page.evaluate(WATCH, count)
        page.click("#submit")
        page.wait_for_function(DONE, arg=count, timeout=timeout_ms)
        figures = lambda i: page.locator(f"#figures-{i} textarea, #figures-{i} input").first.input_value()
        print(json.dumps({
            "headings": [page.inner_text(f"#heading-{i}") for i in range(count)],
            "answers": [page.locator(f"#answer-{i} textarea").input_value() for i in range(count)],
            "figures": [figures(i) for i in range(count)],
            "streamed": page.evaluate("window.__streamed"),
        }))
    finally:
        browser.close()
"""


# ----------------------------------------------------------------------------- the web environment


def web_environment_ready() -> bool:
    return (WEB_VENV / ".installed").is_file() and shutil.which("chromium") is not None


def cannot_install_chromium() -> str | None:
    """Why chromium cannot be installed here (then the test skips), or None."""
    if shutil.which("chromium"):
        return None
    if not shutil.which("apt-get"):
        return "chromium is not installed and there is no apt-get to install it"
    if os.geteuid() != 0:
        return "chromium is not installed and apt-get needs root"
    return None


@pytest.fixture(scope="module")
def web_python() -> Path:
    """The web environment's python, built with `make install-web` when missing. The running
    .venv is taken as installed (-o): make must never rebuild the environment running the test."""
    if not web_environment_ready():
        reason = cannot_install_chromium()
        if reason:
            pytest.skip(f"the browser test needs Debian's chromium: {reason}")
        venv = Path(sys.prefix)
        done = subprocess.run(["make", "-o", f"{venv}/.installed", f"VENV={venv}", "install-web"], cwd=REPO,
                              capture_output=True, text=True)
        assert done.returncode == 0, f"make install-web failed:\n{(done.stdout + done.stderr)[-3000:]}"
    assert web_environment_ready()
    return WEB_PYTHON


# ----------------------------------------------------------------------------- models and server


@pytest.fixture(scope="module")
def pruned_checkpoint(tmp_path_factory, calibration_file) -> str:
    """Two iterations (L, then an MLP-width step) of the embedded model, few calibration prompts."""
    run = tmp_path_factory.mktemp("compare_web") / "run"
    run_pruning(PruneSettings(model_name=DENSE, save_dir=str(run), num_iterations=2, decision_sequence="LG",
                              mlp_only=True, calibration_data=str(calibration_file), num_calibration_prompts=8,
                              device="cpu"), progress=False)
    return str(run / "prune_iteration_2")


def greedy_text(name: str, prompt: str) -> tuple[str, int]:
    """The reference: the model loaded by itself, greedy `generate` on the chat-templated prompt,
    decoded without special tokens (what a column shows), and its number of new tokens."""
    model, processing = load_model(resolve_model_name(name) if name == DENSE else name, torch.float32, "cpu")
    inputs = comparison.model_inputs(model, processing, prompt, None, chat=True)
    out = model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False, temperature=None, top_p=None,
                         top_k=None, pad_token_id=processing.pad_token_id)
    new = out[0, inputs["input_ids"].shape[1]:]
    return processing.decode(new, skip_special_tokens=True), len(new)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m mop.deploy.compare --web` in the web environment; its output is collected on a thread
    so that the address line can be waited for (and the log shown when something fails)."""

    def __init__(self, python: Path, models: list[str], port: int):
        self.url = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [str(python), "-m", "mop.deploy.compare", "--web", "--models", *models, "--max_new_tokens", str(NEW_TOKENS),
             "--port", str(port), "--device", "cpu"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def log(self) -> str:
        return "\n".join(self.lines[-40:])

    def wait_for_address(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.url not in self.lines:
            assert self.process.poll() is None, f"the server exited ({self.process.returncode}):\n{self.log()}"
            assert time.monotonic() < deadline, f"no address after {timeout_s} s:\n{self.log()}"
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def drive_page(python: Path, url: str, count: int) -> dict:
    done = subprocess.run([str(python), "-c", DRIVER, url, PROMPT, str(count), str(PAGE_TIMEOUT_MS)],
                          capture_output=True, text=True, timeout=PAGE_TIMEOUT_MS / 1000 + 120)
    assert done.returncode == 0, f"the browser script failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- tests


def test_page_shows_each_models_greedy_answer_streamed_with_figures(web_python, pruned_checkpoint):
    (dense_text, dense_tokens), (pruned_text, pruned_tokens) = [greedy_text(m, PROMPT) for m in (DENSE, pruned_checkpoint)]
    expected = [dense_text, pruned_text]
    assert expected[0] != expected[1], "the pair must answer differently for the columns to be told apart"
    server = Server(web_python, [DENSE, pruned_checkpoint], free_port())
    try:
        server.wait_for_address(START_TIMEOUT_S)
        shown = drive_page(web_python, server.url, 2)
    finally:
        server.stop()
    assert shown["answers"] == expected, server.log()
    dense, pruned = shown["headings"]
    assert dense.startswith(DENSE) and pruned.startswith(comparison.short_name(pruned_checkpoint))
    assert "M parameters" in dense and "pruned" not in dense
    assert "% pruned" in pruned and dense.splitlines()[-1] != pruned.splitlines()[-1]
    for figures, tokens in zip(shown["figures"], (dense_tokens, pruned_tokens)):
        assert figures.startswith("first token ") and " tok/s · " in figures and figures.endswith(" GB")
        assert f" · {tokens} tokens · " in figures, figures
    assert shown["streamed"], "no answer was visible before its figures: the page did not stream"


def test_web_without_gradio_is_one_line_exit_2():
    """The main .venv has no gradio: --web says how to get it, before any model is read."""
    try:
        import gradio  # noqa: F401
        pytest.skip("gradio is installed in this environment")
    except ImportError:
        pass
    done = subprocess.run([sys.executable, "-m", "mop.deploy.compare", "--web", "--models", DENSE], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert assert_one_line_exit_2(done.returncode, done.stderr) == f"error: {INSTALL_HINT}"
