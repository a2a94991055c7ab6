"""How runs are driven: the per-model scripts' command lines (cli), the drivers' grid of stages
(grid), the executors that run the stage plan locally, over GPUs or on Slurm (stages), the
drivers' setting checks (driver_check, then setup_checks) and the package's layering rule (layers). The top layer:
it may import from every other."""
