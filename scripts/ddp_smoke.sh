#!/usr/bin/env bash
# Two-process DDP smoke test of recovery fine-tuning on CPU (gloo): torchrun runs
# Llama3/finetune.py unchanged on a tiny random Llama with the embedded tokenizer, then checks
# that the merged checkpoint exists, records world_size 2, reloads, and that the work folder is gone.
#   bash scripts/ddp_smoke.sh [scratch_dir]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRATCH="${1:-$(mktemp -d /tmp/mop_ddp_smoke.XXXXXX)}"
PY="${PYTHON:-$REPO/.venv/bin/python}"
[ -x "$PY" ] || PY=python
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
CKPT="$SCRATCH/prune_iteration_1"
OUT="$SCRATCH/prune_iteration_1_ft_1ep"
mkdir -p "$SCRATCH"
rm -rf "$CKPT" "$OUT" "$SCRATCH/.work-prune_iteration_1_ft_1ep" "$SCRATCH/.tmp-prune_iteration_1_ft_1ep"

cd "$REPO"
"$PY" - "$CKPT" "$SCRATCH/data.json" <<'PYEOF'
import sys
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
from mop.models.loading import resolve_model_name
from mop.core.io import write_json

ckpt, data = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(resolve_model_name("smollm2-135m"))
torch.manual_seed(0)
config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
LlamaForCausalLM(config).save_pretrained(ckpt)
tok.save_pretrained(ckpt)
write_json(f"{ckpt}/mop_prune.json", {"iteration": 1, "settings": {"model_name": "tiny-random"}})
write_json(data, [{"instruction": f"Count to {i}.", "input": "", "output": " ".join(map(str, range(i + 1)))}
                  for i in range(32)])
PYEOF

"$PY" -m torch.distributed.run --standalone --nproc_per_node 2 Llama3/finetune.py \
  --pruned_model_dir "$CKPT" --tuned_model_dir "$OUT" --data "$SCRATCH/data.json" \
  --max_steps 3 --save_steps 2 --batch_size 2 --grad_accum 2 --lora_r 4 --logging_steps 1 --precision fp32

"$PY" - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
from transformers import AutoModelForCausalLM
out = Path(sys.argv[1])
meta = json.loads((out / "mop_finetune.json").read_text())
assert meta["world_size"] == 2, meta["world_size"]
assert meta["global_steps"] == 3, meta["global_steps"]
assert meta["effective_batch"] == 4 and meta["grad_accum_per_process"] == 1, meta  # 2 x 2, accumulation split
assert (out / "loss_log.csv").exists() and (out / "mop_prune.json").exists()
assert not (out.parent / f".work-{out.name}").exists(), "work folder left behind"
AutoModelForCausalLM.from_pretrained(out)
print(f"DDP SMOKE OK: world_size={meta['world_size']} steps={meta['global_steps']} "
      f"tokens={meta['train_tokens']} loss={meta['final_train_loss']}")
PYEOF
