"""Every checkpoint the project writes is in stock form: a fresh interpreter with nothing but torch,
transformers and safetensors (no import of this project, no `trust_remote_code`, no registration)
loads it and gives the logits the project's in-memory model gives, for every family and width
mode, LLaVA included. Folders written before (the llama-typed heads-pruned form, shipped as a
fixture written by transformers 4.57 code) are read by the project and rewritten by
`python -m mop.deploy.export`.

Set MOP_TRANSFORMERS4_PYTHON to a Python with transformers 4.57 to check that the same folders
still load there with the same logits.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, family_model, run_script
from test_llava import VISION_CONFIG
from torch.testing import assert_close

from mop.core.io import UsageError
from mop.models.adapter import FAMILIES, get_adapter
from mop.models.checkpoint import save_checkpoint
from mop.prune.surgery import remove_groups, remove_neurons, sync_config

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread per module

IDS = [[1, 5, 9, 13, 17, 21, 25, 29, 33, 37], [1, 6, 10, 14, 18, 22, 26, 30, 3, 3]]
MASK = [[1] * 10, [1] * 8 + [0] * 2]  # a padded row: the mask path must agree too
FIXTURE = REPO / "tests" / "fixtures" / "pre_stock"
LLAMA3_ROPE = dict(rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                   original_max_position_embeddings=32)

# Run with `python -I` (no project path, no user site): only the stock libraries are importable.
STOCK_LOAD = """
import json, sys
import torch, transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, LlavaForConditionalGeneration
assert "mop" not in sys.modules
request = json.loads(open(sys.argv[1]).read())
out = {"version": transformers.__version__}
for path in request["paths"]:
    config = json.load(open(path + "/config.json"))
    cls = LlavaForConditionalGeneration if config["model_type"] == "llava" else AutoModelForCausalLM
    model = cls.from_pretrained(path).eval()
    AutoTokenizer.from_pretrained(path)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(request["ids"]), attention_mask=torch.tensor(request["mask"])).logits
    out[path] = {"class": type(model).__name__, "logits": logits.tolist()}
json.dump(out, open(sys.argv[2], "w"))
"""


def stock_interpreters() -> list[str]:
    found = [sys.executable]
    if os.environ.get("MOP_TRANSFORMERS4_PYTHON"):
        found.append(os.environ["MOP_TRANSFORMERS4_PYTHON"])
    return found


def load_in_fresh_interpreter(python: str, paths: list[Path], tmp_path: Path) -> dict:
    request, answer = tmp_path / "request.json", tmp_path / "answer.json"
    request.write_text(json.dumps({"paths": [str(p) for p in paths], "ids": IDS, "mask": MASK}))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([python, "-I", "-c", STOCK_LOAD, str(request), str(answer)], check=True, cwd=tmp_path, env=env)
    return json.loads(answer.read_text())


def live_logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor(IDS), attention_mask=torch.tensor(MASK)).logits


def assert_stock_folder(path: Path) -> None:
    """No remote code of any kind: no auto_map anywhere, no Python files."""
    for name in ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json"):
        if (path / name).is_file():
            assert "auto_map" not in (path / name).read_text(), f"{path / name} has an auto_map"
    assert not list(path.glob("*.py")), f"{path} holds Python files"


# ----------------------------------------------------------------------------- pruned tiny models


def prune_width(model, mode: str) -> None:
    """The project's width-step surgery on every layer: one GQA group (heads, groups) and some
    neurons, or neurons only (mlp)."""
    adapter = get_adapter(model)
    for i, layer in enumerate(adapter.layers()):
        if mode != "mlp":
            remove_groups(adapter, layer, [i % adapter.kv_heads(layer)])
        remove_neurons(adapter, layer, list(range(i % 3, adapter.intermediate_size(layer), 7)))
    sync_config(adapter)


def text_model(family: str, mode: str):
    """A tiny model of `family` whose pruned head count does not divide hidden size 64 where
    heads are pruned: 4 heads of 16 leave 3 (MHA); 8 heads of 8 in 4 groups leave 6 (GQA)."""
    if mode == "heads":
        kw = dict(kv_heads=4, heads=4, head_dim=16)
    else:
        kw = dict(kv_heads=4, heads=8, head_dim=8)
    model = family_model(family, layers=3, **kw)
    if family == "llama":  # Llama-3's rope scaling and tied embeddings, as the paper's Llama-3
        config = model.config
        config.rope_parameters = dict(LLAMA3_ROPE)
        config.tie_word_embeddings = True
        model = type(model)(config)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "norm" in name:
                    p.add_(0.1 * torch.randn_like(p))
    return model.eval()


CASES = [("llama", "heads"), ("llama", "groups"), ("llama", "mlp"), ("mistral", "groups"), ("qwen2", "groups"),
         ("qwen2", "heads"), ("qwen3", "groups"), ("gemma3_text", "mlp")]


@pytest.fixture(scope="module")
def pruned_folders(tmp_path_factory, tokenizer_dir):
    """{case: (folder, in-memory logits)} for every family and width mode, and LLaVA around
    Llama (heads) and Qwen2 (groups), each written by the project's checkpoint writer."""
    from transformers import AutoTokenizer, CLIPVisionConfig

    from mop.models.tiny_llava import build_llava

    root = tmp_path_factory.mktemp("stock")
    folders = {}
    for family, mode in CASES:
        model = text_model(family, mode)
        prune_width(model, mode)
        path = root / f"{family}-{mode}"
        save_checkpoint(model, AutoTokenizer.from_pretrained(tokenizer_dir), path)
        folders[f"{family}-{mode}"] = (path, live_logits(model))
    for family, mode in (("llama", "heads"), ("qwen2", "groups")):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, model_input_names=["input_ids", "attention_mask"])
        model, processor = build_llava(text_model(family, mode), tokenizer, CLIPVisionConfig(**VISION_CONFIG), 0)
        prune_width(model, mode)
        path = root / f"llava-{family}-{mode}"
        save_checkpoint(model, processor, path)
        folders[f"llava-{family}-{mode}"] = (path, live_logits(model))
    return folders


