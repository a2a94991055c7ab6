"""Run a decoder one layer at a time on the compute device, for models larger than the device.

The model stays in CPU memory. The modules outside the decoder layers (embeddings, rotary
embedding, a LLaVA vision tower and projector; never the vocabulary projection) visit the device
once, while the model's own forward pass computes what every decoder layer receives: the input
hidden states and the keyword arguments (position ids and rotary embeddings, the causal /
padding attention mask, cache positions). A pre-hook on the first decoder layer captures them and
stops the pass, so masks and positions are exactly the model's own. Where layers differ in what
they receive (sliding-window and global layers get different masks: the adapter's
`layer_kind`), the pass runs through stand-ins that record each kind's arguments instead, and
every layer is later run with the arguments of its own kind. Then each decoder layer in
turn is copied to the device, run over the inputs of every calibration batch, and dropped again;
its outputs, kept on CPU, are the next layer's inputs (as layer-wise pruning methods do). The
device holds one decoder layer plus one batch's activations at a time.

Reusable pieces (AMP importance uses them; candidate scoring can too):
- `capture_layer_inputs(adapter, batches, device)`: what the first decoder layer receives;
- `stream_layers(adapter, inputs, device, before_batch=...)`: every decoder layer over every
  input, one layer on the device at a time; returns the last layer's outputs (before the final
  norm), on CPU;
- `stream_decoder(adapter, batches, device)`: both;
- `on_device(modules, device)`: device copies of the modules' weights for a block.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from ..core.io import UsageError
from ..models.adapter import DecoderAdapter

OFFLOAD_MODES = ("auto", "on", "off")
# `auto` streams when the weights take more than this share of the device's free memory (the rest
# holds activations, the CUDA context and allocator slack).
FIT_FRACTION = 0.85

Fetch = Callable[[str, torch.Tensor], torch.Tensor]


@dataclass
class LayerInput:
    """What the model passes to its first decoder layer for one calibration batch (on CPU)."""

    hidden: torch.Tensor  # (B, T, hidden)
    args: tuple = ()  # further positional arguments (none in transformers 4.57)
    kwargs: dict = field(default_factory=dict)  # attention mask, position ids / embeddings, ... (first layer's)
    kind_kwargs: dict = field(default_factory=dict)  # layer kind -> its kwargs, where kinds differ

    def kwargs_for(self, kind) -> dict:
        """The keyword arguments the model passes a layer of `kind`."""
        return self.kind_kwargs.get(kind, self.kwargs)


class _StopForward(Exception):
    """Raised by the capture hook: nothing after the first decoder layer's input is needed."""


def to_device(value, device):
    """Tensors inside tuples, lists and dicts moved to `device`; everything else unchanged."""
    if torch.is_tensor(value):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    return value


@contextlib.contextmanager
def swapped(modules: Iterable[nn.Module], fetch: Fetch) -> Iterator[None]:
    """For the block, each parameter and buffer `t` (qualified name `n`) of the modules is
    replaced by `fetch(n, t)`; the original objects come back afterwards, also on error.

    Nothing is copied back: calibration passes do not change weights. A tensor shared by
    several modules (tied embeddings) is fetched once.
    """
    saved: list[tuple[dict, str, torch.Tensor]] = []
    fetched: dict[int, torch.Tensor] = {}
    try:
        for module in modules:
            for prefix, sub in module.named_modules():
                for store in (sub._parameters, sub._buffers):
                    for name, tensor in list(store.items()):
                        if tensor is None:
                            continue
                        if id(tensor) not in fetched:
                            new = fetch(f"{prefix}.{name}" if prefix else name, tensor)
                            if isinstance(tensor, nn.Parameter):
                                new = nn.Parameter(new, requires_grad=False)
                            fetched[id(tensor)] = new
                        saved.append((store, name, tensor))
                        store[name] = fetched[id(tensor)]
        yield
    finally:
        for store, name, tensor in reversed(saved):
            store[name] = tensor


def on_device(modules: Iterable[nn.Module], device) -> contextlib.AbstractContextManager:
    """Device copies of the modules' weights for the block (the CPU originals stay)."""
    return swapped(modules, lambda name, tensor: tensor.to(device))


def resident_modules(adapter: DecoderAdapter) -> list[nn.Module]:
    """The modules a pass needs before the first decoder layer: everything outside the decoder
    layers and the vocabulary projection (embeddings, rotary embedding, final norm, a vision
    tower and projector)."""
    layers = adapter.layers()
    output = adapter.model.get_output_embeddings() if hasattr(adapter.model, "get_output_embeddings") else None

    def walk(module: nn.Module) -> Iterator[nn.Module]:
        for child in module.children():
            if child is layers or child is output:
                continue
            if any(m is layers for m in child.modules()):
                yield from walk(child)
            else:
                yield child

    return list(walk(adapter.model))


class _KindRecorder(nn.Module):
    """Stands in for a decoder layer during capture: records the keyword arguments the decoder
    passes a layer of its kind, and stops the pass once every kind is recorded. Attributes read
    off it (its attention's `layer_type`, ...) come from the layer it stands for."""

    def __init__(self, layer: nn.Module, kind, record: Callable):
        super().__init__()
        self.layer = layer
        self.kind = kind
        self.record = record

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["layer"], name)

    def forward(self, hidden, *args, **kwargs):
        self.record(self.kind, hidden, args, kwargs)
        return (hidden,)  # the decoder only hands it on (no layer runs after a recorder)


