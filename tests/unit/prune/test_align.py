"""--align N: MLP widths that deployment runtimes quantise, at the exact rule's budget on average."""

import json

import pytest
import torch
from conftest import tiny_config

from mop.models.configs import config_for_dry_run
from mop.prune.budget import LayerShape, PlanError, parse_decisions, plan_width_step
from mop.prune.pruner import PruneSettings, run_pruning
from mop.prune.steps import simulate_path
from mop.run.cli import prune_main

SEED_1 = "LGGLLLGGLLGLGLLGGL"


def block_params(config, align: int) -> int:
    """Parameters of `align` MLP neurons in one layer (gate row, up row, down column each)."""
    return align * 3 * getattr(config, "text_config", config).hidden_size


def assert_aligned_and_within_a_block(config, aligned_rows, exact_rows, align):
    """Every width a multiple of `align`; params within one block of `align` neurons per layer of
    the exact rule's schedule, at every iteration; the attention schedule is the exact rule's."""
    assert len(aligned_rows) == len(exact_rows)
    for a, e in zip(aligned_rows[1:], exact_rows[1:]):
        assert a["intermediate_size"] % align == 0, a
        assert (a["layers"], a["query_heads"], a["kv_heads"]) == (e["layers"], e["query_heads"], e["kv_heads"])
        assert abs(a["params"] - e["params"]) <= block_params(config, align) * a["layers"], (a, e)


@pytest.mark.parametrize("name,mode,sequence,align", [
    ("meta-llama/Llama-2-7b-hf", "attention_mlp", SEED_1, 64),
    ("meta-llama/Llama-2-7b-hf", "attention_mlp", "G" * 18, 64),
    ("meta-llama/Meta-Llama-3-8B", "mlp_only", SEED_1, 64),
    ("meta-llama/Meta-Llama-3-8B", "mlp_only", SEED_1, 256),
    ("meta-llama/Meta-Llama-3-8B", "attention_mlp", "G" * 16, 64),
    ("llava-hf/llava-1.5-7b-hf", "attention_mlp", "GGLLGGGLGGGLLLGGLL", 64),
])
def test_dry_run_schedule_on_shipped_configs_is_aligned(name, mode, sequence, align):
    config = config_for_dry_run(name)
    decisions = parse_decisions(sequence, len(sequence))
    aligned = simulate_path(config, decisions, mode, "exact", align)
    exact = simulate_path(config, decisions, mode, "exact", 0)
    assert_aligned_and_within_a_block(config, aligned, exact, align)
    # Every G step records the rounding it carries forward: at most half a block per layer.
    debts = [r["neuron_debt"] for r in aligned if r["decision"] == "G"]
    assert debts and all(abs(d) <= align // 2 for d in debts)


def test_rounds_to_the_nearest_multiple_and_carries_the_difference():
    # 10 layers, hidden 100, 4 MHA heads of 10, 1000 neurons, MLP only: one layer holds
    # 4 * 4000 + 1000 * 300 + 200 = 316200 parameters = 105.4 neurons in each of 10 layers.
    shape = LayerShape(10, 100, 10, 4, 4, 1000)
    first = plan_width_step(shape, "mlp_only", "exact", align=64)
    # The exact rule removes 105 (895 left); the nearest multiple of 64 is 896: remove 104, owe 1.
    assert (first.neurons, first.unaligned_neurons, first.neuron_debt) == (104, 105, 1)
    second = plan_width_step(LayerShape(10, 100, 10, 4, 4, 896), "mlp_only", "exact", align=64, neuron_debt=1)
    # Planned on the unaligned 895: (16000 + 895 * 300 + 200) / 3000 = 94.9 -> 95, leaving 800;
    # 800 / 64 = 12.5 rounds up to 13 blocks = 832: remove 64, hold 32 more than the exact rule.
    assert (second.unaligned_neurons, second.neurons, second.neuron_debt) == (95, 64, 32)
    assert second.target_params == 16000 + 895 * 300 + 200


def test_no_room_for_one_block_is_a_plan_error():
    with pytest.raises(PlanError, match="fewer than 64 MLP neurons"):
        plan_width_step(LayerShape(2, 100, 10, 4, 4, 100), "mlp_only", "exact", align=64)


def settings(model, save_dir, data, **kw):
    base = dict(model_name=str(model), save_dir=str(save_dir), num_iterations=5, decision_sequence="GGLGG",
                calibration_data=str(data), num_calibration_prompts=16, calibration_batch_size=5, align=64)
    return PruneSettings(**{**base, **kw})


def test_aligned_run_and_its_resume(checkpoint_factory, calibration_file, tmp_path):
    from safetensors.torch import load_file

    base = checkpoint_factory(kv_heads=4, layers=6, intermediate=640)
    full = tmp_path / "full"
    rows = run_pruning(settings(base, full, calibration_file), progress=False)
    config = tiny_config(kv_heads=4, layers=6, intermediate=640)
    exact = simulate_path(config, parse_decisions("GGLGG", 5), "attention_mlp", "exact", 0)
    assert_aligned_and_within_a_block(config, rows, exact, 64)
    assert rows[-1]["intermediate_size"] < 640 and rows[-1]["query_heads"] < 4
    metas = [json.loads((full / f"prune_iteration_{i}" / "mop_prune.json").read_text()) for i in range(1, 6)]
    for meta in metas:
        assert meta["settings"]["align"] == 64
        if meta["decision"] == "G":
            assert meta["details"]["neuron_debt"] == meta["neuron_debt_after"]
    assert metas[1]["neuron_debt_after"] != 0  # the resume below has a debt to restore
    # Interrupted after iteration 2 and resumed: the same checkpoints as the uninterrupted run.
    part = tmp_path / "part"
    run_pruning(settings(base, part, calibration_file, num_iterations=2), progress=False)
    run_pruning(settings(base, part, calibration_file, resume=True), progress=False)
    for i in range(1, 6):
        a = load_file(full / f"prune_iteration_{i}" / "model.safetensors")
        b = load_file(part / f"prune_iteration_{i}" / "model.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_another_align_is_refused(checkpoint_factory, calibration_file, tmp_path, capsys):
    base = checkpoint_factory(kv_heads=4, layers=6, intermediate=640)
    run_pruning(settings(base, tmp_path / "run", calibration_file, num_iterations=1), progress=False)
    defaults = dict(model_name=str(base), save_dir=str(tmp_path / "run"), num_iterations=2, decision_sequence="GGLGG",
                    seed=1, mlp_only=False, calibration_data=str(calibration_file), num_calibration_prompts=16)
    with pytest.raises(SystemExit) as exit_info:
        prune_main(defaults, "test", ["--resume", "--align", "32", "--calibration_batch_size", "5"])
    assert exit_info.value.code == 2
    assert "align=64" in capsys.readouterr().err


def test_cli_flag_reaches_the_dry_run(capsys):
    defaults = dict(model_name="meta-llama/Llama-2-7b-hf", save_dir="unused", num_iterations=6,
                    decision_sequence="GGGGGG", seed=1, mlp_only=False, calibration_data="auto",
                    num_calibration_prompts=16)
    rows = prune_main(defaults, "test", ["--dry_run", "--align", "256"])
    assert all(r["intermediate_size"] % 256 == 0 for r in rows)
    with pytest.raises(SystemExit) as exit_info:
        prune_main(defaults, "test", ["--dry_run", "--align", "-1"])
    assert exit_info.value.code == 2 and "--align" in capsys.readouterr().err
