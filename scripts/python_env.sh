# Source with the repository root as $1: picks the interpreter (PYTHON, else the repo's .venv,
# else python3) and puts the repository on PYTHONPATH. Shared by the drivers and eval.sh.
REPO=$(cd "$1" && pwd)
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$REPO/.venv/bin/python" ]]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
