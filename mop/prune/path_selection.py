"""Path selection: which step, depth (L) or width (G), each iteration takes.

`--path` chooses how:
- `sequence` (default): the letters of `--decision_sequence`, as the released scripts replay
  pre-generated random strings.
- `random`: one coin per iteration from `random.Random(--seed)` (the same seed gives the same
  path). When the drawn step is impossible (a depth step would leave fewer than 3 layers, a
  width step would take the last head/neuron) the other one is taken and logged as `forced`.
  The whole path is drawn up front on a weightless copy, so it is validated like a sequence.
- `ppl`, `kl`, `cosine`: the paper's guided path. At every iteration both candidates are
  scored, one at a time, as views of the live model (mop/prune/candidates.py: the L candidate runs
  without the layer it would delete, the G candidate with the units it would remove masked to
  zero), so no copy of the model is made. The G candidate's AMP scores are computed once on the
  current model and reused when the live model takes the G step; under `--depth_rule
  block_influence` the same calibration pass scores the layers, so the L candidate (and the
  live L step) drop the layer that pass ranks lowest. The live model then takes the winning
  step itself; it never sees a probe update.

Probe (`--probe_steps` > 0): each candidate gets a short LoRA fine-tune
(`mop.recover.trainer.train_lora`, the model's published LoRA rank and alpha, batch 4, `--probe_samples` records) on
its decoder's q/k/v/o/gate/up/down projections (the masked inputs included); it is scored with
the adapter active, then the adapter is unloaded without merging. The final probe loss is logged.

Held-out text. Records are taken from the calibration data source in order:
`[0, C)` are the AMP calibration prompts (C = --num_calibration_prompts), `[C, C + R)` the
reference text (R = --num_reference_prompts), `[C + R, C + R + P)` the probe's training records
(P = --probe_samples). Each reference text is the calibration format followed by the answer,
`calibration_prompt(record) + " " + output`, tokenised as for calibration (truncated to
--max_calibration_length, batched by --calibration_batch_size, right-padded).

What is compared, always against the *unpruned* model, over the same reference tokens:
- `ppl`: the candidate's perplexity, exp(mean negative log-likelihood of the next token) over
  every prediction position, i.e. every real token whose next token is also real (padding and
  the last token of each text predict nothing); tokens of all texts are pooled.
- `kl`: mean over the same prediction positions of KL(p_original || p_candidate) of the
  next-token distributions. Only the original's `--reference_top_k` most likely tokens are
  stored (fp32 log-probs + indices) plus the log of the remaining mass, and the KL is computed
  between the two distributions coarsened to those k tokens + one "everything else" bucket
  (the candidate's bucket is its mass outside the same k tokens). By the data-processing
  inequality this is a lower bound of the full KL, exact when k >= the vocabulary size.
- `cosine`: mean cosine similarity between the candidate's and the original's final hidden
  states -- the output of the decoder's final RMSNorm, i.e. the input of lm_head -- per real
  (non-padding) token of every text, pooled over texts.
Lower ppl, lower KL, higher cosine wins. A tie (equal floats) goes to L, the step that also
shortens the forward pass; a NaN score loses to any number.

The original's outputs (token ids, top-k log-probs, final hidden states in fp32) are computed
once and cached in the run folder (`path_reference.safetensors`), so `--resume` needs no
recomputation. Every iteration's `mop_prune.json` carries both candidates' scores, the choice
and the probe losses under "path"; `path_decisions.json` holds the decision string taken and
the flags that replay it (`--path sequence --decision_sequence <string>`).

Under `--offload` (model in CPU memory, mop/prune/streaming.py) the reference and every candidate are
computed by streaming the decoder layers through the device one at a time, as the AMP pass does;
the final norm and the vocabulary projection visit the device for the scoring itself. The
candidate views work unchanged (the L view is the shortened layer list the stream walks; the G
masks are hooks on the modules, which stay on the modules when their weights visit the device).
A LoRA probe (`--probe_steps`) still trains where the model is.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import importlib
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..core.io import UsageError, atomic_file
from ..core.layout import REFERENCE_FILE
from ..models.adapter import DecoderAdapter, count_parameters, get_adapter, published_lora
from ..models.data import calibration_prompt, load_alpaca_records, resolve_data_source
from ..models.divergence import coarse_kl, top_k_targets
from ..models.loading import load_model
from ..recover.settings import RecoverySettings
from ..recover.trainer import train_lora
from .budget import WidthCarry
from .candidates import candidate, training_state_kept
from .importance import batch_prompts
from .steps import THIRD_TO_LAST, ScoreFn, apply_decision, layer_shape, other, plan_carried_step, step_impossible
from .streaming import on_device, stream_decoder

PATHS = ("sequence", "random", "ppl", "kl", "cosine")
CANDIDATE_MODES = ("view", "copy")
METRIC_PATHS = ("ppl", "kl", "cosine")
HIGHER_IS_BETTER = {"ppl": False, "kl": False, "cosine": True}
TIE_DECISION = "L"
# Prediction positions per lm_head call. Scoring a chunk keeps about four (chunk, vocab) fp32
# buffers alive at once (head output, log-probs, the scattered copy and the logsumexp temporary
# of the KL's "rest" bucket): at 128 positions that is 100 MB for SmolLM2's 49k vocabulary and
# 260 MB for LLaMA-3's 128k, which keeps a metric path's peak close to a fixed path's.
LOGIT_CHUNK = 128
PROBE_BATCH_SIZE = 4
PATH_FIELDS = ("chosen_by", "L_ppl", "L_kl", "L_cosine", "L_probe_loss", "G_ppl", "G_kl", "G_cosine", "G_probe_loss")


# ----------------------------------------------------------------------------- settings and data


def is_metric_path(path: str) -> bool:
    return path in METRIC_PATHS


def check_path_settings(settings) -> None:
    """Bad path flags are a one-line error before anything is loaded or written."""
    if settings.path not in PATHS:
        raise UsageError(f"unknown --path {settings.path!r}; choose from {', '.join(PATHS)}")
    if settings.num_iterations < 1:
        raise UsageError(f"--num_iterations must be at least 1, got {settings.num_iterations}")
    if settings.probe_steps < 0:
        raise UsageError(f"--probe_steps must be 0 (no probe) or more, got {settings.probe_steps}")
    for name in ("probe_samples", "num_reference_prompts", "reference_top_k"):
        if getattr(settings, name) < 1:
            raise UsageError(f"--{name} must be at least 1, got {getattr(settings, name)}")
    if settings.candidates not in CANDIDATE_MODES:
        raise UsageError(f"unknown --candidates {settings.candidates!r}; choose from {', '.join(CANDIDATE_MODES)}")
    if settings.probe_steps and not is_metric_path(settings.path):
        raise UsageError(f"--probe_steps needs a metric path (ppl, kl or cosine), not --path {settings.path}")
    if is_metric_path(settings.path):
        held_out_records(settings)  # enough records for disjoint reference and probe text


def held_out_records(settings) -> tuple[list[dict], list[dict]]:
    """(reference records, probe records): the records after the calibration prompts, disjoint."""
    source = resolve_data_source(settings.calibration_data, settings.model_name)
    first = settings.num_calibration_prompts
    probe = settings.probe_samples if settings.probe_steps else 0
    need = first + settings.num_reference_prompts + probe
    records = load_alpaca_records(source, need)
    if len(records) < need:
        raise UsageError(
            f"{source} holds {len(records)} records; a {settings.path} path needs {need} "
            f"({first} calibration + {settings.num_reference_prompts} reference"
            + (f" + {probe} probe" if probe else "") + "): lower --num_reference_prompts or --num_calibration_prompts"
        )
    reference_end = first + settings.num_reference_prompts
    return records[first:reference_end], records[reference_end:need]


def reference_texts(records: list[dict]) -> list[str]:
    """Calibration format followed by the answer, so perplexity covers real text."""
    return [calibration_prompt(r) + " " + r["output"] for r in records]


# ----------------------------------------------------------------------------- the unpruned model's outputs


@dataclass
class Reference:
    """The unpruned model's outputs on the reference text (all on CPU).

    Prediction positions P and real tokens N are in batch order, row-major within a batch.
    """

    batches: list[dict]  # input_ids, attention_mask (B, T) each
    topk_logprobs: torch.Tensor  # (P, k) float32
    topk_indices: torch.Tensor  # (P, k) int64
    rest_logprob: torch.Tensor  # (P,) float32: log of the mass outside the top k (-inf if none)
    hidden: torch.Tensor  # (N, H) float32: final-norm output per real token
    info: dict = field(default_factory=dict)

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        tensors = {"topk_logprobs": self.topk_logprobs, "topk_indices": self.topk_indices,
                   "rest_logprob": self.rest_logprob, "hidden": self.hidden}
        for i, batch in enumerate(self.batches):
            tensors[f"input_ids.{i}"] = batch["input_ids"]
            tensors[f"attention_mask.{i}"] = batch["attention_mask"]
        with atomic_file(path) as tmp:
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp),
                      metadata={"info": json.dumps(self.info), "num_batches": str(len(self.batches))})

    @classmethod
    def load(cls, path: Path) -> "Reference":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            get = f.get_tensor
            batches = [{"input_ids": get(f"input_ids.{i}"), "attention_mask": get(f"attention_mask.{i}")}
                       for i in range(int(meta["num_batches"]))]
            return cls(batches, get("topk_logprobs"), get("topk_indices"), get("rest_logprob"), get("hidden"),
                       json.loads(meta["info"]))


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def final_hidden_states(adapter: DecoderAdapter, batches: list[dict], stream_device=None) -> Iterator[torch.Tensor]:
    """Each batch's final hidden states (B, T, H), after the final norm, on the scoring device.

    In memory (`stream_device` None): one decoder pass per batch where the model is. Streamed:
    all batches through one decoder layer at a time on `stream_device` (outputs kept on CPU
    between layers), then the final norm there. The norm is applied to every batch before the
    first one is handed out, so its device copy is dropped before the caller can raise.
    """
    if stream_device is None:
        device = model_device(adapter.model)
        for batch in batches:
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            yield adapter.run_text(ids, mask).last_hidden_state
        return
    states = stream_decoder(adapter, batches, stream_device)
    norm = adapter.final_norm()
    with on_device([norm], stream_device):
        for b, hidden in enumerate(states):
            states[b] = norm(hidden.to(stream_device)).to("cpu")
    for hidden in states:
        yield hidden.to(stream_device)


def vocabulary_head_on(adapter: DecoderAdapter, stream_device) -> contextlib.AbstractContextManager:
    """The vocabulary projection on the streaming device for the block (nothing in memory mode)."""
    if stream_device is None:
        return contextlib.nullcontext()
    return on_device([adapter.output_head()], stream_device)


def split_outputs(hidden: torch.Tensor, batch: dict):
    """(final hidden state per real token (N, H), per prediction position (P, H), targets (P,))."""
    ids, mask = batch["input_ids"].to(hidden.device), batch["attention_mask"].to(hidden.device)
    real = mask.bool()
    predicts = real[:, :-1] & real[:, 1:]  # the next token is real (right padding)
    return hidden[real], hidden[:, :-1][predicts], ids[:, 1:][predicts]


def next_token_logprobs(adapter: DecoderAdapter, pred_hidden: torch.Tensor):
    """(start, (chunk, vocab) float32 log-probs) over prediction positions, a chunk at a time; the
    logits are the family's (head, and a soft cap where the model has one)."""
    for start in range(0, pred_hidden.shape[0], LOGIT_CHUNK):
        yield start, torch.log_softmax(adapter.logits(pred_hidden[start:start + LOGIT_CHUNK]).float(), dim=-1)


