"""Recovery of a pruned checkpoint: LoRA through peft and the Trainer (sft, kd, kd+sft, packed
batches, the teacher cache), merged and saved, with the memory plan that fits a GPU budget.
Imports only mop.core, mop.models and mop.families; pruning's LoRA probe builds on it."""
