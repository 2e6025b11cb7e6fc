"""Fixtures shared across test folders."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory):
    """One real vLLM server for the whole run (tests/vllm_server.py): the engine tests and the
    node tests share its start-up (about 30 s); a test that stops it starts it again."""
    from vllm_server import KEY, KEY_ENV, VllmServer, python_or_skip

    server = VllmServer(python_or_skip(), tmp_path_factory.mktemp("vllm")).start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_ENV, KEY)  # clients here and the nodes they start send the server's key
        yield server
    server.stop()