@torch.inference_mode()
def build_reference(adapter: DecoderAdapter, batches: list[dict], top_k: int, progress: bool = True,
                    stream_device=None) -> Reference:
    """Run the unpruned model once over the reference batches and keep what scoring needs
    (`stream_device`: layer by layer, see final_hidden_states)."""
    tops, indices, rests, hiddens = [], [], [], []
    nll, predicted = 0.0, 0
    states = final_hidden_states(adapter, batches, stream_device)
    with vocabulary_head_on(adapter, stream_device):
        for batch, hidden in tqdm(zip(batches, states), total=len(batches), desc="reference outputs", unit="batch",
                                  disable=not progress):
            token_hidden, pred_hidden, targets = split_outputs(hidden, batch)
            hiddens.append(token_hidden.float().cpu())
            for start, logprobs in next_token_logprobs(adapter, pred_hidden):
                values, idx, rest = top_k_targets(logprobs, top_k)
                tops.append(values.cpu())
                indices.append(idx.cpu())
                rests.append(rest.cpu())
                chunk_targets = targets[start:start + logprobs.shape[0], None]
                nll -= logprobs.gather(-1, chunk_targets).double().sum().item()
                predicted += logprobs.shape[0]
    if predicted == 0:
        raise UsageError("the reference texts hold no token to predict; use more or longer reference records")
    info = {"prompts": sum(b["input_ids"].shape[0] for b in batches), "tokens": sum(h.shape[0] for h in hiddens),
            "predicted_tokens": predicted, "top_k": tops[0].shape[-1], "original_ppl": safe_exp(nll / predicted)}
    return Reference([{k: v.cpu() for k, v in b.items()} for b in batches], torch.cat(tops), torch.cat(indices),
                     torch.cat(rests), torch.cat(hiddens), info)


