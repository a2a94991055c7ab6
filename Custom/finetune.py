"""MoP recovery fine-tuning for your own model: LoRA on a pruned checkpoint, merged and saved.

The LoRA rank and alpha are left to the checkpoint's family (LORA_R = LORA_ALPHA = None): the
paper's r=32, alpha=10 for text models, r=8, alpha=16 for a LLaVA wrapper (mop/families/); the
flags --lora_r / --lora_alpha decide them explicitly. The other hyperparameters are the published
defaults (lr 3e-4, effective batch 16, max length 512, 2 epochs of yahma/alpaca-cleaned, loss on
the response only). Run with --help for all flags.

  python Custom/finetune.py --pruned_model_dir /tmp/run/prune_iteration_2 --tuned_model_dir /tmp/run/prune_iteration_2_ft_1ep --num_epochs 1 --num_samples 128
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

PRUNED_MODEL_DIR = str(HERE / "results_custom" / "run_seed_1" / "prune_iteration_12")
TUNED_MODEL_DIR = None  # None: <pruned_model_dir>_ft_<num_epochs>ep beside it
NUM_EPOCHS = 2
DATA = "auto"  # auto: from the checkpoint's mop_prune.json; or a hub id / local Alpaca JSON
NUM_SAMPLES = None  # None: every record
LORA_R = None  # None: the family's (mop/families/)
LORA_ALPHA = None
LEARNING_RATE = 3e-4
BATCH_SIZE = 4  # micro-batch per GPU
GRAD_ACCUM = 4  # split across GPUs: effective batch = BATCH_SIZE x GRAD_ACCUM = 16 on any number of them
MAX_LENGTH = 512
SEED = 1

if __name__ == "__main__":
    from mop.run.cli import finetune_main

    finetune_main(
        dict(pruned_model_dir=PRUNED_MODEL_DIR, tuned_model_dir=TUNED_MODEL_DIR, num_epochs=NUM_EPOCHS,
             data=DATA, num_samples=NUM_SAMPLES, lora_r=LORA_R, lora_alpha=LORA_ALPHA,
             learning_rate=LEARNING_RATE, batch_size=BATCH_SIZE, grad_accum=GRAD_ACCUM,
             max_length=MAX_LENGTH, seed=SEED),
        description=__doc__,
        scope="any",  # text families and multimodal wrappers (LLaVA) alike
    )
