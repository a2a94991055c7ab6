"""Dense and pruned, side by side, from the command line (the comparison itself: comparison.py).

    python -m mop.deploy.compare --models smollm2-135m \\
        Llama3/results_llama3_embedded/run_seed_1_block_influence/8/ft --prompt "Why is the sky blue?"

`--web` serves the same page in a browser (compare_web.py), `--backend llamacpp` runs GGUF
conversions in llama.cpp (compare_llamacpp.py); `--prompts FILE` adds a Markdown summary.
"""

from __future__ import annotations

import argparse

from ..core.args import OneLineParser
from ..core.io import exit_on_usage_error
from .compare_llamacpp import compare_gguf
from .compare_web import serve
from .comparison import DEFAULT_PROMPTS, compare, plan_comparison, publish, report
from .gguf import OUTTYPES as GGUF_TYPES


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", required=True, help="the dense model first, then the pruned ones")
    p.add_argument("--prompt", help=f"one prompt (default: {DEFAULT_PROMPTS[0]!r})")
    p.add_argument("--prompts", help="a .txt file (one prompt a line) or a JSON list: a summary table at the end")
    p.add_argument("--image", help="an image for multimodal (LLaVA) models")
    p.add_argument("--max_new_tokens", type=int, default=64)
    p.add_argument("--sample", action="store_true", help="seeded nucleus sampling instead of greedy decoding")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top_p", type=float, default=0.9)
    p.add_argument("--no_chat_template", action="store_true", help="the bare prompt, not a chat turn")
    p.add_argument("--sequential", action="store_true", help="one model in memory at a time")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto", help="auto: float32 on CPU, the checkpoint's half precision on CUDA")
    p.add_argument("--out", help="write every answer and figure to this JSON file")
    p.add_argument("--web", action="store_true", help="the same comparison as a local web page (needs make install-web)")
    p.add_argument("--port", type=int, default=7860, help="--web: the page's port on 127.0.0.1")
    p.add_argument("--backend", choices=("transformers", "llamacpp"), default="transformers")
    p.add_argument("--gguf_type", choices=GGUF_TYPES, default="q8_0",
                   help="--backend llamacpp: the GGUF each checkpoint folder is converted to")
    args = p.parse_args(argv)
    if args.prompt is not None and args.prompts is not None:
        p.error("give --prompt or --prompts, not both")
    return args


@exit_on_usage_error
def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.web:
        return serve(args)  # gradio is imported there, on use
    if args.backend == "llamacpp":
        return compare_gguf(args)
    comparison = plan_comparison(args)
    columns, results = compare(comparison)
    return publish(columns, results, report(columns, results, comparison), args.out)


if __name__ == "__main__":
    main()
