"""LoRA's training step on CPU, made cheaper without changing what it computes.

A recovery on the embedded model runs on CPU, and there two parts of peft's LoRA cost far more
than their arithmetic. A torch.profiler run of packed sft steps (`benchmarks/bench_finetune.py`'s
checkpoint, 2 cores) found them:

- **The dropout mask.** peft puts an `nn.Dropout` (p = 0.05 in the paper's recipe) before every
  LoRA A matrix, seven per decoder layer, and on CPU torch draws its Bernoulli mask one element
  at a time from its Mersenne Twister: `bernoulli_` took 16% of the step, a third of what all
  the matrix products took. `MaskDropout` draws 64 random bits per four elements (one `randint`
  over int64, viewed as int16) and drops an element when its 16 bits lie below round(p * 2^16)
  of the 2^16 values: probability round(p * 2^16) / 2^16, p to within 2^-17 (0.050003 for 0.05),
  independently for every element; kept elements are scaled by 1 / (1 - p) as torch does. The
  bits come from torch's default generator, so a seeded run draws the same masks again and the
  Trainer's saved RNG state resumes them.
- **The update's sum.** peft adds the update as `base + lora_B(lora_A(x)) * scaling`: three more
  passes over the (tokens, out_features) output, forward, and one more backward, for a rank-32
  product. `FusedLoraLinear` computes the same sum as one `addmm` (base + scaling * h @ B^T,
  BLAS's alpha doing the scaling), whose backward scales only the small (tokens, r) and
  (r, out) gradients.

Together they took 4 profiled steps from 22.4 s to 14.8 s of CPU time. Both apply only where they
were measured to help: in training, on CPU, with one plain LoRA
adapter on fp32 tensors. On CUDA (fused dropout kernel, autocast), in evaluation, with DoRA or
several adapters, they are peft's own code, so GPU recoveries compute exactly what they did.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BITS = 16
LEVELS = 2 ** BITS
ELEMENTS_PER_DRAW = 64 // BITS


# ----------------------------------------------------------------------------- dropout


def drop_threshold(p: float) -> int:
    """Signed 16-bit value below which an element is dropped: round(p * 2^16) of the 2^16 values
    (the int16 view counts from -2^15)."""
    return round(p * LEVELS) - LEVELS // 2


def random_int16(shape: torch.Size, device=None) -> torch.Tensor:
    """Uniform int16 values over the full range, four per 64-bit draw of the default generator."""
    count = shape.numel()
    draws = torch.randint(-2 ** 63, 2 ** 63 - 1, (-(-count // ELEMENTS_PER_DRAW),), dtype=torch.int64,
                          device=device)
    return draws.view(torch.int16)[:count].view(shape)


def keep_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """x-shaped tensor of x's dtype: 0 where an element is dropped, 1 / (1 - p) where it is kept."""
    mask = torch.empty_like(x, memory_format=torch.contiguous_format)
    torch.ge(random_int16(x.shape, x.device), drop_threshold(p), out=mask)  # 1.0 / 0.0, no bool tensor between
    return mask.mul_(1.0 / (1.0 - p))


class MaskDropout(nn.Dropout):
    """nn.Dropout whose CPU training mask comes from 16-bit draws (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return F.dropout(x, self.p, self.training, self.inplace)
        return x * keep_mask(x, self.p)


# ----------------------------------------------------------------------------- the fused update


def fused_lora_linear_class():
    """FusedLoraLinear, built on use (it subclasses peft's LoRA Linear; peft is heavy to import)."""
    from peft.tuners.lora.layer import Linear as LoraLinear  # heavy: imported on use

    class FusedLoraLinear(LoraLinear):
        """peft's LoRA Linear, whose CPU training forward adds the update with one addmm."""

        def fusable(self, x: torch.Tensor, kwargs: dict) -> str | None:
            """The adapter to add by addmm: in training, fp32 on CPU without autocast, exactly one
            plain adapter active and unmerged; else None (peft's own forward)."""
            if not self.training or self.disable_adapters or self.merged or kwargs.get("adapter_names") is not None:
                return None
            if x.device.type != "cpu" or torch.is_autocast_enabled("cpu"):
                return None
            active = [a for a in self.active_adapters if a in self.lora_A]
            if len(active) != 1 or active[0] in self.lora_variant or self.lora_bias.get(active[0], False):
                return None
            name = active[0]
            weights = (x, self.get_base_layer().weight, self.lora_A[name].weight, self.lora_B[name].weight)
            return name if all(w.dtype == torch.float32 for w in weights) else None

        def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
            name = self.fusable(x, kwargs)
            if name is None:
                return super().forward(x, *args, **kwargs)
            self._check_forward_args(x, *args, **kwargs)
            result = self.base_layer(x, *args, **kwargs)  # (..., out)
            h = self.lora_A[name](self.lora_dropout[name](x))  # (..., r)
            fused = torch.addmm(result.reshape(-1, result.shape[-1]), h.reshape(-1, h.shape[-1]),
                                self.lora_B[name].weight.t(), alpha=self.scaling[name])  # (tokens, out)
            return fused.view(result.shape)

    return FusedLoraLinear


def register_cpu_lora(config) -> None:
    """Have peft build every targeted nn.Linear of `config` (a LoraConfig) as a FusedLoraLinear
    (peft's documented, experimental hook for custom LoRA layers)."""
    config._register_custom_module({nn.Linear: fused_lora_linear_class()})


def use_mask_dropout(model: nn.Module) -> int:
    """Swap every LoRA dropout of a PEFT model (peft's `lora_dropout` dicts of nn.Dropout) for a
    MaskDropout of the same p; returns how many were swapped."""
    swapped = 0
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if not isinstance(dropouts, nn.ModuleDict):
            continue
        for name, dropout in dropouts.items():
            if type(dropout) is nn.Dropout:
                dropouts[name] = MaskDropout(dropout.p, dropout.inplace)
                swapped += 1
    return swapped
