"""Path selection (--path): metric paths pick the harmless step, scores are what they claim,
printed decisions replay bit for bit, random paths follow their seed, metric paths resume."""

import dataclasses
import json
import math
import random

import pytest
import torch
import torch.nn.functional as F
from conftest import save_checkpoint, tiny_config, tiny_model
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from mop.models.adapter import get_adapter
from mop.models.data import calibration_prompt, load_alpaca_records
from mop.models.loading import load_model
from mop.prune.budget import LayerShape, plan_width_step
from mop.prune.importance import amp_scores
from mop.prune.pruner import PruneSettings, calibration_batches, run_pruning
from mop.prune.steps import layer_shape
from mop.run.cli import prune_main

CALIBRATION, REFERENCE, PROBE = 8, 8, 8  # the fixture file holds 24 records: [0, 8) [8, 16) [16, 24)
DEAD_LAYER = 3  # the third-to-last of 6 layers: what the first depth step removes


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread per module


def settings(model, save_dir, data, **kw):
    base = dict(model_name=str(model), save_dir=str(save_dir), num_iterations=1, path="kl",
                calibration_data=str(data), num_calibration_prompts=CALIBRATION, num_reference_prompts=REFERENCE,
                probe_samples=PROBE, calibration_batch_size=5)
    return PruneSettings(**{**base, **kw})


def reference_texts(data):
    records = load_alpaca_records(data)[CALIBRATION:CALIBRATION + REFERENCE]
    return [calibration_prompt(r) + " " + r["output"] for r in records]


def meta(run, i):
    return json.loads((run / f"prune_iteration_{i}" / "mop_prune.json").read_text())


def same_weights(a, b):
    x, y = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


# ------------------------------------------------------------------ models with one harmless step


def dead_layer(model):
    """The layer writes nothing to the residual stream: deleting it changes no output."""
    layer = model.model.layers[DEAD_LAYER]
    layer.self_attn.o_proj.weight.zero_()
    layer.mlp.down_proj.weight.zero_()


def dead_width_units(model):
    """Zero exactly the units the first width step removes (AMP 0, no contribution): that step
    changes no output."""
    adapter = get_adapter(model)
    step = plan_width_step(layer_shape(adapter), "attention_mlp", "exact", 0.0)
    columns = step.groups * adapter.group_size() * adapter.head_dim
    for layer in model.model.layers:
        layer.mlp.up_proj.weight[:step.neurons].zero_()
        layer.self_attn.o_proj.weight[:, :columns].zero_()


def disguise_important_neurons(model, tok, data):
    """Make the width step harmful: the most active neurons of every layer get their up_proj row
    divided and their down_proj column multiplied by 1000 (the same function), so AMP ranks them
    least important and the width step removes the neurons that matter most."""
    adapter = get_adapter(model)
    step = plan_width_step(layer_shape(adapter), "attention_mlp", "exact", 0.0)
    batches = calibration_batches(settings("x", "x", data), tok)
    scores = amp_scores(adapter, batches, with_heads=False, progress=False)
    for layer, neuron_scores in zip(model.model.layers, scores.neurons):
        top = torch.argsort(neuron_scores, descending=True)[:step.neurons]
        layer.mlp.up_proj.weight[top] /= 1000
        layer.mlp.down_proj.weight[:, top] *= 1000


def trained_checkpoint(path, tokenizer_dir, data, make_dead, harmful_width=False, steps=30):
    """A tiny model fitted to the reference text (so real damage raises its perplexity), with
    its dead part kept at zero throughout training; `harmful_width` then disguises the most
    important neurons as the least important."""
    torch.manual_seed(0)
    model = tiny_model(kv_heads=2, layers=6)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    batch = tok(reference_texts(data), padding=True, return_tensors="pt")
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    with torch.no_grad():
        make_dead(model)
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            make_dead(model)
    model.eval()
    if harmful_width:
        with torch.no_grad():
            disguise_important_neurons(model, tok, data)
    return save_checkpoint(model, tokenizer_dir, path)


