"""One prepared check: every stage of a 7B/8B MoP run fits one 24 GB GPU, with times.

    python benchmarks/gpu_check.py                        # CUDA: LLaMA-2-7B, LLaMA-3-8B, Qwen3-8B, bf16, 24 GB cap
    bash scripts/gpu_check.sh                             # the same
    python benchmarks/gpu_check.py --tiny --device cpu    # the same code on tiny configs (run by the tests)

On one CUDA device the process is capped at --cap_gb (default 24 GB = 24 GiB, an RTX 4090's memory)
with torch.cuda.set_per_process_memory_fraction, so an allocation beyond the cap fails as it would
on the smaller card (the CUDA context, about 0.5 GB on a real card, is outside the cap). Then, for
random-weight models built in bf16 from the shipped configs (mop/assets/configs, no hub access),
each stage is run through the project's own functions, timed, and its peak memory recorded
(torch.cuda.max_memory_reserved, i.e. what the allocator held; CPU: peak RSS of the process):

  build                 the random model on the device
  ppl decision          one --path ppl decision (mop.prune.path_selection: reference outputs of the current model,
                        then both candidates scored against them)
  G step / L step       one width step (AMP scores over 128 calibration prompts of the shipped
                        instruction set) and one depth step (mop.prune.pruner)
  L step, block_influence  one depth step under --depth_rule block_influence: the calibration pass
                        scores every layer (1 - cos of its input and output), the lowest goes
  recovery, packed sft  10 steps of mop.recover.trainer.train_lora with the drivers' defaults (LoRA r=32,
                        alpha 10, batch 4 x 4, max length 512, packed rows) fitted to the cap by
                        mop.recover.memory's plan; every example is 512 - k tokens (k = 0, 1, ...) so the
                        first, longest batch is the worst case
  teacher cache         the teacher pass of distillation over those examples, stored once (top-64
                        log-probs + tail per position, mop.recover.teacher_cache; the current model stands in
                        for the dense teacher)
  recovery, cache kd    10 steps of --objective kd reading that cache (no teacher on the GPU)
  lm_eval, 20 items     20 items of the local task mop_arc through stock lm_eval (HFLM on the model)
  (Qwen3-8B, the largest shape of the further families, mop/families: build, G step, L step and
  recovery only -- q/k norms, 36 layers of 4096 and a 151,936-token vocabulary within the cap)
  latency 0% / ~40%     the paper's protocol (batch 1, 12 input tokens, 128 new tokens), fewer runs,
                        eager and --compile (static KV cache + compiled decode step), on the dense
                        shape and on the seed-1 path's iteration nearest 40% (random weights)

Tokenizer and vocabulary: the embedded SmolLM2 tokenizer (49,152 tokens) feeds every model. Where the
config's vocabulary is smaller (LLaMA-2: 32,000) it is raised to the tokenizer's, so every token id is
valid; for LLaMA-2-7B this adds 140M parameters (0.26 GB in bf16) and makes the logits 1.5x larger,
so its memory figures are on the safe side. LLaMA-3-8B keeps its 128,256 (ids below 49,152 only).

It prints one table (stage, seconds, peak GB, within the cap) and exits 1 if any stage failed
(out of memory included) or exceeded the cap. Runtime on one H100/H200-class GPU is meant to stay
under 8 minutes (latency is timed on LLaMA-2-7B only, the paper's latency model; --latency all
adds LLaMA-3-8B). `--tiny` builds tiny Llama-2-style (MHA), Llama-3-style (GQA, MLP-only) and
Qwen3-style (q/k norms, the family's width mode) configs instead and shortens sequences and decoding, so the test suite can run the same code
(there torch.compile uses its `eager` backend unless --compile_backend says otherwise).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from bench_memory import exact_length_records, proc_status_kib, reset_peak_rss  # noqa: E402
from transformers import AutoConfig, AutoTokenizer, LlamaConfig  # noqa: E402

from mop.core.io import one_line  # noqa: E402
from mop.evaluate import latency  # noqa: E402
from mop.evaluate.harness import TASKS_DIR, summarize, task_manager_for  # noqa: E402
from mop.models.adapter import LORA_PROJECTIONS as DEFAULT_TARGETS  # noqa: E402
from mop.models.adapter import count_parameters, default_mlp_only, get_adapter, model_class  # noqa: E402
from mop.models.configs import config_for_dry_run  # noqa: E402
from mop.models.loading import build_meta_model, resolve_dtype, resolve_model_name  # noqa: E402
from mop.prune import path_selection as paths  # noqa: E402
from mop.prune.budget import PlanError, WidthCarry, parse_decisions  # noqa: E402
from mop.prune.importance import amp_scores  # noqa: E402
from mop.prune.pruner import PruneSettings, calibration_batches  # noqa: E402
from mop.prune.steps import BLOCK_INFLUENCE, depth_step, simulate_path, width_step  # noqa: E402
from mop.recover.batches import encode_records  # noqa: E402
from mop.recover.memory import GB, fit_recovery_settings  # noqa: E402
from mop.recover.settings import RecoverySettings  # noqa: E402
from mop.recover.teacher_cache import TeacherCache, build_cache, pad_id_of, tokenizer_fingerprint  # noqa: E402
from mop.recover.trainer import merge_lora, train_lora

SEED_1 = "LGGLLLGGLLGLGLLGGL"
EVAL_TASK = "mop_arc"
PAPER_MODELS = {  # name -> (shipped config, MLP-only width steps as published)
    "llama2-7b": ("meta-llama/Llama-2-7b-hf", False),
    "llama3-8b": ("meta-llama/Meta-Llama-3-8B", True),
}
FAMILY_MODELS = {"qwen3-8b": "Qwen/Qwen3-8B"}  # name -> shipped config; width mode: the family's default
ALL_STAGES = ("build", "ppl decision", "G step", "L step", "L step, block_influence", "recovery, packed sft",
              "teacher cache", "recovery, cache kd", "lm_eval")
FAMILY_STAGES = ("build", "G step", "L step", "recovery, packed sft")  # what a further family must show to fit 24 GB


@dataclass(frozen=True)
class Scale:
    """Sizes of one check: the paper's (GPU) or tiny (CPU test)."""

    calibration_prompts: int = 128
    reference_prompts: int = 32
    recovery_steps: int = 10
    max_length: int = 512
    eval_items: int = 20
    input_tokens: int = 12
    new_tokens: int = 128
    latency_runs: int = 5
    latency_warmup: int = 2


