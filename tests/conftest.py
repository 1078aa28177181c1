"""Shared fixtures: every test gets its own empty cache directory and a clean environment."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("GASBUILD_CACHE_DIR", str(cache))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    return cache


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API (moto's server) on loopback, shared by the tests that read s3:// URLs."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """Run ``python -m gasbuild`` in a subprocess, as a user would."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gasbuild", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``vision`` need timm and transformers, which live in the vision venv."""
    import importlib.util

    if all(importlib.util.find_spec(m) is not None for m in ("timm", "transformers")):
        return
    skip = pytest.mark.skip(reason="needs timm and transformers: run `make test-vision`")
    for item in items:
        if "vision" in item.keywords:
            item.add_marker(skip)