@pytest.mark.parametrize("make_dead,harmless", [(dead_layer, "L"), (dead_width_units, "G")])
def test_metric_paths_take_the_step_that_does_no_harm(make_dead, harmless, tokenizer_dir, calibration_file, tmp_path):
    base = trained_checkpoint(tmp_path / "base", tokenizer_dir, calibration_file, make_dead,
                              harmful_width=harmless == "L")
    harmful = "G" if harmless == "L" else "L"
    for criterion in ("ppl", "kl", "cosine"):
        run = tmp_path / criterion
        run_pruning(settings(base, run, calibration_file, path=criterion), progress=False)
        record = meta(run, 1)
        assert record["decision"] == harmless and record["path"]["chosen_by"] == criterion
        good = record["path"]["candidates"][harmless]["scores"]
        bad = record["path"]["candidates"][harmful]["scores"]
        assert good["kl"] < 1e-6 and bad["kl"] > 1e-3
        assert good["cosine"] > 1 - 1e-5 and bad["cosine"] < 0.999
        assert good["ppl"] < bad["ppl"]


# ------------------------------------------------------------------ scores against an independent computation


def independent_scores(original, candidate, tokenizer, texts):
    """Perplexity, exact mean KL(original || candidate) and mean cosine of the final hidden
    states, one text at a time (no batching, no padding), from the HF models' own outputs."""
    nll = kl = cosine = 0.0
    predicted = tokens = 0
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt").input_ids
            o = original(ids, output_hidden_states=True)
            c = candidate(ids, output_hidden_states=True)
            lp_o = torch.log_softmax(o.logits[0, :-1].double(), -1)
            lp_c = torch.log_softmax(c.logits[0, :-1].double(), -1)
            nll -= lp_c.gather(-1, ids[0, 1:, None]).sum().item()
            kl += (lp_o.exp() * (lp_o - lp_c)).sum().item()
            cosine += F.cosine_similarity(o.hidden_states[-1][0], c.hidden_states[-1][0], dim=-1).sum().item()
            predicted += ids.shape[1] - 1
            tokens += ids.shape[1]
    return {"ppl": math.exp(nll / predicted), "kl": kl / predicted, "cosine": cosine / tokens}


def test_logged_scores_equal_an_independent_computation(checkpoint_factory, tokenizer_dir, calibration_file, tmp_path):
    base = checkpoint_factory(kv_heads=2, layers=6)
    s = settings(base, tmp_path / "exact", calibration_file, num_iterations=2, reference_top_k=1000)
    _, tok = load_model(str(base), torch.float32, "cpu")
    batches = calibration_batches(s, tok)
    calls = []

    def counted_amp(adapter, with_heads):
        calls.append(with_heads)
        return amp_scores(adapter, batches, with_heads=with_heads, progress=False)

    run_pruning(s, score_fn=counted_amp, progress=False)
    assert len(calls) == 2  # one AMP pass per iteration, shared by the G candidate and the live step
    original = AutoModelForCausalLM.from_pretrained(base).eval()
    texts = reference_texts(calibration_file)
    for i in (1, 2):
        record = meta(tmp_path / "exact", i)
        chosen = AutoModelForCausalLM.from_pretrained(tmp_path / "exact" / f"prune_iteration_{i}").eval()
        expected = independent_scores(original, chosen, tok, texts)
        logged = record["path"]["candidates"][record["decision"]]["scores"]
        for metric in ("ppl", "kl", "cosine"):
            assert logged[metric] == pytest.approx(expected[metric], rel=1e-4, abs=1e-7), metric

    # With only the top 4 tokens kept, the KL is that of the coarsened distributions: a lower bound.
    run_pruning(settings(base, tmp_path / "top4", calibration_file, reference_top_k=4), progress=False)
    exact, approx = meta(tmp_path / "exact", 1)["path"]["candidates"], meta(tmp_path / "top4", 1)["path"]["candidates"]
    for d in "LG":
        assert 0 < approx[d]["scores"]["kl"] <= exact[d]["scores"]["kl"] * (1 + 1e-5)
        assert approx[d]["scores"]["ppl"] == exact[d]["scores"]["ppl"]
        assert approx[d]["scores"]["cosine"] == exact[d]["scores"]["cosine"]


