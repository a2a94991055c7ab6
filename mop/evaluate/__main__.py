"""`python -m mop.evaluate MODEL_DIR OUT_DIR [--tasks ...]`: what every eval.sh runs (see harness)."""

from .harness import main

if __name__ == "__main__":
    main()
