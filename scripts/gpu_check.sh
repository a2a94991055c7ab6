#!/usr/bin/env bash
# Every stage of a 7B/8B MoP run within one 24 GB GPU, timed: bash scripts/gpu_check.sh [flags of benchmarks/gpu_check.py]
source "$(dirname "${BASH_SOURCE[0]}")/python_env.sh" "$(dirname "${BASH_SOURCE[0]}")/.." && exec "$PYTHON" "$REPO/benchmarks/gpu_check.py" "$@"
