"""The MoP iteration loop: depth (L) and width (G) steps along a decision path.

The model stays in memory between iterations; each iteration is saved atomically to
`<save_dir>/prune_iteration_<i>/` with its tokenizer and `mop_prune.json` (how it was made).
`pruning_summary.{csv,json}` are rebuilt from those files after every iteration, so they always
describe exactly the checkpoints on disk. A resumed run reloads the last complete checkpoint and
its accumulator, which gives the same weights as an uninterrupted run.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .adapter import DecoderAdapter, check_supported, count_parameters, get_adapter
from .importance import ImportanceScores, amp_scores, amp_scores_streamed, batch_prompts
from .io import UsageError, atomic_directory, one_line, is_nonempty_dir, read_json, software_versions, write_json
from . import paths
from .plan import LayerShape, WidthStep, check_depth_step, parse_decisions, plan_width_step
from .streaming import resolve_offload
from .surgery import depth_index, drop_layer, remove_groups, remove_neurons, sync_config

ITERATION_DIR = "prune_iteration_{}"
ITERATION_META = "mop_prune.json"
SUMMARY_FIELDS = (
    "iteration", "decision", "layers", "query_heads", "kv_heads", "intermediate_size",
    "params", "compression",
)

ScoreFn = Callable[[DecoderAdapter, bool], ImportanceScores]


@dataclass
class PruneSettings:
    """Everything that determines a pruning run (stored next to every checkpoint)."""

    model_name: str
    save_dir: str
    num_iterations: int = 18
    decision_sequence: str = "LGGLLLGGLLGLGLLGGL"
    seed: int = 1
    mlp_only: bool = False
    budget_rule: str = "exact"
    calibration_data: str = "auto"
    num_calibration_prompts: int = 128
    calibration_batch_size: int = 16
    max_calibration_length: int = 512
    dtype: str = "auto"
    device: str = "auto"
    resume: bool = False
    path: str = "sequence"  # sequence | random | ppl | kl | cosine (see mop/paths.py)
    probe_steps: int = 0  # metric paths: LoRA steps given to each candidate before scoring
    probe_samples: int = 64
    num_reference_prompts: int = 32  # held-out text the metric paths score on
    reference_top_k: int = 256  # next-token log-probs of the original kept per position (KL)
    offload: str = "auto"  # on: model in CPU memory, decoder layers streamed through the device (mop/streaming.py)

    @property
    def width_mode(self) -> str:
        return "mlp_only" if self.mlp_only else "attention_mlp"


# ----------------------------------------------------------------------------- single steps


def layer_shape(adapter: DecoderAdapter) -> LayerShape:
    first = adapter.layers()[0]
    q, _, _, _ = adapter.attention_projections(first)
    gate, _, _ = adapter.mlp_projections(first)
    return LayerShape(
        num_layers=adapter.num_layers,
        hidden=adapter.hidden_size,
        head_dim=adapter.head_dim,
        query_heads=adapter.query_heads(first),
        kv_heads=adapter.kv_heads(first),
        intermediate=gate.out_features,
        attention_bias=q.bias is not None,
        mlp_bias=gate.bias is not None,
    )


def depth_step(adapter: DecoderAdapter) -> dict:
    """Remove the third-to-last decoder layer."""
    check_depth_step(layer_shape(adapter))
    index = depth_index(adapter)
    drop_layer(adapter, index)
    return {"removed_layer_index": index}


def lowest(scores: torch.Tensor, k: int) -> list[int]:
    """Indices of the k lowest scores (ties broken by position, so runs are reproducible)."""
    return torch.argsort(scores.float().cpu(), stable=True)[:k].tolist()


def width_step(adapter: DecoderAdapter, score_fn: ScoreFn, mode: str, rule: str, accumulator: float) -> WidthStep:
    """Remove the least important groups and neurons, the same counts in every layer."""
    step = plan_width_step(layer_shape(adapter), mode, rule, accumulator)
    scores = score_fn(adapter, step.groups > 0)
    group_size = adapter.group_size()
    for i, layer in enumerate(adapter.layers()):
        if step.groups:
            remove_groups(adapter, layer, lowest(scores.group_scores(i, group_size), step.groups))
        remove_neurons(adapter, layer, lowest(scores.neurons[i], step.neurons))
    sync_config(adapter)
    return step


def placeholder_scores(adapter: DecoderAdapter, with_heads: bool) -> ImportanceScores:
    """Zero scores (prune the first units): for dry runs, where only shapes matter."""
    heads, neurons = [], []
    for layer in adapter.layers():
        heads.append(torch.zeros(adapter.query_heads(layer)))
        neurons.append(torch.zeros(adapter.mlp_projections(layer)[0].out_features))
    return ImportanceScores(heads, neurons)


def apply_decision(adapter, decision: str, score_fn: ScoreFn, mode: str, rule: str, accumulator: float):
    """One iteration: returns (details for the log, accumulator after it)."""
    if decision == "L":
        return depth_step(adapter), accumulator
    step = width_step(adapter, score_fn, mode, rule, accumulator)
    return step.as_dict(), step.accumulator


def describe(adapter: DecoderAdapter, original_params: int) -> dict:
    shape = layer_shape(adapter)
    params = count_parameters(adapter.model)
    return {
        "layers": shape.num_layers,
        "query_heads": shape.query_heads,
        "kv_heads": shape.kv_heads,
        "intermediate_size": shape.intermediate,
        "params": params,
        "compression": round(1 - params / original_params, 6),
    }


# ----------------------------------------------------------------------------- loading


def resolve_dtype(name: str, device: str, saved: torch.dtype | None = None) -> torch.dtype:
    """`auto`: float32 on CPU; on CUDA the checkpoint's own half precision (Llama-2 and LLaVA
    are stored in float16, Llama-3 in bfloat16), so pruning never re-rounds the weights."""
    if name == "auto":
        if not device.startswith("cuda"):
            return torch.float32
        return saved if saved in (torch.float16, torch.bfloat16) else torch.bfloat16
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError:
        raise UsageError(f"unknown --dtype {name!r}; choose auto, float32, bfloat16 or float16") from None


def saved_dtype(config) -> torch.dtype | None:
    """The dtype a checkpoint is stored in, from its config (None if not recorded)."""
    value = getattr(config, "torch_dtype", None) or getattr(config, "dtype", None)
    if isinstance(value, str):
        value = getattr(torch, value, None)
    return value if isinstance(value, torch.dtype) else None


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name} requested but CUDA is not available")
    return name


def load_config(model_path: str):
    from transformers import AutoConfig

    if model_path.startswith((".", "/", "~")) and not Path(model_path).expanduser().exists():
        raise UsageError(f"model path not found: {model_path}")
    try:
        return AutoConfig.from_pretrained(model_path)
    except Exception as err:
        raise UsageError(f"cannot load the config of {model_path!r}: {one_line(err)}") from None


def model_class(config):
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    return AutoModelForImageTextToText if config.model_type == "llava" else AutoModelForCausalLM


def load_model(model_path: str, dtype: torch.dtype, device: str):
    """Model and its text/image processing (tokenizer, or a processor for LLaVA)."""
    from transformers import AutoProcessor, AutoTokenizer

    config = load_config(model_path)
    check_supported(config)
    model = model_class(config).from_pretrained(model_path, dtype=dtype).to(device)
    model.eval()
    if config.model_type == "llava":
        processing = AutoProcessor.from_pretrained(model_path)
        tokenizer = processing.tokenizer
    else:
        processing = tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, processing


def text_tokenizer(processing):
    """The tokenizer inside a processor, or the tokenizer itself."""
    return getattr(processing, "tokenizer", processing)


def build_meta_model(config):
    """The model's structure without weights: shapes and parameter counts only."""
    with torch.device("meta"):
        return model_class(config).from_config(config)


