"""The drivers' stages as a dependency graph, run by one of three executors.

A driver (scripts/pipeline.sh, `mop_stage`) describes every stage -- its name, the path whose
existence means it is complete, its command, the stages it needs -- and hands the list to an
executor (`EXECUTOR`):

- `local` (default): one stage at a time in the order given, stopping at the first failure: the
  drivers' historical behaviour.
- `gpus`: with `GPUS=0,1,2,3`, as many stages at once as there are GPU slots (the ids taken
  `NUM_GPUS` at a time), each with `CUDA_VISIBLE_DEVICES` set to its slot. A stage starts once
  the stages it needs are complete; a failure stops its dependants only, the others go on, and
  every failure is reported at the end (exit status 1).
- `slurm`: one `sbatch` job per stage (one job array per group of alike stages: same template,
  same dependencies), `--dependency=afterok:` on the jobs of the stages it needs,
  `--kill-on-invalid-dep=yes` so that a failure cancels its dependants, `--output` to the stage's
  log. Slurm does the scheduling; nothing waits here. Stages already queued or running (found
  with `squeue` by job name) are not submitted twice. `DRY_RUN=1` prints the job scripts and the
  graph instead.

Every executor skips a stage whose done path exists (artifacts are written atomically, so an
existing one is complete): running a driver again continues where it stopped. A stage with an
empty done path (the result tables) always runs.

The plan file the drivers write is a sequence of NUL-terminated fields, per stage:
`stage`, name, done path, needed stages (space-separated), array template (`%a` stands for the
index; empty if none), `1`/`0` (needs a GPU), the argument count n, then the n arguments of the
command. NUL separation carries every command argument unchanged, with no quoting rules.

    python -m mop.run.stages PLAN --log_dir DIR [--executor local|gpus|slurm] [--gpus 0,1] [--dry_run]
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence, TextIO

from ..core.args import OneLineParser
from ..core.io import UsageError, exit_on_usage_error

EXECUTORS = ("local", "gpus", "slurm")
TAIL_LINES = 15  # lines of a failed stage's log shown on the terminal
POLL_SECONDS = 0.2
# Variables written into Slurm job scripts (when set), so that a script also runs by hand with
# the driver's settings; sbatch passes the rest of the submitting environment on by default.
JOB_ENVIRONMENT = ("PYTHONPATH", "MOP_CACHE", "HF_HOME", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
                   "EVAL_BATCH_SIZE", "EVAL_DEVICE", "EVAL_DTYPE", "EVAL_LIMIT", "OMP_NUM_THREADS",
                   "TOKENIZERS_PARALLELISM")


@dataclass(frozen=True)
class Stage:
    """One unit of work of a driver: a command whose artifact is `done`."""

    name: str
    done: str  # path whose existence means complete; "" = always run
    command: tuple[str, ...]
    after: tuple[str, ...] = ()  # stages that must be complete first
    array: str = ""  # name template shared by alike stages ("%a" = index); Slurm job arrays
    gpu: bool = True

    def complete(self) -> bool:
        return bool(self.done) and os.path.exists(self.done)

    @property
    def index(self) -> int | None:
        """The stage's index in its array template (the number `%a` stands for)."""
        if not self.array:
            return None
        pattern = re.escape(self.array).replace("%a", r"(\d+)")
        match = re.fullmatch(pattern, self.name)
        return int(match.group(1)) if match else None

    def log(self, log_dir: str | os.PathLike) -> Path:
        return Path(log_dir) / f"{self.name}.log"


# ----------------------------------------------------------------------------- the plan


def write_plan(stages: Iterable[Stage], path: str | os.PathLike) -> None:
    """The plan file format (see the module docstring); the drivers write the same with printf."""
    fields: list[str] = []
    for s in stages:
        fields += ["stage", s.name, s.done, " ".join(s.after), s.array, "1" if s.gpu else "0",
                   str(len(s.command)), *s.command]
    Path(path).write_bytes(b"".join(f.encode() + b"\0" for f in fields))


