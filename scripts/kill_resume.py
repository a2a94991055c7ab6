"""Kill-and-resume check: SIGKILL prune.py and finetune.py at random moments, resume, compare.

    python scripts/kill_resume.py                       # 10 trials each on the embedded model
    python scripts/kill_resume.py --trials 3 --stages finetune --work_dir /tmp/kr
    python scripts/kill_resume.py --stages prune --keep_iterations 2   # iterations 1 and 3 deleted on the way

For each stage an uninterrupted reference run is made first and timed. Each trial then starts
the same command in a fresh folder, kills it with SIGKILL after a random fraction of the
reference run's wall time (start-up and model loading included: "any moment"; a run that ends
before its moment is redone with an earlier one), checks that
every folder with a final name is complete, resumes it the way the drivers do (prune.py with
--resume once run_config.json exists, finetune.py always with --resume) and compares every
weight tensor with the reference run's. Prints one line per trial and a summary; exits 1 if
any trial differs or left an incomplete final-named folder.

Settings are kept small (CPU minutes): a 4-iteration LGGL prune with 32 calibration prompts,
then 6 LoRA steps (checkpoint every 2) on 64 records of at most 128 tokens. Run it under the
shared lock on a shared machine (flock /tmp/mop-heavy.lock ...): timings decide the kill moments.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mop.core.layout import FINETUNE_META, PRUNE_META, RUN_CONFIG, CHECKPOINT_DIR  # noqa: E402
from mop.models.loading import check_weights  # noqa: E402

PRUNE = [sys.executable, str(REPO / "Llama2" / "prune.py")]
FINETUNE = [sys.executable, str(REPO / "Llama2" / "finetune.py")]
MODEL = "smollm2-135m-mha"
PRUNE_FLAGS = ["--model_name", MODEL, "--num_iterations", "4", "--decision_sequence", "LGGL",
               "--num_calibration_prompts", "32", "--calibration_batch_size", "8"]
FINETUNE_FLAGS = ["--max_steps", "6", "--save_steps", "2", "--num_samples", "64", "--max_length", "128",
                  "--logging_steps", "1"]


# ----------------------------------------------------------------------------- running


def run_to_end(cmd: list[str], log: Path) -> float:
    """Run a command to completion (its output to `log`); its wall time."""
    began = time.perf_counter()
    with open(log, "a") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}); see {log}")
    return time.perf_counter() - began


def kill_at_random_moment(cmd: list[str], seconds: float, folder: Path, log: Path, rng: random.Random,
                          attempts: int = 3) -> tuple[bool, float]:
    """Run `cmd` in a fresh `folder` and SIGKILL it at a uniformly drawn moment of a run that
    takes `seconds`; a run that finished before its moment (runs vary) is redone in a fresh
    folder with a new, earlier moment. Returns (killed, the moment)."""
    upper = 0.95
    for _ in range(attempts):
        shutil.rmtree(folder, ignore_errors=True)
        after = rng.uniform(0.05, upper) * seconds
        if run_and_kill(cmd, after, log):
            return True, after
        upper /= 2
    return False, after


def run_and_kill(cmd: list[str], after: float, log: Path) -> bool:
    """Start `cmd`, SIGKILL it after `after` seconds. True if it was killed, False if it had
    already finished."""
    with open(log, "a") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
        try:
            proc.wait(timeout=after)
        except subprocess.TimeoutExpired:
            proc.kill()  # SIGKILL: no cleanup, no finally blocks
            proc.wait()
            return True
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed before the kill (exit {proc.returncode}); see {log}")
    return False


# ----------------------------------------------------------------------------- checking


def tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def max_difference(a: dict, b: dict) -> float | None:
    """0.0 when bit-identical, the largest |a - b| otherwise; None when the tensors differ in
    names or shapes."""
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        return None
    return max(((a[k].double() - b[k].double()).abs().max().item() if not a[k].equal(b[k]) else 0.0) for k in a)


def incomplete_final_folders(root: Path, meta_name: str, pattern) -> list[str]:
    """Final-named checkpoint folders (matching `pattern`) that lack their metadata or whose
    weight files do not read back: these must never exist."""
    bad = []
    for path in sorted(p for p in root.iterdir() if pattern(p.name) and p.is_dir()):
        if not (path / meta_name).is_file() or not (path / "config.json").is_file():
            bad.append(path.name)
            continue
        try:
            check_weights(path)
            tensors(path)
        except Exception as err:  # any failure to read back counts
            bad.append(f"{path.name} ({type(err).__name__})")
    return bad


def complete_iterations(save_dir: Path) -> int:
    return sum(1 for p in save_dir.glob(f"prune_iteration_*/{PRUNE_META}"))


# ----------------------------------------------------------------------------- stages


def checkpoint_names(save_dir: Path) -> list[str]:
    return sorted(p.name for p in save_dir.iterdir() if CHECKPOINT_DIR.match(p.name) and p.is_dir())


def prune_trials(work: Path, trials: int, rng: random.Random, flags: list[str]) -> tuple[int, int, Path]:
    """(identical resumes, clean kills) over `trials`; also returns the reference run folder.
    A trial is identical when it ends with the reference's checkpoint folders (with
    --keep_iterations, only the kept ones) and every weight tensor in them is equal."""
    reference = work / "prune_reference"
    shutil.rmtree(reference, ignore_errors=True)
    seconds = run_to_end([*PRUNE, *flags, "--save_dir", str(reference)], work / "prune_reference.log")
    kept = checkpoint_names(reference)
    print(f"prune reference: {seconds:.1f} s, {complete_iterations(reference)} iterations on disk: {kept}", flush=True)
    identical = clean = 0
    for trial in range(1, trials + 1):
        save_dir = work / f"prune_trial_{trial}"
        log = work / f"prune_trial_{trial}.log"
        log.unlink(missing_ok=True)
        killed, after = kill_at_random_moment([*PRUNE, *flags, "--save_dir", str(save_dir)], seconds, save_dir,
                                              log, rng)
        on_disk = complete_iterations(save_dir) if save_dir.exists() else 0
        bad = incomplete_final_folders(save_dir, PRUNE_META, CHECKPOINT_DIR.match) if save_dir.exists() else []
        clean += not bad
        resume = ["--resume"] if (save_dir / RUN_CONFIG).exists() else []  # as scripts/pipeline.sh does
        run_to_end([*PRUNE, *flags, "--save_dir", str(save_dir), *resume], log)
        same_folders = checkpoint_names(save_dir) == kept
        diffs = [max_difference(tensors(save_dir / name), tensors(reference / name)) for name in kept] if same_folders else []
        same = same_folders and all(d == 0.0 for d in diffs)
        identical += same
        print(f"prune trial {trial:2d}: {'killed' if killed else 'finished before the kill'} at {after:5.1f} s "
              f"({on_disk} iteration(s) complete on disk; incomplete final folders: {bad or 'none'}); "
              f"resumed{' with --resume' if resume else ' afresh'}: "
              f"{'identical' if same else f'DIFFERENT (folders {checkpoint_names(save_dir)}, max |diff| {diffs})'}", flush=True)
    return identical, clean, reference


def finetune_trials(work: Path, trials: int, rng: random.Random, pruned: Path) -> tuple[int, int]:
    reference = work / "finetune_reference" / "prune_iteration_4_ft_1ep"
    shutil.rmtree(reference.parent, ignore_errors=True)
    reference.parent.mkdir(parents=True)
    flags = [*FINETUNE_FLAGS, "--pruned_model_dir", str(pruned)]
    seconds = run_to_end([*FINETUNE, *flags, "--tuned_model_dir", str(reference)], work / "finetune_reference.log")
    print(f"finetune reference: {seconds:.1f} s", flush=True)
    identical = clean = 0
    for trial in range(1, trials + 1):
        folder = work / f"finetune_trial_{trial}"
        tuned = folder / reference.name
        log = work / f"finetune_trial_{trial}.log"
        log.unlink(missing_ok=True)
        cmd = [*FINETUNE, *flags, "--tuned_model_dir", str(tuned), "--resume"]  # the drivers always pass --resume
        killed, after = kill_at_random_moment(cmd, seconds, folder, log, rng)
        folder.mkdir(exist_ok=True)
        checkpoints = sorted(p.name for p in folder.glob(".work-*/checkpoint-*"))
        bad = incomplete_final_folders(folder, FINETUNE_META, lambda name: name == tuned.name)
        clean += not bad
        run_to_end(cmd, log)
        diff = max_difference(tensors(tuned), tensors(reference))
        same = diff == 0.0
        identical += same
        print(f"finetune trial {trial:2d}: {'killed' if killed else 'finished before the kill'} at {after:5.1f} s "
              f"(Trainer checkpoints on disk: {checkpoints or 'none'}; incomplete final folders: {bad or 'none'}); "
              f"resumed: {'identical' if same else f'DIFFERENT (max |diff| {diff})'}", flush=True)
    return identical, clean


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--work_dir", default="/tmp/mop_kill_resume")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--stages", choices=("both", "prune", "finetune"), default="both")
    p.add_argument("--keep_iterations", default="all",
                   help="passed to prune.py (e.g. 2,4: iterations 1 and 3 are deleted during the run)")
    args = p.parse_args(argv)
    prune_flags = [*PRUNE_FLAGS, "--keep_iterations", args.keep_iterations]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    # Convert the embedded model now (first use), so that it does not lengthen the timed reference.
    subprocess.run([sys.executable, "-c", f"from mop.models.loading import resolve_model_name; resolve_model_name({MODEL!r})"],
                   check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    rng = random.Random(args.seed)
    failed = False
    results = []
    if args.stages in ("both", "prune"):
        same, clean, reference = prune_trials(work, args.trials, rng, prune_flags)
        results.append(f"prune.py: {same}/{args.trials} resumed to identical weights; "
                       f"{clean}/{args.trials} kills left no incomplete final-named folder")
        failed |= same < args.trials or clean < args.trials
    else:
        reference = work / "prune_reference"
        if not (reference / "prune_iteration_4" / PRUNE_META).exists():
            run_to_end([*PRUNE, *prune_flags, "--save_dir", str(reference)], work / "prune_reference.log")
    if args.stages in ("both", "finetune"):
        same, clean = finetune_trials(work, args.trials, rng, reference / "prune_iteration_4")
        results.append(f"finetune.py: {same}/{args.trials} resumed to identical merged weights; "
                       f"{clean}/{args.trials} kills left no incomplete final-named folder")
        failed |= same < args.trials or clean < args.trials
    print("\n".join(results))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
