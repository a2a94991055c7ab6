"""benchmarks/gpu_check.py --tiny --device cpu: the GPU check's code runs end to end on tiny configs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STAGES = ("build", "ppl decision", "G step", "L step", "L step, block_influence", "recovery, packed sft",
          "teacher cache", "recovery, cache kd", "lm_eval")


@pytest.mark.slow  # 6-17 s: make test-slow (CI) runs it
def test_gpu_check_tiny_cpu(tmp_path):
    out = tmp_path / "check.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--tiny", "--device", "cpu",
                             "--out", str(out)], capture_output=True, text=True, timeout=900,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = {(r["model"], r["stage"]): r for r in report["rows"]}
    for model in ("tiny-llama2", "tiny-llama3"):
        for stage in STAGES:
            assert rows[(model, stage)]["status"] == "ok", (model, stage)
    # The further-family stage (Qwen3 shape: q/k norms): exactly one G step, one L step and recovery.
    qwen3_stages = ["build", "G step", "L step", "recovery, packed sft"]
    assert [r["stage"] for r in report["rows"] if r["model"] == "tiny-qwen3"] == qwen3_stages
    assert all(rows[("tiny-qwen3", s)]["status"] == "ok" for s in qwen3_stages)
    assert "'neurons': " in rows[("tiny-qwen3", "G step")]["detail"] and "'removed_layer_index': 3" in rows[
        ("tiny-qwen3", "L step")]["detail"]
    assert "micro-batch" in rows[("tiny-qwen3", "recovery, packed sft")]["detail"]
    latency_rows = [r for r in report["rows"] if r["stage"].startswith("latency")]
    assert len(latency_rows) == 4 and all(r["model"] == "tiny-llama2" and r["status"] == "ok" for r in latency_rows)
    assert {r["stage"].split()[-1] for r in latency_rows} == {"eager", "compiled"}
    for stage in ("recovery, packed sft", "recovery, cache kd"):
        assert "micro-batch" in rows[("tiny-llama2", stage)]["detail"]  # the memory plan was applied
    assert "positions" in rows[("tiny-llama3", "teacher cache")]["detail"]
    table = result.stdout[result.stdout.index("MoP GPU check on cpu"):]
    assert "within" in table and " NO " not in table