def read_plan(path: str | os.PathLike) -> list[Stage]:
    """The stages of a plan file; a missing, unreadable or malformed plan is a one-line error."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise UsageError(f"cannot read the stage plan {path}: {err.strerror}") from None
    stages, pos = [], 0
    try:
        fields = [f.decode() for f in data.split(b"\0")[:-1]] if data else []
        while pos < len(fields):
            tag, name, done, after, array, gpu, argc = fields[pos:pos + 7]
            if tag != "stage":
                raise ValueError(f"expected a stage record at field {pos}, found {tag!r}")
            pos += 7
            command = tuple(fields[pos:pos + int(argc)])
            if len(command) != int(argc):
                raise ValueError(f"stage {name!r}: the plan ends inside its command")
            pos += int(argc)
            stages.append(Stage(name, done, command, tuple(after.split()), array, gpu == "1"))
    except ValueError as err:  # UnicodeDecodeError included
        raise UsageError(f"malformed stage plan {path}: {err}") from None
    return check_plan(stages)


def plan_records(stages: Iterable[Stage]) -> bytes:
    """The plan file's bytes for `stages` (what read_plan reads back): mop.run.grid writes the
    drivers' grid with it, byte for byte what scripts/pipeline.sh's `mop_stage` writes."""
    fields = []
    for s in stages:
        fields += ["stage", s.name, s.done, " ".join(s.after), s.array, "1" if s.gpu else "0", str(len(s.command)),
                   *s.command]
    return b"".join(f.encode() + b"\0" for f in fields)


def check_plan(stages: list[Stage]) -> list[Stage]:
    """Names unique, commands present, dependencies declared before use (so the declaration
    order is a valid order to run in), array names matching their templates."""
    seen: set[str] = set()
    for s in stages:
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", s.name):
            raise UsageError(f"stage name {s.name!r}: use letters, digits and _ . + - only (it names a log file)")
        if s.name in seen:
            raise UsageError(f"stage {s.name!r} is declared twice")
        if not s.command:
            raise UsageError(f"stage {s.name!r} has no command")
        unknown = [d for d in s.after if d not in seen]
        if unknown:
            raise UsageError(f"stage {s.name!r} needs {', '.join(unknown)}, which must be declared before it")
        if s.array and s.index is None:
            raise UsageError(f"stage {s.name!r} does not match its array template {s.array!r}")
        seen.add(s.name)
    return stages


def dependants(stages: Sequence[Stage], name: str) -> set[str]:
    """Every stage that needs `name`, directly or through others."""
    found = {name}
    for s in stages:  # declaration order is topological
        if found.intersection(s.after):
            found.add(s.name)
    return found - {name}


# ----------------------------------------------------------------------------- running one stage


def start_stage(stage: Stage, log_dir: str | os.PathLike, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start the stage's command with its output (stdout and stderr) in the stage's log."""
    log = stage.log(log_dir)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        try:
            return subprocess.Popen(list(stage.command), stdout=out, stderr=subprocess.STDOUT, env=env)
        except OSError as err:  # command not found or not executable: a failed stage, not a crash
            out.write(f"cannot start {stage.command[0]!r}: {err}\n".encode())
            return subprocess.Popen([sys.executable, "-c", "raise SystemExit(127)"])


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def report_failure(stage: Stage, log_dir, code: int, err: TextIO) -> None:
    log = stage.log(log_dir)
    print(f"[FAIL] {stage.name} failed (exit status {code}); last lines of {log}:", file=err)
    print(log_tail(log), file=err, flush=True)


RERUN_HINT = "Fix the problem and run the driver again: completed stages are skipped."


# ----------------------------------------------------------------------------- local