def test_heads_pruned_llama_is_written_as_its_mistral_twin(pruned_folders):
    """The configs say what the weights hold; only shapes the family's own config refuses change type."""
    expected = {"llama-heads": "mistral", "llama-groups": "mistral", "llama-mlp": "llama", "qwen2-heads": "qwen2",
                "gemma3_text-mlp": "gemma3_text", "llava-llama-heads": "mistral"}
    for case, want in expected.items():
        config = json.loads((pruned_folders[case][0] / "config.json").read_text())
        text = config.get("text_config", config)
        assert text["model_type"] == want, case
        if want == "mistral":
            assert text["sliding_window"] is None and text["head_dim"] * text["num_attention_heads"] != text["hidden_size"]
        # transformers 4.57 reads only the legacy rope keys: both spellings are written, equal.
        params = text["rope_parameters"]
        if "full_attention" in params:  # Gemma-3: one entry per layer kind; 4.57 names the sliding one apart
            assert text["rope_local_base_freq"] == params["sliding_attention"]["rope_theta"]
            params = params["full_attention"]
        assert text["rope_theta"] == params["rope_theta"]
        if params["rope_type"] != "default":
            assert text["rope_scaling"] == {k: v for k, v in params.items() if k != "rope_theta"}


@pytest.mark.parametrize("python", stock_interpreters())
def test_every_pruned_checkpoint_loads_in_a_fresh_stock_interpreter(python, pruned_folders, tmp_path):
    paths = [path for path, _ in pruned_folders.values()]
    for path in paths:
        assert_stock_folder(path)
    answer = load_in_fresh_interpreter(python, paths, tmp_path)
    for case, (path, live) in pruned_folders.items():
        got = answer[str(path)]
        assert_close(torch.tensor(got["logits"]), live, atol=1e-5, rtol=0, msg=f"{case} under {answer['version']}")
        if case.startswith("llama-") and case != "llama-mlp":
            assert got["class"] == "MistralForCausalLM"


def test_the_project_reloads_what_it_wrote(pruned_folders):
    from mop.models.loading import load_model

    for case, (path, live) in pruned_folders.items():
        model, _ = load_model(str(path), torch.float32, "cpu")
        assert_close(live_logits(model), live, atol=1e-5, rtol=0, msg=case)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_heads_divide_hidden_states_what_the_familys_config_checks(family):
    """The family's flag is what transformers' own config enforces (probed with a head count that
    divides nothing: hidden size + 1)."""
    from transformers import AutoConfig

    def refused(heads: int) -> bool:
        try:
            AutoConfig.for_model(family, hidden_size=64, num_attention_heads=heads, num_key_value_heads=heads,
                                 head_dim=16)
        except Exception:
            return True
        return False

    assert not refused(4)
    assert refused(65) == FAMILIES[family].heads_divide_hidden


def test_writing_a_shape_no_stock_architecture_computes_is_refused(tmp_path, tokenizer_dir):
    """Gemma-3 with pruned heads (no stock twin) and a biased Llama with pruned heads: the writer
    refuses in one line, and writes nothing."""
    from transformers import AutoTokenizer

    for model in (text_model("gemma3_text", "heads"), family_model("llama", kv_heads=4, layers=2, bias=True)):
        prune_width(model, "heads")
        target = tmp_path / model.config.model_type
        with pytest.raises(UsageError, match="cannot be written in a form stock transformers 5 loads"):
            save_checkpoint(model, AutoTokenizer.from_pretrained(tokenizer_dir), target)
        assert not target.exists()


