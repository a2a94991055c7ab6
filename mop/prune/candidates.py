"""The two candidates of an iteration as views of the live model, without copying it.

A metric path scores what the model would be after a depth (L) or a width (G) step. Instead of
a deep copy (twice the model's memory), each candidate is the live model seen differently:
- L: the decoder runs without the layer the step would delete (`DecoderAdapter.without_layer`),
  chosen by the run's depth rule (mop/prune/steps.py `depth_choice`);
- G: forward pre-hooks zero the inputs the step would cut -- the removed GQA groups' query-head
  slices of each o_proj input and the removed neurons of each down_proj input. Removing a
  column of a Linear and zeroing its input feature give the same output, and a removed group's
  K/V head only ever feeds its own query heads, so this is the pruned model up to float rounding.
Both views are undone when the `with` block ends, also on an error: the live model comes back
bit-identical. A LoRA probe may wrap the projections while a view is active: `remask()` moves
the hooks onto the wrappers, so the adapters see the masked inputs too, as they would on the
pruned model.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from ..models.adapter import DecoderAdapter, count_parameters
from .budget import WidthCarry
from .steps import THIRD_TO_LAST, ScoreFn, depth_choice, plan_live_width_step


class UnitMask:
    """Pre-hooks that zero the o_proj / down_proj input features of the units a G step removes."""

    def __init__(self, adapter: DecoderAdapter, units: list[tuple[list[int], list[int]]]):
        self.adapter = adapter
        head_dim, group_size = adapter.head_dim, adapter.group_size()
        self.features = []  # per layer: (o_proj input features, down_proj input features) to zero
        for groups, neurons in units:
            heads = [g * group_size + j for g in groups for j in range(group_size)]
            o_cols = [h * head_dim + k for h in heads for k in range(head_dim)]
            self.features.append((torch.tensor(o_cols, dtype=torch.long), torch.tensor(neurons, dtype=torch.long)))
        self.handles: list = []

    @staticmethod
    def zero_features(columns: torch.Tensor):
        def hook(module, args):
            if columns.numel() == 0:
                return None
            x = args[0].clone()
            x[..., columns.to(x.device)] = 0
            return (x, *args[1:])

        return hook

    def install(self) -> None:
        """Hook the modules now at the o_proj / down_proj places (plain Linear or LoRA wrappers)."""
        self.remove()
        for layer, (o_cols, neurons) in zip(self.adapter.layers(), self.features):
            o_proj = self.adapter.attention_projections(layer)[3]
            down = self.adapter.mlp_projections(layer)[2]
            self.handles.append(o_proj.register_forward_pre_hook(self.zero_features(o_cols)))
            self.handles.append(down.register_forward_pre_hook(self.zero_features(neurons)))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


class CandidateView:
    """What a `with candidate(...)` block gets: the parameter count, and `remask()` for probes."""

    def __init__(self, params: int, mask: UnitMask | None = None):
        self.params = params
        self.mask = mask

    def remask(self) -> None:
        if self.mask is not None:
            self.mask.install()


@contextlib.contextmanager
def candidate(adapter: DecoderAdapter, decision: str, score_fn: ScoreFn, mode: str, rule: str,
              carry: WidthCarry, depth_rule: str = THIRD_TO_LAST) -> Iterator[CandidateView]:
    """The live model behaving as the candidate of `decision` for the duration of the block."""
    before = count_parameters(adapter.model)
    if decision == "L":
        index, _ = depth_choice(adapter, depth_rule, score_fn)
        removed = count_parameters(adapter.layers()[index])
        with adapter.without_layer(index):
            yield CandidateView(before - removed)
        return
    step, units = plan_live_width_step(adapter, score_fn, mode, rule, carry)
    mask = UnitMask(adapter, units)
    mask.install()
    try:
        yield CandidateView(before - step.removed_params, mask)
    finally:
        mask.remove()


@contextlib.contextmanager
def training_state_kept(model) -> Iterator[None]:
    """Put back what a probe's Trainer and peft change on the live model: which parameters
    require grad (peft freezes the base), train/eval mode, the config's use_cache, and the
    `peft_config` attribute peft leaves behind after unloading."""
    requires_grad = {name: p.requires_grad for name, p in model.named_parameters()}
    training, use_cache = model.training, getattr(model.config, "use_cache", None)
    had_peft_config = "peft_config" in model.__dict__
    try:
        yield
    finally:
        if not had_peft_config:
            model.__dict__.pop("peft_config", None)
        for name, p in model.named_parameters():
            p.requires_grad_(requires_grad.get(name, p.requires_grad))
            p.grad = None
        model.train(training)
        if use_cache is not None:
            model.config.use_cache = use_cache
