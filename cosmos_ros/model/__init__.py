"""The Cosmos-Reason1 model, two families composed from transformers' classes.

- `config` — presets read from the YAML cards in `model/presets/` (`cards`), one dataclass
  family each: dense Qwen2.5-VL (`dense_config`) and hybrid InternVL + Nemotron-H
  (`hybrid_config`); parameter counts on the meta device (`model_info`).
- `tokenizer` — the offline tiny tokenizer (both families) and the checkpoint tokenizer loader.
- `processor` / `hybrid_processor` — torchvision-free `(Clip, Prompt) → model inputs`.
- `checkpoint` / `weights` — HF-layout safetensors checkpoints, checked before loading.
- `bundle` — model + tokenizer + processor + id, from a preset or a checkpoint directory.
- `mamba_kernels` — the hybrid's Mamba-2 implementation switch (mamba-ssm kernels or PyTorch).

Import the submodule you need; they pull in torch and transformers.
"""
