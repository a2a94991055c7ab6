"""Peak memory of LoRA recovery, estimated from a config, and a plan that fits a budget.

    python -m mop.recover.memory --config <a shipped hub id, e.g. the paper's 7B> --max_memory_gb 24
    python -m mop.recover.memory --config smollm2-135m --dtype float32 --device cpu --max_memory_gb 4

Why: recovery of a 7B model at micro-batch 4 x 512 tokens without gradient checkpointing needs
more than a 24 GB GPU holds. `plan_recovery` picks gradient checkpointing and the largest
micro-batch whose estimated peak fits the budget, keeping the effective batch (micro-batch x
accumulation) unchanged, so the optimisation is the same and only the memory/speed trade-off moves.

The estimate (bytes; "GB" here means GiB, 2**30 bytes) follows what autograd keeps alive during a
training step of a decoder of mop/families with LoRA (peft) under the Trainer, at the moment of the peak,
the start of the backward pass:

  weights      every parameter in the load dtype (bf16 on CUDA, fp32 on CPU)
  lora         LoRA weights + gradients + AdamW's two moments, all fp32: 16 bytes per LoRA parameter
               (+ the bf16 copies autocast makes of them, 2 bytes, when the base is half precision)
  activations  per token of the micro-batch (micro_batch x max_length tokens, the worst batch):
               without checkpointing, every layer keeps
                 8 h                 the fp32 inputs of its two RMSNorms (more where the family
                                     has more norms, and q/k per head where it normalises them)
                 (a + m) * sum(in)   each LoRA target's dropped-out input (a bytes) and dropout
                                     mask (lora_dropout > 0: m = 1, CUDA's fused dropout keeps a
                                     boolean mask; m = a on CPU, which keeps a scaled float mask),
                                     input widths of the wrapped projections summed
                 a * r * targets     the LoRA A outputs
                 a * 4 q             SDPA's query, keys and values (K/V repeated to q heads when
                                     padded rows go through a masked SDPA, micro-batch > 1) and
                                     its output
                 4 heads             SDPA's log-sum-exp (fp32)
                 a * 3 i             the MLP's gate output, its SiLU and the up output
                 a * max_length      padded rows only: SDPA's additive copy of the attention mask
               where a = activation bytes (2 in bf16, 4 in fp32), h = hidden size, q = query
               width (heads x head_dim), i = intermediate size; plus 4 h for the final norm and
               a h for the hidden states the loss gathers. Packed rows (the default) attend one
               example at a time without a mask (mop/recover/packed_attention.py).
               With gradient checkpointing each layer keeps only its input (a * h) and one layer
               is recomputed at a time (its activations as above, once).
  logits       the vocabulary head runs on chunks of CHUNK_ELEMENTS fp32 logits (mop/recover/distill.py),
               recomputed in the backward pass: about 4 such buffers at once (6 with an online
               teacher, whose log-probs sit beside the student's), whatever the token count. The
               larger of this and the recomputed layer is added.
  teacher      `--objective kd` with the teacher online: its weights (load dtype) and its final
               hidden states (a h per token); from a teacher cache, the batch's stored top-k
               targets (12 k bytes per token).

The constants were checked against measured peaks on CPU (benchmarks/bench_memory.py: peak RSS of
training steps on the embedded SmolLM2-135M and a ~250M random multi-head model, several
micro-batches, checkpointing on and off). A GPU adds its own context and allocator slack, which
is why a plan keeps `HEADROOM` of the budget and `RUNTIME_RESERVE_GB` free.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass, field

import torch

from ..core.args import OneLineParser, finite_float
from ..core.io import UsageError, exit_on_usage_error
from ..models.adapter import (LORA_PROJECTIONS, count_parameters, family_of, is_multimodal, supported_types,
                              text_config_of)
from ..models.configs import config_for_dry_run
from ..models.loading import build_meta_model
from .distill import head_chunk_positions

GB = 2**30
HEADROOM = 0.10  # share of the budget a plan leaves free: allocator fragmentation, estimate error
RUNTIME_RESERVE_GB = 0.5  # outside the estimate: the CUDA context on a GPU, the interpreter and libraries on CPU
CUDA_DEFAULT_BUDGET_GB = 24.0  # the paper's card (RTX 4090): this planner's default, and what the drivers pass
LOGIT_BUFFERS = 4  # fp32 (chunk, vocabulary) buffers alive at once in the chunked head (sft, cached kd)
TEACHER_LOGIT_BUFFERS = 2  # more of them with an online teacher
# Published recovery settings (mop.recover.settings.RecoverySettings holds the same; a test checks it).
PUBLISHED = dict(lora_r=32, lora_dropout=0.05, max_length=512, batch_size=4, grad_accum=4)
LORA_TARGETS = LORA_PROJECTIONS


# ----------------------------------------------------------------------------- the model's shape


@dataclass(frozen=True)
class DecoderDims:
    """The sizes the estimate needs, read from a (text) config."""

    num_layers: int
    hidden: int
    heads: int
    q_width: int  # query heads x head_dim
    kv_width: int  # K/V heads x head_dim
    intermediate: int
    vocab: int
    tied_embeddings: bool = False
    attention_bias: bool = False  # q/k/v
    mlp_bias: bool = False
    o_bias: bool | None = None  # None: as attention_bias
    norm_params: int | None = None  # never-pruned norm weights per layer (the family's); None: two RMSNorms
    norm_width: int | None = None  # fp32 norm inputs kept per token and layer; None: two hidden-size norms

    @classmethod
    def from_config(cls, config) -> "DecoderDims":
        text = text_config_of(config)
        check_decoder_config(text)
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        kv_heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
        family = family_of(config)
        qkv_bias, o_bias, mlp_bias = family.config_biases(text)
        return cls(
            num_layers=text.num_hidden_layers, hidden=text.hidden_size, heads=text.num_attention_heads,
            q_width=text.num_attention_heads * head_dim, kv_width=kv_heads * head_dim,
            intermediate=text.intermediate_size, vocab=text.vocab_size,
            tied_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
            attention_bias=qkv_bias, mlp_bias=mlp_bias, o_bias=o_bias,
            norm_params=family.norm_params(text.hidden_size, head_dim),
            norm_width=family.layer_norms * text.hidden_size
            + ((text.num_attention_heads + kv_heads) * head_dim if family.qk_norms else 0),
        )

    def parameter_count(self) -> int:
        """Parameters of a causal LM of these sizes (tied embeddings counted once)."""
        h, q, kv, i = self.hidden, self.q_width, self.kv_width, self.intermediate
        o_bias = self.attention_bias if self.o_bias is None else self.o_bias
        attention = 2 * h * q + 2 * h * kv + ((q + 2 * kv) if self.attention_bias else 0) + (h if o_bias else 0)
        mlp = 3 * h * i + ((2 * i + h) if self.mlp_bias else 0)
        layer = attention + mlp + (2 * h if self.norm_params is None else self.norm_params)
        embeddings = self.vocab * h * (1 if self.tied_embeddings else 2)
        return self.num_layers * layer + embeddings + h

    def projection_dims(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each LoRA-able projection of one layer."""
        h, q, kv, i = self.hidden, self.q_width, self.kv_width, self.intermediate
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}


