"""Fixtures shared across test folders."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

EARLY_VLLM = pytest.StashKey()


def pytest_collection_finish(session) -> None:
    """Starts the vLLM server in the background when a selected test will use it."""
    if session.config.option.collectonly:
        return
    if any("vllm_server" in getattr(item, "fixturenames", ()) for item in session.items):
        from vllm_server import EarlyServer

        log_dir = Path(tempfile.mkdtemp(prefix="cosmos_ros_vllm_"))
        session.config.stash[EARLY_VLLM] = EarlyServer(log_dir)


def pytest_sessionfinish(session) -> None:
    early = session.config.stash.get(EARLY_VLLM, None)
    if early is not None:
        early.stop()
        shutil.rmtree(early.log_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def vllm_server(request, tmp_path_factory):
    """One real vLLM server for the whole run (tests/vllm_server.py), started in the background
    once the run is collected: the engine tests and the node tests share its start-up (a minute or
    more on two cores); a test that stops it starts it again."""
    from vllm_server import KEY, KEY_ENV, VllmServer, python_or_skip

    early = request.config.stash.get(EARLY_VLLM, None)
    if early is not None:
        server = early.result()
    else:
        server = VllmServer(python_or_skip(), tmp_path_factory.mktemp("vllm")).start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_ENV, KEY)  # clients here and the nodes they start send the server's key
        yield server
    server.stop()
