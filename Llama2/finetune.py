"""MoP recovery fine-tuning for LLaMA-2-7B: LoRA on a pruned checkpoint, merged and saved.

Hyperparameters below are the published defaults (LoRA r=32, alpha=10, lr 3e-4, effective batch
16, max length 512, 2 epochs of yahma/alpaca-cleaned, loss on the response only); each can be
overridden with the flag of the same name. Micro-batches of 4 examples packed end to end
without padding (--no-packing: padded rows), 4 x 4 accumulation instead of the published 1 x 16; on several GPUs the accumulation is split across
them, keeping the effective batch of 16. On CUDA, --max_memory_gb (default: the GPU's memory;
the drivers pass 24, the paper's card) picks gradient checkpointing and the micro-batch that fit
the budget, keeping the effective batch. A float16 checkpoint is merged and saved in float16.
--data auto reads the checkpoint's mop_prune.json: the shipped instruction set for the embedded
model, yahma/alpaca-cleaned otherwise. Run with --help for all flags; torchrun / accelerate
launch run it on several GPUs unchanged.

  python Llama2/finetune.py --pruned_model_dir /tmp/run/prune_iteration_2 --tuned_model_dir /tmp/run/prune_iteration_2_ft_1ep --num_epochs 1 --num_samples 128
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

PRUNED_MODEL_DIR = str(HERE / "results_llama2" / "run_seed_1" / "prune_iteration_15")  # ~40% compression
TUNED_MODEL_DIR = None  # None: <pruned_model_dir>_ft_<num_epochs>ep beside it
NUM_EPOCHS = 2
DATA = "auto"  # auto: from the checkpoint's mop_prune.json; or a hub id / local Alpaca JSON
NUM_SAMPLES = None  # None: every record
LORA_R = 32
LORA_ALPHA = 10
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
    )