@pytest.mark.parametrize("family", ["gemma3_text", "llama-bias"])
def test_a_run_that_would_prune_such_heads_is_refused_before_any_work(family, tmp_path, tokenizer_dir, capsys,
                                                                      calibration_file, monkeypatch):
    from conftest import save_checkpoint as save_base

    model = family_model("llama", kv_heads=4, bias=True) if family == "llama-bias" else family_model(family)
    base = save_base(model, tokenizer_dir, tmp_path / "base")
    before = sorted(tmp_path.rglob("*"))
    capsys.readouterr()  # what building the base model printed
    for extra in ([], ["--dry_run"]):
        with pytest.raises(SystemExit) as stop:
            run_script(REPO / "Custom" / "prune.py", ["--model_name", str(base), "--no-mlp_only", "--save_dir",
                                                       str(tmp_path / "run"), "--num_iterations", "2",
                                                       "--calibration_data", str(calibration_file), *extra],
                       monkeypatch)
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--mlp_only" in err[0] and "stock transformers 5" in err[0]
    assert sorted(tmp_path.rglob("*")) == before


# ----------------------------------------------------------------------------- earlier folders


def fixture_logits():
    from safetensors.torch import load_file

    return load_file(FIXTURE / "llama_mha_heads.logits.safetensors")


def test_the_project_reads_its_earlier_llama_typed_folders():
    """A heads-pruned folder written by the 4.57-era code: stock transformers 5 refuses its config,
    the project reads it as its stock form with the logits the live model had."""
    from mop.models.loading import load_model

    written = json.loads((FIXTURE / "llama_mha_heads" / "config.json").read_text())
    assert written["model_type"] == "llama" and written["hidden_size"] % written["num_attention_heads"] != 0
    ref = fixture_logits()
    model, tokenizer = load_model(str(FIXTURE / "llama_mha_heads"), torch.float32, "cpu")
    with torch.no_grad():
        assert_close(model(ref["input_ids"]).logits, ref["logits"], atol=1e-5, rtol=0)
    assert tokenizer("the cat")["input_ids"]


def test_export_writes_the_stock_form_of_an_earlier_folder(tmp_path):
    from safetensors import safe_open

    from mop.deploy.export import main

    target = tmp_path / "exported"
    main([str(FIXTURE / "llama_mha_heads"), str(target)])
    assert_stock_folder(target)
    config = json.loads((target / "config.json").read_text())
    assert config["model_type"] == "mistral" and config["rope_parameters"]["rope_type"] == "llama3"
    with safe_open(str(target / "model.safetensors"), "pt") as new, \
            safe_open(str(FIXTURE / "llama_mha_heads" / "model.safetensors"), "pt") as old:
        assert sorted(new.keys()) == sorted(old.keys())
        assert all(torch.equal(new.get_tensor(k), old.get_tensor(k)) for k in old.keys())
    ref = fixture_logits()
    for python in stock_interpreters():
        request, answer = tmp_path / "req.json", tmp_path / "ans.json"
        request.write_text(json.dumps({"paths": [str(target)], "ids": ref["input_ids"].tolist(),
                                       "mask": torch.ones_like(ref["input_ids"]).tolist()}))
        subprocess.run([python, "-I", "-c", STOCK_LOAD, str(request), str(answer)], check=True, cwd=tmp_path)
        got = json.loads(answer.read_text())[str(target)]
        assert_close(torch.tensor(got["logits"]), ref["logits"], atol=1e-5, rtol=0, msg=python)


@pytest.mark.parametrize("case", ["target exists", "source missing", "target inside source"])
def test_export_refuses_in_one_line_and_changes_nothing(case, tmp_path, capsys):
    from mop.deploy.export import main

    source = FIXTURE / "llama_mha_heads"
    target = {"target exists": tmp_path / "taken", "source missing": tmp_path / "out",
              "target inside source": source / "inner"}[case]
    if case == "target exists":
        target.mkdir()
        (target / "keep.txt").write_text("mine")
    before = {p: p.read_bytes() for p in [*tmp_path.rglob("*"), *source.rglob("*")] if p.is_file()}
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "nowhere") if case == "source missing" else str(source), str(target)])
    assert stop.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    after = {p: p.read_bytes() for p in [*tmp_path.rglob("*"), *source.rglob("*")] if p.is_file()}
    assert after == before and not (source / "inner").exists()
