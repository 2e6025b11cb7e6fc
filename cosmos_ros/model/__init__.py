"""The Cosmos-Reason1 model: presets (`config`), offline tokenizer (`tokenizer`), torchvision-free
processor (`processor`) and safetensors checkpoints (`checkpoint`). Import the submodule you need;
they pull in torch and transformers."""
