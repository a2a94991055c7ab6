"""`python -m mop.plugins.llava check|evaluate ...` (see plugin.main)."""

from .plugin import main

if __name__ == "__main__":
    main()