# ----------------------------------------------------------------------------- the schedule


def simulate_path(config, decisions: list[str], mode: str, rule: str) -> list[dict]:
    """Run the path on a meta-device copy: validates it and gives every iteration's shape.

    Shapes do not depend on importance scores, so this is the exact schedule of a real run.
    """
    adapter = get_adapter(build_meta_model(copy.deepcopy(config)))  # surgery edits the config
    original = count_parameters(adapter.model)
    rows = [{"iteration": 0, "decision": "-", **describe(adapter, original)}]
    accumulator = 0.0
    for i, decision in enumerate(decisions, start=1):
        try:
            details, accumulator = apply_decision(adapter, decision, placeholder_scores, mode, rule, accumulator)
        except UsageError as err:
            raise type(err)(f"iteration {i} ({decision}): {err}") from None
        rows.append({"iteration": i, "decision": decision, **describe(adapter, original), **details})
    return rows


# ----------------------------------------------------------------------------- the run


def iteration_dir(save_dir: Path, i: int) -> Path:
    return save_dir / ITERATION_DIR.format(i)


def completed_iterations(save_dir: Path) -> int:
    """Number of consecutive complete iterations 1..k (a folder's final name means complete)."""
    k = 0
    while (iteration_dir(save_dir, k + 1) / ITERATION_META).exists():
        k += 1
    return k


