"""Scoring a checkpoint and reading the scores back: lm_eval zero-shot scoring (harness; `python -m
mop.evaluate` runs it), the project's offline lm_eval tasks (tasks/), held-out loss (heldout),
lmms-eval's results files (lmms_results), latency (latency) and the result tables (tables).
Imports mop.core, mop.models and mop.prune (model-output primitives); the LLaVA plugin builds on it."""