# ------------------------------------------------------------------ replay, random, resume


def test_printed_decisions_replay_bit_identically_without_the_probe_update(tokenizer_dir, calibration_file, tmp_path,
                                                                           capsys):
    from mop.core.layout import REFERENCE_FILE
    from mop.prune.path_selection import Reference, score_candidate

    base = trained_checkpoint(tmp_path / "base", tokenizer_dir, calibration_file, dead_layer, harmful_width=True)
    guided = tmp_path / "guided"
    run_pruning(settings(base, guided, calibration_file, path="cosine", num_iterations=2, probe_steps=1),
                progress=False)
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("decisions taken")]
    sequence = printed[-1].split(": ")[1].split()[0]
    stored = json.loads((guided / "path_decisions.json").read_text())
    assert stored["decision_sequence"] == sequence and len(sequence) == 2 and sequence[0] == "L"
    replay = tmp_path / "replay"
    run_pruning(settings(base, replay, calibration_file, path="sequence", num_iterations=2, decision_sequence=sequence),
                progress=False)
    reference = Reference.load(guided / REFERENCE_FILE)
    for i in (1, 2):
        assert same_weights(guided / f"prune_iteration_{i}", replay / f"prune_iteration_{i}")
        candidates = meta(guided, i)["path"]["candidates"]
        assert all(math.isfinite(candidates[d]["probe"]["loss"]) and candidates[d]["probe"]["steps"] == 1 for d in "LG")
        # Scores were taken with the probe's adapter active; the saved checkpoint has no adapter.
        model, _ = load_model(str(guided / f"prune_iteration_{i}"), torch.float32, "cpu")
        plain = score_candidate(get_adapter(model), reference)
        assert plain["cosine"] != candidates[sequence[i - 1]]["scores"]["cosine"]
    summary = json.loads((guided / "pruning_summary.json").read_text())
    assert "".join(r["decision"] for r in summary[1:]) == sequence
    assert [r["chosen_by"] for r in summary[1:]] == ["cosine", "cosine"]  # 6 and 5 layers: both steps possible
    for i, row in enumerate(summary[1:], start=1):
        candidates = meta(guided, i)["path"]["candidates"]
        assert [row["L_probe_loss"], row["G_probe_loss"]] == [candidates[d]["probe"]["loss"] for d in "LG"]


def replay_coin_path(shape: LayerShape, num_iterations: int, seed: int) -> list[tuple[str, str]]:
    """The random path written out by hand: random.Random(seed) draws one number per iteration
    (< 0.5 is L), a depth step needs 4 layers left to keep 3, and the shapes are walked with
    the budget arithmetic of mop.prune.budget (a G step here never runs out of heads or neurons)."""
    coin = random.Random(seed)
    path, accumulator = [], 0.0
    for _ in range(num_iterations):
        drawn = "L" if coin.random() < 0.5 else "G"
        decision = "G" if drawn == "L" and shape.num_layers <= 3 else drawn
        if decision == "L":
            shape = dataclasses.replace(shape, num_layers=shape.num_layers - 1)
        else:
            step = plan_width_step(shape, "attention_mlp", "exact", accumulator)
            shape = dataclasses.replace(shape, query_heads=shape.query_heads - step.groups,
                                        kv_heads=shape.kv_heads - step.groups,
                                        intermediate=shape.intermediate - step.neurons)
            accumulator = step.accumulator
        path.append((decision, "random" if decision == drawn else "forced"))
    return path


