"""Run the job scripts recorded by the fake sbatch by hand, as Slurm would.

Jobs run in submission order (a job is only ever submitted after the jobs it depends on), each
array task with its SLURM_ARRAY_TASK_ID, stdout and stderr to the job's --output pattern. A job
whose afterok dependency failed is not run (--kill-on-invalid-dep), nor are its dependants.

    python tests/fake_slurm/run_recorded.py FAKE_SLURM_DIR
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RecordedJob:
    job_id: str
    path: Path
    name: str
    output: str
    array: list[int] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)

    def task_ids(self) -> list[str]:
        return [f"{self.job_id}_{i}" for i in self.array] if self.array else [self.job_id]


def sbatch_option(text: str, option: str) -> str | None:
    match = re.search(rf"^#SBATCH --{option}=(.*)$", text, re.M)
    return match.group(1).strip() if match else None


def recorded_jobs(fake_dir: str | os.PathLike) -> list[RecordedJob]:
    jobs = []
    for path in sorted(Path(fake_dir, "jobs").glob("*.sbatch"), key=lambda p: int(p.stem)):
        text = path.read_text()
        dependency = sbatch_option(text, "dependency")
        array = sbatch_option(text, "array")
        jobs.append(RecordedJob(
            job_id=path.stem, path=path, name=sbatch_option(text, "job-name"), output=sbatch_option(text, "output"),
            array=[int(i) for i in array.split(",")] if array else [],
            dependencies=dependency.removeprefix("afterok:").split(":") if dependency else [],
        ))
    return jobs


def satisfied(dependency: str, status: dict[str, int]) -> bool:
    """afterok on a job array id waits for all its tasks; on `<id>_<i>` for that task only."""
    tasks = [code for task, code in status.items() if task == dependency or task.startswith(dependency + "_")]
    return bool(tasks) and all(code == 0 for code in tasks)


def run_recorded(fake_dir: str | os.PathLike, env: dict | None = None) -> dict[str, int]:
    """Task id -> exit status (None: not run because a dependency failed)."""
    status: dict[str, int | None] = {}
    for job in recorded_jobs(fake_dir):
        ok = all(satisfied(d, status) for d in job.dependencies)
        for index, task in zip(job.array or [None], job.task_ids()):
            if not ok:
                status[task] = None
                continue
            task_env = dict(os.environ if env is None else env)
            output = job.output.replace("%%", "\0")
            if index is not None:
                task_env["SLURM_ARRAY_TASK_ID"] = str(index)
                output = output.replace("%a", str(index))
            output = output.replace("\0", "%")
            with open(output, "w") as log:
                status[task] = subprocess.run(["bash", str(job.path)], stdout=log, stderr=subprocess.STDOUT,
                                              env=task_env).returncode
    return status


if __name__ == "__main__":
    result = run_recorded(sys.argv[1])
    for task, code in result.items():
        print(f"{task}: {'not run' if code is None else f'exit {code}'}")
    sys.exit(0 if all(code == 0 for code in result.values()) else 1)
