"""mop.latency on tiny random models: structure, exact token count, results-folder mode."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import json

import pytest
import torch
from transformers import AutoTokenizer

from conftest import tiny_model
from mop import latency

FAST = ["--runs", "2", "--warmup", "1", "--new_tokens", "5", "--input_tokens", "4", "--device", "cpu"]


def test_fixed_length_input(tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    for n in (1, 12, 100):
        ids = latency.fixed_length_input(tok, n)
        assert ids.shape == (1, n) and ids.dtype == torch.long
    assert torch.equal(latency.fixed_length_input(tok, 12), latency.fixed_length_input(tok, 12))


def test_exactly_new_tokens_even_when_eos_is_greedy():
    model = tiny_model(kv_heads=2, layers=2)
    with torch.no_grad():
        model.lm_head.weight.zero_()  # all logits equal: greedy picks token 0 ...
    model.generation_config.eos_token_id = 0  # ... which is now the end-of-sequence token
    ids = torch.tensor([[5, 6, 7]])
    plain = model.generate(input_ids=ids, max_new_tokens=6, do_sample=False, pad_token_id=3)
    assert plain.shape[1] - ids.shape[1] == 1  # without the protocol's setting, eos stops the run
    result = latency.measure(model, ids, new_tokens=6, runs=2, warmup=1)
    assert result["generated_tokens"] == 6
    assert len(result["total_s"]["runs"]) == 1 and len(result["prefill_s"]["runs"]) == 1


def test_dense_vs_pruned_report(tmp_path, checkpoint_factory):
    dense = checkpoint_factory(kv_heads=2, layers=4, name="dense")
    pruned = checkpoint_factory(kv_heads=2, layers=2, name="pruned")
    (pruned / "mop_prune.json").write_text(json.dumps({"iteration": 2, "params": 123, "compression": 0.25}))
    out = tmp_path / "lat" / "latency.json"
    report = latency.main(["--model", str(pruned), "--baseline", str(dense), "--out", str(out), *FAST])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert report["protocol"]["new_tokens"] == 5 and report["protocol"]["input_tokens"] == 4
    assert report["baseline"] == str(dense)
    base, small = report["models"]
    for e in (base, small):
        assert e["generated_tokens"] == 5
        assert e["total_s"]["mean"] > 0 and e["prefill_s"]["mean"] > 0 and e["tokens_per_s"] > 0
        assert len(e["total_s"]["runs"]) == 1  # 2 runs, 1 warm-up
        assert e["decode_per_token_s"] == pytest.approx((e["total_s"]["mean"] - e["prefill_s"]["mean"]) / 4)
    assert small["compression"] == 0.25 and small["params"] == 123  # read from mop_prune.json
    assert small["params_counted"] < base["params_counted"] == base["params"]
    assert small["ratio_total"] == pytest.approx(small["total_s"]["mean"] / base["total_s"]["mean"])
    assert base["ratio_total"] == 1.0


def test_results_dir_mode(tmp_path, tokenizer_dir, capsys):
    from conftest import save_checkpoint

    root = tmp_path / "results"
    for run, layers in (("run_seed_1", 3), ("run_depth_only", 2)):
        for i in (1, 2):
            ckpt = save_checkpoint(tiny_model(kv_heads=2, layers=layers + 1 - i), tokenizer_dir,
                                   root / run / f"prune_iteration_{i}")
            (ckpt / "mop_prune.json").write_text(json.dumps({"iteration": i, "params": 1000 - i, "compression": i / 10}))
    (root / "run_seed_1" / "prune_iteration_2_ft_2ep").mkdir()  # recovered copies are not timed
    report = latency.main(["--results_dir", str(root), "--iterations", "2", *FAST])
    labels = [e["label"] for e in report["models"]]
    assert labels == ["run_seed_1/prune_iteration_2", "run_depth_only/prune_iteration_2"]  # seeds first
    assert all(e["compression"] == 0.2 and e["generated_tokens"] == 5 for e in report["models"])
    assert "run_seed_1/prune_iteration_2" in capsys.readouterr().out


def test_bad_arguments_exit_2(tmp_path):
    for argv in (["--model", str(tmp_path / "missing"), *FAST],
                 ["--model", "x", "--runs", "2", "--warmup", "2"],
                 []):
        with pytest.raises(SystemExit) as exc:
            latency.main(argv)
        assert exc.value.code == 2


def test_eager_protocol_compiles_nothing():
    model = tiny_model(kv_heads=2, layers=2)
    result = latency.measure(model, torch.tensor([[5, 6, 7]]), new_tokens=4, runs=2, warmup=1)
    assert result["mode"] == "eager" and not hasattr(model, "_compiled_call")
    assert not hasattr(model, "_cache")  # dynamic KV cache: no static cache was allocated


@pytest.mark.slow  # inductor's C++ build: about a minute on 2 cores
@pytest.mark.skipif(latency.cpp_compiler() is None, reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_decoding_matches_eager(checkpoint_factory):
    """--compile both: the same greedy tokens eagerly and with a static cache + compiled decode step."""
    dense = checkpoint_factory(kv_heads=2, layers=2, name="dense")
    report = latency.main(["--model", str(dense), "--compile", "both", *FAST])
    eager, compiled = report["models"]
    assert (eager["mode"], compiled["mode"]) == ("eager", "compiled")
    assert compiled["label"] == eager["label"] + " [compiled]"
    assert compiled["generated_tokens"] == 5 and compiled["output_ids"] == eager["output_ids"]
    assert report["protocol"]["compile"] == {"backend": "inductor", "mode": "default"}  # no CUDA graphs on CPU
    assert tuple(report["protocol"]["modes"]) == ("eager", "compiled")


def test_compile_setup_generation_config():
    from transformers import StaticCache

    setup = latency.CompileSetup(backend="eager", mode="default")
    model = tiny_model(kv_heads=2, layers=2)
    config = latency.greedy_config(model, 4, setup)
    assert config.cache_implementation == "static" and not config.disable_compile
    assert config.compile_config.backend == "eager" and config.compile_config._compile_all_devices
    result = latency.measure(model, torch.tensor([[5, 6, 7]]), new_tokens=4, runs=2, warmup=1, compiled=setup)
    assert result["mode"] == "compiled" and isinstance(model._cache, StaticCache)
    assert latency.greedy_config(model, 4).disable_compile  # eager never auto-compiles, also on CUDA
