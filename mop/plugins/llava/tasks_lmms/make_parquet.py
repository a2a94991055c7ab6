#!/usr/bin/env python
"""Write the lmms-eval task mop_shapes_lmms's local dataset (deterministic, no network).

lmms-eval loads every task through `datasets.load_dataset`, so the shipped shape questions
(mop/plugins/llava/tasks_vision/data: shapes.jsonl + PNGs) become one parquet file that carries the image
bytes, readable with `load_dataset("parquet", data_files=...)` and no other file:

  data/mop_shapes_test.parquet   columns id, image (datasets Image: PNG bytes), question,
                                 answer, kind; one row per line of shapes.jsonl, in its order

Llava/eval.sh (mop/plugins/llava/lmms.py) calls `ensure_parquet` before every lmms-eval run, so the file
never needs committing; it is rewritten only when its bytes would change.

Usage:  python mop/plugins/llava/tasks_lmms/make_parquet.py [--check]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHAPES = HERE.parent / "tasks_vision" / "data"
PARQUET = HERE / "data" / "mop_shapes_test.parquet"


def shapes_rows(source: Path = SHAPES) -> list[dict]:
    """The shipped questions with their pictures' bytes inlined (the parquet holds no paths)."""
    rows = []
    lines = (source / "shapes.jsonl").read_text().splitlines()
    for i, line in enumerate(line for line in lines if line.strip()):
        entry = json.loads(line)
        image = source / entry["image"]
        rows.append({"id": i, "image": {"bytes": image.read_bytes(), "path": Path(entry["image"]).name},
                     "question": entry["question"], "answer": entry["answer"], "kind": entry["kind"]})
    return rows


def parquet_bytes(rows: list[dict]) -> bytes:
    """Rows as a parquet file with datasets' feature metadata, so `image` loads as a PIL image."""
    import datasets  # heavy: imported on use

    features = datasets.Features({"id": datasets.Value("int32"), "image": datasets.Image(),
                                  "question": datasets.Value("string"), "answer": datasets.Value("string"),
                                  "kind": datasets.Value("string")})
    buffer = io.BytesIO()
    datasets.Dataset.from_list(rows, features=features).to_parquet(buffer)
    return buffer.getvalue()


def ensure_parquet(target: Path = PARQUET, source: Path = SHAPES) -> bool:
    """Write the parquet file when it is missing or stale; True when it was (re)written.

    Written to a temporary sibling and renamed, so a concurrent lmms-eval run never reads half a file.
    """
    content = parquet_bytes(shapes_rows(source))
    if target.is_file() and target.read_bytes() == content:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is missing or stale, write nothing")
    args = parser.parse_args()
    if args.check:
        fresh = PARQUET.is_file() and PARQUET.read_bytes() == parquet_bytes(shapes_rows())
        print(f"{PARQUET}: {'up to date' if fresh else 'missing or out of date'}")
        return 0 if fresh else 1
    written = ensure_parquet()
    print(f"{PARQUET}: {'written' if written else 'already up to date'} ({len(shapes_rows())} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
