"""What a pruned checkpoint becomes once made: its stock transformers form (export, for vLLM and
plain `from_pretrained`), GGUF files run by llama.cpp (gguf), and the dense and pruned models
answering side by side, in a terminal or a browser, through transformers or llama.cpp
(comparison, compare_web, compare_llamacpp; `python -m mop.deploy.compare` is the command)."""
