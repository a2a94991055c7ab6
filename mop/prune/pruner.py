"""The MoP iteration loop: depth (L) and width (G) steps along a decision path.

The model stays in memory between iterations; each iteration is saved atomically to
`<save_dir>/prune_iteration_<i>/` with its tokenizer and `mop_prune.json` (how it was made).
`pruning_summary.{csv,json}` are rebuilt from those files after every iteration, so they always
describe exactly the checkpoints on disk. Every L step records the layer it removed both in the
model as it was then (`removed_layer_index`) and in the unpruned model's numbering
(`removed_original_layer`, the summary's column of that name), and under `--depth_rule
block_influence` every layer's score. A resumed run reloads the last complete checkpoint and
its width carry (GQA accumulator, --align neuron debt), which gives the same weights as an
uninterrupted run.
"""

from __future__ import annotations

import csv
import dataclasses
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..core.disk import (GB, check_free_space, estimate_run_bytes, extra_bytes, folder_bytes, parse_keep,
                         remove_leftovers, retire)
from ..core.io import (UsageError, atomic_directory, atomic_file, is_nonempty_dir, locked_folder, read_metadata,
                       remove_stale_temporaries, software_versions, write_json)
from ..core.layout import (DECISIONS_FILE, PRUNE_META, RUN_CONFIG, RUN_STATE, RUN_TEMPORARIES, SUMMARY_CSV,
                           SUMMARY_JSON, completed_iterations, iteration_dir, iteration_meta_path, record_path)
from ..models.adapter import check_supported, get_adapter
from ..models.checkpoint import save_checkpoint
from ..models.data import calibration_prompt, load_alpaca_records, report_shortfall, resolve_data_source
from ..models.loading import (load_config, load_model, resolve_device, resolve_dtype, resolve_model_name, saved_dtype,
                              text_tokenizer)
from . import path_selection
from .budget import WidthCarry, normalise_decisions, parse_decisions
from .importance import amp_scores, amp_scores_streamed, batch_prompts
from .preflight import check_prune_inputs, check_resume_state
from .steps import (BLOCK_INFLUENCE, THIRD_TO_LAST, ScoreFn, apply_decision, check_depth_rule, describe,
                    random_decisions, simulate_path)
from .streaming import resolve_offload

SUMMARY_FIELDS = (
    "iteration", "decision", "layers", "query_heads", "kv_heads", "intermediate_size",
    "params", "compression",
)
DEPTH_FIELDS = ("removed_original_layer",)  # L steps: the removed layer in the unpruned model's numbering
DISK_FIELDS = ("checkpoint_bytes", "on_disk")


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
    align: int = 0  # MLP width a multiple of this after every G step (0: the paper's exact budget)
    depth_rule: str = THIRD_TO_LAST  # which layer an L step removes: third_to_last (paper) | block_influence
    calibration_data: str = "auto"
    num_calibration_prompts: int = 128
    calibration_batch_size: int = 16
    max_calibration_length: int = 512
    dtype: str = "auto"
    device: str = "auto"
    resume: bool = False
    path: str = "sequence"  # sequence | random | ppl | kl | cosine (see mop/prune/path_selection.py)
    probe_steps: int = 0  # metric paths: LoRA steps given to each candidate before scoring
    probe_samples: int = 64
    num_reference_prompts: int = 32  # held-out text the metric paths score on
    reference_top_k: int = 256  # next-token log-probs of the original kept per position (KL)
    candidates: str = "view"  # metric paths: score views of the live model, or deep copies (reference, 2x memory)
    keep_iterations: str = "all"  # or a comma list: other iterations are deleted once the next one is complete
    recovered_checkpoints: int = 0  # merged checkpoints a driver will make from this run (disk estimate)

    def __post_init__(self):
        self.decision_sequence = normalise_decisions(self.decision_sequence)
    offload: str = "auto"  # on: model in CPU memory, decoder layers streamed through the device (mop/prune/streaming.py)

    @property
    def width_mode(self) -> str:
        return "mlp_only" if self.mlp_only else "attention_mlp"


# ----------------------------------------------------------------------------- the run