def safe_exp(x: float) -> float:
    return math.exp(x) if x < 700 else float("inf")


# ----------------------------------------------------------------------------- scoring a candidate


@torch.inference_mode()
def score_candidate(adapter: DecoderAdapter, reference: Reference, stream_device=None) -> dict:
    """Perplexity, mean KL(original || candidate) and mean cosine of final hidden states
    (`stream_device`: layer by layer, see final_hidden_states)."""
    nll = kl = cosine = 0.0
    p_offset = t_offset = 0
    states = final_hidden_states(adapter, reference.batches, stream_device)
    with vocabulary_head_on(adapter, stream_device):
        for batch, hidden in zip(reference.batches, states):
            device = hidden.device
            token_hidden, pred_hidden, targets = split_outputs(hidden, batch)
            original = reference.hidden[t_offset:t_offset + token_hidden.shape[0]].to(device)
            cosine += F.cosine_similarity(token_hidden.float(), original, dim=-1).double().sum().item()
            t_offset += token_hidden.shape[0]
            for start, logprobs in next_token_logprobs(adapter, pred_hidden):
                rows = slice(p_offset, p_offset + logprobs.shape[0])
                nll -= logprobs.gather(-1, targets[start:start + logprobs.shape[0], None]).double().sum().item()
                kl += coarse_kl(logprobs, reference.topk_logprobs[rows].to(device),
                                reference.topk_indices[rows].to(device),
                                reference.rest_logprob[rows].to(device)).double().sum().item()
                p_offset += logprobs.shape[0]
    if p_offset != reference.topk_logprobs.shape[0] or t_offset != reference.hidden.shape[0]:
        raise RuntimeError("the reference outputs do not match the reference batches")
    return {"ppl": safe_exp(nll / p_offset), "kl": kl / p_offset, "cosine": cosine / t_offset}


