"""llama.cpp for the project: find its build, convert checkpoints to GGUF, generate token by token.

llama.cpp comes from the llama-cpp-python source distribution, the way the Makefile gets it
(`make build-llamacpp`): its vendored `convert_hf_to_gguf.py` converts, with the gguf-py it
ships (not the project's pinned `gguf`), and its low-level ctypes bindings
(`llama_cpp/llama_cpp.py`, loaded without the package's high-level module, which needs more
dependencies) run the GGUF through the shared library `libllama.so`, the only part compiled.

Used by `tools/check_gguf.py` (conversion check), `mop/deploy/compare_llamacpp.py` (`python -m
mop.deploy.compare --backend llamacpp`) and `benchmarks/bench_speedup.py` (decode speed-up).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..core.io import UsageError, atomic_file, exclusive_lock, sibling_lock

REPO = Path(__file__).resolve().parents[2]
LLAMA_CPP_PYTHON = "0.3.36"  # the Makefile's LLAMA_CPP_PYTHON
DEFAULT_SDIST = REPO / ".cache" / "llama-cpp" / f"llama_cpp_python-{LLAMA_CPP_PYTHON}"
MISSING_BUILD = "--backend llamacpp needs llama.cpp: make build-llamacpp (or make check-gguf)"
SDIST_ENV, LIB_DIR_ENV = "MOP_LLAMA_CPP", "MOP_LLAMA_CPP_LIB"
OUTTYPES = ("f32", "f16", "bf16", "q8_0")  # what convert_hf_to_gguf.py writes directly
FALLBACK_MARKERS = ("falling back", "Can't quantize")


# ----------------------------------------------------------------------------- where llama.cpp is


@dataclass(frozen=True)
class LlamaCppBuild:
    """An extracted llama-cpp-python sdist and the folder holding its built libllama.so."""

    sdist: Path
    lib_dir: Path

    @property
    def llama_dir(self) -> Path:
        return self.sdist / "vendor" / "llama.cpp"

    @property
    def converter(self) -> Path:
        return self.llama_dir / "convert_hf_to_gguf.py"


def find_build(sdist: str | os.PathLike | None = None, lib_dir: str | os.PathLike | None = None) -> LlamaCppBuild:
    """The llama.cpp to use: the given folders, else $MOP_LLAMA_CPP / $MOP_LLAMA_CPP_LIB, else the
    Makefile's paths under .cache/llama-cpp. A missing converter, bindings or library is the
    one-line error that names the make target building them (checked before any model work)."""
    sdist = Path(sdist or os.environ.get(SDIST_ENV) or DEFAULT_SDIST).expanduser()
    lib_dir = Path(lib_dir or os.environ.get(LIB_DIR_ENV) or sdist / "build" / "bin").expanduser()
    build = LlamaCppBuild(sdist, lib_dir)
    needed = (build.converter, sdist / "llama_cpp" / "llama_cpp.py", lib_dir / "libllama.so")
    missing = [p for p in needed if not p.is_file()]
    if missing:
        raise UsageError(f"{MISSING_BUILD} (no {missing[0]})")
    return build


def load_bindings(build: LlamaCppBuild):
    """The sdist's low-level ctypes module, without its package __init__ (which needs diskcache),
    with llama.cpp's log silenced. Loaded once per process: a second call returns the same module."""
    loaded = sys.modules.get("llama_cpp.llama_cpp")
    if loaded is not None and getattr(loaded, "_mop_build", None) == build:
        return loaded
    os.environ["LLAMA_CPP_LIB_PATH"] = str(build.lib_dir)
    package = types.ModuleType("llama_cpp")
    package.__path__ = [str(build.sdist / "llama_cpp")]
    sys.modules["llama_cpp"] = package
    import llama_cpp.llama_cpp as C  # noqa: E402  (the module registered just above)

    C.llama_backend_init()
    C._quiet_logger = C.llama_log_callback(lambda level, text, data: None)  # keep a reference
    C.llama_log_set(C._quiet_logger, None)
    C._mop_build = build
    return C


