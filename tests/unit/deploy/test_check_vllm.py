"""tools/check_vllm.py's pure helpers: no vLLM, no model, no network."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

TOOL = Path(__file__).resolve().parents[3] / "tools" / "check_vllm.py"


@pytest.fixture(scope="module")
def tool():
    """The tool as a module (it lives outside any package)."""
    spec = importlib.util.spec_from_file_location("check_vllm", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lp(logprob: float, rank: int):
    """A stand-in for vLLM's Logprob (the fields the tool reads)."""
    return SimpleNamespace(logprob=logprob, rank=rank)


def test_heads_fit_hidden(tool):
    assert tool.heads_fit_hidden({"hidden_size": 576, "num_attention_heads": 9})
    assert tool.heads_fit_hidden({"hidden_size": 576, "num_attention_heads": 8})  # 8 x 64 = 512 still loads
    assert not tool.heads_fit_hidden({"hidden_size": 576, "num_attention_heads": 7})
    assert not tool.heads_fit_hidden({"hidden_size": 256, "num_attention_heads": 6})


def test_prompt_argmax_and_nll(tool):
    ids = [5, 7, 9]
    prompt_logprobs = [None, {7: lp(-0.5, 1)}, {9: lp(-2.0, 3), 4: lp(-0.1, 1)}]
    argmax, nll = tool.prompt_argmax_and_nll(prompt_logprobs, ids)
    assert argmax == [7, 4]
    assert nll == pytest.approx(2.5)


def test_summarize_counts_prompts_tokens_and_positions(tool):
    hf = {"greedy": [[1, 2, 3], [4, 5, 6]], "argmax": [[1, 2], [3, 4]], "nll": 4.0}
    served = {"greedy": [[1, 2, 3], [4, 9, 6]], "argmax": [[1, 2], [3, 0]], "nll": 4.0}
    summary = tool.summarize(hf, served)
    assert summary["greedy_identical"] == 1 and summary["greedy_prompts"] == 2
    assert summary["greedy_tokens_agreeing"] == 5 and summary["greedy_tokens"] == 6
    assert summary["next_token_agreement"] == 0.75 and summary["positions"] == 4
    assert summary["ppl_hf"] == summary["ppl_vllm"] == pytest.approx(2.7183, abs=1e-4)


def test_report_and_table_say_what_served_as_written(tool):
    row = {"checkpoint": "heads-pruned", "layers": 20, "heads": 7, "kv_heads": 7, "head_dim": 64, "hidden": 576,
           "intermediate": 1185, "model_type": "mistral",
           "served": True, "greedy_identical": 4, "greedy_prompts": 4, "greedy_tokens_agreeing": 64,
           "greedy_tokens": 64, "next_token_agreement": 1.0, "ppl_hf": 30.0, "ppl_vllm": 30.0, "load_seconds": 20}
    line = tool.report_line(row)
    assert "served as written (mistral)" in line and "registered" not in line
    assert "| mistral | 4/4 (64/64 tokens) | 100.00% |" in tool.table_row(row)
    failed = {**row, "served": False, "error": "vLLM failed (1): boom"}
    assert "NOT SERVED" in tool.report_line(failed) and "vLLM failed (1): boom" in tool.table_row(failed)


def test_the_vllm_half_registers_and_patches_nothing():
    """`vllm serve <checkpoint>` can do no more than the check does: no config registration, no
    monkey-patching of vLLM or transformers in the vLLM process."""
    source = TOOL.read_text()
    assert "AutoConfig.register" not in source and "register(" not in source and "setattr(" not in source


def test_bad_input_is_one_line_and_exit_2(tool, capsys, tmp_path):
    assert tool.main(["--vllm_python", str(tmp_path / "missing" / "python")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no vLLM interpreter at") and "\n" not in err
    assert tool.main([]) == 2


def test_sitecustomize_makes_the_cuda_only_packages_absent(tool, tmp_path):
    """The hook works the way transformers looks packages up (importlib.util.find_spec)."""
    (tmp_path / "sitecustomize.py").write_text(tool.SITECUSTOMIZE)
    code = "import importlib.util as u; print([u.find_spec(n) for n in ('torchvision', 'torchaudio', 'torchcodec')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)}).stdout
    assert out.strip() == "[None, None, None]"
