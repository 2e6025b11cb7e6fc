"""The use_mamba_kernels switch: auto, forced on (clear errors), forced off (PyTorch even when installed)."""

import inspect

import numpy as np
import pytest
import torch
from transformers.models.nemotron_h import modeling_nemotron_h

from cosmos_ros.core.types import Clip, Prompt
from cosmos_ros.model import mamba_kernels
from cosmos_ros.model.mamba_kernels import (
    KERNEL_FUNCTIONS,
    MambaKernelsUnavailable,
    mamba_implementation,
    missing_packages,
    resolve_use_mamba_kernels,
)

CUDA = torch.cuda.is_available()
needs_kernels = pytest.mark.skipif(
    not CUDA or bool(missing_packages()),
    reason="needs a CUDA GPU with mamba-ssm and causal-conv1d installed "
    f"(cuda available: {CUDA}; missing: {missing_packages() or 'none'})",
)


@pytest.fixture
def packages_installed(monkeypatch):
    """Pretend mamba-ssm and causal-conv1d import, as on a GPU machine with the extra."""
    monkeypatch.setattr(mamba_kernels, "missing_packages", list)


def test_auto_uses_pytorch_on_cpu():
    assert resolve_use_mamba_kernels(None, "cpu") is False


def test_auto_uses_pytorch_without_the_packages():
    if missing_packages():
        assert resolve_use_mamba_kernels(None, "cuda") is False


def test_auto_uses_kernels_on_cuda_when_installed(packages_installed):
    assert resolve_use_mamba_kernels(None, "cuda") is True


def test_off_is_always_pytorch(packages_installed):
    assert resolve_use_mamba_kernels(False, "cuda") is False


@pytest.mark.skipif(not missing_packages(), reason="mamba-ssm and causal-conv1d are installed here")
def test_forcing_kernels_without_the_packages_names_them_and_the_install():
    with pytest.raises(
        MambaKernelsUnavailable, match="mamba_ssm.*do not import here: pip install mamba-ssm causal-conv1d"
    ):
        resolve_use_mamba_kernels(True, "cuda")


def test_forcing_kernels_off_the_gpu_names_the_device(packages_installed):
    with pytest.raises(MambaKernelsUnavailable, match="the model is on cpu.*CUDA only"):
        resolve_use_mamba_kernels(True, "cpu")


def test_pytorch_path_swaps_in_the_reference_functions_and_restores_them(packages_installed):
    before = {name: getattr(modeling_nemotron_h, name) for name in KERNEL_FUNCTIONS}
    with mamba_implementation(False):
        for name, fn in before.items():
            assert getattr(modeling_nemotron_h, name) is inspect.unwrap(fn)
    assert {name: getattr(modeling_nemotron_h, name) for name in KERNEL_FUNCTIONS} == before


def test_pytorch_path_gives_the_same_logits_as_the_default_on_cpu(packages_installed):
    from cosmos_ros.engine.torch_engine import TorchEngine

    engine = TorchEngine("tiny-hybrid")
    clip = Clip(np.zeros((1, 32, 32, 3), np.uint8), np.zeros(1))
    default = engine.prompt_logits(clip, Prompt("q"))
    with mamba_implementation(False):
        swapped = engine.prompt_logits(clip, Prompt("q"))
    assert torch.equal(default, swapped)


@pytest.mark.gpu
@needs_kernels
def test_kernels_and_pytorch_agree_on_gpu():
    from cosmos_ros.engine.torch_engine import TorchEngine

    clip = Clip(np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8), np.arange(4) / 4.0)
    prompt = Prompt("What happens next?")
    fast = TorchEngine("tiny-hybrid", "cuda", dtype="fp32", use_mamba_kernels=True)
    slow = TorchEngine("tiny-hybrid", "cuda", dtype="fp32", use_mamba_kernels=False)
    assert torch.allclose(fast.prompt_logits(clip, prompt), slow.prompt_logits(clip, prompt), atol=1e-3)
    assert (
        fast.reason(clip, prompt, max_new_tokens=16).text == slow.reason(clip, prompt, max_new_tokens=16).text
    )


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
def test_both_families_reason_in_bf16_on_gpu():
    from cosmos_ros.engine.torch_engine import TorchEngine

    clip = Clip(
        np.random.default_rng(0).integers(0, 256, (8, 448, 448, 3), dtype=np.uint8), np.arange(8) / 4.0
    )
    for preset in ("tiny-dense", "tiny-hybrid"):
        engine = TorchEngine(preset, "cuda")
        assert engine.dtype == torch.bfloat16
        assert engine.reason(clip, Prompt("What happens next?"), max_new_tokens=8).num_generated_tokens > 0