def write_summary(save_dir: Path, dense_row: dict) -> list[dict]:
    """Rows of every complete iteration; runs with a chosen path add both candidates' scores."""
    rows = [dense_row]
    for i in range(1, completed_iterations(save_dir) + 1):
        meta = read_metadata(iteration_meta_path(save_dir, i), kind=PRUNE_META)
        disk = {"checkpoint_bytes": meta.get("checkpoint_bytes"), "on_disk": iteration_dir(save_dir, i).is_dir()}
        depth = {"removed_original_layer": meta.get("details", {}).get("removed_original_layer")}
        rows.append({**{k: meta[k] for k in SUMMARY_FIELDS}, **depth, **disk, **path_selection.path_columns(meta)})
    write_json(save_dir / SUMMARY_JSON, rows)
    fields = SUMMARY_FIELDS + DEPTH_FIELDS + DISK_FIELDS + (
        path_selection.PATH_FIELDS if any("chosen_by" in r for r in rows) else ())
    with atomic_file(save_dir / SUMMARY_CSV) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def calibration_batches(settings: PruneSettings, processing) -> list[dict]:
    """Text calibration prompts (Alpaca), tokenised and batched."""
    source = resolve_data_source(settings.calibration_data, settings.model_name)
    records = load_alpaca_records(source, settings.num_calibration_prompts)
    report_shortfall("--num_calibration_prompts", settings.num_calibration_prompts, len(records), source)
    prompts = [calibration_prompt(r) for r in records]
    return batch_prompts(
        text_tokenizer(processing), prompts, settings.calibration_batch_size, settings.max_calibration_length
    )