def test_random_path_follows_its_seed_and_never_breaks_the_model(checkpoint_factory, calibration_file, tmp_path):
    from mop.prune.steps import random_decisions

    config = tiny_config(kv_heads=4, layers=5, intermediate=256)
    shape = LayerShape(num_layers=5, hidden=64, head_dim=16, query_heads=4, kv_heads=4, intermediate=256)
    for seed in range(12):
        assert random_decisions(config, 6, seed, "attention_mlp", "exact") == replay_coin_path(shape, 6, seed), seed
    # Seed 7 by hand: random.Random(7) draws 0.324 0.151 0.651 0.072 0.536 0.366 -> L L G L G L; the
    # second L leaves 3 layers, so the 4th and 6th coins (L) are overruled into forced G steps.
    assert random_decisions(config, 6, 7, "attention_mlp", "exact") == [
        ("L", "random"), ("L", "random"), ("G", "random"), ("G", "forced"), ("G", "random"), ("G", "forced")]

    base = checkpoint_factory(kv_heads=4, layers=5, intermediate=256)
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        run_pruning(settings(base, run, calibration_file, path="random", seed=7, num_iterations=3), progress=False)
    for run in runs:
        assert json.loads((run / "path_decisions.json").read_text())["decision_sequence"] == "LLG"
        assert [meta(run, i)["layers"] for i in (1, 2, 3)] == [4, 3, 3]
        assert [meta(run, i)["path"]["chosen_by"] for i in (1, 2, 3)] == ["random"] * 3
    for i in (1, 2, 3):
        assert same_weights(runs[0] / f"prune_iteration_{i}", runs[1] / f"prune_iteration_{i}")


def test_metric_path_takes_the_only_possible_step_then_stops_with_a_one_line_error(tokenizer_dir, calibration_file,
                                                                                    tmp_path, capsys):
    """4 layers, 2 GQA groups, layer 1 (the first depth step's) writes nothing: iteration 1 is an L
    chosen by KL (exactly 0 for L); with 3 layers left L is impossible, so iteration 2 is a forced
    G (scored no candidate); then G would leave 1 group (minimum 2) as well, and iteration 3 stops
    the run with a one-line error, iterations 1-2 kept on disk."""
    model = tiny_model(kv_heads=2, layers=4)
    with torch.no_grad():
        model.model.layers[1].self_attn.o_proj.weight.zero_()
        model.model.layers[1].mlp.down_proj.weight.zero_()
    base = save_checkpoint(model, tokenizer_dir, tmp_path / "base")
    run = tmp_path / "run"
    argv = ["--model_name", str(base), "--save_dir", str(run), "--calibration_data", str(calibration_file),
            "--path", "kl", "--num_iterations", "5", "--num_calibration_prompts", str(CALIBRATION),
            "--num_reference_prompts", str(REFERENCE)]
    with pytest.raises(SystemExit) as exc:
        prune_main(DEFAULTS, "test", argv)
    stderr = capsys.readouterr().err
    err = stderr.strip().splitlines()[-1]  # after the progress bars of iterations 1-2
    assert exc.value.code == 2 and err.startswith("error: ") and stderr.count("error") == 1
    assert "no step is possible any more" in err and "at least 3 must remain" in err and "minimum 2" in err
    assert [meta(run, i)["decision"] for i in (1, 2)] == ["L", "G"]
    assert not (run / "prune_iteration_3").exists()
    first, second = meta(run, 1)["path"], meta(run, 2)["path"]
    assert first["chosen_by"] == "kl" and first["candidates"]["L"]["scores"]["kl"] < 1e-9
    assert second["chosen_by"] == "forced"
    assert second["candidates"] == {"L": {"impossible": "a depth step would leave 2 decoder layers; "
                                                        "at least 3 must remain"}}
    assert json.loads((run / "path_decisions.json").read_text())["decision_sequence"] == "LG"
    # The forced step is the ordinary G step: a sequence run of the same letters gives the same weights.
    replay = tmp_path / "replay"
    run_pruning(settings(base, replay, calibration_file, path="sequence", num_iterations=2, decision_sequence="LG"),
                progress=False)
    for i in (1, 2):
        assert same_weights(run / f"prune_iteration_{i}", replay / f"prune_iteration_{i}")


