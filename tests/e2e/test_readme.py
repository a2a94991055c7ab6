"""README.md and docs/*.md against the code: every flag they name exists in an entry point's
parser, the defaults the settings tables state are the parsers' defaults, the files they name are
the ones the code writes, and their relative links lead to files that exist. The README itself
stays short (at most 300 lines) and names no tickets. The parsers are taken from the entry points
themselves (their `parse_args` is intercepted), so nothing here copies a flag list or a default
by hand."""

import argparse
import re
import sys

import pytest
from conftest import REPO

from mop.core import layout
from mop.evaluate import tables
from mop.run.setup_checks import script_parser

# The documentation a user reads: the README and every page under docs/, by path from the repository root.
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
TEXTS = {path.relative_to(REPO).as_posix(): path.read_text() for path in DOC_FILES}
README = TEXTS["README.md"]
ALL_TEXT = "\n".join(TEXTS.values())
README_MAX_LINES = 300

# Entry points a documented command can name: the per-model scripts (run as __main__) and the modules.
SCRIPTS = ["Llama2/prune.py", "Llama2/finetune.py", "Llama3/prune.py", "Llama3/finetune.py", "Llava/prune.py",
           "Llava/finetune.py", "Custom/prune.py", "Custom/finetune.py", "benchmarks/gpu_check.py",
           "benchmarks/check_candidates.py", "benchmarks/bench_objectives.py", "benchmarks/bench_finetune.py",
           "tools/check_gguf.py", "benchmarks/bench_speedup.py"]
MODULES = ["mop.evaluate", "mop.recover.memory", "mop.evaluate.tables", "mop.evaluate.latency", "mop.run.stages",
           "mop.plugins.llava", "mop.recover.teacher_cache", "mop.deploy.compare"]
# Flags of other programs the documentation quotes: sbatch, accelerate, pip, lm_eval / lmms-eval, llama.cpp's converter.
FOREIGN_FLAGS = {"--dependency", "--kill-on-invalid-dep", "--gres", "--output", "--mem", "--cpus-per-task",  # sbatch
                 "--config_file", "--num_processes",  # accelerate launch
                 "--no-deps", "--no-binary",  # pip
                 "--output_path", "--model_args", "--reasoning_tags", "--log_samples",  # lm_eval / lmms-eval
                 "--outtype",  # convert_hf_to_gguf.py
                 "--help"}
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9_-]*)")
# A settings-table row: `| <stage or nothing> | <label> | <default> | <flag> |`.
SETTINGS_STAGES = r"(?:pruning|recovery|scoring)?"
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")