def run_local(stages: Sequence[Stage], log_dir, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """One stage after the other in the declared order; the first failure stops the driver."""
    out, err = out or sys.stdout, err or sys.stderr
    for stage in stages:
        if stage.complete():
            print(f"[skip] {stage.name} (complete)", file=out, flush=True)
            continue
        print(f"[run ] {stage.name}  (log: {stage.log(log_dir)})", file=out, flush=True)
        began = time.monotonic()
        code = start_stage(stage, log_dir).wait()
        if code != 0:
            report_failure(stage, log_dir, code, err)
            print("Stopping. " + RERUN_HINT, file=err, flush=True)
            return 1
        print(f"[done] {stage.name} ({time.monotonic() - began:.0f} s)", file=out, flush=True)
    return 0


# ----------------------------------------------------------------------------- gpus


def gpu_slots(gpus: str, per_stage: int) -> list[str]:
    """`0,1,2,3` with 2 GPUs per stage -> ['0,1', '2,3'] (CUDA_VISIBLE_DEVICES values)."""
    ids = [g.strip() for g in gpus.split(",") if g.strip()]
    if not ids:
        raise UsageError("EXECUTOR=gpus needs the GPU ids to use, e.g. GPUS=0,1,2,3")
    if per_stage < 1 or len(ids) % per_stage:
        raise UsageError(f"GPUS={gpus} cannot be split into groups of NUM_GPUS={per_stage} GPUs per stage")
    return [",".join(ids[i:i + per_stage]) for i in range(0, len(ids), per_stage)]


@dataclass
class _Running:
    stage: Stage
    process: subprocess.Popen
    slot: str | None
    began: float


def run_gpus(stages: Sequence[Stage], log_dir, slots: Sequence[str], out: TextIO | None = None,
             err: TextIO | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the graph with one stage per GPU slot at a time (stages without a GPU run beside them).

    Ready stages start in declaration order, so a path's pruning starts before the recoveries
    of earlier paths that are still waiting for a free GPU. A failed stage stops the stages that
    need it (directly or not); the rest of the graph runs to the end.
    """
    out, err = out or sys.stdout, err or sys.stderr
    environ = dict(os.environ if environ is None else environ)
    state: dict[str, str] = {}  # name -> done | failed | stopped
    waiting = list(stages)
    free = list(slots)
    running: list[_Running] = []
    failed: list[tuple[Stage, int]] = []
    try:
        while waiting or running:
            for stage in list(waiting):
                blocked = [d for d in stage.after if state.get(d) in ("failed", "stopped")]
                if stage.complete():
                    print(f"[skip] {stage.name} (complete)", file=out, flush=True)
                    state[stage.name] = "done"
                elif blocked:
                    print(f"[stop] {stage.name} (needs {', '.join(blocked)}, which did not complete)", file=out,
                          flush=True)
                    state[stage.name] = "stopped"
                elif any(state.get(d) != "done" for d in stage.after) or (stage.gpu and not free):
                    continue
                else:
                    slot = free.pop(0) if stage.gpu else None
                    env = {**environ, "CUDA_VISIBLE_DEVICES": slot or ""}
                    where = f"on GPU {slot}" if slot else "without a GPU"
                    print(f"[run ] {stage.name} {where} at {time.strftime('%H:%M:%S')}  (log: {stage.log(log_dir)})",
                          file=out, flush=True)
                    running.append(_Running(stage, start_stage(stage, log_dir, env), slot, time.monotonic()))
                waiting.remove(stage)
            if not running:
                if waiting:  # cannot happen with a checked plan; never spin
                    raise RuntimeError(f"no stage can start: {', '.join(s.name for s in waiting)}")
                continue
            time.sleep(POLL_SECONDS)
            for job in [j for j in running if j.process.poll() is not None]:
                running.remove(job)
                if job.slot is not None:
                    free.append(job.slot)
                    free.sort(key=slots.index)
                code = job.process.returncode
                if code == 0:
                    state[job.stage.name] = "done"
                    print(f"[done] {job.stage.name} at {time.strftime('%H:%M:%S')} ({time.monotonic() - job.began:.0f} s)",
                          file=out, flush=True)
                else:
                    state[job.stage.name] = "failed"
                    failed.append((job.stage, code))
                    print(f"[FAIL] {job.stage.name} (exit status {code}; log: {job.stage.log(log_dir)})", file=out,
                          flush=True)
    finally:
        for job in running:  # interrupted (Ctrl-C): no orphans keep the GPUs busy
            job.process.terminate()
            job.process.wait()
    if not failed:
        return 0
    stopped = [s.name for s in stages if state.get(s.name) == "stopped"]
    print(f"{len(failed)} stage(s) failed:", file=err)
    for stage, code in failed:
        report_failure(stage, log_dir, code, err)
    if stopped:
        print(f"Not run because a stage they need failed: {', '.join(stopped)}", file=err)
    print(RERUN_HINT, file=err, flush=True)
    return 1


# ----------------------------------------------------------------------------- slurm


@dataclass
class SlurmSettings:
    """sbatch options from the environment (SLURM_PARTITION, SLURM_ACCOUNT, SLURM_TIME,
    SLURM_GPUS_PER_JOB, SLURM_EXTRA, SLURM_JOB_PREFIX)."""

    partition: str = ""
    account: str = ""
    time: str = ""
    gpus_per_job: int = 1
    extra: tuple[str, ...] = ()  # further #SBATCH options, e.g. --mem=64G
    job_prefix: str = ""  # job names are <prefix>.<stage>; default from the log folder

    @classmethod
    def from_env(cls, env: Mapping[str, str], gpus_per_job: int, log_dir) -> "SlurmSettings":
        gpus = env.get("SLURM_GPUS_PER_JOB") or str(gpus_per_job)
        if not gpus.isdigit():
            raise UsageError(f"SLURM_GPUS_PER_JOB must be a whole number, got {gpus!r}")
        extra = [line.strip() for line in re.split(r"[\n;]", env.get("SLURM_EXTRA", "")) if line.strip()]
        extra = [line.removeprefix("#SBATCH").strip() for line in extra]
        bad = [line for line in extra if not line.startswith("-")]
        if bad:
            raise UsageError(f"SLURM_EXTRA holds sbatch options (--mem=64G; --cpus-per-task=8), not {bad[0]!r}")
        digest = hashlib.sha1(str(Path(log_dir).resolve()).encode()).hexdigest()[:8]
        return cls(env.get("SLURM_PARTITION", ""), env.get("SLURM_ACCOUNT", ""), env.get("SLURM_TIME", ""),
                   int(gpus), tuple(extra), env.get("SLURM_JOB_PREFIX") or f"mop-{digest}")


@dataclass
class SlurmJob:
    """One sbatch submission: a single stage, or the alike stages of one array."""

    stages: list[Stage]
    needs: list[str] = field(default_factory=list)  # names of the stages it waits for

    @property
    def array(self) -> str:
        return self.stages[0].array

    @property
    def label(self) -> str:
        """The stage name, or the template with its indices: run_seed_1_it[4,8]_finetune."""
        if not self.array:
            return self.stages[0].name
        return self.array.replace("%a", "[" + ",".join(str(s.index) for s in self.stages) + "]")

    def job_name(self, prefix: str) -> str:
        return f"{prefix}.{self.array.replace('%a', '[]') if self.array else self.stages[0].name}"


def plan_jobs(pending: Sequence[Stage]) -> list[SlurmJob]:
    """Group the stages to submit: stages sharing an array template and their dependencies
    become one job array; a job comes after every job it depends on."""
    groups: dict[tuple, SlurmJob] = {}
    for stage in pending:
        key = (stage.array, stage.after) if stage.array else (stage.name,)
        groups.setdefault(key, SlurmJob([]))
        groups[key].stages.append(stage)
    jobs = list(groups.values())
    for job in jobs:
        job.needs = list(dict.fromkeys(d for s in job.stages for d in s.after))
    # Submission order: a job after those it needs (a job array waits for its last member's needs).
    owner = {s.name: job for job in jobs for s in job.stages}
    ordered: list[SlurmJob] = []
    placed: set[int] = set()
    while len(ordered) < len(jobs):
        progress = False
        for job in jobs:
            if id(job) in placed:
                continue
            if all(id(owner[d]) in placed for d in job.needs if d in owner):
                ordered.append(job)
                placed.add(id(job))
                progress = True
        if not progress:
            raise UsageError("the stage graph has a cycle through a job array")
    return ordered


def _slurm_pattern(text: str) -> str:
    """A literal for sbatch's filename patterns (% introduces a replacement symbol)."""
    return text.replace("%", "%%")


def job_script(job: SlurmJob, dependencies: Sequence[str], settings: SlurmSettings, log_dir, workdir: str,
               env: Mapping[str, str]) -> str:
    """The sbatch script of a job: #SBATCH header, the driver's environment, the stage command(s)."""
    log_dir = Path(log_dir).resolve()
    if job.array:
        output = _slurm_pattern(str(log_dir) + "/") + _slurm_pattern(job.array).replace("%%a", "%a") + ".log"
    else:
        output = _slurm_pattern(str(job.stages[0].log(log_dir)))
    header = [f"--job-name={job.job_name(settings.job_prefix)}", f"--output={output}"]
    if job.array:
        header.append("--array=" + ",".join(str(s.index) for s in job.stages))
    if dependencies:
        header += ["--dependency=afterok:" + ":".join(dependencies), "--kill-on-invalid-dep=yes"]
    for option, value in (("partition", settings.partition), ("account", settings.account), ("time", settings.time)):
        if value:
            header.append(f"--{option}={value}")
    if any(s.gpu for s in job.stages) and settings.gpus_per_job > 0:
        header.append(f"--gres=gpu:{settings.gpus_per_job}")
    header += settings.extra
    lines = ["#!/bin/bash", *(f"#SBATCH {h}" for h in header)]
    lines.append(f"# MoP stage{'s' if job.array else ''} {job.label}, written by mop.run.stages. By hand: "
                 + ("SLURM_ARRAY_TASK_ID=<index> " if job.array else "") + "bash <this file>")
    lines += ["set -euo pipefail", f"cd {shlex.quote(workdir)}"]
    lines += [f"export {k}={shlex.quote(env[k])}" for k in JOB_ENVIRONMENT if k in env]
    if job.array:
        lines.append('case "${SLURM_ARRAY_TASK_ID:?this job script is an array: set SLURM_ARRAY_TASK_ID}" in')
        for s in job.stages:
            lines.append(f"    {s.index}) {_stage_lines(s, '; ')} ;;")
        lines.append('    *) echo "no stage with index $SLURM_ARRAY_TASK_ID in this array" >&2; exit 2 ;;')
        lines.append("esac")
    else:
        lines.append(_stage_lines(job.stages[0], "\n"))
    return "\n".join(lines) + "\n"


def _stage_lines(stage: Stage, sep: str) -> str:
    """Skip when complete (a resubmitted or hand-run job), else the stage command itself."""
    run = "exec " + shlex.join(stage.command)
    if not stage.done:
        return run
    done = shlex.quote(stage.done)
    return f"if [[ -e {done} ]]; then echo {shlex.quote(f'[skip] {stage.name} (complete)')}; exit 0; fi{sep}{run}"


def queued_jobs(squeue: Callable[[], str]) -> dict[tuple[str, int | None], str]:
    """(job name, array index or None) -> job id of this user's pending and running jobs."""
    jobs = {}
    for line in squeue().splitlines():
        if "|" not in line:
            continue
        job_id, name = line.strip().split("|", 1)
        base, _, task = job_id.partition("_")
        if task.isdigit():
            jobs[(name, int(task))] = job_id
        elif base.isdigit() and not task:
            jobs[(name, None)] = job_id
    return jobs


def run_squeue() -> str:
    user = os.environ.get("USER") or getpass.getuser()
    result = subprocess.run(["squeue", "--noheader", "--array", f"--user={user}", "--format=%i|%j"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise UsageError(f"squeue failed: {' '.join(result.stderr.split()) or result.returncode}")
    return result.stdout


def run_sbatch(script: Path) -> str:
    result = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True)
    job_id = result.stdout.strip().split(";")[0]
    if result.returncode != 0 or not job_id.isdigit():
        raise UsageError(f"sbatch {script} failed: {' '.join((result.stderr or result.stdout).split())}")
    return job_id


def submit_slurm(stages: Sequence[Stage], log_dir, settings: SlurmSettings, dry_run: bool = False,
                 out: TextIO | None = None, sbatch: Callable[[Path], str] = run_sbatch,
                 squeue: Callable[[], str] = run_squeue, env: Mapping[str, str] | None = None,
                 workdir: str | None = None) -> int:
    """Submit every incomplete stage as a Slurm job (see the module docstring).

    Complete stages are skipped and give no dependency; stages whose job is already queued or
    running (same job name, and array index) keep that job. The job scripts are kept in
    `<log_dir>/slurm/` (they also run by hand, in submission order). With `dry_run` nothing is
    queried, written or submitted: the scripts and the graph are printed.
    """
    out = out or sys.stdout
    if not (dry_run or shutil.which("sbatch")) and sbatch is run_sbatch:
        raise UsageError("EXECUTOR=slurm needs sbatch on PATH (DRY_RUN=1 prints the jobs without it)")
    env = dict(os.environ if env is None else env)
    workdir = workdir or os.getcwd()
    queued = {} if dry_run else queued_jobs(squeue)
    job_of: dict[str, str] = {}  # stage name -> job id to depend on ("" = complete)
    pending = []
    for stage in stages:
        if stage.complete():
            job_of[stage.name] = ""
            print(f"[skip] {stage.name} (complete)", file=out)
            continue
        key = (SlurmJob([stage]).job_name(settings.job_prefix), stage.index)
        if stage.done and key in queued:  # always-run stages (tables) are resubmitted
            job_of[stage.name] = queued[key]
            print(f"[wait] {stage.name} (already queued as job {queued[key]})", file=out)
            continue
        pending.append(stage)
    script_dir = Path(log_dir) / "slurm"
    graph = []
    arrays: dict[str, set[str]] = {}  # array job id -> names of its stages
    for job in plan_jobs(pending):
        dependencies = job_dependencies(job.needs, job_of, arrays)
        script = job_script(job, dependencies, settings, log_dir, workdir, env)
        if dry_run:
            job_id = f"<{job.label}>"
            print(f"# ---- job {job_id} ----\n{script}", file=out)
        else:
            script_dir.mkdir(parents=True, exist_ok=True)
            path = script_dir / f"{job.label}.sbatch"
            path.write_text(script)
            job_id = sbatch(path)
            print(f"[sbat] {job.label}: job {job_id}" + (f" after {' '.join(dependencies)}" if dependencies else ""),
                  file=out, flush=True)
        for s in job.stages:
            job_of[s.name] = f"{job_id}_{s.index}" if job.array else job_id
        if job.array:
            arrays[job_id] = {s.name for s in job.stages}
        graph.append((job, job_id, dependencies))
    print_slurm_graph(graph, out)
    if not dry_run and graph:
        print(f"Submitted {len(graph)} job(s); logs in {log_dir}, job scripts in {script_dir}. Run the driver "
              "again after a failure: complete stages are skipped, queued ones kept.", file=out)
    return 0


def job_dependencies(needs: Sequence[str], job_of: Mapping[str, str], arrays: Mapping[str, set[str]]) -> list[str]:
    """Job ids to wait for: complete stages give none; a job that needs every task of a job
    array waits for the array as a whole (`afterok:<array id>`), otherwise for single tasks."""
    ids = []
    for name in needs:
        job_id = job_of.get(name, "")
        array_id = job_id.rsplit("_", 1)[0] if job_id.rsplit("_", 1)[0] in arrays else ""
        if array_id and arrays[array_id] <= set(needs):
            job_id = array_id
        if job_id and job_id not in ids:
            ids.append(job_id)
    return ids


def print_slurm_graph(graph, out: TextIO) -> None:
    print(f"dependency graph ({len(graph)} job(s) to submit):", file=out)
    for job, job_id, dependencies in graph:
        needs = ", ".join(job.needs) if job.needs else "-"
        print(f"  {job_id:>12}  {job.label}  <- {needs}" + (f"  [afterok:{':'.join(dependencies)}]"
                                                             if dependencies else ""), file=out)


# ----------------------------------------------------------------------------- command line


def print_plan(stages: Sequence[Stage], out: TextIO | None = None) -> None:
    """The graph as a list: what would run, what is complete, what each stage needs."""
    out = out or sys.stdout
    for s in stages:
        status = "complete" if s.complete() else "to run"
        print(f"  {s.name:<40} {status:<9} <- {', '.join(s.after) or '-'}", file=out)


def run_plan(stages: Sequence[Stage], executor: str, log_dir, gpus: str = "", gpus_per_stage: int = 1,
             dry_run: bool = False, env: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    if executor not in EXECUTORS:
        raise UsageError(f"EXECUTOR={executor!r}: choose one of {', '.join(EXECUTORS)}")
    if executor == "slurm":
        settings = SlurmSettings.from_env(env, gpus_per_stage, log_dir)
        return submit_slurm(stages, log_dir, settings, dry_run=dry_run, env=env)
    slots = gpu_slots(gpus, gpus_per_stage) if executor == "gpus" else []
    if dry_run:
        print(f"stage graph ({executor} executor{', GPU slots ' + ' '.join(slots) if slots else ''}):")
        print_plan(stages)
        return 0
    if executor == "gpus":
        return run_gpus(stages, log_dir, slots, environ=env)
    return run_local(stages, log_dir)


def main(argv: Sequence[str] | None = None) -> int:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("plan", help="stage plan written by scripts/pipeline.sh")
    p.add_argument("--log_dir", required=True, help="one <stage>.log per stage")
    p.add_argument("--executor", default="local", help="local | gpus | slurm")
    p.add_argument("--gpus", default="", help="gpus executor: GPU ids, e.g. 0,1,2,3")
    p.add_argument("--gpus_per_stage", type=int, default=1, help="GPUs one stage uses (the drivers' NUM_GPUS)")
    p.add_argument("--dry_run", action="store_true", help="print the graph (slurm: and the job scripts); run nothing")
    args = p.parse_args(argv)

    @exit_on_usage_error
    def run():
        return run_plan(read_plan(args.plan), args.executor, args.log_dir, args.gpus, args.gpus_per_stage,
                        args.dry_run)

    return run()


if __name__ == "__main__":
    sys.exit(main())
