"""Instruction data in Alpaca format: loading, and the two prompt formats MoP uses.

Calibration (importance scores) uses the published short format
`Instruction: ...\nInput: ...\nResponse:`; recovery fine-tuning uses the standard Alpaca
template. Data come from a local JSON/JSONL file or a hub dataset id (yahma/alpaca-cleaned).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.io import UsageError, one_line, read_json_list
from .embedded import EMBEDDED_NAMES

ASSETS = Path(__file__).resolve().parents[1] / "assets"
EMBEDDED_INSTRUCTIONS = ASSETS / "instructions.json"
HUB_ALPACA = "yahma/alpaca-cleaned"
FIELDS = ("instruction", "input", "output")

ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)


def resolve_data_source(source: str, model_name: str) -> str:
    """`auto`: the shipped instruction set for embedded models, yahma/alpaca-cleaned otherwise."""
    if source != "auto":
        return source
    return str(EMBEDDED_INSTRUCTIONS) if model_name in EMBEDDED_NAMES else HUB_ALPACA


def _looks_like_path(source: str) -> bool:
    """Hub ids look like `owner/name`; anything else with a suffix or a leading ./ or / is a file."""
    return source.endswith((".json", ".jsonl")) or source.startswith((".", "/", "~"))


def _validate(records: list, source: str) -> list[dict]:
    if not records:
        raise UsageError(f"no records in {source}")
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or not isinstance(rec.get("instruction"), str):
            raise UsageError(f"record {i} of {source} has no 'instruction' string")
    return [{k: str(rec.get(k) or "") for k in FIELDS} for rec in records]


def load_alpaca_records(source: str | os.PathLike, limit: int | None = None) -> list[dict]:
    """Records from a local Alpaca-format file, or from a hub dataset's train split."""
    source = str(source)
    path = Path(source)
    if path.exists():
        records = read_json_list(path, "Alpaca records")
    elif _looks_like_path(source):
        raise UsageError(f"data file not found: {source}")
    else:
        from datasets import load_dataset

        try:
            records = list(load_dataset(source, split="train"))
        except Exception as err:  # hub offline, unknown id, ...
            raise UsageError(f"cannot load dataset {source!r}: {one_line(err)}") from None
    records = _validate(records, source)
    return records[:limit] if limit else records


def report_shortfall(flag: str, asked: int | None, used: int, source) -> None:
    """One line when a count flag asked for more items than its data holds, so a run that used
    fewer than requested says so (the scores then rest on `used` prompts)."""
    if asked is not None and used < asked:
        print(f"{flag} {asked}: {source} holds {used}, all of them used", flush=True)


def calibration_prompt(rec: dict) -> str:
    """The published calibration format; the Input line only when the input is non-empty."""
    text = f"Instruction: {rec['instruction']}\n"
    if rec.get("input"):
        text += f"Input: {rec['input']}\n"
    return text + "Response:"


def alpaca_prompt(rec: dict) -> str:
    """The standard Alpaca prompt (everything before the response)."""
    template = ALPACA_WITH_INPUT if rec.get("input") else ALPACA_NO_INPUT
    return template.format(instruction=rec["instruction"], input=rec.get("input", ""))
