"""LLaVA-1.5: image + question calibration, the vision guard, the recovery and scoring hooks
(plugin), lmms-eval's visual benchmarks (lmms), the image tasks (tasks_vision, tasks_lmms).
`python -m mop.plugins.llava check DIR...` reloads checkpoints and answers an image question.
Kept light: importing the package imports neither torch nor peft."""