def test_resumed_metric_path_equals_uninterrupted_run(checkpoint_factory, calibration_file, tmp_path, monkeypatch):
    import mop.prune.path_selection

    base = checkpoint_factory(kv_heads=4, layers=6)
    full, part = tmp_path / "full", tmp_path / "part"
    run_pruning(settings(base, full, calibration_file, path="ppl", num_iterations=3), progress=False)
    run_pruning(settings(base, part, calibration_file, path="ppl", num_iterations=1), progress=False)
    (part / ".tmp-prune_iteration_2").mkdir()  # what an interruption mid-save leaves behind

    def no_recomputation(*args, **kwargs):
        raise AssertionError("the cached reference outputs should have been used")

    monkeypatch.setattr(mop.prune.path_selection, "build_reference", no_recomputation)
    run_pruning(settings(base, part, calibration_file, path="ppl", num_iterations=3, resume=True), progress=False)
    for i in (1, 2, 3):
        assert same_weights(full / f"prune_iteration_{i}", part / f"prune_iteration_{i}")
        a, b = meta(full, i), meta(part, i)
        assert a["decisions_so_far"] == b["decisions_so_far"]
        for d in "LG":
            for metric, value in a["path"]["candidates"][d]["scores"].items():
                assert b["path"]["candidates"][d]["scores"][metric] == pytest.approx(value, rel=1e-6)
    assert (json.loads((full / "path_decisions.json").read_text())
            == json.loads((part / "path_decisions.json").read_text()))


# ------------------------------------------------------------------ bad input


DEFAULTS = dict(model_name="x", save_dir="x", num_iterations=2, decision_sequence="LG", seed=1, mlp_only=False,
                calibration_data="auto", num_calibration_prompts=8)


@pytest.mark.parametrize("extra,message", [
    (["--path", "bogus"], "invalid choice"),
    (["--path", "kl", "--num_reference_prompts", "20"], "needs 28 (8 calibration + 20 reference)"),
    (["--path", "kl", "--probe_steps", "2", "--num_reference_prompts", "8", "--probe_samples", "10"], "needs 26"),
    (["--path", "kl", "--probe_steps", "-1"], "--probe_steps must be 0"),
    (["--path", "cosine", "--reference_top_k", "0"], "--reference_top_k must be at least 1"),
    (["--probe_steps", "2"], "needs a metric path"),
    (["--path", "ppl", "--dry_run"], "--dry_run needs a path known in advance"),
])
def test_bad_path_flags_are_one_line_exit_2_and_write_nothing(extra, message, checkpoint_factory, calibration_file,
                                                              tmp_path, capsys):
    base = checkpoint_factory(kv_heads=4, layers=6)
    out = tmp_path / "run"
    argv = ["--model_name", str(base), "--save_dir", str(out), "--calibration_data", str(calibration_file)] + extra
    with pytest.raises(SystemExit) as exc:
        prune_main(DEFAULTS, "test", argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_resume_with_another_path_is_refused(checkpoint_factory, calibration_file, tmp_path, capsys):
    base = checkpoint_factory(kv_heads=4, layers=6)
    out = tmp_path / "run"
    run_pruning(settings(base, out, calibration_file, path="sequence", decision_sequence="L"), progress=False)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in out.rglob("*"))
    with pytest.raises(SystemExit) as exc:
        prune_main(DEFAULTS, "test", ["--model_name", str(base), "--save_dir", str(out), "--calibration_data",
                                      str(calibration_file), "--path", "kl", "--num_reference_prompts", "8",
                                      "--resume"])
    assert exc.value.code == 2 and "path='sequence'" in capsys.readouterr().err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.rglob("*")) == before
