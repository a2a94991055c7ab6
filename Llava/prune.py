"""MoP pruning for LLaVA-1.5-7B: depth (L) and width (G) steps on the language model only.

Only the Vicuna-7B language model (Llama-2 architecture, multi-head attention) is pruned: width
steps remove attention heads and MLP neurons as for Llama-2; the CLIP vision tower and the MLP
projector are untouched and the hidden size never changes. Calibration uses Alpaca text prompts
(the default) or, with --calibration_images, image + question prompts from a local folder
(a JSON/JSONL list of {"image": "relative/path.png", "question": "..."}). Hyperparameters below
are the published defaults; each can be overridden with the flag of the same name.

  python Llava/prune.py --dry_run   # the 17-iteration schedule of llava-1.5-7b-hf from its shipped config
  python Llava/prune.py --model_name tiny-llava --dtype float32 --save_dir /tmp/run --num_iterations 3 --decision_sequence LGG
  python Llava/prune.py --model_name tiny-llava --dtype float32 --save_dir /tmp/run2 --num_iterations 2 \
      --calibration_images mop/plugins/llava/tasks_vision/data/shapes.jsonl
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

MODEL_NAME = "llava-hf/llava-1.5-7b-hf"  # or the embedded tiny-llava for a CPU run
SAVE_DIR = str(HERE / "results_llava" / "run_seed_1")  # prune_iteration_<i>/ go here
NUM_ITERATIONS = 17  # published LLaVA runs; each removes about one decoder layer's worth of parameters
DECISION_SEQUENCE = "LGGLLLGGLLGLGLLGGL"  # seed-1 path of the paper
SEED = 1
MLP_ONLY = False  # Vicuna is multi-head (Llama-2 style): G steps prune attention heads and MLP neurons
CALIBRATION_DATA = "auto"  # auto: yahma/alpaca-cleaned for hub models, the shipped set for embedded ones
NUM_CALIBRATION_PROMPTS = 128
DEPTH_RULE = "third_to_last"  # the paper's depth step; block_influence: drop the layer that changes the hidden state least
DTYPE = "auto"  # auto: the checkpoint's own float16 on CUDA (bfloat16 would round the vision tower), float32 on CPU
CALIBRATION_IMAGES = None  # None: text prompts; or a JSON/JSONL of image questions (e.g. mop/plugins/llava/tasks_vision/data/shapes.jsonl)


def add_llava_flags(parser):
    parser.add_argument("--calibration_images", default=CALIBRATION_IMAGES,
                        help="JSON/JSONL list of {image, question} (image paths relative to the file); "
                             "calibrate on image + question prompts instead of --calibration_data")


def batch_builder_for(args):
    """Image + question batches when --calibration_images is given, else the default text prompts."""
    if not args.calibration_images:
        return None
    from mop.plugins.llava.plugin import image_calibration_builder

    return image_calibration_builder(args.calibration_images)


if __name__ == "__main__":
    from mop.run.cli import prune_main

    prune_main(
        dict(model_name=MODEL_NAME, save_dir=SAVE_DIR, num_iterations=NUM_ITERATIONS,
             decision_sequence=DECISION_SEQUENCE, seed=SEED, mlp_only=MLP_ONLY,
             calibration_data=CALIBRATION_DATA, num_calibration_prompts=NUM_CALIBRATION_PROMPTS, depth_rule=DEPTH_RULE, dtype=DTYPE),
        description=__doc__,
        extend_parser=add_llava_flags,
        batch_builder_for=batch_builder_for,
    )