DECODER_SIZES = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size")


def check_decoder_config(text_config) -> None:
    """The estimate is written for the decoders of mop/families: another
    family's config (GPT-2 names its sizes n_layer, n_embd, ...) would fail on a missing attribute
    deep inside the formula."""
    missing = [name for name in DECODER_SIZES if not isinstance(getattr(text_config, name, None), int)]
    if missing:
        kind = getattr(text_config, "model_type", None) or "unknown"
        raise UsageError(f"--config: a {kind} config lacks {', '.join(missing)}; the estimate covers the "
                         f"decoders ({supported_types()}) only")


def model_parameter_count(config) -> int:
    """Every parameter of the model: by the family's formula for causal LMs (instant), else
    counted on a meta-device copy (LLaVA: the vision tower and projector too)."""
    if not is_multimodal(config):
        return DecoderDims.from_config(config).parameter_count()
    return count_parameters(build_meta_model(config))


def targeted(dims: DecoderDims, targets) -> dict[str, tuple[int, int]]:
    """The projections LoRA wraps (targets are module-name suffixes, as in mop.recover.trainer)."""
    chosen = {name: io for name, io in dims.projection_dims().items() if name in set(targets)}
    if not chosen:
        raise UsageError(f"no LoRA target among {', '.join(targets)} is a decoder projection")
    return chosen


def lora_parameter_count(dims: DecoderDims, lora_r: int, targets=LORA_TARGETS) -> int:
    """r x (in + out) per wrapped projection, in every layer."""
    return dims.num_layers * sum(lora_r * (n_in + n_out) for n_in, n_out in targeted(dims, targets).values())


# ----------------------------------------------------------------------------- the estimate