PAPER_SCALE = Scale()
TINY_SCALE = Scale(calibration_prompts=8, reference_prompts=4, recovery_steps=1, max_length=64, eval_items=4,
                   new_tokens=4, latency_runs=2, latency_warmup=1)


@dataclass
class ModelSpec:
    name: str
    config: object
    mlp_only: bool
    latency: bool
    stages: tuple = ALL_STAGES


@dataclass
class StageResult:
    model: str
    stage: str
    status: str  # ok | OOM | error | skipped
    seconds: float | None = None
    peak_gb: float | None = None
    detail: str = ""


# ----------------------------------------------------------------------------- memory


class MemoryMeter:
    """Peak memory of one stage: the CUDA allocator's reserved peak, or the process's peak RSS on CPU."""

    def __init__(self, device: str, cap_gb: float):
        self.device, self.cap_gb = device, cap_gb
        self.cuda = device.startswith("cuda")

    def apply_cap(self) -> str:
        if not self.cuda:
            return "no cap on CPU (peak RSS of the whole process is reported)"
        total = torch.cuda.get_device_properties(self.device).total_memory
        fraction = min(1.0, self.cap_gb * GB / total)
        torch.cuda.set_per_process_memory_fraction(fraction, self.device)
        return f"capped at {self.cap_gb:g} GB = {fraction:.4f} of {total / GB:.1f} GB"

    def start(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            reset_peak_rss()

    def peak_gb(self) -> float:
        if self.cuda:
            return torch.cuda.max_memory_reserved(self.device) / GB
        return proc_status_kib("VmHWM") * 1024 / GB


def run_stage(results: list[StageResult], meter: MemoryMeter, model: str, stage: str, fn: Callable[[], str]) -> bool:
    """Time fn, record its peak; an out-of-memory error or any failure becomes the stage's status."""
    meter.start()
    began = time.perf_counter()
    status, detail = "ok", ""
    try:
        detail = fn() or ""
    except torch.OutOfMemoryError as err:
        status, detail = "OOM", one_line(err, 160)
    except Exception as err:  # a broken stage must show in the table, not end the check
        status, detail = "error", one_line(err, 200)
        traceback.print_exc()
    seconds = time.perf_counter() - began
    results.append(StageResult(model, stage, status, round(seconds, 2), round(meter.peak_gb(), 3), detail))
    row = results[-1]
    print(f"[{model}] {stage}: {status} in {row.seconds:.1f} s, peak {row.peak_gb:.2f} GB  {detail}", flush=True)
    return status == "ok"


# ----------------------------------------------------------------------------- models


def paper_specs(names: list[str], latency_on: set[str], vocab: int) -> list[ModelSpec]:
    specs = []
    for name in names:
        if name in FAMILY_MODELS:
            config = config_for_dry_run(FAMILY_MODELS[name])
            specs.append(ModelSpec(name, config, default_mlp_only(config), False, FAMILY_STAGES))
            continue
        hub_id, mlp_only = PAPER_MODELS[name]
        config = config_for_dry_run(hub_id)
        config.vocab_size = max(config.vocab_size, vocab)  # every tokenizer id must be a valid row
        specs.append(ModelSpec(name, config, mlp_only, name in latency_on))
    return specs


def tiny_specs(latency_on: set[str], tokenizer) -> list[ModelSpec]:
    def tiny(kv_heads: int):
        return LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=192, num_hidden_layers=6,
                           num_attention_heads=4, num_key_value_heads=kv_heads, head_dim=16,
                           max_position_embeddings=256, tie_word_embeddings=False,
                           bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                           pad_token_id=tokenizer.pad_token_id)

    qwen3 = AutoConfig.for_model("qwen3", vocab_size=len(tokenizer), hidden_size=64, intermediate_size=192,
                                 num_hidden_layers=6, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                 max_position_embeddings=256, tie_word_embeddings=False,
                                 bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                 pad_token_id=tokenizer.pad_token_id)
    return [ModelSpec("tiny-llama2", tiny(4), False, "llama2-7b" in latency_on or "all" in latency_on),
            ModelSpec("tiny-llama3", tiny(2), True, "llama3-8b" in latency_on or "all" in latency_on),
            ModelSpec("tiny-qwen3", qwen3, default_mlp_only(qwen3), False, FAMILY_STAGES)]


