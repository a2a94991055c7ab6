"""The MoP iterations: the width budget, the L and G steps and their surgery, AMP importance
(streamed with --offload), the path's choice between candidates, the loop with its checkpoints
and resume. Imports mop.core, mop.models, mop.families and mop.recover (the LoRA probe)."""