@dataclass(frozen=True)
class TrainingSetup:
    """What a recovery run looks like to the estimate."""

    weight_dtype: torch.dtype = torch.bfloat16
    lora_r: int = PUBLISHED["lora_r"]
    lora_dropout: float = PUBLISHED["lora_dropout"]
    max_length: int = PUBLISHED["max_length"]
    targets: tuple = LORA_TARGETS
    device_type: str = "cuda"  # cuda | cpu: how dropout stores its mask
    packing: bool = True  # packed rows (mop/recover/batches.py): no padding, no attention mask
    teacher_params: int = 0  # --objective kd, teacher online: its parameters (load dtype)
    cached_top_k: int = 0  # --objective kd from a teacher cache: stored tokens per position

    @property
    def activation_bytes(self) -> int:
        """Half-precision bases train under bf16 autocast; fp32 bases in fp32."""
        return 2 if torch.finfo(self.weight_dtype).bits == 16 else 4


def layer_activation_bytes(dims: DecoderDims, setup: TrainingSetup, padded: bool) -> int:
    """Bytes one decoder layer keeps for its backward pass, per token (see the module docstring)."""
    a = setup.activation_bytes
    mask = 0 if setup.lora_dropout <= 0 else (1 if setup.device_type == "cuda" else a)
    wrapped = targeted(dims, setup.targets)
    kv = dims.q_width if padded else dims.kv_width  # HF repeats K/V for SDPA when there is a mask
    norms = 4 * (2 * dims.hidden if dims.norm_width is None else dims.norm_width)
    lora_inputs = (a + mask) * sum(n_in for n_in, _ in wrapped.values())
    lora_hidden = a * setup.lora_r * len(wrapped)
    attention = a * (2 * dims.q_width + 2 * kv) + 4 * dims.heads + (a * setup.max_length if padded else 0)
    mlp = a * 3 * dims.intermediate
    return norms + lora_inputs + lora_hidden + attention + mlp


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak of one training step, by part (bytes)."""

    micro_batch: int
    gradient_checkpointing: bool
    tokens: int
    weights: int
    lora: int
    activations: int  # kept for the backward pass
    transient: int  # logit buffers, or the recomputed layer under checkpointing if larger

    @property
    def total(self) -> int:
        return self.weights + self.lora + self.activations + self.transient

    @property
    def total_gb(self) -> float:
        return self.total / GB

    def as_dict(self) -> dict:
        parts = ("weights", "lora", "activations", "transient")
        return {"micro_batch": self.micro_batch, "gradient_checkpointing": self.gradient_checkpointing,
                "tokens": self.tokens, **{f"{p}_gb": round(getattr(self, p) / GB, 3) for p in parts},
                "total_gb": round(self.total_gb, 3)}


def estimate_peak(config, micro_batch: int, gradient_checkpointing: bool, setup: TrainingSetup = TrainingSetup(),
                  num_params: int | None = None) -> MemoryEstimate:
    """Peak bytes of a LoRA training step on micro_batch sequences of setup.max_length tokens.

    `num_params` (every parameter of the model, embeddings counted once if tied) is computed
    from the config when not given.
    """
    dims = DecoderDims.from_config(config)
    if num_params is None:
        num_params = model_parameter_count(config)
    tokens = micro_batch * setup.max_length
    padded = micro_batch > 1 and not setup.packing
    a = setup.activation_bytes
    n_lora = lora_parameter_count(dims, setup.lora_r, setup.targets)
    lora = n_lora * (16 + (2 if a == 2 else 0))
    layer = layer_activation_bytes(dims, setup, padded)
    kept_per_layer = a * dims.hidden if gradient_checkpointing else layer
    teacher_hidden = a * dims.hidden if setup.teacher_params else 0
    per_token = dims.num_layers * kept_per_layer + (4 + a) * dims.hidden + teacher_hidden + 12 * setup.cached_top_k
    buffers = LOGIT_BUFFERS + (TEACHER_LOGIT_BUFFERS if setup.teacher_params else 0)
    head = buffers * 4 * min(head_chunk_positions(dims.vocab), tokens) * dims.vocab
    transient = max(head, tokens * layer if gradient_checkpointing else 0)
    return MemoryEstimate(
        micro_batch=micro_batch, gradient_checkpointing=gradient_checkpointing, tokens=tokens,
        weights=(num_params + setup.teacher_params) * torch.finfo(setup.weight_dtype).bits // 8, lora=lora,
        activations=tokens * per_token, transient=transient,
    )


# ----------------------------------------------------------------------------- the plan


@dataclass
class MemoryPlan:
    """Micro-batch, accumulation and checkpointing chosen for a budget."""

    budget_gb: float
    usable_gb: float
    micro_batch: int
    grad_accum: int
    gradient_checkpointing: bool
    estimate: MemoryEstimate
    weight_dtype: str
    considered: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"budget_gb": self.budget_gb, "usable_gb": round(self.usable_gb, 3), "micro_batch": self.micro_batch,
                "grad_accum": self.grad_accum, "gradient_checkpointing": self.gradient_checkpointing,
                "weight_dtype": self.weight_dtype, "estimate": self.estimate.as_dict(), "considered": self.considered}

    def describe(self) -> str:
        e = self.estimate
        return (f"memory plan for {self.budget_gb:g} GB: micro-batch {self.micro_batch} x {self.grad_accum} accumulation, "
                f"gradient checkpointing {'on' if self.gradient_checkpointing else 'off'}; estimated peak "
                f"{e.total_gb:.2f} GB (weights {e.weights / GB:.2f}, LoRA+AdamW {e.lora / GB:.2f}, activations "
                f"{e.activations / GB:.2f}, logits {e.transient / GB:.2f}) of {self.usable_gb:.2f} GB usable")


def divisors_descending(n: int) -> list[int]:
    return [d for d in range(n, 0, -1) if n % d == 0]


def plan_recovery(config, budget_gb: float, setup: TrainingSetup = TrainingSetup(), effective_batch: int = 16,
                  max_micro_batch: int | None = None, require_checkpointing: bool = False,
                  headroom: float = HEADROOM) -> MemoryPlan:
    """The fastest setting whose estimated peak fits (1 - headroom) x budget_gb - RUNTIME_RESERVE_GB.

    Candidates are micro-batches that divide the effective batch (so accumulation keeps it
    exact), at most `max_micro_batch`. Without checkpointing is preferred (recomputation costs
    about a third more compute), then the largest micro-batch. A budget nothing fits is a
    UsageError naming the smallest estimate.
    """
    if not (math.isfinite(budget_gb) and budget_gb > 0):
        raise UsageError(f"--max_memory_gb must be a finite number of GB above 0, got {budget_gb:g}")
    if effective_batch < 1:
        raise UsageError(f"the effective batch must be at least 1, got {effective_batch}")
    usable = (1 - headroom) * budget_gb - RUNTIME_RESERVE_GB
    num_params = model_parameter_count(config)
    limit = min(max_micro_batch or effective_batch, effective_batch)
    considered = []
    for checkpointing in ((True,) if require_checkpointing else (False, True)):
        for micro in divisors_descending(effective_batch):
            if micro > limit:
                continue
            estimate = estimate_peak(config, micro, checkpointing, setup, num_params)
            considered.append({"micro_batch": micro, "gradient_checkpointing": checkpointing,
                               "total_gb": round(estimate.total_gb, 3)})
            if estimate.total_gb <= usable:
                return MemoryPlan(budget_gb, usable, micro, effective_batch // micro, checkpointing, estimate,
                                  str(setup.weight_dtype).replace("torch.", ""), considered)
    smallest = min(c["total_gb"] for c in considered)
    raise UsageError(f"recovery does not fit {budget_gb:g} GB: even micro-batch 1 with gradient checkpointing "
                     f"needs an estimated {smallest:.1f} GB ({usable:.1f} GB usable after {100 * headroom:.0f}% headroom "
                     f"and {RUNTIME_RESERVE_GB:g} GB for the runtime); raise --max_memory_gb, lower --max_length or --lora_r")


# ----------------------------------------------------------------------------- recovery settings


def device_memory_gb() -> float:
    """Total memory of this process's CUDA device in GB (GiB, as the estimate counts), rounded
    down to 0.01: the budget when none is given, so an 80 GB card plans for 80 GB instead of
    training at the micro-batch a 24 GB card needs."""
    total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    return math.floor(100 * total / GB) / 100


def resolve_budget(max_memory_gb: float | None, cuda: bool) -> float | None:
    """None: the CUDA device's total memory, no plan on CPU; 0: no plan; a positive number: that
    budget (24: the paper's card, whatever the device holds)."""
    if max_memory_gb is None:
        return device_memory_gb() if cuda else None
    if not (math.isfinite(max_memory_gb) and max_memory_gb >= 0):
        raise UsageError(f"--max_memory_gb must be a positive number of GB (or 0 for no plan), got {max_memory_gb:g}")
    return max_memory_gb or None


def fit_recovery_settings(settings, config, weight_dtype: torch.dtype, targets=LORA_TARGETS, teacher_params: int = 0,
                          cached_top_k: int = 0):
    """(settings with the plan applied, plan or None) for a mop.recover.settings.RecoverySettings.

    The effective batch (batch_size x grad_accum) is kept; --batch_size caps the micro-batch and
    an explicit --gradient_checkpointing stays on. `teacher_params`: an online teacher of that size
    trains beside the student; `cached_top_k`: distillation reads a teacher cache of that k.
    """
    budget = resolve_budget(settings.max_memory_gb, torch.cuda.is_available())
    if budget is None:
        return settings, None
    setup = TrainingSetup(weight_dtype=weight_dtype, lora_r=settings.lora_r, lora_dropout=settings.lora_dropout,
                          max_length=settings.max_length, targets=tuple(targets),
                          device_type="cuda" if torch.cuda.is_available() else "cpu", packing=settings.packing,
                          teacher_params=teacher_params, cached_top_k=cached_top_k)
    plan = plan_recovery(config, budget, setup, effective_batch=settings.batch_size * settings.grad_accum,
                         max_micro_batch=settings.batch_size, require_checkpointing=settings.gradient_checkpointing)
    fitted = dataclasses.replace(settings, batch_size=plan.micro_batch, grad_accum=plan.grad_accum,
                                 gradient_checkpointing=plan.gradient_checkpointing)
    return fitted, plan


# ----------------------------------------------------------------------------- command line


DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True,
                   help="a paper model's hub id (shipped config, no download), a checkpoint folder or an embedded name")
    p.add_argument("--max_memory_gb", type=finite_float, default=CUDA_DEFAULT_BUDGET_GB)
    p.add_argument("--dtype", choices=tuple(DTYPES), default="bfloat16",
                   help="load dtype of the base weights (recovery: bfloat16 on CUDA, float32 on CPU)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="where recovery runs")
    p.add_argument("--lora_r", type=int, default=PUBLISHED["lora_r"])
    p.add_argument("--lora_dropout", type=finite_float, default=PUBLISHED["lora_dropout"])
    p.add_argument("--max_length", type=int, default=PUBLISHED["max_length"])
    p.add_argument("--batch_size", type=int, default=PUBLISHED["batch_size"], help="largest micro-batch allowed")
    p.add_argument("--grad_accum", type=int, default=PUBLISHED["grad_accum"],
                   help="with --batch_size: the effective batch to keep")
    p.add_argument("--gradient_checkpointing", action="store_true", help="require checkpointing")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    return p


def check_memory_flags(args: argparse.Namespace) -> None:
    """Sizes the plan divides by or multiplies: a zero or negative one would leave no candidate
    micro-batch (and a crash on an empty list) instead of an error naming the flag."""
    for name in ("batch_size", "grad_accum", "lora_r", "max_length"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not 0 <= args.lora_dropout < 1:
        raise UsageError(f"--lora_dropout must be in [0, 1), got {args.lora_dropout:g}")
    if args.max_memory_gb <= 0:
        raise UsageError(f"--max_memory_gb must be a finite number of GB above 0, got {args.max_memory_gb:g}")


def main(argv: list[str] | None = None) -> MemoryPlan:
    args = build_parser().parse_args(argv)

    @exit_on_usage_error
    def run():
        check_memory_flags(args)
        config = config_for_dry_run(args.config)
        check_decoder_config(text_config_of(config))
        setup = TrainingSetup(weight_dtype=DTYPES[args.dtype], lora_r=args.lora_r, lora_dropout=args.lora_dropout,
                              max_length=args.max_length, device_type=args.device)
        plan = plan_recovery(config, args.max_memory_gb, setup, effective_batch=args.batch_size * args.grad_accum,
                             max_micro_batch=args.batch_size, require_checkpointing=args.gradient_checkpointing)
        if args.json:
            print(json.dumps(plan.as_dict(), indent=2))
        else:
            print(f"{args.config}: {model_parameter_count(config):,} parameters in {args.dtype}, "
                  f"LoRA r={args.lora_r}, max length {args.max_length}")
            for c in plan.considered:
                print(f"  micro-batch {c['micro_batch']:>2}, checkpointing {'on ' if c['gradient_checkpointing'] else 'off'}"
                      f": {c['total_gb']:6.2f} GB")
            print(plan.describe())
        return plan

    return run()


if __name__ == "__main__":
    main()
