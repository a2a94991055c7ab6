"""The two MoP steps on a live (or weightless) model, and paths walked without weights.

- `depth_step` (L): delete one decoder layer, chosen by the depth rule:
  `third_to_last` (the paper's, the default) always deletes layer `len(layers) - 3`;
  `block_influence` deletes the layer whose output differs least from its input on the
  calibration prompts (lowest 1 - cos, mop/prune/importance.py), scored anew on the model as it is at
  every L step. The first and the last layer are never candidates: the first turns token
  embeddings into the residual stream every later layer was trained on, the last writes the
  states the final norm and the vocabulary head read, and a cosine of directions understates
  what either does (both usually score high anyway). At least three layers always remain.
- `width_step` (G): remove one current layer's worth of parameters as the same number of GQA
  groups (heads, for MHA) and MLP neurons in every layer, the least important ones by AMP.
- `simulate_path` / `random_decisions`: walk a whole path on a meta-device copy of the model.
  Shapes do not depend on importance scores, so this is the exact schedule of a real run; it
  validates a path before any weight is loaded.
"""

from __future__ import annotations

import random
from typing import Callable

import torch

from ..core.io import UsageError
from ..core.layout import BLOCK_INFLUENCE, DEPTH_RULES, THIRD_TO_LAST  # noqa: F401 (named here for its users)
from ..models.adapter import DecoderAdapter, count_parameters, get_adapter
from ..models.loading import build_meta_model
from .budget import LayerShape, PlanError, WidthCarry, WidthStep, check_depth_step, plan_width_step
from .importance import ImportanceScores
from .surgery import depth_index, drop_layer, remove_groups, remove_neurons, sync_config

ScoreFn = Callable[[DecoderAdapter, bool], ImportanceScores]  # (adapter, with_heads) -> scores


def layer_shape(adapter: DecoderAdapter) -> LayerShape:
    """The current layers' shape, read from the weights of layer 0 (biases as the layer has them),
    with the family's never-pruned norm parameters."""
    first = adapter.layers()[0]
    q, _, _, o = adapter.attention_projections(first)
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
        o_bias=o.bias is not None,
        norm_params=adapter.layer_norm_params(),
    )


def check_depth_rule(depth_rule: str) -> None:
    if depth_rule not in DEPTH_RULES:
        raise UsageError(f"unknown --depth_rule {depth_rule!r}; choose from {', '.join(DEPTH_RULES)}")


def depth_choice(adapter: DecoderAdapter, depth_rule: str, score_fn: ScoreFn | None) -> tuple[int, list | None]:
    """(index of the layer an L step removes now, every current layer's score or None).

    `block_influence` takes the layer scores from `score_fn` (a pass with `with_layers`); the
    lowest-scoring layer strictly between the first and the last is removed (ties: the earlier).
    """
    check_depth_rule(depth_rule)
    if depth_rule == THIRD_TO_LAST:
        return depth_index(adapter), None
    layer_scores = None if score_fn is None else score_fn(adapter, False).layers
    if layer_scores is None or len(layer_scores) != adapter.num_layers:
        raise RuntimeError("the block_influence depth rule needs one score per decoder layer from the "
                           "calibration pass (amp_scores with_layers=True)")
    interior = layer_scores[1:-1]  # the first and the last layer are never removed
    return 1 + lowest(interior, 1)[0], [float(v) for v in layer_scores]


def depth_step(adapter: DecoderAdapter, depth_rule: str = THIRD_TO_LAST, score_fn: ScoreFn | None = None) -> dict:
    """Remove one decoder layer, chosen by `depth_rule` (see the module docstring)."""
    check_depth_step(layer_shape(adapter))
    index, layer_scores = depth_choice(adapter, depth_rule, score_fn)
    drop_layer(adapter, index)
    details = {"removed_layer_index": index}
    if layer_scores is not None:
        details.update(depth_rule=depth_rule, layer_scores=layer_scores)
    return details


def lowest(scores: torch.Tensor, k: int) -> list[int]:
    """Indices of the k lowest scores (ties broken by position, so runs are reproducible)."""
    return torch.argsort(scores.float().cpu(), stable=True)[:k].tolist()


def units_to_remove(adapter: DecoderAdapter, step: WidthStep, scores: ImportanceScores) -> list[tuple[list[int], list[int]]]:
    """Per layer: (GQA groups, MLP neurons) a width step removes -- the lowest-scoring ones."""
    group_size = adapter.group_size()
    return [(lowest(scores.group_scores(i, group_size), step.groups) if step.groups else [],
             lowest(scores.neurons[i], step.neurons))
            for i in range(adapter.num_layers)]


