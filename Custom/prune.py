"""MoP pruning for your own model: any checkpoint of a supported family (llama, mistral, qwen2,
qwen3, gemma3_text, or a LLaVA wrapper of one; mop/families/), chosen by its config's model_type.

MODEL_NAME takes a hub id, a local checkpoint folder or an embedded name; the environment
variable MODEL_NAME overrides the constant, the flag --model_name overrides both. The width mode
is left to the family (MLP_ONLY = None): grouped-query models prune MLP neurons only, as the
published Llama-3 scripts do, multi-head models heads and neurons; --mlp_only / --no-mlp_only
decide it explicitly. Shipped configs let dry runs work offline for Mistral-7B-v0.3, Qwen2.5-7B,
Qwen3-8B and gemma-3-1b-pt. Run with --help for all flags.

  python Custom/prune.py --model_name Qwen/Qwen3-8B --num_iterations 12 --dry_run
  python Custom/prune.py --model_name /path/to/checkpoint --save_dir /tmp/run --num_iterations 4 --decision_sequence LGGL
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

MODEL_NAME = os.environ.get("MODEL_NAME", "Qwen/Qwen3-8B")  # any supported checkpoint
SAVE_DIR = str(HERE / "results_custom" / "run_seed_1")  # prune_iteration_<i>/ go here
NUM_ITERATIONS = 18  # each removes about one decoder layer's worth of parameters
DECISION_SEQUENCE = "LGGLLLGGLLGLGLLGGL"  # seed-1 path of the paper
SEED = 1
MLP_ONLY = None  # None: the family's default width mode (mop/families/base.py Family.default_mlp_only)
CALIBRATION_DATA = "auto"  # auto: yahma/alpaca-cleaned for hub models, the shipped set for embedded ones; or a hub id / local Alpaca JSON
NUM_CALIBRATION_PROMPTS = 128
DEPTH_RULE = "third_to_last"  # the paper's depth step; block_influence: drop the layer that changes the hidden state least

if __name__ == "__main__":
    from mop.run.cli import prune_main

    prune_main(
        dict(model_name=MODEL_NAME, save_dir=SAVE_DIR, num_iterations=NUM_ITERATIONS,
             decision_sequence=DECISION_SEQUENCE, seed=SEED, mlp_only=MLP_ONLY,
             calibration_data=CALIBRATION_DATA, num_calibration_prompts=NUM_CALIBRATION_PROMPTS, depth_rule=DEPTH_RULE),
        description=__doc__,
    )
