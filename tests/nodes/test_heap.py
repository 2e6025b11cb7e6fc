"""keep_frames_on_the_heap sets glibc's thresholds (its effect on CPU is measured by
bench/ingest.py, not here: 34 % -> 20 % of a core for two 720p cameras taken at 16 fps)."""

import subprocess
import sys

import pytest

PROGRAM = """
import ctypes, ctypes.util
from cosmos_ros.nodes.ingest import keep_frames_on_the_heap
print(keep_frames_on_the_heap(), keep_frames_on_the_heap())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_heap_thresholds_are_set_in_a_glibc_process():
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]  # accepted by glibc, and again (idempotent)
