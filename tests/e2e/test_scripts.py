"""The per-model scripts' published settings reach the code that uses them: pruning constants
into PruneSettings, LoRA rank/alpha/dropout/targets into the peft model that is trained, and the
path probe's published LoRA. Expected values are the paper's (shared/MOP_FACTS.md), written out
here, never read from the code under test."""

import importlib.util

import pytest
from conftest import REPO, LoraCaptured, decoder_projections, lora_modules, run_script

import mop.run.cli
from mop.prune.pruner import PruneSettings, run_pruning

SEED_1 = "LGGLLLGGLLGLGLLGGL"  # the paper's seed-1 path


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread per module


def load_script(relative: str):
    """The script's module (its constants), without running its __main__ block."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location("script_" + relative.replace("/", "_").removesuffix(".py"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- pruning scripts


@pytest.mark.parametrize("script,model,mlp_only,iterations", [
    ("Llama2/prune.py", "meta-llama/Llama-2-7b-hf", False, 18),
    ("Llama3/prune.py", "meta-llama/Meta-Llama-3-8B", True, 18),
    ("Llava/prune.py", "llava-hf/llava-1.5-7b-hf", False, 17),
])
def test_prune_script_constants_reach_the_settings(script, model, mlp_only, iterations, monkeypatch):
    module = load_script(script)
    assert (module.MODEL_NAME, module.MLP_ONLY, module.NUM_ITERATIONS) == (model, mlp_only, iterations)
    assert module.DECISION_SEQUENCE == SEED_1 and module.SEED == 1 and module.NUM_CALIBRATION_PROMPTS == 128
    seen = []
    monkeypatch.setattr(mop.run.cli, "run_pruning", lambda settings, **kw: seen.append(settings) or [])
    run_script(REPO / script, [], monkeypatch)  # no flag: the script's constants are the settings
    (settings,) = seen
    assert (settings.model_name, settings.mlp_only, settings.num_iterations) == (model, mlp_only, iterations)
    assert settings.decision_sequence == SEED_1 and settings.seed == 1 and settings.path == "sequence"
    assert settings.num_calibration_prompts == 128 and settings.budget_rule == "exact"
    assert settings.width_mode == ("mlp_only" if mlp_only else "attention_mlp")


def test_custom_prune_takes_its_model_from_the_environment_and_its_width_mode_from_the_family(
        checkpoint_factory, monkeypatch):
    """Custom/prune.py: MODEL_NAME from the constant (Qwen3-8B, grouped-query: MLP only) or the
    environment (a multi-head Llama: heads and neurons); an explicit flag still wins."""
    seen = []
    monkeypatch.setattr(mop.run.cli, "run_pruning", lambda settings, **kw: seen.append(settings) or [])
    monkeypatch.delenv("MODEL_NAME", raising=False)
    assert load_script("Custom/prune.py").MLP_ONLY is None
    run_script(REPO / "Custom/prune.py", [], monkeypatch)
    mha = checkpoint_factory(kv_heads=4, layers=3)
    monkeypatch.setenv("MODEL_NAME", str(mha))
    run_script(REPO / "Custom/prune.py", [], monkeypatch)
    run_script(REPO / "Custom/prune.py", ["--mlp_only"], monkeypatch)
    assert [(s.model_name, s.mlp_only) for s in seen] == [("Qwen/Qwen3-8B", True), (str(mha), False), (str(mha), True)]
    assert seen[0].decision_sequence == SEED_1 and seen[0].num_iterations == 18


# ----------------------------------------------------------------------------- recovery scripts


@pytest.mark.parametrize("script", ["Llama2/finetune.py", "Llama3/finetune.py"])
def test_finetune_script_lora_defaults_reach_peft(script, checkpoint_factory, calibration_file, tmp_path,
                                                  monkeypatch, lora_spy):
    """Published: r=32, alpha=10 (scaling 10/32), dropout 0.05, no bias, on q/k/v/o/gate/up/down of
    every decoder layer and nothing else (not lm_head, not the embeddings)."""
    module = load_script(script)
    assert (module.LORA_R, module.LORA_ALPHA) == (32, 10)
    base = checkpoint_factory(kv_heads=2, layers=3)
    argv = ["--pruned_model_dir", str(base), "--tuned_model_dir", str(tmp_path / "tuned"),
            "--data", str(calibration_file), "--max_steps", "1"]
    with pytest.raises(LoraCaptured):
        run_script(REPO / script, argv, monkeypatch)
    peft_model = lora_spy["model"]
    config = peft_model.peft_config["default"]
    assert (config.r, config.lora_alpha, config.lora_dropout, config.bias) == (32, 10, 0.05, "none")
    wrapped = lora_modules(peft_model)
    assert set(wrapped) == decoder_projections("model", range(3))
    assert set(wrapped.values()) == {(32, 10 / 32, 0.05)}
    assert not (tmp_path / "tuned").exists()


def test_custom_finetune_takes_the_familys_lora(checkpoint_factory, calibration_file, tmp_path, monkeypatch,
                                                lora_spy):
    """Custom/finetune.py leaves LoRA r / alpha to the checkpoint's family: the paper's r=32,
    alpha=10 for a text model."""
    module = load_script("Custom/finetune.py")
    assert (module.LORA_R, module.LORA_ALPHA) == (None, None)
    base = checkpoint_factory(kv_heads=2, layers=3)
    argv = ["--pruned_model_dir", str(base), "--tuned_model_dir", str(tmp_path / "tuned"),
            "--data", str(calibration_file), "--max_steps", "1"]
    with pytest.raises(LoraCaptured):
        run_script(REPO / "Custom/finetune.py", argv, monkeypatch)
    config = lora_spy["model"].peft_config["default"]
    assert (config.r, config.lora_alpha, config.lora_dropout) == (32, 10, 0.05)
    assert set(lora_modules(lora_spy["model"])) == decoder_projections("model", range(3))


# ----------------------------------------------------------------------------- the path probe


def test_probe_uses_the_published_llama_lora(checkpoint_factory, calibration_file, tmp_path, lora_spy):
    base = checkpoint_factory(kv_heads=2, layers=4)
    settings = PruneSettings(model_name=str(base), save_dir=str(tmp_path / "run"), num_iterations=1, path="kl",
                             probe_steps=1, calibration_data=str(calibration_file), num_calibration_prompts=8,
                             num_reference_prompts=8, probe_samples=8, calibration_batch_size=8)
    with pytest.raises(LoraCaptured):
        run_pruning(settings, progress=False)
    config = lora_spy["model"].peft_config["default"]
    assert (config.r, config.lora_alpha, config.lora_dropout) == (32, 10, 0.05)
    wrapped = lora_modules(lora_spy["model"])
    # The first candidate probed is L: the 4-layer model seen without layer 1 (the third-to-last),
    # so the probe wraps layers 0, 2 and 3 only (the view is undone, the wrappers stay).
    assert set(wrapped) == decoder_projections("model", (0, 2, 3))
    assert set(wrapped.values()) == {(32, 10 / 32, 0.05)}
