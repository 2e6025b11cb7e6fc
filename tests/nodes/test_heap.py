"""keep_frames_on_the_heap sets glibc's thresholds (its effect on CPU is measured by
bench/ingest.py, not here: 34 % -> 20 % of a core for two 720p cameras taken at 16 fps)."""

import subprocess
import sys

import pytest

PROGRAM = """
import ctypes
from cosmos_ros.nodes.ingest import keep_frames_on_the_heap
opened, real = [], ctypes.CDLL
ctypes.CDLL = lambda *a, **k: opened.append(a) or real(*a, **k)
print(keep_frames_on_the_heap(), keep_frames_on_the_heap(), len(opened))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_heap_thresholds_are_set_in_a_glibc_process():
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True)
    # accepted by glibc; a second ingest in the process finds it set and sets nothing again
    assert out.stdout.split() == ["True", "True", "1"]