def random_model(config, dtype: torch.dtype, device: str, tokenizer):
    """Random weights built directly on the device (no hub, no file)."""
    with torch.device(device):
        model = model_class(config).from_config(copy.deepcopy(config), dtype=dtype)
    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def seed_1_schedule(config, mlp_only: bool) -> list[dict]:
    """Shapes of the seed-1 path on a meta copy, as far as the model allows (a tiny one stops early)."""
    mode = "mlp_only" if mlp_only else "attention_mlp"
    for n in range(len(SEED_1), 0, -1):
        try:
            return simulate_path(config, parse_decisions(SEED_1, n), mode, "exact")
        except PlanError:
            continue
    raise PlanError("not even one step of the seed-1 path fits this model")


def pruned_config(config, mlp_only: bool, target: float = 0.40):
    """The config of the seed-1 path's iteration nearest `target` compression (shapes from the meta run)."""
    rows = seed_1_schedule(config, mlp_only)
    row = min(rows[1:], key=lambda r: abs(r["compression"] - target))
    pruned = copy.deepcopy(config)
    pruned.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    pruned.num_hidden_layers = row["layers"]
    pruned.num_attention_heads = row["query_heads"]
    pruned.num_key_value_heads = row["kv_heads"]
    pruned.intermediate_size = row["intermediate_size"]
    return pruned, row


# ----------------------------------------------------------------------------- stages


def prune_settings(spec: ModelSpec, scale: Scale, save_dir: str) -> PruneSettings:
    """Calibration, reference and probe text come from the shipped instruction set (embedded name)."""
    return PruneSettings(model_name="smollm2-135m", save_dir=save_dir, path="ppl", mlp_only=spec.mlp_only,
                         num_calibration_prompts=scale.calibration_prompts,
                         num_reference_prompts=scale.reference_prompts, max_calibration_length=scale.max_length)