def write_summary(save_dir: Path, dense_row: dict) -> list[dict]:
    """Rows of every complete iteration; runs with a chosen path add both candidates' scores."""
    rows = [dense_row]
    for i in range(1, completed_iterations(save_dir) + 1):
        meta = read_json(iteration_dir(save_dir, i) / ITERATION_META)
        rows.append({**{k: meta[k] for k in SUMMARY_FIELDS}, **paths.path_columns(meta)})
    write_json(save_dir / "pruning_summary.json", rows)
    fields = SUMMARY_FIELDS + (paths.PATH_FIELDS if any("chosen_by" in r for r in rows) else ())
    tmp = save_dir / ".tmp-pruning_summary.csv"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(save_dir / "pruning_summary.csv")
    return rows


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def calibration_batches(settings: PruneSettings, processing) -> list[dict]:
    """Text calibration prompts (Alpaca), tokenised and batched."""
    from .data import calibration_prompt, load_alpaca_records, resolve_data_source

    source = resolve_data_source(settings.calibration_data, settings.model_name)
    records = load_alpaca_records(source, settings.num_calibration_prompts)
    prompts = [calibration_prompt(r) for r in records]
    return batch_prompts(
        text_tokenizer(processing), prompts, settings.calibration_batch_size, settings.max_calibration_length
    )


def _check_resumable(save_dir: Path, settings: PruneSettings) -> None:
    """A resumed run must continue the same path on the same model."""
    stored = read_json(save_dir / "run_config.json")["settings"]
    defaults = {f.name: f.default for f in dataclasses.fields(PruneSettings)}  # runs older than a setting
    keys = ["model_name", "mlp_only", "budget_rule", "calibration_data", "num_calibration_prompts", "seed", "path"]
    if settings.path == "sequence":
        keys.append("decision_sequence")
    if paths.is_metric_path(settings.path):
        keys += ["probe_steps", "probe_samples", "num_reference_prompts", "reference_top_k"]
    for key in keys:
        if stored.get(key, defaults[key]) != getattr(settings, key):
            raise UsageError(
                f"cannot resume {save_dir}: it was made with {key}={stored.get(key)!r}, "
                f"not {getattr(settings, key)!r}"
            )


def prepare_run(settings: PruneSettings):
    """All checks that can fail on bad input, before anything is written.

    `decisions` is the whole path for sequence and random paths, None for a metric path (chosen
    while pruning); the schedule then holds the unpruned model's row only.
    """
    from .embedded import resolve_model_name

    paths.check_path_settings(settings)
    decisions = parse_decisions(settings.decision_sequence, settings.num_iterations) if settings.path == "sequence" else None
    save_dir = Path(settings.save_dir)
    if save_dir.exists() and not save_dir.is_dir():
        raise UsageError(f"--save_dir {save_dir} exists and is not a folder")
    if settings.resume:
        if not (save_dir / "run_config.json").exists():
            raise UsageError(f"--resume given but {save_dir} holds no pruning run")
        _check_resumable(save_dir, settings)
    elif is_nonempty_dir(save_dir):
        raise UsageError(f"--save_dir {save_dir} is not empty; pass --resume to continue it or choose another folder")
    model_path = resolve_model_name(settings.model_name)
    config = load_config(model_path)
    check_supported(config)
    if settings.path == "random":  # [(decision, 'random' | 'forced')], drawn up front
        decisions = paths.random_decisions(config, settings.num_iterations, settings.seed, settings.width_mode,
                                           settings.budget_rule)
    letters = [d if isinstance(d, str) else d[0] for d in decisions or []]
    schedule = simulate_path(config, letters, settings.width_mode, settings.budget_rule)
    return decisions, save_dir, model_path, config, schedule


BatchBuilder = Callable[[PruneSettings, object], list]


