"""Gemma-3 text models (`gemma3_text`: gemma-3-1b, and the language model of the larger ones).

- Four hidden-size RMSNorms per layer (input, post-attention, pre- and post-feedforward) and
  per-head-dim q/k norms shared across heads: 4 x hidden + 2 x head_dim never-pruned parameters.
- Sliding-window and global layers interleave (`config.layer_types`; each layer's attention
  reads its own entry when built). The decoder hands each kind its own mask, so streamed passes
  capture one set of keyword arguments per kind, and a depth step deletes the removed layer's
  entry so that the remaining layers keep their kind on reload.
- Embeddings are scaled by sqrt(hidden) inside `embed_tokens`; the head is tied to them.
- `final_logit_softcapping` (when set) caps the logits: cap * tanh(logits / cap).
- transformers 5's config refuses a hidden size that is not a multiple of the head count, and no
  other stock architecture computes this layer: a run that would prune its attention heads
  (`--no-mlp_only`) is refused before any work; MLP-only runs are written as gemma3_text.
"""

from .base import Family, legacy_rope_keys


def per_kind_legacy_rope(params: dict) -> dict:
    """transformers 5 writes one `rope_parameters` entry per layer kind; 4.57 read the global
    layers' as `rope_theta` / `rope_scaling` and the sliding-window layers' theta as
    `rope_local_base_freq`."""
    keys = legacy_rope_keys(params.get("full_attention") or {})
    if isinstance(params.get("sliding_attention"), dict):
        keys["rope_local_base_freq"] = params["sliding_attention"]["rope_theta"]
    return keys


FAMILY = Family(
    model_type="gemma3_text",
    decoder_layer_class="Gemma3DecoderLayer",
    layer_norms=4,
    qk_norms=True,
    final_logit_softcap=True,
    shipped_configs=(("google/gemma-3-1b-pt", "gemma-3-1b-pt.json"),),
    heads_divide_hidden=True,
    legacy_rope=per_kind_legacy_rope,
)
