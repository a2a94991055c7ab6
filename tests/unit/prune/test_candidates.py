"""Candidates as views of the live model (mop/prune/candidates.py) against deep copies that really take
the step: same scores, same parameter counts, same decisions; the live model untouched."""

import copy
import hashlib
import json

import pytest
import torch
from conftest import tiny_model
from transformers import AutoTokenizer

import mop.prune.path_selection as selection
from mop.models.adapter import get_adapter
from mop.prune.budget import WidthCarry
from mop.prune.candidates import candidate
from mop.prune.importance import amp_scores
from mop.prune.path_selection import PathSelector, build_reference, probe_setup, reference_batches
from mop.prune.pruner import PruneSettings, calibration_batches, run_pruning
from mop.prune.steps import apply_decision, plan_live_width_step

MODE, RULE = "attention_mlp", "exact"


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread per module


def settings(save_dir, data, **kw):
    base = dict(model_name="x", save_dir=str(save_dir), num_iterations=1, path="ppl", calibration_data=str(data),
                num_calibration_prompts=8, num_reference_prompts=8, probe_samples=8, calibration_batch_size=5)
    return PruneSettings(**{**base, **kw})


def state_digest(model) -> str:
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def hook_count(model) -> int:
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


def setup(tokenizer_dir, data, tmp_path, probe_steps=0, kv_heads=4, **model_kw):
    model = tiny_model(kv_heads=kv_heads, layers=6, **model_kw)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    s = settings(tmp_path, data, probe_steps=probe_steps)
    adapter = get_adapter(model)
    reference_records, probe_records = selection.held_out_records(s)
    reference = build_reference(adapter, reference_batches(s, tok, reference_records), s.reference_top_k, False)
    probe = probe_setup(s, model.config, tok, probe_records, False) if probe_steps else None
    batches = calibration_batches(s, tok)

    def score_fn(a, with_heads):
        return amp_scores(a, batches, with_heads=with_heads, progress=False)

    return adapter, reference, probe, score_fn


def test_views_score_like_copies_over_a_path_that_prunes_heads(tokenizer_dir, calibration_file, tmp_path):
    """Multi-head model, 5 iterations: at every one both candidates scored as views equal the
    deep copies' scores (1e-5 relative) and parameter counts, and the path prunes heads."""
    adapter, reference, _, score_fn = setup(tokenizer_dir, calibration_file, tmp_path)
    views = PathSelector("ppl", reference, MODE, RULE)
    copies = PathSelector("ppl", reference, MODE, RULE, by_copy=True)
    carry, heads_pruned = WidthCarry(), False
    for _ in range(5):
        choice_view = views.choose(adapter, score_fn, carry)
        choice_copy = copies.choose(adapter, choice_view.live_score_fn, carry)
        assert choice_view.decision == choice_copy.decision
        for d in "LG":
            got, want = choice_view.candidates[d], choice_copy.candidates[d]
            assert got["params"] == want["params"]
            for metric, value in want["scores"].items():
                assert got["scores"][metric] == pytest.approx(value, rel=1e-5), (d, metric)
        heads_before = adapter.query_heads(adapter.layers()[0])
        _, carry = apply_decision(adapter, choice_view.decision, choice_view.live_score_fn, MODE, RULE, carry)
        heads_pruned |= adapter.query_heads(adapter.layers()[0]) < heads_before
    assert heads_pruned, "the path never removed a head: the G view's head masking went untested"


@pytest.mark.parametrize("decision", ["L", "G"])
@pytest.mark.parametrize("probe_steps", [0, 2])
def test_scoring_a_view_leaves_the_live_model_bit_identical(decision, probe_steps, tokenizer_dir, calibration_file,
                                                            tmp_path):
    adapter, reference, probe, score_fn = setup(tokenizer_dir, calibration_file, tmp_path, probe_steps)
    model = adapter.model
    before = state_digest(model)
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    types = [type(m) for m in model.modules()]
    hooks = hook_count(model)
    attributes = set(model.__dict__)
    selector = PathSelector("kl", reference, MODE, RULE, probe)
    result = selector.evaluate(adapter, decision, score_fn, WidthCarry())
    assert (result["probe"] is not None) == bool(probe_steps)
    assert state_digest(model) == before
    assert {n: p.requires_grad for n, p in model.named_parameters()} == grads
    assert [type(m) for m in model.modules()] == types
    assert hook_count(model) == hooks and adapter.num_layers == 6 and not model.training
    assert set(model.__dict__) == attributes
    # And the view was really the candidate while it was scored: a deep copy that takes the step
    # scores the same (with a probe on G, the copy's LoRA A matrices of the narrower o_proj /
    # down_proj are drawn differently, hence the looser bound there).
    copied = PathSelector("kl", reference, MODE, RULE, probe, by_copy=True).evaluate(adapter, decision, score_fn, WidthCarry())
    tolerance = 2e-2 if decision == "G" and probe_steps else 1e-5
    assert result["scores"]["kl"] == pytest.approx(copied["scores"]["kl"], rel=tolerance)


