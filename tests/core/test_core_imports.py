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


def test_core_reexports_its_public_names():
    import cosmos_ros.core as core

    for name in core.__all__:
        assert getattr(core, name) is not None, name
