"""How many parameters a width (G) step removes, and where: the MoP budget.

A G step removes the parameter count of one current decoder layer (attention + MLP + its norms,
as its family counts them: mop/families/), the same number of groups and neurons in every layer. Two rules:

- `exact` (default): attention gets its proportional share, A / (A + M), as a fractional number
  of groups per layer; the fraction accumulates across iterations and a whole group is removed
  each time the accumulator passes 1. MLP neurons make up the exact remainder, so the step
  removes the layer's parameter count to within half a neuron per layer. MHA is the case of one
  query head per group. A group that alone would cost more than the step's budget is deferred.
- `published`: the released scripts' arithmetic. For multi-head attention the head count is
  rounded first and the shortfall is compensated in *neuron units* (one missing head is made
  up by one neuron), so late iterations remove less than a layer; GQA models use the
  accumulator as above. Model sizes then match the released checkpoints.

`--mlp_only` gives the whole budget to MLP neurons (the paper's setting for its GQA model).

`--align N` (default 0: off) keeps the MLP width a multiple of N after every G step, for
deployment runtimes (GGUF's q8_0 needs rows that are multiples of 32, k-quants of 256; GPU
matrix kernels prefer multiples of 64). The aligned run follows the unaligned schedule exactly --
the same groups, the same accumulator -- with each step's resulting MLP width rounded to the
nearest multiple of N. The run carries the difference (`neuron_debt`: neurons per layer the model
holds beyond the unaligned schedule, |debt| <= N/2) from step to step and plans the next step on
the unaligned width, so every step removes one layer's worth of parameters on average and the
model never differs from the unaligned one by more than half a block of N neurons per layer.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass

from ..core.io import UsageError

WIDTH_MODES = ("attention_mlp", "mlp_only")
BUDGET_RULES = ("exact", "published")


class PlanError(UsageError):
    """The requested path cannot be carried out on this model (too few layers, heads, neurons)."""


@dataclass(frozen=True)
class LayerShape:
    """The uniform shape of the decoder layers, read from the weights."""

    num_layers: int
    hidden: int
    head_dim: int
    query_heads: int
    kv_heads: int
    intermediate: int
    attention_bias: bool = False  # q/k/v biases (a GQA group owns its rows of them)
    mlp_bias: bool = False
    o_bias: bool | None = None  # None: as attention_bias (the family adapter says whether o_proj has one)
    norm_params: int | None = None  # never-pruned norm weights per layer (the family's); None: two RMSNorms

    @property
    def group_size(self) -> int:
        return self.query_heads // self.kv_heads

    @property
    def params_per_group(self) -> int:
        """q rows + o columns of the group's query heads, k and v rows of its K/V head."""
        g, d, h = self.group_size, self.head_dim, self.hidden
        bias = (g * d + 2 * d) if self.attention_bias else 0
        return 2 * g * d * h + 2 * d * h + bias

    @property
    def params_per_neuron(self) -> int:
        """A gate row, an up row and a down column."""
        return 3 * self.hidden + (2 if self.mlp_bias else 0)

    @property
    def attention_params(self) -> int:
        has_o_bias = self.attention_bias if self.o_bias is None else self.o_bias
        return self.kv_heads * self.params_per_group + (self.hidden if has_o_bias else 0)

    @property
    def mlp_params(self) -> int:
        down_bias = self.hidden if self.mlp_bias else 0
        return self.intermediate * self.params_per_neuron + down_bias

    @property
    def layer_params(self) -> int:
        """One decoder layer: attention + MLP + its norms (two RMSNorms unless the family says
        otherwise: `norm_params` from its adapter, with any extra or per-head-dim q/k norms)."""
        norms = 2 * self.hidden if self.norm_params is None else self.norm_params
        return self.attention_params + self.mlp_params + norms

    @property
    def min_groups(self) -> int:
        """Keep at least one head (MHA) or two GQA groups (as the paper's released GQA code); a
        multi-query model (one K/V head) keeps its one group."""
        return 1 if self.group_size == 1 else min(2, self.kv_heads)


@dataclass(frozen=True)
class WidthCarry:
    """What a run hands from one G step to the next; persisted with every iteration for --resume.

    `align` is the run's --align (0: off), fixed for the run; it travels here so that every
    step sees it.
    """

    accumulator: float = 0.0  # attention's owed fraction of a group per layer (exact rule)
    neuron_debt: int = 0  # MLP neurons per layer held beyond the unaligned schedule (--align)
    align: int = 0


@dataclass(frozen=True)
class WidthStep:
    """What one G step removes in every layer, and the accumulator it leaves behind."""

    groups: int
    neurons: int
    accumulator: float
    target_params: int  # one layer's parameter count on the unaligned schedule (the budget)
    removed_params: int  # over all layers
    unaligned_neurons: int = 0  # what the rule removes before --align rounds the width
    neuron_debt: int = 0  # after this step (see WidthCarry)

    def as_dict(self) -> dict:
        return asdict(self)

    def carry(self, align: int) -> WidthCarry:
        return WidthCarry(self.accumulator, self.neuron_debt, align)


