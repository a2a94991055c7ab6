"""Shared fixtures: tiny random Llama models (MHA and GQA) and a tiny word-level tokenizer.

Everything here is offline and takes well under a second to build.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# transformers 5 shows progress bars for every save and load, however tiny: tests read stderr.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import json
import runpy
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WORDS = (
    "the a an of to and in is are was be it that this for on with as by at from or what which how why "
    "instruction input response explain list name give describe write short sentence word number water sun "
    "tree cat dog city river one two three four five red blue green big small fast slow good bad"
).split()


def make_tokenizer(path: Path):
    """A word-level fast tokenizer with Llama-like special tokens (bos <s>, eos </s>, pad)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(["<unk>", "<s>", "</s>", "<pad>"] + WORDS + list(".,:?!\n"))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    tok.padding_side = "right"
    tok.save_pretrained(path)
    return tok


def tiny_config(kv_heads=4, layers=6, heads=4, bias=False, intermediate=96, head_dim=16):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(WORDS) + 10, hidden_size=64, intermediate_size=intermediate, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim, max_position_embeddings=128,
        attention_bias=bias, mlp_bias=bias, bos_token_id=1, eos_token_id=2, pad_token_id=3,
        tie_word_embeddings=False,
    )


def tiny_model(kv_heads: int = 4, layers: int = 6, seed: int = 0, **kw):
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_config(kv_heads, layers, **kw)).eval()
    # Random init gives near-zero norms' effect; perturb norms so every weight matters.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


# ----------------------------------------------------------------------------- one tiny model per family

FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "gemma3_text")
# What each family's tiny model sets beyond the shared sizes: Gemma-3 alternates two sliding-window
# layers (window 4 tokens, shorter than the calibration prompts) with one global layer, ties its
# head, and soft-caps its logits at a cap low enough to change them.
FAMILY_EXTRAS = {
    "llama": dict(tie_word_embeddings=False),
    "mistral": dict(tie_word_embeddings=False),
    "qwen2": dict(tie_word_embeddings=False),
    "qwen3": dict(tie_word_embeddings=False),
    "gemma3_text": dict(tie_word_embeddings=True, sliding_window=4, final_logit_softcapping=3.0,
                        query_pre_attn_scalar=16),
}


def gemma_layer_types(layers: int) -> list[str]:
    return ["full_attention" if (i + 1) % 3 == 0 else "sliding_attention" for i in range(layers)]


def family_config(family: str, kv_heads: int = 2, layers: int = 6, heads: int = 4, intermediate: int = 96,
                  head_dim: int = 16):
    """A tiny config of `family` (same sizes for every family)."""
    from transformers import AutoConfig

    extras = dict(FAMILY_EXTRAS[family])
    if family == "gemma3_text":
        extras["layer_types"] = gemma_layer_types(layers)
    return AutoConfig.for_model(
        family, vocab_size=len(WORDS) + 10, hidden_size=64, intermediate_size=intermediate, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim, max_position_embeddings=128,
        bos_token_id=1, eos_token_id=2, pad_token_id=3, **extras)


