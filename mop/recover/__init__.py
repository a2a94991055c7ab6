"""Recovery of a pruned checkpoint: its settings (settings), LoRA training through peft and the
Trainer and the merge (trainer; its CPU path: lora_cpu), batches and packed attention, the
objectives (distill: sft, kd, kd+sft) and the teacher cache, the memory plan that fits a GPU
budget (memory), and the checkpoint-folder job every finetune.py runs (job).
Imports only mop.core, mop.models and mop.families; pruning's LoRA probe builds on it."""