# ----------------------------------------------------------------------------- conversion


def fallback_lines(log: str) -> list[str]:
    """The converter's or quantiser's lines saying a tensor was kept in another type."""
    return [line.strip() for line in log.splitlines() if any(m in line for m in FALLBACK_MARKERS)]


def convert(build: LlamaCppBuild, checkpoint: Path, outtype: str, out: Path, log: Path) -> dict:
    """llama.cpp's converter on a checkpoint folder, with its own gguf-py on PYTHONPATH; the
    output appears at `out` only when complete, its log in `log`. Returns the GGUF's size, the
    lines of tensors that fell back to another type and the seconds taken."""
    if outtype not in OUTTYPES:
        raise UsageError(f"GGUF type {outtype!r}: choose from {', '.join(OUTTYPES)}")
    env = {**os.environ, "PYTHONPATH": str(build.llama_dir / "gguf-py")}
    began = time.perf_counter()
    with atomic_file(out) as tmp:
        proc = subprocess.run([sys.executable, str(build.converter), str(checkpoint), "--outtype", outtype,
                               "--outfile", str(tmp)], capture_output=True, text=True, env=env)
        log.write_text(proc.stdout + proc.stderr)
        if proc.returncode:
            last = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
            raise UsageError(f"llama.cpp could not convert {checkpoint} to {outtype} (exit {proc.returncode}): "
                             f"{last[0]} (log: {log})")
    return {"gguf_bytes": out.stat().st_size, "fallback_warnings": fallback_lines(proc.stdout + proc.stderr),
            "convert_seconds": round(time.perf_counter() - began, 1)}


def quantize(C, source: Path, out: Path, ftype: int) -> dict:
    """llama.cpp's own quantizer (what the llama-quantize tool calls), with its log captured to
    read the tensors that fell back to another type."""
    pieces: list[str] = []
    capture = C.llama_log_callback(lambda level, text, data: pieces.append(text.decode(errors="replace")))
    params = C.llama_model_quantize_default_params()
    params.ftype = ftype
    began = time.perf_counter()
    C.llama_log_set(capture, None)
    try:
        status = C.llama_model_quantize(str(source).encode(), str(out).encode(), ctypes.byref(params))
    finally:
        C.llama_log_set(C._quiet_logger, None)
    if status != 0:
        raise UsageError(f"llama_model_quantize failed ({status}) on {source}")
    fallbacks = [line.strip() for line in "".join(pieces).splitlines() if "falling back" in line]
    return {"gguf_bytes": out.stat().st_size, "fallback_warnings": fallbacks,
            "convert_seconds": round(time.perf_counter() - began, 1)}


def checkpoint_key(folder: Path) -> str:
    """Names a checkpoint's content without reading it: its resolved path and the size and mtime
    of every file in it, so a checkpoint rewritten in place gets a new conversion."""
    folder = folder.resolve()
    parts = [str(folder)] + [f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}"
                             for f in sorted(folder.iterdir()) if f.is_file()]
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:12]


def cached_gguf(build: LlamaCppBuild, folder: Path, outtype: str, cache: Path) -> Path:
    """The checkpoint's GGUF of that type in `cache`, converted on first use only. Named
    `<run>-<folder>-<key>-<type>.gguf`; a lock keeps two processes from converting it twice."""
    folder = folder.resolve()
    stem = f"{folder.parent.name}-{folder.name}" if folder.name.startswith("prune_") else folder.name
    out = cache / f"{stem}-{checkpoint_key(folder)}-{outtype}.gguf"
    if out.is_file():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(sibling_lock(out), f"the GGUF conversion {out}", wait=True):
        if not out.is_file():
            print(f"converting {folder} to {outtype} GGUF (once): {out}", flush=True)
            convert(build, folder, outtype, out, out.with_suffix(".convert.log"))
    return out