def family_model(family: str, kv_heads: int = 2, layers: int = 6, seed: int = 0, **kw):
    """A tiny random causal LM of `family`, norms and biases perturbed so that every weight matters
    (random init leaves norms at their identity and biases at zero)."""
    from transformers import AutoModelForCausalLM

    if family == "llama":
        return tiny_model(kv_heads, layers, seed, **kw)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(family_config(family, kv_heads, layers, **kw)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.fixture
def tiny_mha():
    return tiny_model(kv_heads=4)


@pytest.fixture
def tiny_gqa():
    return tiny_model(kv_heads=2)


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tokenizer")
    make_tokenizer(path)
    return path


@pytest.fixture(scope="session")
def calibration_file(tmp_path_factory):
    """Alpaca-format records of varied length, some with an input."""
    records = []
    for i in range(24):
        words = " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(3 + (i * 5) % 17))
        records.append({"instruction": f"explain {words} .", "input": "the sun" if i % 3 == 0 else "", "output": "good ."})
    path = tmp_path_factory.mktemp("data") / "calibration.json"
    path.write_text(json.dumps(records))
    return path


def save_checkpoint(model, tokenizer_dir: Path, path: Path) -> Path:
    from transformers import AutoTokenizer

    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(path)
    return path


@pytest.fixture
def checkpoint_factory(tmp_path, tokenizer_dir):
    def make(kv_heads=4, layers=6, name="base", **kw):
        return save_checkpoint(tiny_model(kv_heads, layers, **kw), tokenizer_dir, tmp_path / name)

    return make


def run_script(path: Path, argv: list[str], monkeypatch) -> None:
    """Run a model folder's script (e.g. Llama2/prune.py) as `python path argv...` would, in-process."""
    monkeypatch.setattr(sys, "argv", [str(path), *argv])
    runpy.run_path(str(path), run_name="__main__")


class LoraCaptured(Exception):
    """Raised by `lora_spy` once the PEFT model is built, so that no training step runs."""


@pytest.fixture
def lora_spy(monkeypatch):
    """mop.recover.trainer.wrap_with_lora as it is, but stopping right after: the PEFT model it built is
    kept under spy["model"] and LoraCaptured is raised (recovery and the path probe both wrap
    through it)."""
    import mop.recover.trainer  # heavy (transformers): imported on use, like the helpers above

    real = mop.recover.trainer.wrap_with_lora
    spy = {}

    def wrap_and_stop(model, settings, target_modules=None):
        spy["model"] = real(model, settings, target_modules)
        raise LoraCaptured()

    monkeypatch.setattr(mop.recover.trainer, "wrap_with_lora", wrap_and_stop)
    return spy


def lora_modules(peft_model) -> dict:
    """{module name without the PEFT prefix: (r, scaling, dropout p)} of every LoRA-wrapped Linear."""
    found = {}
    for name, module in peft_model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            dropout = module.lora_dropout["default"]
            found[name.removeprefix("base_model.model.")] = (
                module.r["default"], module.scaling["default"], getattr(dropout, "p", 0.0))
    return found


def decoder_projections(prefix: str, layers) -> set[str]:
    """Module names of the q/k/v/o/gate/up/down projections of decoder layers `layers` (indices)
    under `prefix` ("model" for a Llama, "model.language_model" for a LLaVA)."""
    parts = {"self_attn": ("q_proj", "k_proj", "v_proj", "o_proj"), "mlp": ("gate_proj", "up_proj", "down_proj")}
    return {f"{prefix}.layers.{i}.{part}.{name}" for i in layers for part, names in parts.items() for name in names}


@torch.no_grad()
def hand_scored_multiple_choice(model, tokenizer, docs: list[dict]) -> dict:
    """Zero-shot multiple choice scored by hand, the way lm_eval defines it: each choice's score is
    the sum of the log-probabilities of its tokens after "Question: {question}\\nAnswer:" (the
    continuation is " {choice}", one forward pass per choice, no batching); acc takes the best
    score, acc_norm the best score per character of the choice; acc_stderr is the standard error
    of the mean of the 0/1 outcomes (sample standard deviation / sqrt(n))."""
    hits, hits_norm = [], []
    for doc in docs:
        context = f"Question: {doc['question']}\nAnswer:"
        context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
        scores = []
        for choice in doc["choices"]:
            ids = tokenizer(context + " " + choice, add_special_tokens=False)["input_ids"]
            logp = model(torch.tensor([ids])).logits[0].float().log_softmax(-1)
            scores.append(sum(logp[len(context_ids) - 1 + k, t].item() for k, t in enumerate(ids[len(context_ids):])))
        best = max(range(len(scores)), key=lambda i: scores[i])  # the first of equal scores, as numpy's argmax
        best_norm = max(range(len(scores)), key=lambda i: scores[i] / len(doc["choices"][i]))
        hits.append(float(best == doc["label"]))
        hits_norm.append(float(best_norm == doc["label"]))
    n = len(docs)
    acc = sum(hits) / n
    variance = sum((h - acc) ** 2 for h in hits) / (n - 1)
    return {"acc": acc, "acc_norm": sum(hits_norm) / n, "acc_stderr": (variance / n) ** 0.5}


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a test module: tiny models on a small shared CPU run many times
    faster on one thread than on two that spin against other jobs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_finish(session):
    """Freeze the objects the imports made (torch, transformers, peft, the test modules): the
    code under test runs many full collections (`release_memory`), ~0.5 s each otherwise."""
    from mop.prune.path_selection import freeze_startup_objects

    freeze_startup_objects()
