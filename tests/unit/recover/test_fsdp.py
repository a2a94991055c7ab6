"""Recovery through accelerate + FSDP (configs/fsdp.yaml).

accelerate 1.12 runs FSDP on GPUs only (its FSDP plugin refuses to start without an accelerator,
and CPU processes fall back to plain data parallelism), so on a CPU machine: the config is
validated by accelerate's own loader and launcher, and the FSDP save path -- rebuild the LoRA
model from the pruned checkpoint and the gathered adapter weights, merge, save -- is checked
against the single-process merge.
"""

import os

import pytest
import torch
from conftest import FAMILIES, REPO, family_model
from test_recovery import RECORDS, base_model, checkpoint, tiny_settings, tokenizer  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread per module

from mop.models.adapter import LORA_PROJECTIONS
from mop.recover.trainer import TrainReport, load_adapter_state, merge_lora, merged_model, train_lora, wrap_with_lora

CONFIG = REPO / "configs" / "fsdp.yaml"


def launch_environment(num_processes: int) -> dict:
    """The environment `accelerate launch --config_file configs/fsdp.yaml` gives its processes."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(CONFIG), "--num_processes", str(num_processes),
                                               "--main_process_port", "0", "Llama3/finetune.py"])
    args, _, _ = _validate_launch_command(args)
    return prepare_multi_gpu_env(args)


def test_fsdp_config_is_read_by_accelerate():
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType

    config = load_config_from_file(str(CONFIG))
    assert config.distributed_type == DistributedType.FSDP
    env = launch_environment(8)
    assert env["ACCELERATE_USE_FSDP"] == "true"
    expected = {"FSDP_VERSION": "1", "FSDP_SHARDING_STRATEGY": "FULL_SHARD", "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP",
                "FSDP_STATE_DICT_TYPE": "SHARDED_STATE_DICT", "FSDP_USE_ORIG_PARAMS": "true",
                "FSDP_CPU_RAM_EFFICIENT_LOADING": "true", "FSDP_SYNC_MODULE_STATES": "true",
                "ACCELERATE_MIXED_PRECISION": "no"}
    assert {k: env[k] for k in expected} == expected
    # The config names no layer class: the family does (one file for every family).
    assert "FSDP_TRANSFORMER_CLS_TO_WRAP" not in env


@pytest.mark.parametrize("family", FAMILIES)
def test_fsdp_wraps_the_family_decoder_layer(family):
    """The class the family names is the decoder layer transformers itself keeps whole, and the one
    the built model's layers are instances of."""
    from mop.recover.job import set_fsdp_wrap_class

    model = family_model(family)
    environ = {**launch_environment(8)}
    set_fsdp_wrap_class(model.config, environ)
    name = environ["FSDP_TRANSFORMER_CLS_TO_WRAP"]
    assert name in type(model)._no_split_modules
    assert {type(layer).__name__ for layer in model.model.layers} == {name}
    environ = {"ACCELERATE_USE_FSDP": "true", "FSDP_TRANSFORMER_CLS_TO_WRAP": "Custom"}
    set_fsdp_wrap_class(model.config, environ)  # an explicit choice wins
    assert environ["FSDP_TRANSFORMER_CLS_TO_WRAP"] == "Custom"


def test_fsdp_plugin_from_the_config(monkeypatch):
    from accelerate.utils import FullyShardedDataParallelPlugin
    from transformers import LlamaConfig

    from mop.recover.job import set_fsdp_wrap_class

    environ = launch_environment(2)
    set_fsdp_wrap_class(LlamaConfig(), environ)  # as finetune_checkpoint does before the Trainer
    for key, value in environ.items():
        if key.startswith(("FSDP_", "ACCELERATE_")):
            monkeypatch.setenv(key, value)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no available devices"):  # why the README says GPU only
            FullyShardedDataParallelPlugin()
        return
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.use_orig_params and plugin.sync_module_states and plugin.cpu_ram_efficient_loading
    assert plugin.transformer_cls_names_to_wrap == ["LlamaDecoderLayer"]


def test_merge_from_gathered_weights_equals_the_single_process_merge(base_model, tokenizer, checkpoint, tmp_path):
    import copy

    settings = tiny_settings(max_steps=3)
    report = train_lora(copy.deepcopy(base_model), tokenizer, RECORDS, settings, tmp_path / "work", progress=False)
    # As FSDP's full state dict arrives: every weight, keys possibly carrying wrapper prefixes.
    gathered = {k.replace("layers.0.", "layers.0._fsdp_wrapped_module."): v.clone()
                for k, v in report.peft_model.state_dict().items()}
    expected = merge_lora(report.peft_model).state_dict()
    rebuilt = merged_model(TrainReport(None, [], {}, full_state_dict=gathered), checkpoint, settings, torch.float32,
                           LORA_PROJECTIONS)
    assert type(rebuilt).__name__ == "LlamaForCausalLM"
    got = rebuilt.state_dict()
    assert got.keys() == expected.keys()
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
    assert any(not torch.equal(got[k], base_model.state_dict()[k]) for k in expected)  # training changed weights


def test_missing_adapter_weights_are_refused(base_model, tokenizer):
    import copy

    peft_model = wrap_with_lora(copy.deepcopy(base_model), tiny_settings())
    partial = {k: v for k, v in peft_model.state_dict().items() if "layers.1." not in k}
    with pytest.raises(RuntimeError, match="lacks .* LoRA weights"):
        load_adapter_state(peft_model, partial)


def test_pipeline_passes_the_accelerate_config():
    from mop.run.grid import Grid, finetune_command

    def command(num_gpus, config=""):
        grid = Grid(model_folder="/m", model_name="m", results_dir="/r", log_dir="/r/logs", python="py", paths=(),
                    num_gpus=num_gpus, accelerate_config=config)
        return " ".join(finetune_command(grid))

    assert [command("8", "configs/fsdp.yaml"), command("2"), command("1")] == [
        "py -m accelerate.commands.launch --config_file configs/fsdp.yaml --num_processes 8 --main_process_port 0 /m/finetune.py",
        "py -m accelerate.commands.launch --num_processes 2 --main_process_port 0 /m/finetune.py",
        "py /m/finetune.py",
    ]