# ----------------------------------------------------------------------------- running a GGUF


@dataclass
class Sampling:
    """Greedy (argmax) by default; else seeded nucleus sampling with a temperature, drawn in numpy
    from llama.cpp's logits so the rule is the one written here, not a sampler's defaults."""

    sample: bool = False
    seed: int = 0
    temperature: float = 0.7
    top_p: float = 0.9

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def pick(self, logits: np.ndarray, rng: np.random.Generator) -> int:
        if not self.sample:
            return int(np.argmax(logits))
        scaled = logits.astype(np.float64) / self.temperature
        probs = np.exp(scaled - scaled.max())
        probs /= probs.sum()
        order = np.argsort(-probs)
        cumulative = np.cumsum(probs[order])
        kept = order[: int(np.searchsorted(cumulative, self.top_p)) + 1]  # smallest set reaching top_p
        return int(rng.choice(kept, p=probs[kept] / probs[kept].sum()))


@dataclass
class Generation:
    """Tokens generated after a prompt and the seconds each took: the first includes the prompt
    (time to first token), the others are one decode step each."""

    token_ids: list[int] = field(default_factory=list)
    token_seconds: list[float] = field(default_factory=list)

    @property
    def time_to_first_token_s(self) -> float | None:
        return self.token_seconds[0] if self.token_seconds else None

    @property
    def decode_tokens_per_s(self) -> float | None:
        """Tokens after the first over the time they took (as mop.deploy.compare counts it)."""
        decode = sum(self.token_seconds[1:])
        return (len(self.token_seconds) - 1) / decode if decode > 0 else None