def run_pruning(
    settings: PruneSettings,
    score_fn: ScoreFn | None = None,
    progress: bool = True,
    batch_builder: BatchBuilder = calibration_batches,
) -> list[dict]:
    """Prune along the decision path, saving every iteration; returns the summary rows.

    `batch_builder(settings, tokenizer_or_processor)` makes the calibration batches (text by
    default; LLaVA can pass image + question batches). `score_fn` replaces AMP scoring (tests).
    """
    decisions, save_dir, model_path, config, schedule = prepare_run(settings)
    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device, saved_dtype(config))
    offload = resolve_offload(settings.offload, device, schedule[0]["params"] * dtype.itemsize)
    model_device = "cpu" if offload else device  # offload: weights and surgery on CPU, layers visit `device`
    if offload:
        print(f"offload on: the model stays in CPU memory, decoder layers are streamed through {device}", flush=True)
    seed_everything(settings.seed)

    start = completed_iterations(save_dir) if settings.resume else 0
    if start >= settings.num_iterations:
        print(f"All {settings.num_iterations} iterations already complete in {save_dir}")
        report_decisions(save_dir, settings, paths.decisions_taken(save_dir, settings.num_iterations))
        return write_summary(save_dir, schedule[0])
    # Original model (or the last complete checkpoint when resuming).
    source = iteration_dir(save_dir, start) if start else model_path
    model, processing = load_model(str(source), dtype, model_device)
    batches = batch_builder(settings, processing)
    if score_fn is None:
        def score_fn(adapter, with_heads):
            if offload:
                return amp_scores_streamed(adapter, batches, device, with_heads=with_heads, progress=progress)
            return amp_scores(adapter, batches, with_heads=with_heads, progress=progress)

    adapter = get_adapter(model)
    original_params = schedule[0]["params"]
    accumulator = read_json(iteration_dir(save_dir, start) / ITERATION_META)["accumulator_after"] if start else 0.0
    provenance = {"settings": dataclasses.asdict(settings), "source_model": model_path, "versions": software_versions()}
    if not start:
        save_dir.mkdir(parents=True, exist_ok=True)
        write_json(save_dir / "run_config.json", {
            "settings": provenance["settings"], "model_path": model_path, "versions": provenance["versions"],
            "schedule": schedule,
        })
    # Candidate scoring runs where the model is (CPU under offload) until it streams too.
    selector = paths.open_selector(settings, save_dir, adapter, start == 0, text_tokenizer(processing), model_path,
                                   dtype, model_device, progress)
    taken = paths.decisions_taken(save_dir, start)
    for i in range(start + 1, settings.num_iterations + 1):
        began = time.perf_counter()
        decision, step_scores, path_record = next_decision(settings, decisions, i, selector, adapter, score_fn,
                                                           accumulator)
        details, accumulator = apply_decision(
            adapter, decision, step_scores, settings.width_mode, settings.budget_rule, accumulator
        )
        taken.append(decision)
        row = {"iteration": i, "decision": decision, **describe(adapter, original_params)}
        meta = {
            **row, "details": details, "accumulator_after": accumulator,
            "decisions_so_far": "".join(taken), "seconds": round(time.perf_counter() - began, 3), **provenance,
        }
        if path_record:
            meta["path"] = path_record
        with atomic_directory(iteration_dir(save_dir, i)) as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            processing.save_pretrained(tmp)
            write_json(tmp / ITERATION_META, meta)
        write_json(save_dir / "run_state.json", {"last_iteration": i, "accumulator": accumulator})
        print(
            f"iteration {i:2d} {decision}: layers={row['layers']} heads={row['query_heads']}/{row['kv_heads']} "
            f"intermediate={row['intermediate_size']} params={row['params']:,} "
            f"compression={100 * row['compression']:.2f}%  ({meta['seconds']:.1f}s)",
            flush=True,
        )
        if selector is not None:
            print(paths.format_choice(path_record), flush=True)
        paths.write_decisions(save_dir, settings, taken)
    report_decisions(save_dir, settings, taken)
    return write_summary(save_dir, schedule[0])


def next_decision(settings: PruneSettings, decisions, i: int, selector, adapter, score_fn: ScoreFn, accumulator: float):
    """(decision, score function for the live step, path record for the metadata or None)."""
    if selector is not None:
        choice = selector.choose(adapter, score_fn, accumulator)
        return choice.decision, choice.live_score_fn, choice.as_dict(settings.path)
    if settings.path == "random":
        decision, chosen_by = decisions[i - 1]
        return decision, score_fn, {"path": "random", "chosen_by": chosen_by, "candidates": {}}
    return decisions[i - 1], score_fn, None


def report_decisions(save_dir: Path, settings: PruneSettings, taken: list[str]) -> None:
    """Print (and store, in path_decisions.json) the decision string taken and its replay flags."""
    sequence = paths.write_decisions(save_dir, settings, taken)
    print(f"decisions taken ({settings.path} path): {sequence}  -- replay with "
          f"--path sequence --decision_sequence {sequence} --num_iterations {len(taken)}", flush=True)
