"""mop.evaluate.latency on tiny random models: structure, exact token count, results-folder mode."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import json
from types import SimpleNamespace

import pytest
import torch
from conftest import tiny_model
from transformers import AutoTokenizer

from mop.evaluate import latency

FAST = ["--runs", "2", "--warmup", "1", "--new_tokens", "5", "--input_tokens", "4", "--device", "cpu"]


class WordPositionTokenizer:
    """Maps the i-th whitespace word of a text to id 100 + i, and prepends a BOS (id 1) when
    asked for special tokens: a tokenizer whose output is known by hand."""

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": ([1] if add_special_tokens else []) + [100 + i for i, _ in enumerate(text.split())]}


def test_fixed_length_input_cycles_the_text_without_special_tokens(tokenizer_dir):
    # The benchmark text has 28 whitespace words (counted by hand), so ids run 100..127 and then
    # start again at 100; no BOS, whatever the tokenizer would add by default.
    tok = WordPositionTokenizer()
    assert latency.fixed_length_input(tok, 1).tolist() == [[100]]
    assert latency.fixed_length_input(tok, 12).tolist() == [list(range(100, 112))]
    assert latency.fixed_length_input(tok, 30).tolist() == [list(range(100, 128)) + [100, 101]]
    assert latency.fixed_length_input(tok, 100).tolist() == [[100 + i % 28 for i in range(100)]]
    assert latency.fixed_length_input(tok, 12).dtype == torch.long
    # The test tokenizer knows only lower-case "the" (4) and "dog" (47) of the first twelve words
    # "The quick brown fox jumps over the lazy dog while the committee"; the rest are <unk> (0).
    real = AutoTokenizer.from_pretrained(tokenizer_dir)
    assert latency.fixed_length_input(real, 12).tolist() == [[0, 0, 0, 0, 0, 0, 4, 0, 47, 0, 4, 0]]


def test_text_without_tokens_is_a_usage_error():
    with pytest.raises(latency.UsageError):
        latency.fixed_length_input(lambda text, add_special_tokens=True: {"input_ids": []}, 4)


class FakeClock:
    """perf_counter() for mop.evaluate.latency: each timed region lasts the next of `durations` seconds."""

    def __init__(self, durations):
        self.durations = list(durations)
        self.now = 0.0
        self.inside = False

    def perf_counter(self):
        if self.inside:
            self.now += self.durations.pop(0)
        self.inside = not self.inside
        return self.now


def test_protocol_statistics_from_a_known_clock(monkeypatch):
    # runs=3, warmup=1: generate() is timed 9 (discarded), 2, 4 s; the prefill 7 (discarded), 1, 1.5 s.
    clock = FakeClock([9.0, 2.0, 4.0, 7.0, 1.0, 1.5])
    monkeypatch.setattr(latency, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    result = latency.measure(tiny_model(kv_heads=2, layers=2), torch.tensor([[5, 6, 7]]), new_tokens=5, runs=3,
                             warmup=1)
    assert clock.durations == [] and not clock.inside  # exactly six timed regions
    assert result["total_s"] == {"mean": 3.0, "std": pytest.approx(2 ** 0.5), "min": 2.0, "runs": [2.0, 4.0]}
    assert result["prefill_s"] == {"mean": 1.25, "std": pytest.approx(0.125 ** 0.5), "min": 1.0, "runs": [1.0, 1.5]}
    assert result["decode_per_token_s"] == pytest.approx((3.0 - 1.25) / 4)  # 4 cached decode steps after prefill
    assert result["tokens_per_s"] == pytest.approx(5 / 3.0)
    assert result["generated_tokens"] == 5


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


def tiny_params(layers):
    """Parameters of conftest's tiny_model(kv_heads=2), counted by hand: per layer q and o 64x64,
    k and v 32x64 (2 KV heads of 16), MLP 3 x 64 x 96, two norms of 64; untied 70 x 64 embedding
    and lm_head, final norm 64."""
    return 2 * 70 * 64 + 64 + layers * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 96 + 2 * 64)


def test_dense_vs_pruned_report(tmp_path, checkpoint_factory, monkeypatch):
    dense = checkpoint_factory(kv_heads=2, layers=4, name="dense")
    pruned = checkpoint_factory(kv_heads=2, layers=2, name="pruned")
    (pruned / "mop_prune.json").write_text(json.dumps({"iteration": 2, "params": 123, "compression": 0.25}))
    # Timed regions in order: dense generate (warm-up, run), dense prefill (warm-up, run), then the
    # same for the pruned model. Warm-ups take 8 s and must not count.
    clock = FakeClock([8.0, 2.0, 8.0, 0.5, 8.0, 1.0, 8.0, 0.375])
    monkeypatch.setattr(latency, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    out = tmp_path / "lat" / "latency.json"
    latency.main(["--model", str(pruned), "--baseline", str(dense), "--out", str(out), *FAST])
    assert clock.durations == []
    report = json.loads(out.read_text())  # the file, checked against the fake clock's times below
    assert report["protocol"]["new_tokens"] == 5 and report["protocol"]["input_tokens"] == 4
    assert report["baseline"] == str(dense)
    base, small = report["models"]
    assert [e["model"] for e in (base, small)] == [str(dense), str(pruned)]
    assert base["total_s"]["runs"] == [2.0] and base["prefill_s"]["runs"] == [0.5]
    assert small["total_s"]["runs"] == [1.0] and small["prefill_s"]["runs"] == [0.375]
    assert base["decode_per_token_s"] == (2.0 - 0.5) / 4 and small["decode_per_token_s"] == (1.0 - 0.375) / 4
    assert base["tokens_per_s"] == 2.5 and small["tokens_per_s"] == 5.0
    assert small["ratio_total"] == 0.5 and small["ratio_prefill"] == 0.75
    assert small["ratio_decode"] == pytest.approx(0.15625 / 0.375)
    assert all(e["generated_tokens"] == 5 for e in (base, small))
    assert small["compression"] == 0.25 and small["params"] == 123  # read from mop_prune.json
    assert base["params"] == base["params_counted"] == tiny_params(4) == 132416
    assert small["params_counted"] == tiny_params(2) == 70720
    assert small["compression_vs_baseline"] == pytest.approx(1 - 123 / 132416)


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
    caches = []  # transformers 5 keeps no cache on the model: the one generate hands each forward
    hook = model.register_forward_pre_hook(lambda m, a, kw: caches.append(type(kw.get("past_key_values"))),
                                           with_kwargs=True)
    try:
        result = latency.measure(model, torch.tensor([[5, 6, 7]]), new_tokens=4, runs=2, warmup=1, compiled=setup)
    finally:
        hook.remove()
    assert result["mode"] == "compiled" and StaticCache in caches
    assert latency.greedy_config(model, 4).disable_compile  # eager never auto-compiles, also on CUDA