def pick(criterion: str, scores_l: dict, scores_g: dict) -> str:
    """The better candidate by `criterion`; a tie goes to TIE_DECISION, NaN loses."""
    def badness(scores):
        value = scores[criterion]
        if math.isnan(value):
            return math.inf
        return -value if HIGHER_IS_BETTER[criterion] else value

    bad_l, bad_g = badness(scores_l), badness(scores_g)
    if bad_l == bad_g:
        return TIE_DECISION
    return "L" if bad_l < bad_g else "G"


# ----------------------------------------------------------------------------- the probe


@dataclass
class ProbeSetup:
    tokenizer: object
    records: list[dict]
    settings: object  # mop.recover.settings.RecoverySettings
    progress: bool = False


def probe_setup(settings, config, tokenizer, records: list[dict], progress: bool) -> ProbeSetup:
    """The model's published LoRA rank and alpha, `probe_steps` optimizer steps of PROBE_BATCH_SIZE records."""
    lora_r, lora_alpha = published_lora(config)
    recovery = RecoverySettings(
        lora_r=lora_r, lora_alpha=lora_alpha,
        max_steps=settings.probe_steps, batch_size=min(PROBE_BATCH_SIZE, len(records)), grad_accum=1,
        max_length=settings.max_calibration_length, logging_steps=1, save_steps=max(settings.probe_steps, 1),
        seed=settings.seed,
    )
    return ProbeSetup(tokenizer, records, recovery, progress)


