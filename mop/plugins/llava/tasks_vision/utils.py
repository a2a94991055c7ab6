"""Loading and scoring for the `mop_shapes` image question task (see shapes.yaml)."""

from __future__ import annotations

import json
import re
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
QUESTIONS = DATA / "shapes.jsonl"


def load_shapes(**kwargs):
    """The shipped questions as a DatasetDict with one `test` split.

    Image paths stay strings relative to data/; lm_eval passes task metadata as kwargs, unused.
    """
    import datasets

    rows = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def doc_to_image(doc) -> list:
    """The document's picture as an RGB PIL image (hf-multimodal expects a list per document)."""
    from PIL import Image

    with Image.open(DATA / doc["image"]) as img:
        return [img.convert("RGB")]


def first_word(text: str) -> str:
    """Lower-cased first word of a generation, punctuation dropped ("Red." -> "red")."""
    words = re.findall(r"[a-z]+", text.lower())
    return words[0] if words else ""


def process_results(doc, results) -> dict:
    """Exact match of the answer's first word against the one-word target."""
    return {"acc": float(first_word(results[0]) == doc["answer"])}