def _check_resumable(save_dir: Path, settings: PruneSettings) -> None:
    """A resumed run must continue the same path on the same model."""
    stored = read_metadata(save_dir / RUN_CONFIG, ("settings",))["settings"]
    if isinstance(stored.get("decision_sequence"), str):  # runs stored before letters were normalised
        stored = {**stored, "decision_sequence": normalise_decisions(stored["decision_sequence"])}
    defaults = {f.name: f.default for f in dataclasses.fields(PruneSettings)}  # runs older than a setting
    keys = ["model_name", "mlp_only", "budget_rule", "align", "depth_rule", "calibration_data",
            "num_calibration_prompts", "seed", "path"]
    if settings.path == "sequence":
        keys.append("decision_sequence")
    if path_selection.is_metric_path(settings.path):
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
    path_selection.check_path_settings(settings)
    check_depth_rule(settings.depth_rule)
    if settings.align < 0:
        raise UsageError(f"--align must be 0 (off) or a positive number of neurons, got {settings.align}")
    decisions = parse_decisions(settings.decision_sequence, settings.num_iterations) if settings.path == "sequence" else None
    save_dir = Path(settings.save_dir)
    if save_dir.exists() and not save_dir.is_dir():
        raise UsageError(f"--save_dir {save_dir} exists and is not a folder")
    if settings.resume:
        if not (save_dir / RUN_CONFIG).exists():
            raise UsageError(f"--resume given but {save_dir} holds no pruning run")
        _check_resumable(save_dir, settings)
        check_resume_state(save_dir)
    elif is_nonempty_dir(save_dir):
        raise UsageError(f"--save_dir {save_dir} is not empty; pass --resume to continue it or choose another folder")
    model_path = resolve_model_name(settings.model_name)
    config = load_config(model_path)
    check_supported(config)
    if settings.path == "random":  # [(decision, 'random' | 'forced')], drawn up front
        decisions = random_decisions(config, settings.num_iterations, settings.seed, settings.width_mode,
                                     settings.budget_rule, settings.align)
    letters = [d if isinstance(d, str) else d[0] for d in decisions or []]
    schedule = simulate_path(config, letters, settings.width_mode, settings.budget_rule, settings.align)
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
    Inputs are checked before anything is loaded or written; the run folder is locked for the
    whole run (a second run on it stops with a one-line error naming this one).
    """
    check_prune_inputs(settings, text_calibration=batch_builder is calibration_batches)
    with locked_folder(settings.save_dir, f"the pruning run folder {settings.save_dir}"):
        remove_stale_temporaries(settings.save_dir, RUN_TEMPORARIES)  # left by a killed run
        return prune_locked(settings, score_fn, progress, batch_builder)


def prune_locked(settings: PruneSettings, score_fn: ScoreFn | None, progress: bool,
                 batch_builder: BatchBuilder) -> list[dict]:
    """The run itself, while this process holds the run folder's lock (see run_pruning)."""
    decisions, save_dir, model_path, config, schedule = prepare_run(settings)
    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device, saved_dtype(config))
    offload = resolve_offload(settings.offload, device, schedule[0]["params"] * dtype.itemsize)
    model_device = "cpu" if offload else device  # offload: weights and surgery on CPU, layers visit `device`
    if offload:
        print(f"offload on: the model stays in CPU memory, decoder layers are streamed through {device}", flush=True)
    seed_everything(settings.seed)
    kept = parse_keep(settings.keep_iterations, settings.num_iterations)

    start = completed_iterations(save_dir) if settings.resume else 0
    needed = estimate_run_bytes(schedule, settings.num_iterations, start, kept, dtype.itemsize, extra_bytes(model_path),
                                settings.recovered_checkpoints)
    check_free_space(save_dir, needed, f"pruning into {save_dir}")
    remove_leftovers(save_dir)
    if start >= settings.num_iterations:
        print(f"All {settings.num_iterations} iterations already complete in {save_dir}")
        report_decisions(save_dir, settings, decisions_taken(save_dir, settings.num_iterations))
        return write_summary(save_dir, schedule[0])
    # Original model (or the last complete checkpoint when resuming).
    source = iteration_dir(save_dir, start) if start else model_path
    model, processing = load_model(str(source), dtype, model_device)
    batches = batch_builder(settings, processing)
    if score_fn is None:
        with_layers = settings.depth_rule == BLOCK_INFLUENCE  # layer scores from the same pass

        def score_fn(adapter, with_heads):
            if offload:
                return amp_scores_streamed(adapter, batches, device, with_heads=with_heads, progress=progress,
                                           with_layers=with_layers)
            return amp_scores(adapter, batches, with_heads=with_heads, progress=progress, with_layers=with_layers)

    score_fn = finite_scores(score_fn, dtype)
    adapter = get_adapter(model)
    original_params = schedule[0]["params"]
    carry = restore_carry(save_dir, start, settings.align)
    provenance = {"settings": dataclasses.asdict(settings), "source_model": model_path, "versions": software_versions()}
    if not start:
        save_dir.mkdir(parents=True, exist_ok=True)
        write_json(save_dir / RUN_CONFIG, {
            "settings": provenance["settings"], "model_path": model_path, "versions": provenance["versions"],
            "schedule": schedule,
        })
    # Under offload, candidates are scored with the same layer streaming as the AMP pass.
    selector = path_selection.open_selector(settings, save_dir, adapter, start == 0, text_tokenizer(processing),
                                            model_path, dtype, model_device, progress,
                                            stream_device=device if offload else None)
    taken = decisions_taken(save_dir, start)
    original_layers = surviving_layers(save_dir, start, schedule[0]["layers"])
    for i in range(start + 1, settings.num_iterations + 1):
        began = time.perf_counter()
        decision, step_scores, path_record = next_decision(settings, decisions, i, selector, adapter, score_fn,
                                                           carry)
        details, carry = apply_decision(
            adapter, decision, step_scores, settings.width_mode, settings.budget_rule, carry, settings.depth_rule
        )
        if "removed_layer_index" in details:
            details["removed_original_layer"] = original_layers.pop(details["removed_layer_index"])
        taken.append(decision)
        row = {"iteration": i, "decision": decision, **describe(adapter, original_params)}
        meta = {
            **row, "details": details, "accumulator_after": carry.accumulator, "neuron_debt_after": carry.neuron_debt,
            "decisions_so_far": "".join(taken), "seconds": round(time.perf_counter() - began, 3), **provenance,
        }
        if path_record:
            meta["path"] = path_record
        save_iteration(save_dir, i, model, processing, meta)
        retire_unkept(save_dir, i, kept)
        write_json(save_dir / RUN_STATE, {"last_iteration": i, "accumulator": carry.accumulator,
                                          "neuron_debt": carry.neuron_debt})
        print(
            f"iteration {i:2d} {decision}: layers={row['layers']} heads={row['query_heads']}/{row['kv_heads']} "
            f"intermediate={row['intermediate_size']} params={row['params']:,} "
            f"compression={100 * row['compression']:.2f}%  ({meta['seconds']:.1f}s){removed_note(details)}",
            flush=True,
        )
        if selector is not None:
            print(path_selection.format_choice(path_record), flush=True)
        write_decisions(save_dir, settings, taken)
    report_decisions(save_dir, settings, taken)
    rows = write_summary(save_dir, schedule[0])
    report_disk(save_dir, rows)
    return rows


def finite_scores(score_fn: ScoreFn, dtype: torch.dtype) -> ScoreFn:
    """`score_fn` that stops the run (a one-line UsageError naming the layer) when a score is NaN
    or infinite, before any unit is chosen by it; the checkpoints written so far stay as they are."""

    def scored(adapter, with_heads):
        scores = score_fn(adapter, with_heads)
        where = scores.non_finite()
        if where is not None:
            raise UsageError(f"the {where} importance scores are NaN/inf (activations overflowing {dtype}?); "
                             "pruning stopped, the checkpoints already written are kept")
        return scores

    return scored


