"""AMP (activation magnitude) importance of attention heads and MLP neurons.

One batched forward pass over the calibration prompts yields both scores:
- head h of a layer: mean over a prompt's tokens of || x_h @ W_o[:, h].T ||_1, the L1 norm of
  the head's contribution to the o_proj output (x_h is the head's slice of the o_proj input);
- MLP neuron j: mean over a prompt's tokens of |x_j|, x being the down_proj input
  (= silu(gate) * up).
Both are then averaged over prompts. Padding tokens are masked out and each prompt is averaged
over its own tokens, so batching does not change the scores. A GQA group scores the mean of its
query heads.

The same pass can also score whole decoder layers for the depth rule `block_influence`
(`with_layers=True`): layer i scores the mean over a prompt's tokens of 1 - cos(x_i, y_i), x_i
being the hidden state entering the layer and y_i the one leaving it (the residual stream), again
averaged over prompts. A layer that barely turns the residual stream scores near 0: removing it
changes the least (the block influence of ShortGPT; Minitron scores depth the same way).

`amp_scores_streamed` gives the same scores for a model kept in CPU memory, with one decoder
layer at a time on the compute device (mop/prune/streaming.py): for models larger than the GPU.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..models.adapter import DecoderAdapter
from .streaming import capture_layer_inputs, stream_layers


@dataclass
class ImportanceScores:
    """Per layer: head scores (num_query_heads,) and neuron scores (intermediate_size,); with
    `with_layers`, one block-influence score per decoder layer, (num_layers,)."""

    heads: list[torch.Tensor]
    neurons: list[torch.Tensor]
    layers: torch.Tensor | None = None

    def group_scores(self, layer: int, group_size: int) -> torch.Tensor:
        """Mean of the query-head scores of each GQA group: (H,) -> (H / group_size,)."""
        return self.heads[layer].view(-1, group_size).mean(dim=1)

    def non_finite(self) -> str | None:
        """Where the first NaN or infinite score is ('layer 5 neuron'), None when all are finite:
        a NaN sorts anywhere, so the units pruned by it would be chosen by nothing."""
        for kind, per_layer in (("head", self.heads), ("neuron", self.neurons)):
            for layer, values in enumerate(per_layer):
                if isinstance(values, torch.Tensor) and not bool(torch.isfinite(values).all()):
                    return f"layer {layer} {kind}"
        if self.layers is not None and not bool(torch.isfinite(self.layers).all()):
            return f"layer {int((~torch.isfinite(self.layers)).nonzero()[0])} block-influence"
        return None


class _AmpAccumulator:
    """Sums of per-prompt token-mean scores, filled by forward pre-hooks of one pass."""

    def __init__(self, adapter: DecoderAdapter, with_heads: bool, with_layers: bool = False):
        self.adapter = adapter
        self.with_heads = with_heads
        self.with_layers = with_layers
        self.mask: torch.Tensor | None = None  # (B, T) float, 1 for real tokens
        self.head_sums: list[torch.Tensor | float] = [0.0] * adapter.num_layers
        self.neuron_sums: list[torch.Tensor | float] = [0.0] * adapter.num_layers
        self.layer_sums: list[torch.Tensor | float] = [0.0] * adapter.num_layers
        self.num_prompts = 0

    def _token_mean(self, values: torch.Tensor) -> torch.Tensor:
        """(B, T, N) -> (N,): each prompt's mean over its real tokens, summed over prompts."""
        mask = self.mask.to(values.device, torch.float32)  # (B, T)
        per_prompt = torch.einsum("btn,bt->bn", values.float(), mask) / mask.sum(1, keepdim=True)
        return per_prompt.sum(0)

    def head_hook(self, index: int):
        o_proj = self.adapter.attention_projections(self.adapter.layers()[index])[3]
        head_dim = self.adapter.head_dim

        def hook(module, args):
            x = args[0]  # (B, T, H * d)
            weight = o_proj.weight  # (hidden, H * d)
            norms = []
            for h in range(x.shape[-1] // head_dim):
                cols = slice(h * head_dim, (h + 1) * head_dim)
                contribution = x[..., cols] @ weight[:, cols].T  # (B, T, hidden)
                norms.append(contribution.float().abs().sum(-1))  # (B, T)
            self.head_sums[index] = self.head_sums[index] + self._token_mean(torch.stack(norms, -1))

        return hook

    def neuron_hook(self, index: int):
        def hook(module, args):
            self.neuron_sums[index] = self.neuron_sums[index] + self._token_mean(args[0].abs())

        return hook

    def layer_hook(self, index: int):
        """Block influence of decoder layer `index`: 1 - cos(input, output) per token, masked."""
        def hook(module, args, kwargs, output):
            entering = args[0] if args else kwargs["hidden_states"]  # (B, T, hidden)
            leaving = output[0] if isinstance(output, tuple) else output  # (B, T, hidden)
            turn = 1 - F.cosine_similarity(entering.float(), leaving.float(), dim=-1)  # (B, T)
            self.layer_sums[index] = self.layer_sums[index] + self._token_mean(turn[..., None])

        return hook

    @contextlib.contextmanager
    def hooks(self) -> Iterator[None]:
        handles = []
        try:
            for i, layer in enumerate(self.adapter.layers()):
                _, _, _, o_proj = self.adapter.attention_projections(layer)
                _, _, down = self.adapter.mlp_projections(layer)
                if self.with_heads:
                    handles.append(o_proj.register_forward_pre_hook(self.head_hook(i)))
                handles.append(down.register_forward_pre_hook(self.neuron_hook(i)))
                if self.with_layers:
                    handles.append(layer.register_forward_hook(self.layer_hook(i), with_kwargs=True))
            yield
        finally:
            for handle in handles:
                handle.remove()

    def scores(self) -> ImportanceScores:
        n = max(self.num_prompts, 1)
        heads = [s / n if torch.is_tensor(s) else torch.empty(0) for s in self.head_sums]
        neurons = [s.cpu() / n for s in self.neuron_sums]
        layers = torch.cat([s.cpu() / n for s in self.layer_sums]) if self.with_layers else None
        return ImportanceScores([h.cpu() for h in heads], neurons, layers)


def batch_prompts(tokenizer, prompts: list[str], batch_size: int, max_length: int) -> list[dict]:
    """Tokenise, cut at `max_length` tokens, sort by length (less padding) and right-pad into batches.

    The cut is made here rather than with the tokenizer's `truncation=True`, which would switch
    truncation on inside the fast tokenizer and be saved with every checkpoint's tokenizer.json.
    """
    encoded = [tokenizer(p)["input_ids"][:max_length] for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batches = []
    for start in range(0, len(order), batch_size):
        chunk = [encoded[i] for i in order[start : start + batch_size]]
        width = max(len(ids) for ids in chunk)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, ids in enumerate(chunk):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
        batches.append({"input_ids": input_ids, "attention_mask": attention_mask})
    return batches


@torch.inference_mode()
def amp_scores(
    adapter: DecoderAdapter,
    batches: Iterable[dict],
    with_heads: bool = True,
    progress: bool = True,
    with_layers: bool = False,
) -> ImportanceScores:
    """Run the calibration batches once and return head and neuron AMP scores (and, with
    `with_layers`, every decoder layer's block influence from the same pass)."""
    acc = _AmpAccumulator(adapter, with_heads, with_layers)
    device = next(adapter.model.parameters()).device
    batches = list(batches)
    with acc.hooks():
        for batch in tqdm(batches, desc="AMP importance", unit="batch", disable=not progress):
            batch = {k: v.to(device) for k, v in batch.items()}
            acc.mask = batch["attention_mask"]
            acc.num_prompts += batch["attention_mask"].shape[0]
            adapter.run_calibration_batch(batch)
    return acc.scores()


@torch.inference_mode()
def amp_scores_streamed(
    adapter: DecoderAdapter,
    batches: Iterable[dict],
    device,
    with_heads: bool = True,
    progress: bool = True,
    place: Callable | None = None,
    with_layers: bool = False,
) -> ImportanceScores:
    """`amp_scores` for a model in CPU memory: the decoder layers visit `device` one at a time.

    The same hooks see the same activations (every layer's inputs for all batches are kept on
    CPU between layers), and each layer sums its batches in the same order, so the scores equal
    the in-memory pass's. `place` is passed to `stream_layers` (e.g. to load layers from disk).
    """
    acc = _AmpAccumulator(adapter, with_heads, with_layers)
    batches = list(batches)
    inputs = capture_layer_inputs(adapter, batches, device)
    acc.num_prompts = sum(batch["attention_mask"].shape[0] for batch in batches)

    def before_batch(b: int) -> None:
        acc.mask = batches[b]["attention_mask"]

    with acc.hooks():
        stream_layers(adapter, inputs, device, before_batch, place, progress)
    return acc.scores()