def ppl_decision(state: dict, spec: ModelSpec, scale: Scale, device: str, dtype, tokenizer, work: str) -> str:
    settings = prune_settings(spec, scale, work)
    adapter = state["adapter"]
    selector = paths.open_selector(settings, Path(work), adapter, True, tokenizer, "unused", dtype, device, False)
    choice = selector.choose(adapter, state["score_fn"], WidthCarry())
    ppl = {d: f"{c['scores']['ppl']:.4g}" if "scores" in c else "impossible" for d, c in choice.candidates.items()}
    return f"chose {choice.decision} by {choice.chosen_by} (ppl L {ppl.get('L')}, G {ppl.get('G')})"


def recovery_setup(state: dict, scale: Scale, cap_gb: float, dtype, tokenizer, objective: str = "sft"):
    """(settings, plan, records): the drivers' defaults (packed batches) fitted to the cap; examples
    of 512, 511, 510, ... tokens."""
    settings = RecoverySettings(max_steps=scale.recovery_steps, max_length=scale.max_length, save_steps=10**6,
                                logging_steps=1, max_memory_gb=cap_gb, objective=objective)
    settings, plan = fit_recovery_settings(settings, state["model"].config, dtype, DEFAULT_TARGETS)
    count = scale.recovery_steps * settings.batch_size * settings.grad_accum
    lengths = [scale.max_length - k % (scale.max_length // 4) for k in range(count)]
    return settings, plan, exact_length_records(tokenizer, lengths)


def recovery_steps(state: dict, scale: Scale, cap_gb: float, dtype, tokenizer, work: str) -> str:
    """Packed sft recovery steps; the merged model replaces the current one."""
    settings, plan, records = recovery_setup(state, scale, cap_gb, dtype, tokenizer)
    report = train_lora(state["model"], tokenizer, records, settings, work, progress=False)
    return merged_report(state, report, plan)


def merged_report(state: dict, report, plan) -> str:
    state["model"] = merge_lora(report.peft_model)
    state["adapter"] = get_adapter(state["model"])
    s = report.stats
    steps = f"{s['global_steps']} step{'' if s['global_steps'] == 1 else 's'}"
    return (f"{steps} at micro-batch {plan.micro_batch} x {plan.grad_accum}, checkpointing "
            f"{'on' if plan.gradient_checkpointing else 'off'}, plan estimate {plan.estimate.total_gb:.2f} GB; "
            f"{s['tokens_per_second']} tokens/s, loss {s['final_train_loss']:.3f}")


def teacher_cache(state: dict, scale: Scale, cap_gb: float, dtype, tokenizer, work: str) -> str:
    """The teacher pass of distillation, once: the current model stands in for the dense teacher and
    its top-64 targets over the recovery records are stored (mop.recover.teacher_cache)."""
    settings, _, records = recovery_setup(state, scale, cap_gb, dtype, tokenizer, "kd")
    examples = encode_records(tokenizer, records, settings.max_length)
    key = {"teacher": "random weights", "tokenizer": tokenizer_fingerprint(tokenizer), "data": str(len(examples)),
           "max_length": settings.max_length, "top_k": settings.kd_top_k, "temperature": 1.0, "dtype": "float16"}
    folder = build_cache(Path(work), key, state["model"], pad_id_of(tokenizer), examples,
                         batch_examples=settings.batch_size, progress=False)
    state["cache"] = TeacherCache.open(folder, key)
    info = json.loads((folder / "complete.json").read_text())
    return f"{info['examples']} examples, {info['positions']:,} positions, {info['bytes'] / 2 ** 20:.1f} MiB"


def cache_kd_steps(state: dict, scale: Scale, cap_gb: float, dtype, tokenizer, work: str) -> str:
    """`--objective kd` recovery steps reading the teacher cache: no teacher on the GPU."""
    settings, plan, records = recovery_setup(state, scale, cap_gb, dtype, tokenizer, "kd")
    report = train_lora(state["model"], tokenizer, records, settings, work, progress=False,
                           teacher_cache=state.pop("cache"))
    return merged_report(state, report, plan)


def lm_eval_items(state: dict, scale: Scale, tokenizer) -> str:
    from lm_eval import simple_evaluate  # lm_eval is imported only for this stage (slow to import)
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=state["model"], tokenizer=tokenizer, batch_size=8)
    raw = simple_evaluate(model=lm, tasks=[EVAL_TASK], num_fewshot=0, limit=scale.eval_items,
                          task_manager=task_manager_for([EVAL_TASK], TASKS_DIR), log_samples=False)
    metrics = summarize(raw, "random weights", "gpu_check", 0)["tasks"][EVAL_TASK]
    return f"{EVAL_TASK} acc {metrics['acc']:.3f} on {scale.eval_items} items (random weights)"


def latency_rows(results, meter, spec: ModelSpec, scale: Scale, device: str, dtype, tokenizer, compile_backend: str):
    """Eager and compiled latency at 0% and about 40% compression (fresh random models)."""
    pruned, row = pruned_config(spec.config, spec.mlp_only)
    settings = {"input_tokens": scale.input_tokens, "new_tokens": scale.new_tokens, "runs": scale.latency_runs,
                "warmup": scale.latency_warmup, "compile": latency.compile_setup_for(device, "auto", compile_backend)}
    dense_params = None
    for label, config in (("0%", spec.config), (f"{100 * row['compression']:.0f}% (it. {row['iteration']})", pruned)):
        for mode in ("eager", "compiled"):
            def timed_generation(config=config, mode=mode):
                nonlocal dense_params
                model = random_model(config, dtype, device, tokenizer)
                params = count_parameters(model)
                dense_params = dense_params or params
                try:
                    result = latency.time_modes(model, tokenizer, {**settings, "modes": (mode,)})[0]
                finally:
                    del model
                decode = result["decode_per_token_s"]
                return (f"{params / 1e9:.2f}B params ({100 * (1 - params / dense_params):.1f}% smaller): "
                        f"{result['total_s']['mean']:.3f} s per {scale.new_tokens} tokens, decode "
                        f"{1000 * decode:.2f} ms/token, first run {result['first_run_s']:.1f} s")
            run_stage(results, meter, spec.name, f"latency {label} {mode}", timed_generation)


def block_influence_step(adapter, batches) -> str:
    """One L step that scores every layer on the calibration batches first (mop.prune.steps.depth_step)."""
    def score_fn(a, heads):
        return amp_scores(a, batches, with_heads=heads, progress=False, with_layers=True)

    details = depth_step(adapter, BLOCK_INFLUENCE, score_fn)
    scores = details["layer_scores"]
    return (f"removed layer {details['removed_layer_index']} of {len(scores)} "
            f"(score {scores[details['removed_layer_index']]:.4f}; range {min(scores):.4f}-{max(scores):.4f})")


def check_model(spec: ModelSpec, args, scale: Scale, meter: MemoryMeter, tokenizer, results: list[StageResult]) -> None:
    device = args.device
    dtype = resolve_dtype("auto", device)
    state: dict = {}

    def build() -> str:
        state["model"] = random_model(spec.config, dtype, device, tokenizer)
        state["adapter"] = get_adapter(state["model"])
        return f"{count_parameters(state['model']) / 1e9:.2f}B parameters, {str(dtype).replace('torch.', '')}"

    if not run_stage(results, meter, spec.name, "build", build):
        results.extend(StageResult(spec.name, s, "skipped") for s in spec.stages[1:])
        return
    with tempfile.TemporaryDirectory(prefix="mop-gpu-check-") as work:
        batches = calibration_batches(prune_settings(spec, scale, work), tokenizer)
        mode = "mlp_only" if spec.mlp_only else "attention_mlp"
        state["score_fn"] = lambda adapter, heads: amp_scores(adapter, batches, with_heads=heads, progress=False)
        stages = {
            "ppl decision": lambda: ppl_decision(state, spec, scale, device, dtype, tokenizer, work),
            "G step": lambda: str(width_step(state["adapter"], state["score_fn"], mode, "exact", WidthCarry()).as_dict()),
            "L step": lambda: str(depth_step(state["adapter"])),
            "L step, block_influence": lambda: block_influence_step(state["adapter"], batches),
            "recovery, packed sft": lambda: recovery_steps(state, scale, args.cap_gb, dtype, tokenizer,
                                                           str(Path(work) / "ft")),
            "teacher cache": lambda: teacher_cache(state, scale, args.cap_gb, dtype, tokenizer, str(Path(work) / "cache")),
            "recovery, cache kd": lambda: cache_kd_steps(state, scale, args.cap_gb, dtype, tokenizer,
                                                         str(Path(work) / "kd")),
            "lm_eval": lambda: lm_eval_items(state, scale, tokenizer),
        }
        for stage in spec.stages[1:]:
            run_stage(results, meter, spec.name, stage, stages[stage])
    state.clear()
    if spec.latency:
        latency_rows(results, meter, spec, scale, device, dtype, tokenizer, args.compile_backend)


# ----------------------------------------------------------------------------- report


def print_table(results: list[StageResult], cap_gb: float, device_name: str) -> int:
    """Prints the table; returns the number of failed or over-cap stages."""
    print(f"\nMoP GPU check on {device_name}, cap {cap_gb:g} GB")
    print(f"{'model':<12} {'stage':<28} {'seconds':>8} {'peak GB':>8} {'within':>6}  detail")
    bad = 0
    for r in results:
        within = r.status == "ok" and r.peak_gb is not None and r.peak_gb <= cap_gb
        bad += r.status != "skipped" and not within
        status = "yes" if within else ("-" if r.status == "skipped" else "NO")
        seconds = "-" if r.seconds is None else f"{r.seconds:.1f}"
        peak = "-" if r.peak_gb is None else f"{r.peak_gb:.2f}"
        detail = r.detail if r.status == "ok" else f"{r.status}: {r.detail}"
        print(f"{r.model:<12} {r.stage:<28} {seconds:>8} {peak:>8} {status:>6}  {detail}")
    return bad


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--cap_gb", type=float, default=24.0)
    p.add_argument("--models", default="llama2-7b,llama3-8b,qwen3-8b")
    p.add_argument("--latency", default="llama2-7b", help="models whose latency is timed (names, all or none)")
    p.add_argument("--compile_backend", default=None,
                   help="torch.compile backend for --compile latency (default inductor; with --tiny: eager, "
                        "which traces the same static-cache decode step without inductor's minute-long C++ build)")
    p.add_argument("--tiny", action="store_true", help="tiny configs and short runs (CPU test of the same code)")
    p.add_argument("--out", help="also write the rows as JSON")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not available (use --tiny --device cpu for the CPU run)", file=sys.stderr)
        return 2
    began = time.perf_counter()
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_name("smollm2-135m"))
    latency_on = set(PAPER_MODELS) if args.latency == "all" else set(args.latency.split(","))
    names = args.models.split(",")
    specs = tiny_specs(latency_on, tokenizer) if args.tiny else paper_specs(names, latency_on, len(tokenizer))
    scale = TINY_SCALE if args.tiny else PAPER_SCALE
    args.compile_backend = args.compile_backend or ("eager" if args.tiny else "inductor")
    meter = MemoryMeter(args.device, args.cap_gb)
    paths.freeze_startup_objects()  # each stage starts with a full collection: keep it cheap
    device_name = torch.cuda.get_device_name(args.device) if meter.cuda else "cpu"
    print(f"device {device_name}: {meter.apply_cap()}; tokenizer: embedded SmolLM2 ({len(tokenizer)} tokens)")
    for spec in specs:
        print(f"{spec.name}: {count_parameters(build_meta_model(spec.config)):,} parameters "
              f"(vocabulary {spec.config.vocab_size})", flush=True)
    results: list[StageResult] = []
    for spec in specs:
        check_model(spec, args, scale, meter, tokenizer, results)
        gc.collect()
    bad = print_table(results, args.cap_gb, device_name)
    minutes = (time.perf_counter() - began) / 60
    print(f"total {minutes:.1f} min; {len(results) - bad} of {len(results)} stages ran within {args.cap_gb:g} GB")
    if args.out:
        Path(args.out).write_text(json.dumps({"device": device_name, "cap_gb": args.cap_gb, "minutes": minutes,
                                              "rows": [asdict(r) for r in results]}, indent=2) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