@contextlib.contextmanager
def _recording_kinds(adapter: DecoderAdapter, kinds: list, record: Callable) -> Iterator[None]:
    """The decoder's layers replaced by recorders for the block (the real list comes back)."""
    original = adapter.decoder.layers
    adapter.decoder.layers = nn.ModuleList(_KindRecorder(l, k, record) for l, k in zip(original, kinds))
    try:
        yield
    finally:
        adapter.decoder.layers = original


def capture_layer_inputs(adapter: DecoderAdapter, batches: Sequence[dict], device) -> list[LayerInput]:
    """Each batch's input to the first decoder layer, computed by the model's own forward pass
    (with the modules outside the decoder layers on `device`), kept on CPU; where layer kinds
    differ, the keyword arguments of every kind too."""
    kinds = [adapter.layer_kind(layer) for layer in adapter.layers()]
    if len(set(kinds)) > 1:
        return _capture_per_kind(adapter, batches, device, kinds)
    captured: list[LayerInput] = []

    def hook(module, args, kwargs):
        captured.append(LayerInput(args[0].to("cpu"), to_device(tuple(args[1:]), "cpu"), to_device(kwargs, "cpu")))
        raise _StopForward

    handle = adapter.layers()[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with on_device(resident_modules(adapter), device):
            for batch in batches:
                try:
                    adapter.run_calibration_batch(to_device(batch, device))
                except _StopForward:
                    continue
                raise RuntimeError("the model never called its first decoder layer")
    finally:
        handle.remove()
    return captured


def _capture_per_kind(adapter: DecoderAdapter, batches: Sequence[dict], device, kinds: list) -> list[LayerInput]:
    """`capture_layer_inputs` for decoders whose layer kinds get different arguments."""
    captured: list[LayerInput] = []
    current: dict = {}

    def record(kind, hidden, args, kwargs):
        if not current:  # the first layer: the hidden states every pass starts from
            current["input"] = LayerInput(hidden.to("cpu"), to_device(tuple(args), "cpu"), to_device(kwargs, "cpu"))
        current.setdefault("kinds", {}).setdefault(kind, to_device(kwargs, "cpu"))
        if len(current["kinds"]) == len(set(kinds)):
            raise _StopForward

    with _recording_kinds(adapter, kinds, record), on_device(resident_modules(adapter), device):
        for batch in batches:
            current.clear()
            try:
                adapter.run_calibration_batch(to_device(batch, device))
            except _StopForward:
                item = current["input"]
                item.kind_kwargs = current["kinds"]
                captured.append(item)
                continue
            raise RuntimeError("the model never called all kinds of its decoder layers")
    return captured


def stream_layers(
    adapter: DecoderAdapter,
    inputs: Sequence[LayerInput],
    device,
    before_batch: Callable[[int], None] | None = None,
    place: Callable[[int, nn.Module], contextlib.AbstractContextManager] | None = None,
    progress: bool = False,
) -> list[torch.Tensor]:
    """Run every decoder layer over every input, one layer on the device at a time.

    `before_batch(b)` is called before batch b goes through a layer (hooks that need the
    batch's padding mask set it there). `place(index, layer)` makes a layer usable on the device
    for a block (default: device copies of its weights); it can also load the layer from disk.
    Returns each batch's output of the last decoder layer (before the final norm), on CPU.
    """
    place = place or (lambda index, layer: on_device([layer], device))
    hidden = [item.hidden for item in inputs]
    layers = adapter.layers()
    for index in tqdm(range(len(layers)), desc="decoder layers (streamed)", unit="layer", disable=not progress):
        kind = adapter.layer_kind(layers[index])
        with place(index, layers[index]):
            for b, item in enumerate(inputs):
                if before_batch is not None:
                    before_batch(b)
                out = layers[index](hidden[b].to(device), *to_device(item.args, device),
                                    **to_device(item.kwargs_for(kind), device))
                hidden[b] = (out[0] if isinstance(out, tuple) else out).to("cpu")
    return hidden


def stream_decoder(adapter: DecoderAdapter, batches: Sequence[dict], device, before_batch=None,
                   progress: bool = False) -> list[torch.Tensor]:
    """`capture_layer_inputs` then `stream_layers`: the last decoder layer's outputs, on CPU."""
    return stream_layers(adapter, capture_layer_inputs(adapter, batches, device), device, before_batch,
                         progress=progress)


# ----------------------------------------------------------------------------- when to stream


def free_device_memory(device: str) -> int | None:
    """Free bytes on a CUDA device; None for the CPU (nothing to offload to)."""
    if not str(device).startswith("cuda"):
        return None
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return free


def resolve_offload(mode: str, device: str, weight_bytes: int, free_bytes: int | None = None) -> bool:
    """Whether to stream decoder layers: `on`, `off`, or `auto` = when the weights do not fit in
    FIT_FRACTION of the device's free memory. On the CPU `auto` means off (the model is in
    CPU memory either way)."""
    if mode not in OFFLOAD_MODES:
        raise UsageError(f"--offload must be one of {', '.join(OFFLOAD_MODES)}, got {mode!r}")
    if mode != "auto":
        return mode == "on"
    free = free_device_memory(device) if free_bytes is None else free_bytes
    return free is not None and weight_bytes > FIT_FRACTION * free