def parser_of(entry: str) -> argparse.ArgumentParser:
    """The parser an entry point builds, caught at its parse_args call (as the drivers' setup check
    catches it to parse PRUNE_ARGS / FT_ARGS / TABLE_ARGS)."""
    parser = script_parser(str(REPO / entry) if entry.endswith(".py") else entry)
    assert parser is not None, f"{entry} never parsed its arguments"
    return parser


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every option of a parser and of its sub-commands."""
    found = set()
    for action in parser._actions:
        found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= option_strings(sub)
    return found


@pytest.fixture(scope="module")
def parsers():
    return {entry: parser_of(entry) for entry in SCRIPTS + MODULES}


def defaults(parser: argparse.ArgumentParser) -> dict:
    return {a.dest: a.default for a in parser._actions if a.dest != "help"}


def test_the_documentation_is_there():
    assert len(TEXTS) > 1, "no docs/*.md beside the README"


def test_every_flag_the_documentation_names_exists(parsers):
    known = set().union(*(option_strings(p) for p in parsers.values()))
    unknown = {name: sorted(set(FLAG.findall(text)) - known - FOREIGN_FLAGS) for name, text in TEXTS.items()}
    assert {name: flags for name, flags in unknown.items() if flags} == {}
    named = set(FLAG.findall(ALL_TEXT))
    assert "--learning_rate" in named and "--depth_rule" in named  # the pattern does find flags


def settings_row(label: str) -> str:
    """The text of the settings-table row `| <stage> | <label> | ... |`, wherever the documentation
    keeps it: exactly one such row, so two tables cannot state two defaults."""
    pattern = re.compile(rf"^\|\s*{SETTINGS_STAGES}\s*\|\s*{re.escape(label)}\s*\|([^|\n]*)\|", re.M)
    found = [(name, match.group(1)) for name, text in TEXTS.items() for match in pattern.finditer(text)]
    assert len(found) == 1, f"settings row {label!r} found {len(found)} times: {[name for name, _ in found]}"
    return found[0][1]


def test_stated_recovery_defaults_are_the_scripts_defaults(parsers):
    lora = re.search(r"r=(\d+), alpha=(\d+), dropout ([\d.]+)", settings_row("LoRA"))
    optimiser = re.search(r"lr ([\de.-]+), effective batch (\d+).*max length (\d+), (\d+) epochs", settings_row("optimiser"))
    budget = re.search(r"drivers: (\d+) GB", settings_row("memory budget"))
    assert lora and optimiser and budget
    for script in ("Llama2/finetune.py", "Llama3/finetune.py"):
        d = defaults(parsers[script])
        assert (d["lora_r"], d["lora_alpha"], d["lora_dropout"]) == (int(lora[1]), int(lora[2]), float(lora[3]))
        assert d["learning_rate"] == float(optimiser[1]) and d["batch_size"] * d["grad_accum"] == int(optimiser[2])
        assert (d["max_length"], d["num_epochs"]) == (int(optimiser[3]), float(optimiser[4]))
    llava = re.search(r"LLaVA: r=(\d+), alpha=(\d+)", settings_row("LoRA"))
    d = defaults(parsers["Llava/finetune.py"])
    assert llava and (d["lora_r"], d["lora_alpha"]) == (int(llava[1]), int(llava[2]))
    assert defaults(parsers["mop.recover.memory"])["max_memory_gb"] == float(budget[1])


def test_stated_pruning_defaults_are_the_scripts_defaults(parsers):
    depth = re.search(r"^(\w+)", settings_row("depth rule").strip())[1]
    budget = re.search(r"^(\w+)", settings_row("budget rule").strip())[1]
    align = re.search(r"^(\d+)", settings_row("MLP width alignment").strip())[1]
    prompts = re.search(r"(\d+) prompts of", settings_row("calibration"))[1]
    for script in ("Llama2/prune.py", "Llama3/prune.py", "Llava/prune.py"):
        d = defaults(parsers[script])
        assert (d["depth_rule"], d["budget_rule"], d["align"]) == (depth, budget, int(align)), script
        assert d["num_calibration_prompts"] == int(prompts), script
    assert defaults(parsers["Llama3/prune.py"])["mlp_only"] and not defaults(parsers["Llama2/prune.py"])["mlp_only"]
    assert "Llama-3: MLP only" in settings_row("width mode")


def test_files_the_documentation_names_are_the_ones_the_code_writes():
    written = {value for name, value in vars(layout).items() if name.isupper() and isinstance(value, str)}
    written |= set(tables.OUTPUT_NAMES)
    named = set(re.findall(r"\b[a-z][a-z0-9_]*\.(?:json|csv|md|tex|png|safetensors)\b", ALL_TEXT))
    metadata = {n for n in named if n.startswith(("mop_", "run_", "results_", "pruning_", "path_", "loss_", "lm_eval_"))}
    assert metadata and metadata - written == set()
    assert "accuracy_vs_compression.png" not in ALL_TEXT


def test_stated_stage_count_of_the_gpus_check_is_what_the_driver_declares(tmp_path):
    """'... 4 iterations and iterations 2 and 4 recovered ..., N stages' (the executor comparison)."""
    import os
    import subprocess

    stated = re.search(r"with 4 iterations and\s+iterations 2 and 4 recovered.*?, (\d+) stages", ALL_TEXT, re.S)
    assert stated
    env = {"PATH": os.environ["PATH"], "PYTHON": sys.executable, "EMBEDDED": "1", "EMBEDDED_ITERATIONS": "4",
           "EMBEDDED_FT_ITERATIONS": "2 4", "DRY_RUN": "1", "RESULTS_DIR": str(tmp_path / "r"), "TMPDIR": str(tmp_path)}
    proc = subprocess.run(["bash", str(REPO / "Llama2" / "run_extremes_llama2.sh")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(re.findall(r"^\s+\S+\s+(?:to run|complete)\s", proc.stdout, re.M)) == int(stated[1])


def test_the_readme_is_short():
    assert len(README.splitlines()) <= README_MAX_LINES


def test_relative_links_lead_to_files_that_exist():
    """Every link that is not a URL or an anchor of the same page names a file or folder, relative
    to the page it is on (an anchor after it is not checked)."""
    checked, broken = 0, []
    for name, text in TEXTS.items():
        for target in LINK.findall(text):
            if target.startswith("#") or re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue
            checked += 1
            if not (REPO / name).parent.joinpath(target.split("#", 1)[0]).exists():
                broken.append(f"{name}: {target}")
    assert broken == []
    assert checked  # the pattern does find links


def test_the_readme_names_no_tickets():
    """The README speaks to users: no issue numbers, no pull requests."""
    assert re.findall(r"\bissue \d+\b", README, re.I) == []
    assert "pull request" not in README.lower()
