"""mop.deploy.compare --backend llamacpp (mop/deploy/compare_llamacpp.py, mop/deploy/gguf.py).

In f32, llama.cpp's greedy tokens must be transformers' greedy tokens (what `model.generate`
gives), for the dense embedded model and a pruned checkpoint alike; without a llama.cpp build
the command is one line naming the make target. The tests that run llama.cpp need its built
library (`make build-llamacpp`, 2-3 minutes on 2 cores; .ci/run builds it): without it they
are skipped with a message naming the missing file.
"""

import pytest
from test_bad_inputs import assert_one_line_exit_2, call_main, tree

from mop.core.io import UsageError
from mop.deploy import compare, comparison
from mop.deploy.gguf import MISSING_BUILD, find_build
from mop.prune.pruner import PruneSettings, run_pruning

DENSE = "smollm2-135m"
PROMPT = "What is the capital of France?"
NEW_TOKENS = 12


def missing_build() -> str | None:
    """Why llama.cpp cannot run here (None when it can)."""
    try:
        find_build()
    except UsageError as err:
        return str(err)
    return None


needs_build = pytest.mark.skipif(missing_build() is not None, reason=f"{missing_build()}")


@pytest.fixture(scope="module")
def gguf_env(tmp_path_factory):
    """f32 conversions into a cache of the module's own, removed afterwards (about 1 GB)."""
    cache = tmp_path_factory.mktemp("gguf-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOP_GGUF_CACHE", str(cache))
        yield cache
    for path in cache.glob("*.gguf"):
        path.unlink()


@pytest.fixture(scope="module")
def pruned_checkpoint(tmp_path_factory, calibration_file):
    """Iteration 2 (L, then an MLP-width step) of the embedded model, few calibration prompts."""
    run = tmp_path_factory.mktemp("compare-llamacpp") / "run"
    run_pruning(PruneSettings(model_name=DENSE, save_dir=str(run), num_iterations=2, decision_sequence="LG",
                              mlp_only=True, calibration_data=str(calibration_file), num_calibration_prompts=8,
                              device="cpu", keep_iterations="2"), progress=False)
    return run / "prune_iteration_2"


def transformers_greedy(name: str) -> list[int]:
    """The reference: the checkpoint alone in transformers, float32, `generate` greedy, from the
    token ids mop.deploy.compare gives it."""
    import torch

    from mop.models.loading import load_model, resolve_model_name

    model, tokenizer = load_model(resolve_model_name(name), torch.float32, "cpu")
    inputs = comparison.model_inputs(model, tokenizer, PROMPT, None, chat=True)
    out = model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False, temperature=None, top_p=None,
                         top_k=None, pad_token_id=tokenizer.pad_token_id)
    return out[0, inputs["input_ids"].shape[1]:].tolist()


def run_compare(capsys, *argv) -> dict:
    capsys.readouterr()
    return compare.main(["--device", "cpu", "--gguf_type", "f32", "--max_new_tokens", str(NEW_TOKENS), *argv])


@needs_build
def test_f32_greedy_tokens_are_transformers_greedy_tokens(gguf_env, pruned_checkpoint, tmp_path, capsys):
    models = [DENSE, str(pruned_checkpoint)]
    out = tmp_path / "llamacpp.json"
    data = run_compare(capsys, "--backend", "llamacpp", "--models", *models, "--prompt", PROMPT, "--out", str(out))
    answers = data["prompts"][0]["answers"]
    for name, answer in zip(models, answers):
        assert answer["model"] == name
        assert answer["token_ids"] == transformers_greedy(name), name
        assert answer["time_to_first_token_s"] > 0 and answer["decode_tokens_per_s"] > 0 and answer["memory_gb"] > 0
    assert data["backend"] == "llamacpp" and data["gguf_type"] == "f32" and out.is_file()
    dense_column, pruned_column = data["models"]
    assert dense_column["compression"] is None and 0 < pruned_column["compression"] < 0.2
    assert len(list(gguf_env.glob("*-f32.gguf"))) == 2


@needs_build
def test_conversions_are_cached_and_a_gguf_file_runs_as_it_is(gguf_env, pruned_checkpoint, capsys):
    """A second comparison converts nothing; the cached .gguf named directly gives the same tokens
    (its own chat template, rendered by llama.cpp, is the checkpoint's)."""
    first = run_compare(capsys, "--backend", "llamacpp", "--models", str(pruned_checkpoint), "--prompt", PROMPT)
    before = {p: p.stat().st_mtime_ns for p in gguf_env.glob("*.gguf")}
    gguf = next(p for p in before if "prune_iteration_2" in p.name)
    again = run_compare(capsys, "--backend", "llamacpp", "--models", str(gguf), "--prompt", PROMPT)
    assert {p: p.stat().st_mtime_ns for p in gguf_env.glob("*.gguf")} == before
    assert again["prompts"][0]["answers"][0]["token_ids"] == first["prompts"][0]["answers"][0]["token_ids"]


def test_without_a_build_the_command_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOP_LLAMA_CPP", str(tmp_path / "no-llama-cpp"))
    monkeypatch.setenv("MOP_GGUF_CACHE", str(tmp_path / "cache"))
    before = tree(tmp_path)
    code, err = call_main(lambda: compare.main(["--backend", "llamacpp", "--models", DENSE, "--out",
                                                str(tmp_path / "out.json")]), capsys)
    assert_one_line_exit_2(code, err, MISSING_BUILD, str(tmp_path / "no-llama-cpp"))
    assert tree(tmp_path) == before


def test_a_wrong_gguf_type_is_one_line(tmp_path, capsys):
    code, err = call_main(lambda: compare.main(["--backend", "llamacpp", "--gguf_type", "q4_0", "--models", DENSE,
                                                "--out", str(tmp_path / "out.json")]), capsys)
    assert_one_line_exit_2(code, err, "--gguf_type", "q4_0", "q8_0")
    assert not (tmp_path / "out.json").exists()


def test_missing_build_names_the_make_target(tmp_path):
    with pytest.raises(UsageError, match="make build-llamacpp"):
        find_build(tmp_path / "sdist", tmp_path / "lib")