def _exact_attention(shape: LayerShape, accumulator: float) -> tuple[int, float]:
    """Whole groups owed to attention so far, capped at what this step's budget can pay for.

    Late in a GQA run one group in every layer can cost more than a whole layer; such a group is
    deferred (the accumulator keeps the debt) and the MLP takes the step, so that the step still
    removes one layer's worth of parameters.
    """
    share = shape.layer_params * shape.attention_params / (shape.attention_params + shape.mlp_params)
    accumulator += share / (shape.num_layers * shape.params_per_group)
    affordable = (shape.layer_params + shape.num_layers * shape.params_per_neuron // 2) // (
        shape.num_layers * shape.params_per_group
    )
    groups = min(math.floor(accumulator + 1e-9), affordable)
    return groups, accumulator - groups


def _published_mha(shape: LayerShape) -> tuple[int, int]:
    """The released MHA script's arithmetic: round the heads, then compensate the shortfall in neuron units."""
    ratio = shape.layer_params / (shape.num_layers * (shape.attention_params + shape.mlp_params))
    heads = min(round(ratio * shape.query_heads), shape.query_heads - 1)
    neurons = round(shape.intermediate * ratio + shape.query_heads * ratio - heads)
    return heads, neurons


def plan_width_step(shape: LayerShape, mode: str, rule: str, accumulator: float = 0.0, align: int = 0,
                    neuron_debt: int = 0) -> WidthStep:
    """Counts for one G step on a model of `shape`; raises PlanError if it cannot be done.

    With `align` > 0 the rule is applied to the unaligned width (the current one less
    `neuron_debt`) and the width it leaves is rounded to the nearest multiple of `align`.
    """
    if align < 0:
        raise UsageError(f"--align must be 0 (off) or a positive number of neurons, got {align}")
    unaligned = dataclasses.replace(shape, intermediate=shape.intermediate - neuron_debt)
    step = _plan_unaligned(unaligned, mode, rule, accumulator)
    if not align:
        return step
    neurons = aligned_removal(shape.intermediate, unaligned.intermediate - step.neurons, align)
    removed = shape.num_layers * (step.groups * shape.params_per_group + neurons * shape.params_per_neuron)
    debt = (shape.intermediate - neurons) - (unaligned.intermediate - step.neurons)
    return dataclasses.replace(step, neurons=neurons, removed_params=removed, neuron_debt=debt)


def aligned_removal(intermediate: int, unaligned_kept: int, align: int) -> int:
    """Neurons to remove so that the kept width is the multiple of `align` nearest `unaligned_kept`.

    Never more than the current width allows (a first step on a width that is not yet a multiple
    rounds down instead), never below one block.
    """
    kept = align * math.floor(unaligned_kept / align + 0.5)
    kept = min(kept, align * (intermediate // align))
    if kept < align:
        raise PlanError(
            f"a width step with --align {align} would leave fewer than {align} MLP neurons per layer "
            f"({unaligned_kept} unaligned); shorten the path or lower --align"
        )
    return intermediate - kept


def _plan_unaligned(shape: LayerShape, mode: str, rule: str, accumulator: float) -> WidthStep:
    """The rule's counts for one G step (whole neurons, no alignment)."""
    if mode not in WIDTH_MODES:
        raise UsageError(f"unknown width mode {mode!r}; choose from {', '.join(WIDTH_MODES)}")
    if rule not in BUDGET_RULES:
        raise UsageError(f"unknown budget rule {rule!r}; choose from {', '.join(BUDGET_RULES)}")
    per_neuron_total = shape.num_layers * shape.params_per_neuron
    groups = 0
    if mode == "mlp_only":
        neurons = round(shape.layer_params / per_neuron_total)
    elif rule == "published" and shape.group_size == 1:
        groups, neurons = _published_mha(shape)
    else:
        groups, accumulator = _exact_attention(shape, accumulator)
        attention_removed = groups * shape.num_layers * shape.params_per_group
        neurons = round((shape.layer_params - attention_removed) / per_neuron_total)
    if shape.kv_heads - groups < shape.min_groups:
        unit = "head" if shape.group_size == 1 else "GQA group"
        raise PlanError(
            f"a width step would leave {shape.kv_heads - groups} {unit}(s) per layer "
            f"(minimum {shape.min_groups}); shorten the path or use --mlp_only"
        )
    if neurons >= shape.intermediate or neurons < 0:
        raise PlanError(
            f"a width step would remove {neurons} of {shape.intermediate} MLP neurons per layer; "
            "at least one must remain"
        )
    removed = shape.num_layers * (groups * shape.params_per_group + neurons * shape.params_per_neuron)
    return WidthStep(groups, neurons, accumulator, shape.layer_params, removed, unaligned_neurons=neurons)


def check_depth_step(shape: LayerShape) -> None:
    if shape.num_layers - 1 < 3:
        raise PlanError(
            f"a depth step would leave {shape.num_layers - 1} decoder layers; at least 3 must remain"
        )


def normalise_decisions(sequence: str) -> str:
    """The one spelling of a decision string (`lg`, ` LG ` -> `LG`): stored in run_config.json
    and compared on --resume, so a run resumes whatever case was typed."""
    return sequence.strip().upper()


def parse_decisions(sequence: str, num_iterations: int) -> list[str]:
    """Upper-case L/G decisions, cycled when the sequence is shorter than the run."""
    if num_iterations < 1:
        raise UsageError(f"--num_iterations must be at least 1, got {num_iterations}")
    letters = normalise_decisions(sequence)
    if not letters or set(letters) - {"L", "G"}:
        raise UsageError(f"--decision_sequence must contain only L and G letters, got {sequence!r}")
    return [letters[i % len(letters)] for i in range(num_iterations)]
