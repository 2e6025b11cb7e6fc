"""The core floor must import without torch, rclpy or OpenCV."""

from __future__ import annotations

import subprocess
import sys


def test_importing_core_loads_neither_torch_nor_rclpy_nor_cv2():
    code = (
        "import sys, cosmos_ros.core as core\n"
        "assert core.FrameBuffer and core.parse_answer and core.image_to_rgb8\n"
        "print(sorted(m for m in ('torch', 'rclpy', 'cv2') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_core_reexports_each_public_name_from_the_module_that_defines_it():
    import importlib
    import inspect

    import cosmos_ros.core as core

    assert len(core.__all__) == len(set(core.__all__)), "a name listed twice in __all__"
    modules = {name: importlib.import_module(f"cosmos_ros.core.{name}")
               for name in ("answers", "codec", "frames", "prompts", "types")}  # fmt: skip
    for name in core.__all__:
        owners = [m for m, module in modules.items() if getattr(module, name, None) is getattr(core, name)]
        assert owners, f"cosmos_ros.core.{name} is not the object of any core module"
    # and __all__ is exactly what the package namespace offers (submodules aside)
    offered = {n for n, v in vars(core).items() if not n.startswith("_") and not inspect.ismodule(v)}
    assert offered == set(core.__all__)
