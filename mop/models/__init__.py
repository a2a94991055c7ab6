"""Models and data: names to checkpoints, loading (checked against itself), the one checkpoint
writer and its stock form, the embedded models, shipped configs, recovery/calibration data and the
divergence shared by path selection and distillation. Imports only mop.core and mop.families."""
