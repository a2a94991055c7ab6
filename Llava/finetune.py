"""MoP recovery fine-tuning for LLaVA-1.5-7B: text-only LoRA on the language model, merged back.

As published for LLaVA: LoRA r=8, alpha=16 on the language model's q/k/v/o/gate/up/down
projections, trained on Alpaca text (no images), merged into the weights and saved as a complete
LLaVA checkpoint with its processor. The LoRA target is a regex over full module names that
matches only `...language_model...` projections, so the CLIP vision tower and the projector are
frozen and never written: the run checks that they are bit-identical to the pruned checkpoint
and records their digest in mop_finetune.json. Weights stay in the checkpoint's saved dtype
(bf16 autocast on GPU; float32 on CPU, cast back before saving). Other settings as for
Llama-2 (lr 3e-4, effective batch 16, max length 512, 2 epochs, loss on the response only);
each can be overridden with the flag of the same name. On CUDA, --max_memory_gb (default: the
GPU's memory; the drivers pass 24, the paper's card) picks gradient checkpointing and the
micro-batch that fit, keeping the effective batch. Run with --help for all flags; torchrun /
accelerate launch run it on several GPUs unchanged (the accumulation is split across them).

  python Llava/finetune.py --pruned_model_dir /tmp/run/prune_iteration_2 --num_epochs 1 --num_samples 64
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

PRUNED_MODEL_DIR = str(HERE / "results_llava" / "run_seed_1" / "prune_iteration_7")  # ~19%, 5.70B params
TUNED_MODEL_DIR = None  # None: <pruned_model_dir>_ft_<num_epochs>ep beside it
NUM_EPOCHS = 2
DATA = "auto"  # auto: from the checkpoint's mop_prune.json (shipped set for tiny-llava, else yahma/alpaca-cleaned)
NUM_SAMPLES = None  # None: every record
LORA_R = 8  # published LLaVA setting
LORA_ALPHA = 16  # published LLaVA setting
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
        scope="multimodal",  # LLaVA only; its recovery hooks come from its config (mop/plugins/llava/plugin.py)
    )
