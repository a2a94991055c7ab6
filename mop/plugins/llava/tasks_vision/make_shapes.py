#!/usr/bin/env python
"""Generate the shipped shape/colour image questions (deterministic, no network).

Writes next to this file
  data/images/<colour>_<shape>.png   4 colours x 3 shapes, 64x64 synthetic pictures
  data/shapes.jsonl                  2 questions per image (its colour, its shape) with
                                     one-word answers

The same file serves as the example for `Llava/prune.py --calibration_images` (which reads
"image" and "question") and as the data of the lm_eval task `mop_shapes` (shapes.yaml).
Rerunning reproduces the files; `--check` only verifies that they are up to date.

Usage:  python mop/plugins/llava/tasks_vision/make_shapes.py [--check]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
SIZE = 64
BACKGROUND = (255, 255, 255)
COLOURS = {"red": (220, 30, 30), "green": (30, 160, 50), "blue": (30, 60, 220), "yellow": (240, 200, 20)}
SHAPES = ("circle", "square", "triangle")
QUESTIONS = {
    "colour": "What colour is the shape in the picture? Answer with one word.",
    "shape": "Which shape is in the picture: circle, square or triangle? Answer with one word.",
}


def draw_shape(shape: str, colour: tuple[int, int, int]) -> Image.Image:
    """One filled shape centred on a white 64x64 canvas."""
    img = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    draw = ImageDraw.Draw(img)
    lo, hi = 12, SIZE - 12
    if shape == "circle":
        draw.ellipse((lo, lo, hi, hi), fill=colour)
    elif shape == "square":
        draw.rectangle((lo, lo, hi, hi), fill=colour)
    else:
        draw.polygon([(SIZE // 2, lo), (hi, hi), (lo, hi)], fill=colour)
    return img


def png_bytes(img: Image.Image) -> bytes:
    """A small palette PNG (few colours), so the shipped set stays a few KB."""
    buf = io.BytesIO()
    img.convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def build() -> dict[Path, bytes]:
    """Every file of the set, path -> content."""
    files, rows = {}, []
    for colour, rgb in COLOURS.items():
        for shape in SHAPES:
            rel = f"images/{colour}_{shape}.png"
            files[DATA / rel] = png_bytes(draw_shape(shape, rgb))
            rows.append({"image": rel, "question": QUESTIONS["colour"], "answer": colour, "kind": "colour"})
            rows.append({"image": rel, "question": QUESTIONS["shape"], "answer": shape, "kind": "shape"})
    files[DATA / "shapes.jsonl"] = "".join(json.dumps(r) + "\n" for r in rows).encode()
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the files instead of writing them")
    args = parser.parse_args()
    files = build()
    if args.check:
        stale = [str(p) for p, content in files.items() if not p.is_file() or p.read_bytes() != content]
        if stale:
            print(f"out of date: {', '.join(stale)}", file=sys.stderr)
            return 1
        print(f"{len(files)} files up to date")
        return 0
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    print(f"wrote {len(files)} files under {DATA} ({sum(map(len, files.values()))} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
