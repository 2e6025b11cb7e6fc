"""Which implementation the hybrid's Mamba-2 layers run: mamba-ssm / causal-conv1d kernels or PyTorch.

How transformers chooses (5.x, `models/nemotron_h/modeling_nemotron_h.py`): five module-level
functions — `causal_conv1d_fn`, `causal_conv1d_update`, `mamba2_split_conv1d_scan_combined`,
`mamba2_selective_state_update`, `mamba2_chunk_scan` — are wrapped by
`use_kernel_func_from_hub_with_fallback` when the module is imported. The wrapper imports
`mamba_ssm` / `causal_conv1d` there and then and calls their kernels whenever they import,
otherwise the reference PyTorch code that each wrapper keeps as `__wrapped__`. The config's
`use_mamba_kernels` is deprecated and has no effect, so the choice is per process.

`use_mamba_kernels` here is the switch transformers no longer has:
- None: the kernels when both packages import and the model is on CUDA, else PyTorch;
- True: the kernels, or `MambaKernelsUnavailable` naming what is missing (package, GPU);
- False: PyTorch, even with the packages installed.

The packages build only against CUDA torch (they need nvcc and triton): an optional GPU extra.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

PACKAGES = ("mamba_ssm", "causal_conv1d")
INSTALL_HINT = "pip install mamba-ssm causal-conv1d --no-build-isolation (needs CUDA torch and nvcc)"
KERNEL_FUNCTIONS = (
    "causal_conv1d_fn",
    "causal_conv1d_update",
    "mamba2_split_conv1d_scan_combined",
    "mamba2_selective_state_update",
    "mamba2_chunk_scan",
)
_swap_lock = threading.RLock()


class MambaKernelsUnavailable(RuntimeError):
    """use_mamba_kernels=True where the kernels cannot run."""


@functools.cache
def _importable(package: str) -> bool:
    try:
        importlib.import_module(package)
    except Exception:  # noqa: BLE001 - a broken CUDA extension raises anything from OSError to RuntimeError
        return False
    return True


def missing_packages() -> list[str]:
    """The kernel packages that do not import here (transformers tries the same import)."""
    return [p for p in PACKAGES if not _importable(p)]


def resolve_use_mamba_kernels(use: bool | None, device: torch.device | str) -> bool:
    """Whether the Mamba-2 layers of a model on `device` run the kernels, per the switch above."""
    if use is False:
        return False
    device = torch.device(device)
    missing = missing_packages()
    if use is None:
        return not missing and device.type == "cuda"
    if missing:
        raise MambaKernelsUnavailable(
            f"use_mamba_kernels=True, but {', '.join(missing)} do not import here: {INSTALL_HINT}; "
            "or pass use_mamba_kernels=None to fall back to PyTorch"
        )
    if device.type != "cuda":
        raise MambaKernelsUnavailable(
            f"use_mamba_kernels=True, but the model is on {device}: the mamba-ssm and causal-conv1d kernels run on CUDA only"
        )
    return True


@contextmanager
def mamba_implementation(use_kernels: bool) -> Iterator[None]:
    """Run the enclosed forwards with the kernels (True) or the reference PyTorch code (False).

    PyTorch while the packages are installed means swapping transformers' module-level functions
    for the `__wrapped__` originals for the duration. The swap is process-wide: a lock keeps two
    swaps apart, and a kernel-using model that runs meanwhile merely takes the (equal-output,
    slower) PyTorch path.
    """
    if use_kernels or missing_packages():
        yield  # the kernels as transformers resolved them, or PyTorch already
        return
    from transformers.models.nemotron_h import modeling_nemotron_h as modeling

    with _swap_lock:
        saved = {name: getattr(modeling, name) for name in KERNEL_FUNCTIONS}
        try:
            for name, fn in saved.items():
                setattr(modeling, name, inspect.unwrap(fn))
            yield
        finally:
            for name, fn in saved.items():
                setattr(modeling, name, fn)