def no_checkpoint_callback():
    """A probe is thrown away: stop the Trainer from writing its end-of-run checkpoint."""
    from transformers import TrainerCallback  # heavy: imported on use

    class NoCheckpoint(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            control.should_save = False
            return control

    return NoCheckpoint()


def on_train_begin_callback(action: Callable[[], None]):
    """A Trainer callback that runs `action()` when training starts (the model is wrapped by then)."""
    from transformers import TrainerCallback  # heavy: imported on use

    class OnTrainBegin(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            action()
            return control

    return OnTrainBegin()


def train_probe(adapter: DecoderAdapter, probe: ProbeSetup, on_wrapped: Callable[[], None] | None = None):
    """LoRA-train the candidate in place; returns (PEFT model, probe statistics).

    `on_wrapped()` runs once the adapters are in place, before the first step (a masked
    candidate moves its hooks onto the LoRA wrappers there).
    """
    callbacks = [no_checkpoint_callback()] + ([on_train_begin_callback(on_wrapped)] if on_wrapped else [])
    with tempfile.TemporaryDirectory(prefix="mop-probe-") as work:
        report = train_lora(adapter.model, probe.tokenizer, probe.records, probe.settings, work,
                               target_modules=adapter.lora_targets(), callbacks=callbacks,
                               progress=probe.progress)
    report.peft_model.eval()
    stats = {"loss": report.stats["final_train_loss"], "mean_loss": report.stats["mean_train_loss"],
             "steps": report.stats["global_steps"], "seconds": report.stats["train_seconds"]}
    return report.peft_model, stats


# ----------------------------------------------------------------------------- choosing a step


def frozen_scores(scores, with_heads: bool) -> ScoreFn:
    """A score function that returns scores computed earlier (no second AMP pass). Scores made
    with head scores also serve a request without them (a depth step reads only layer scores)."""
    def score_fn(adapter, heads):
        if heads and not with_heads:
            raise RuntimeError("cached AMP scores were computed for another width step")
        return scores

    return score_fn


def current_scores(adapter: DecoderAdapter, score_fn: ScoreFn, mode: str, rule: str, carry: WidthCarry) -> ScoreFn:
    """AMP scores of the current (live) model for the G step it would take now, cached."""
    with_heads = plan_carried_step(layer_shape(adapter), mode, rule, carry).groups > 0
    return frozen_scores(score_fn(adapter, with_heads), with_heads)


def release_memory() -> None:
    """Free a scored candidate's activations and probe before the next one is built."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def freeze_startup_objects() -> None:
    """Exempt every object alive now (the imported libraries) from cyclic garbage collection.

    `release_memory` runs a full collection after each candidate; with torch, transformers and
    peft imported, that pass scans about half a million long-lived objects (~0.5 s on a CPU core)
    every time. A program that scores many candidates (the benchmarks, the test session) calls this
    once, after its imports and before it loads a model, so the collections scan only what the run
    creates; the frozen objects live until exit anyway. It changes the whole process, so the
    library never calls it. prune.py does not either: it would pay transformers' model import
    (~9 s on 2 cores) before checking its inputs, to save ~0.5 s per candidate.
    """
    importlib.import_module("transformers.models.auto.modeling_auto")  # lazy in transformers; every run needs it
    gc.freeze()


@dataclass
class PathChoice:
    decision: str
    chosen_by: str  # the criterion, or 'forced' when only one step was possible
    candidates: dict  # 'L' / 'G' -> {"scores", "probe", "params"} or {"impossible": reason}
    live_score_fn: ScoreFn  # what the live model's step uses (cached AMP scores for G)

    def as_dict(self, path: str) -> dict:
        return {"path": path, "chosen_by": self.chosen_by, "candidates": self.candidates}


@dataclass
class PathSelector:
    """Builds, probes and scores both candidates of an iteration and picks one."""

    criterion: str
    reference: Reference
    mode: str
    rule: str
    probe: ProbeSetup | None = None
    by_copy: bool = False  # score deep copies instead of views of the live model (reference)
    stream_device: str | None = None  # --offload: score layer by layer on this device (model on CPU)
    depth_rule: str = THIRD_TO_LAST  # which layer the L candidate drops (mop/prune/steps.py)

    def evaluate(self, adapter: DecoderAdapter, decision: str, score_fn: ScoreFn, carry: WidthCarry) -> dict:
        """One candidate as a view of the live model (see mop/prune/candidates.py): (probe), score, undo."""
        if self.by_copy:
            return self.evaluate_copy(adapter, decision, score_fn, carry)
        with candidate(adapter, decision, score_fn, self.mode, self.rule, carry, self.depth_rule) as view:
            with training_state_kept(adapter.model):
                result = {"params": view.params, "probe": None}
                peft_model = None
                try:
                    if self.probe is not None:
                        peft_model, result["probe"] = train_probe(adapter, self.probe, on_wrapped=view.remask)
                    adapter.model.eval()
                    result["scores"] = score_candidate(adapter, self.reference, self.stream_device)
                finally:
                    if peft_model is not None:
                        peft_model.unload()  # the original projections come back; the adapter is dropped
                    del peft_model
        release_memory()
        return result

    def evaluate_copy(self, adapter: DecoderAdapter, decision: str, score_fn: ScoreFn, carry: WidthCarry) -> dict:
        """The reference way: a deep copy takes the step for real (twice the model's memory).
        Kept to check the views against (tests, benchmarks/bench_path_memory.py)."""
        candidate_adapter = get_adapter(copy.deepcopy(adapter.model))
        apply_decision(candidate_adapter, decision, score_fn, self.mode, self.rule, carry, self.depth_rule)
        result = {"params": count_parameters(candidate_adapter.model), "probe": None}
        peft_model = None
        try:
            if self.probe is not None:
                peft_model, result["probe"] = train_probe(candidate_adapter, self.probe)
            candidate_adapter.model.eval()
            result["scores"] = score_candidate(candidate_adapter, self.reference, self.stream_device)
        finally:
            if peft_model is not None:
                peft_model.unload()  # drop the adapter without merging it
            del candidate_adapter, peft_model
            release_memory()
        return result

    def choose(self, adapter: DecoderAdapter, score_fn: ScoreFn, carry: WidthCarry) -> PathChoice:
        shape = layer_shape(adapter)
        reasons = {d: step_impossible(shape, d, self.mode, self.rule, carry) for d in "LG"}
        if reasons["L"] and reasons["G"]:
            raise UsageError(f"no step is possible any more (L: {reasons['L']}; G: {reasons['G']}); "
                             "lower --num_iterations")
        live_fn = score_fn if reasons["G"] else current_scores(adapter, score_fn, self.mode, self.rule, carry)
        if reasons["L"] or reasons["G"]:
            decision = "G" if reasons["L"] else "L"
            return PathChoice(decision, "forced", {other(decision): {"impossible": reasons[other(decision)]}}, live_fn)
        candidates = {d: self.evaluate(adapter, d, live_fn, carry) for d in "LG"}
        decision = pick(self.criterion, candidates["L"]["scores"], candidates["G"]["scores"])
        return PathChoice(decision, self.criterion, candidates, live_fn)


def reference_batches(settings, tokenizer, records: list[dict]) -> list[dict]:
    return batch_prompts(tokenizer, reference_texts(records), settings.calibration_batch_size,
                         settings.max_calibration_length)


def reference_info_expected(settings) -> dict:
    return {"calibration_data": settings.calibration_data, "num_calibration_prompts": settings.num_calibration_prompts,
            "num_reference_prompts": settings.num_reference_prompts, "max_length": settings.max_calibration_length}


def load_or_build_reference(settings, save_dir: Path, live: DecoderAdapter, live_is_original: bool, tokenizer,
                            model_path: str, dtype, device, progress: bool, stream_device=None) -> Reference:
    """The cached reference of this run folder, or computed from the unpruned model and cached."""
    path = save_dir / REFERENCE_FILE
    expected = reference_info_expected(settings)
    if path.exists():
        reference = Reference.load(path)
        stored = {k: reference.info.get(k) for k in expected}
        if stored != expected or reference.info.get("requested_top_k") != settings.reference_top_k:
            raise UsageError(f"{path} was made with other reference settings ({stored}); "
                             "resume with the run's own settings")
        return reference
    records, _ = held_out_records(settings)
    batches = reference_batches(settings, tokenizer, records)
    if live_is_original:
        reference = build_reference(live, batches, settings.reference_top_k, progress, stream_device)
    else:  # an interrupted run that never cached its reference: load the original once
        model, _ = load_model(model_path, dtype, device)
        reference = build_reference(get_adapter(model), batches, settings.reference_top_k, progress, stream_device)
        del model
        release_memory()
    reference.info.update(expected, requested_top_k=settings.reference_top_k)
    reference.save(path)
    return reference


def open_selector(settings, save_dir: Path, live: DecoderAdapter, live_is_original: bool, tokenizer,
                  model_path: str, dtype, device, progress: bool, stream_device=None) -> PathSelector | None:
    """The selector of a metric path (None for sequence and random paths). `device`: where the
    model is; `stream_device`: under --offload, the device its layers are streamed through."""
    if not is_metric_path(settings.path):
        return None
    reference = load_or_build_reference(settings, save_dir, live, live_is_original, tokenizer, model_path, dtype,
                                        device, progress, stream_device)
    probe = None
    if settings.probe_steps:
        _, records = held_out_records(settings)
        probe = probe_setup(settings, live.model.config, tokenizer, records, progress)
    return PathSelector(settings.path, reference, settings.width_mode, settings.budget_rule, probe,
                        by_copy=settings.candidates == "copy", stream_device=stream_device,
                        depth_rule=settings.depth_rule)


# ----------------------------------------------------------------------------- reporting


def path_columns(meta: dict) -> dict:
    """Summary columns of one iteration's path record (empty for sequence runs)."""
    record = meta.get("path")
    if not record:
        return {}
    row = {"chosen_by": record["chosen_by"]}
    for d in "LG":
        candidate = record.get("candidates", {}).get(d) or {}
        scores = candidate.get("scores") or {}
        for metric in METRIC_PATHS:
            row[f"{d}_{metric}"] = scores.get(metric)
        row[f"{d}_probe_loss"] = (candidate.get("probe") or {}).get("loss")
    return row


def format_choice(record: dict) -> str:
    """One log line: both candidates' scores and the choice."""
    parts = []
    for d in "LG":
        candidate = record["candidates"].get(d)
        if candidate is None:
            continue
        if "impossible" in candidate:
            parts.append(f"{d}: impossible")
            continue
        s = candidate["scores"]
        text = f"{d}: ppl={s['ppl']:.4g} kl={s['kl']:.4g} cos={s['cosine']:.5f}"
        if candidate.get("probe"):
            text += f" probe_loss={candidate['probe']['loss']:.4g}"
        parts.append(text)
    return "   " + " | ".join(parts) + f"  -> chosen by {record['chosen_by']}"