def test_probed_view_matches_a_probed_copy(tokenizer_dir, calibration_file, tmp_path):
    """With a probe the adapters train on the masked inputs, as on the pruned copy. L is exact; for G
    the o_proj / down_proj adapters of the copy have fewer input columns, so their random A matrices
    differ and the losses agree only closely (the first step, with B = 0, is the same)."""
    adapter, reference, probe, score_fn = setup(tokenizer_dir, calibration_file, tmp_path, probe_steps=2)
    frozen = selection.current_scores(adapter, score_fn, MODE, RULE, WidthCarry())
    for d in "LG":
        view = PathSelector("ppl", reference, MODE, RULE, probe).evaluate(adapter, d, frozen, WidthCarry())
        copied = PathSelector("ppl", reference, MODE, RULE, probe, by_copy=True).evaluate(adapter, d, frozen, WidthCarry())
        tolerance = 1e-6 if d == "L" else 2e-3
        assert view["probe"]["loss"] == pytest.approx(copied["probe"]["loss"], rel=tolerance), d
        assert view["scores"]["ppl"] == pytest.approx(copied["scores"]["ppl"], rel=tolerance), d


@pytest.mark.parametrize("decision", ["L", "G"])
def test_view_is_undone_when_scoring_raises(decision, tokenizer_dir, calibration_file, tmp_path, monkeypatch):
    adapter, reference, _, score_fn = setup(tokenizer_dir, calibration_file, tmp_path)
    before, hooks = state_digest(adapter.model), hook_count(adapter.model)
    seen = {}

    def failing_score(view_adapter, ref, stream_device=None):
        seen["layers"] = view_adapter.num_layers
        seen["hooks"] = hook_count(view_adapter.model)
        raise RuntimeError("scoring failed")

    monkeypatch.setattr(selection, "score_candidate", failing_score)
    with pytest.raises(RuntimeError, match="scoring failed"):
        PathSelector("ppl", reference, MODE, RULE).evaluate(adapter, decision, score_fn, WidthCarry())
    # The view was really in place when the error struck ...
    assert seen["layers"] == (5 if decision == "L" else 6)
    assert seen["hooks"] > hooks if decision == "G" else seen["hooks"] == hooks
    # ... and is gone now.
    assert adapter.num_layers == 6 and hook_count(adapter.model) == hooks and state_digest(adapter.model) == before


def test_g_view_output_equals_the_pruned_model(tokenizer_dir, calibration_file, tmp_path):
    """The masked live model's logits equal those of a copy that really removed the units (GQA,
    groups of 2 query heads)."""
    adapter, _, _, score_fn = setup(tokenizer_dir, calibration_file, tmp_path, kv_heads=4, heads=8, head_dim=8)
    carry = WidthCarry(accumulator=0.9)  # makes this G step remove a whole GQA group as well as neurons
    step, units = plan_live_width_step(adapter, score_fn, MODE, RULE, carry)
    assert step.groups >= 1 and step.neurons >= 1
    pruned = get_adapter(copy.deepcopy(adapter.model))
    apply_decision(pruned, "G", score_fn, MODE, RULE, carry)
    ids = torch.randint(4, 40, (2, 9))
    with torch.no_grad():
        want = pruned.model(input_ids=ids).logits
        with candidate(adapter, "G", score_fn, MODE, RULE, carry) as view:
            got = adapter.model(input_ids=ids).logits
    assert view.params == sum(p.numel() for p in pruned.model.parameters())
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("criterion", ["ppl", "kl", "cosine"])
def test_metric_runs_with_views_and_with_copies_agree(criterion, checkpoint_factory, calibration_file, tmp_path):
    base = checkpoint_factory(kv_heads=4)
    runs = {}
    for mode in ("view", "copy"):
        run = tmp_path / mode
        run_pruning(settings(run, calibration_file, model_name=str(base), path=criterion, num_iterations=4,
                             candidates=mode), progress=False)
        runs[mode] = [json.loads((run / f"prune_iteration_{i}" / "mop_prune.json").read_text()) for i in range(1, 5)]
    assert [m["decision"] for m in runs["view"]] == [m["decision"] for m in runs["copy"]]
    for view, copied in zip(runs["view"], runs["copy"]):
        for d, cand in copied["path"]["candidates"].items():
            if "scores" in cand:
                assert view["path"]["candidates"][d]["scores"][criterion] == pytest.approx(cand["scores"][criterion],
                                                                                          rel=1e-5)