class LlamaCpp:
    """One GGUF loaded in llama.cpp: tokenize, next-token logits of every position, generation.

    llama.cpp's extra weight buffers (repacked layouts, Intel AMX) are off: on the Xeons with AMX
    this project runs on, the AMX matrix kernel faults (a general protection fault in
    libggml-cpu) as soon as a prompt of more than one token is decoded in q8_0 (llama.cpp issue
    20824 reports the same crash), and the plain CPU kernels give every machine the same code
    path, so figures compare across machines."""

    def __init__(self, C, path: Path, n_ctx: int = 1024, threads: int = 2):
        self.C = C
        model_params = C.llama_model_default_params()
        model_params.use_extra_bufts = False
        self.model = C.llama_model_load_from_file(str(path).encode(), model_params)
        if not self.model:
            raise UsageError(f"llama.cpp cannot load {path}")
        params = C.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = n_ctx, n_ctx, n_ctx
        params.n_threads, params.n_threads_batch = threads, threads
        self.ctx = C.llama_init_from_model(self.model, params)
        self.n_ctx = n_ctx
        self.vocab = C.llama_model_get_vocab(self.model)
        self.n_vocab = C.llama_vocab_n_tokens(self.vocab)

    def close(self):
        self.C.llama_free(self.ctx)
        self.C.llama_model_free(self.model)

    @property
    def n_params(self) -> int:
        return int(self.C.llama_model_n_params(self.model))

    @property
    def weight_bytes(self) -> int:
        return int(self.C.llama_model_size(self.model))

    def state_bytes(self) -> int:
        """The context's state (KV cache in use, logits) as llama.cpp would save it."""
        return int(self.C.llama_state_get_size(self.ctx))

    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        data = text.encode()
        buf = (self.C.llama_token * (len(data) + 8))()
        n = self.C.llama_tokenize(self.vocab, data, len(data), buf, len(buf), add_special, True)
        return list(buf[:n])

    def piece(self, token: int) -> bytes:
        """A token's bytes, control tokens (chat markers, EOS) left out."""
        buf = ctypes.create_string_buffer(256)
        n = self.C.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        return buf.raw[: max(n, 0)]

    def detokenize(self, ids: list[int]) -> str:
        return b"".join(self.piece(t) for t in ids).decode(errors="replace")

    def is_end(self, token: int) -> bool:
        """End of generation: EOS, the chat turn's end and any other token the GGUF marks so."""
        return bool(self.C.llama_vocab_is_eog(self.vocab, token))

    def chat_prompt(self, prompt: str) -> str | None:
        """One user turn in the GGUF's own chat template (llama.cpp's renderer of the known
        templates); None when it has none that llama.cpp knows."""
        template = self.C.llama_model_chat_template(self.model, None)
        if not template:
            return None
        message = (self.C.llama_chat_message * 1)(self.C.llama_chat_message(b"user", prompt.encode()))
        buf = ctypes.create_string_buffer(len(prompt.encode()) * 2 + 1024)
        n = self.C.llama_chat_apply_template(template, message, 1, True, buf, len(buf))
        return buf.raw[:n].decode(errors="replace") if 0 < n <= len(buf) else None

    def _decode(self, ids: list[int]) -> None:
        arr = (self.C.llama_token * len(ids))(*ids)
        if self.C.llama_decode(self.ctx, self.C.llama_batch_get_one(arr, len(ids))) != 0:
            raise RuntimeError("llama_decode failed")

    def _last_logits(self) -> np.ndarray:
        """The newest position's logits, as a view of llama.cpp's buffer (valid until the next decode)."""
        logits = self.C.llama_get_logits_ith(self.ctx, -1)
        return np.ctypeslib.as_array(logits, shape=(self.n_vocab,))

    def _feed(self, token: int) -> np.ndarray:
        self._decode([token])
        return self._last_logits().copy()

    def _reset(self):
        self.C.llama_memory_clear(self.C.llama_get_memory(self.ctx), True)

    def logits(self, ids: list[int]) -> np.ndarray:
        """(len(ids), vocab) next-token logits, one token at a time (as generation sees them)."""
        self._reset()
        return np.stack([self._feed(t) for t in ids])

    def greedy(self, ids: list[int], n: int) -> list[int]:
        """n argmax tokens after `ids`, the prompt fed one token at a time (tools/check_gguf.py)."""
        self._reset()
        for t in ids:
            last = self._feed(t)
        out = []
        for _ in range(n):
            out.append(int(np.argmax(last)))
            last = self._feed(out[-1])
        return out

    def stream(self, ids: list[int], max_new_tokens: int, sampling: Sampling | None = None,
               stop_at_end: bool = True) -> Iterator[tuple[int, float]]:
        """Yield (token, seconds it took) one new token at a time: the prompt in one batch with
        the first token (time to first token), then one decode step per token. Stops after an
        end-of-generation token (yielded, as transformers' generate keeps it) when
        `stop_at_end`, else always makes `max_new_tokens` (benchmarks). A generator, so callers
        can interleave models or time only what they want."""
        if len(ids) + max_new_tokens > self.n_ctx:
            raise UsageError(f"{len(ids)} prompt tokens + {max_new_tokens} new ones exceed the context of {self.n_ctx}")
        sampling = sampling or Sampling()
        rng = sampling.rng()
        self._reset()
        began = time.perf_counter()
        self._decode(list(ids))
        for i in range(max_new_tokens):
            if i:
                began = time.perf_counter()
                self._decode([token])
            token = sampling.pick(self._last_logits(), rng)
            yield token, time.perf_counter() - began
            if stop_at_end and self.is_end(token):
                return

    def generate(self, ids: list[int], max_new_tokens: int, sampling: Sampling | None = None,
                 stop_at_end: bool = True, on_token: Callable[[list[int]], None] | None = None) -> Generation:
        """All of `stream` at once, with the figures; `on_token(tokens so far)` after each."""
        result = Generation()
        for token, seconds in self.stream(ids, max_new_tokens, sampling, stop_at_end):
            result.token_ids.append(token)
            result.token_seconds.append(seconds)
            if on_token is not None:
                on_token(result.token_ids)
        return result
