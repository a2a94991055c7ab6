"""MoP pruning for LLaMA-2-7B: depth (L) and width (G) steps along a decision path.

Width steps prune attention heads (multi-head attention = GQA groups of one head) and MLP
neurons, as published. Hyperparameters below are the published defaults;
each can be overridden with the flag of the same name. Run with --help for all flags.

  python Llama2/prune.py --model_name smollm2-135m-mha --save_dir /tmp/run --num_iterations 4 --decision_sequence LGGL
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

MODEL_NAME = "meta-llama/Llama-2-7b-hf"  # or the embedded smollm2-135m-mha for a CPU run
SAVE_DIR = str(HERE / "results_llama2" / "run_seed_1")  # prune_iteration_<i>/ go here
NUM_ITERATIONS = 18  # each removes about one decoder layer's worth of parameters
DECISION_SEQUENCE = "LGGLLLGGLLGLGLLGGL"  # seed-1 path of the paper
SEED = 1
MLP_ONLY = False  # published Llama-2 setting: G steps prune attention heads and MLP neurons
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