def save_iteration(save_dir: Path, i: int, model, processing, meta: dict) -> None:
    """The checkpoint folder (atomically), then its record (metadata that outlives the folder)."""
    with atomic_directory(iteration_dir(save_dir, i)) as tmp:
        save_checkpoint(model, processing, tmp)
        meta["checkpoint_bytes"] = folder_bytes(tmp)
        write_json(tmp / PRUNE_META, meta)
    record_path(save_dir, i).parent.mkdir(exist_ok=True)
    write_json(record_path(save_dir, i), meta)


def retire_unkept(save_dir: Path, newest: int, kept: set[int] | None) -> None:
    """Delete the checkpoints older than the newest complete one that are not to be kept (also
    any whose deletion an interruption cut short); their records stay in iteration_records/."""
    if kept is None:
        return
    for i in range(1, newest):
        if i not in kept:
            retire(iteration_dir(save_dir, i))


def report_disk(save_dir: Path, rows: list[dict]) -> None:
    kept = [r["iteration"] for r in rows[1:] if r.get("on_disk")]
    print(f"disk: {folder_bytes(save_dir) / GB:.2f} GB in {save_dir}; checkpoints kept: "
          f"{', '.join(map(str, kept)) or 'none'} of {len(rows) - 1}", flush=True)


def removed_note(details: dict) -> str:
    """`, removed layer 24 (original 27)` for an L step's log line; empty for a G step."""
    if "removed_layer_index" not in details:
        return ""
    return f", removed layer {details['removed_layer_index']} (original {details['removed_original_layer']})"


def surviving_layers(save_dir: Path, completed: int, num_layers: int) -> list[int]:
    """The unpruned model's numbers of the layers left after iteration `completed`: every L
    step's metadata says which current layer it removed, so replaying those removals over
    0..num_layers-1 gives the numbering (also for runs made before the original index was stored)."""
    layers = list(range(num_layers))
    for i in range(1, completed + 1):
        removed = read_metadata(iteration_meta_path(save_dir, i), kind=PRUNE_META).get("details", {}).get("removed_layer_index")
        if removed is not None:
            layers.pop(removed)
    return layers


def restore_carry(save_dir: Path, completed: int, align: int) -> WidthCarry:
    """The width carry after iteration `completed` (from its metadata; runs before --align had no debt)."""
    if not completed:
        return WidthCarry(align=align)
    meta = read_metadata(iteration_meta_path(save_dir, completed), ("accumulator_after",), PRUNE_META)
    return WidthCarry(meta["accumulator_after"], meta.get("neuron_debt_after", 0), align)


def next_decision(settings: PruneSettings, decisions, i: int, selector, adapter, score_fn: ScoreFn, carry: WidthCarry):
    """(decision, score function for the live step, path record for the metadata or None)."""
    if selector is not None:
        choice = selector.choose(adapter, score_fn, carry)
        return choice.decision, choice.live_score_fn, choice.as_dict(settings.path)
    if settings.path == "random":
        decision, chosen_by = decisions[i - 1]
        return decision, score_fn, {"path": "random", "chosen_by": chosen_by, "candidates": {}}
    return decisions[i - 1], score_fn, None


def report_decisions(save_dir: Path, settings: PruneSettings, taken: list[str]) -> None:
    """Print (and store, in path_decisions.json) the decision string taken and its replay flags."""
    sequence = write_decisions(save_dir, settings, taken)
    print(f"decisions taken ({settings.path} path): {sequence}  -- replay with "
          f"--path sequence --decision_sequence {sequence} --num_iterations {len(taken)}", flush=True)


def decisions_taken(save_dir: Path, completed: int) -> list[str]:
    """Decisions of iterations 1..completed, read back from their metadata (for --resume)."""
    return [read_metadata(iteration_meta_path(save_dir, i), ("decision",), PRUNE_META)["decision"] for i in range(1, completed + 1)]


def write_decisions(save_dir: Path, settings: PruneSettings, taken: list[str]) -> str:
    """Store (and return) the decision string of the completed iterations and its replay flags."""
    sequence = "".join(taken)
    replay = f"--path sequence --decision_sequence {sequence} --num_iterations {len(taken)}" if taken else ""
    write_json(save_dir / DECISIONS_FILE, {
        "path": settings.path, "seed": settings.seed, "num_iterations": len(taken),
        "decision_sequence": sequence, "replay_flags": replay,
    })
    return sequence