def plan_carried_step(shape: LayerShape, mode: str, rule: str, carry: WidthCarry) -> WidthStep:
    """The counts of a G step on a model of `shape`, given what earlier steps carried over."""
    return plan_width_step(shape, mode, rule, carry.accumulator, carry.align, carry.neuron_debt)


def plan_live_width_step(adapter: DecoderAdapter, score_fn: ScoreFn, mode: str, rule: str, carry: WidthCarry):
    """(the step's counts, the units it removes per layer) for the model as it is now."""
    step = plan_carried_step(layer_shape(adapter), mode, rule, carry)
    return step, units_to_remove(adapter, step, score_fn(adapter, step.groups > 0))


def width_step(adapter: DecoderAdapter, score_fn: ScoreFn, mode: str, rule: str, carry: WidthCarry) -> WidthStep:
    """Remove the least important groups and neurons, the same counts in every layer."""
    step, units = plan_live_width_step(adapter, score_fn, mode, rule, carry)
    for layer, (groups, neurons) in zip(adapter.layers(), units):
        remove_groups(adapter, layer, groups)
        remove_neurons(adapter, layer, neurons)
    sync_config(adapter)
    return step


def placeholder_scores(adapter: DecoderAdapter, with_heads: bool) -> ImportanceScores:
    """Zero scores (prune the first units): for dry runs, where only shapes matter (every
    decoder layer has the same shape, so which one a depth step takes does not matter either)."""
    heads, neurons = [], []
    for layer in adapter.layers():
        heads.append(torch.zeros(adapter.query_heads(layer)))
        neurons.append(torch.zeros(adapter.intermediate_size(layer)))
    return ImportanceScores(heads, neurons, torch.zeros(adapter.num_layers))


def apply_decision(adapter, decision: str, score_fn: ScoreFn, mode: str, rule: str, carry: WidthCarry,
                   depth_rule: str = THIRD_TO_LAST):
    """One iteration: returns (details for the log, the width carry after it)."""
    if decision == "L":
        return depth_step(adapter, depth_rule, score_fn), carry
    step = width_step(adapter, score_fn, mode, rule, carry)
    return step.as_dict(), step.carry(carry.align)


def step_impossible(shape: LayerShape, decision: str, mode: str, rule: str, carry: WidthCarry) -> str | None:
    """Why `decision` cannot be taken on a model of `shape` (None: it can)."""
    try:
        if decision == "L":
            check_depth_step(shape)
        else:
            plan_carried_step(shape, mode, rule, carry)
    except PlanError as err:
        return str(err)
    return None


def other(decision: str) -> str:
    return "G" if decision == "L" else "L"


def describe(adapter: DecoderAdapter, original_params: int) -> dict:
    """The summary columns of a model: its layer shape, size and compression."""
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


# ----------------------------------------------------------------------------- paths without weights


def simulate_path(config, decisions: list[str], mode: str, rule: str, align: int = 0) -> list[dict]:
    """Run the path on a meta-device copy: validates it and gives every iteration's shape."""
    adapter = get_adapter(build_meta_model(config))
    original = count_parameters(adapter.model)
    rows = [{"iteration": 0, "decision": "-", **describe(adapter, original)}]
    carry = WidthCarry(align=align)
    for i, decision in enumerate(decisions, start=1):
        try:
            details, carry = apply_decision(adapter, decision, placeholder_scores, mode, rule, carry)
        except UsageError as err:
            raise type(err)(f"iteration {i} ({decision}): {err}") from None
        rows.append({"iteration": i, "decision": decision, **describe(adapter, original), **details})
    return rows


def random_decisions(config, num_iterations: int, seed: int, mode: str, rule: str,
                     align: int = 0) -> list[tuple[str, str]]:
    """[(decision, 'random' | 'forced')]: one seeded coin per iteration, walked on a meta copy.

    When the drawn step is impossible (a depth step would leave fewer than 3 layers, a width
    step would take the last head/neuron) the other one is taken and marked `forced`. The coin
    is drawn every iteration, also when it is then overruled, so the draws do not depend on
    which steps were possible.
    """
    adapter = get_adapter(build_meta_model(config))
    coin = random.Random(seed)
    path, carry = [], WidthCarry(align=align)
    for i in range(1, num_iterations + 1):
        drawn = "L" if coin.random() < 0.5 else "G"
        shape = layer_shape(adapter)
        reasons = {d: step_impossible(shape, d, mode, rule, carry) for d in "LG"}
        decision = drawn if reasons[drawn] is None else other(drawn)
        if reasons[decision] is not None:
            raise UsageError(f"random path, iteration {i}: no step is possible (L: {reasons['L']}; G: {reasons['G']})")
        _, carry = apply_decision(adapter, decision, placeholder_scores, mode, rule, carry)
        path.append((decision, "random" if decision == drawn else "forced"))
    return path
