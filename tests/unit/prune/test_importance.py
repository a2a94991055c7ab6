"""AMP importance: against an ablation computed another way, padding invariance, hook hygiene."""

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_model

from mop.models.adapter import get_adapter
from mop.prune.importance import amp_scores, batch_prompts

PROMPTS = [
    "explain the sun .", "what is water and why is it blue ? write a short sentence",
    "name two red trees", "list one two three four five", "the city",
    "describe a big slow dog and a small fast cat in the river city",
]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread per module


@pytest.fixture
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def ablation_scores(model, tokenizer, prompts):
    """AMP computed another way, one unpadded prompt at a time.

    Head h of layer i: its contribution to the attention output is what disappears from
    `self_attn`'s output when the head's slice of the o_proj input is zeroed (o_proj is linear,
    without bias), so score = token mean of || attn_out - attn_out(without h) ||_1, from one
    extra forward pass per head. Neuron j: |silu(gate(x)) * up(x)|_j recomputed from the MLP's
    input x, averaged over tokens.
    """
    adapter = get_adapter(model)
    d = adapter.head_dim
    layers = adapter.layers()
    heads = [torch.zeros(adapter.query_heads(layer), dtype=torch.float64) for layer in layers]
    neurons = [torch.zeros(layer.mlp.gate_proj.out_features, dtype=torch.float64) for layer in layers]

    def run(ids, layer, ablate_head=None):
        """(self_attn output, MLP input) of `layer`, optionally with one head removed."""
        seen = {}
        handles = [layer.self_attn.register_forward_hook(lambda m, a, kw, o: seen.__setitem__("attn", o[0]),
                                                         with_kwargs=True),
                   layer.mlp.register_forward_hook(lambda m, a, o: seen.__setitem__("mlp_in", a[0]))]
        if ablate_head is not None:
            def zero_head(module, args):
                x = args[0].clone()
                x[..., ablate_head * d:(ablate_head + 1) * d] = 0
                return (x,)
            handles.append(layer.self_attn.o_proj.register_forward_pre_hook(zero_head))
        try:
            with torch.no_grad():
                model(ids)
        finally:
            for handle in handles:
                handle.remove()
        return seen["attn"][0].double(), seen["mlp_in"][0].double()

    for text in prompts:
        ids = torch.tensor([tokenizer(text)["input_ids"]])
        for i, layer in enumerate(layers):
            attn, x = run(ids, layer)
            for h in range(heads[i].numel()):
                without_h, _ = run(ids, layer, ablate_head=h)
                heads[i][h] += (attn - without_h).abs().sum(-1).mean()
            gate, up = layer.mlp.gate_proj.weight.double(), layer.mlp.up_proj.weight.double()
            neurons[i] += (F.silu(x @ gate.T) * (x @ up.T)).abs().mean(0)
    n = len(prompts)
    return [(h / n).float() for h in heads], [(m / n).float() for m in neurons]


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_batched_scores_equal_an_ablation_computed_one_prompt_at_a_time(tokenizer, kv_heads):
    model = tiny_model(kv_heads=kv_heads)
    adapter = get_adapter(model)
    batched = amp_scores(adapter, batch_prompts(tokenizer, PROMPTS, 4, 64), progress=False)
    assert (batch_prompts(tokenizer, PROMPTS, 4, 64)[0]["attention_mask"] == 0).any()  # padding really present
    ref_heads, ref_neurons = ablation_scores(model, tokenizer, PROMPTS)
    for i in range(adapter.num_layers):
        torch.testing.assert_close(batched.heads[i], ref_heads[i], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(batched.neurons[i], ref_neurons[i], rtol=1e-4, atol=1e-6)
    # A GQA group scores the mean of its query heads: groups are consecutive heads.
    group = 4 // kv_heads
    expected = torch.stack([ref_heads[1][g * group:(g + 1) * group].mean() for g in range(kv_heads)])
    torch.testing.assert_close(batched.group_scores(1, group), expected, rtol=1e-4, atol=1e-6)


def test_padding_is_excluded(tokenizer):
    batches = batch_prompts(tokenizer, PROMPTS, 6, 64)
    assert len(batches) == 1 and (batches[0]["attention_mask"] == 0).any()
    lengths = batches[0]["attention_mask"].sum(1)
    assert lengths.tolist() == sorted(len(tokenizer(p)["input_ids"]) for p in PROMPTS)


class Failure(Exception):
    pass


class FailingActivation(torch.nn.Module):
    """Raises in the middle of the forward pass (layer 3's MLP), recording how many AMP hooks
    were installed at that moment."""

    def __init__(self, layers):
        super().__init__()
        self.layers = layers
        self.seen = None

    def forward(self, x):
        self.seen = pre_hook_counts(self.layers)
        raise Failure("boom")


def pre_hook_counts(layers):
    return [(len(l.self_attn.o_proj._forward_pre_hooks), len(l.mlp.down_proj._forward_pre_hooks)) for l in layers]


def test_hooks_are_removed_even_on_error(tokenizer):
    model = tiny_model()
    adapter = get_adapter(model)
    failing = FailingActivation(list(adapter.layers()))
    adapter.layers()[3].mlp.act_fn = failing
    batches = batch_prompts(tokenizer, PROMPTS[:2], 2, 64)
    assert pre_hook_counts(adapter.layers()) == [(0, 0)] * 6
    with pytest.raises(Failure):
        amp_scores(adapter, batches, progress=False)
    assert failing.seen == [(1, 1)] * 6  # one head hook and one neuron hook per layer while running
    assert pre_hook_counts(adapter.layers()) == [(0, 0)] * 6


def test_mlp_only_scores_skip_heads(tokenizer):
    adapter = get_adapter(tiny_model())
    scores = amp_scores(adapter, batch_prompts(tokenizer, PROMPTS, 3, 64), with_heads=False, progress=False)
    assert scores.heads[0].numel() == 0 and scores.neurons[0].shape == (96,)
