"""Sources: local, http(s) and s3 (moto on loopback), the store, the remote cache, offline."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes.http_files import FileServer, serve_files
from gasbuild.cache import Cache, RemoteCache
from gasbuild.errors import SourceError, TransportError
from gasbuild.stages import fetch
from gasbuild.stages.fetch import FetchOptions, LocalSource, Pins, UrlSource

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def files() -> Iterator[FileServer]:
    with serve_files() as server:
        server.files["/w.safetensors"] = PAYLOAD
        yield server


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "RETRY_BASE_SECONDS", 0.01)


@pytest.fixture
def s3(s3_bucket: tuple[str, Any]) -> str:
    """A bucket holding the test weights at models/w.safetensors; its name."""
    bucket, fs = s3_bucket
    fs.pipe_file(f"{bucket}/models/w.safetensors", PAYLOAD)
    return bucket


def _url_fetch(url: str, cache: Cache, **kwargs: object) -> fetch.Fetched:
    pins = Pins(sha256=kwargs.pop("sha256", None))  # type: ignore[arg-type]
    options = FetchOptions(**kwargs)  # type: ignore[arg-type]
    return UrlSource(url, "models.image.weights").fetch(cache, pins, options, None)


def test_http_download_is_hashed_stored_and_reused(tmp_path: Path, files: FileServer) -> None:
    cache = Cache(tmp_path / "cache")
    url = files.base_url + "/w.safetensors"
    first = _url_fetch(url, cache, sha256=SHA)
    assert (first.blob.sha256, first.blob.size, first.hit) == (SHA, len(PAYLOAD), False)
    assert first.blob.path == cache.object_path(SHA)
    assert first.blob.path.read_bytes() == PAYLOAD
    assert first.record["etag"] == "v1"
    second = _url_fetch(url, cache, sha256=SHA)
    assert second.hit and files.gets["/w.safetensors"] == 1, "pinned and cached: no request"


def test_http_dropped_connection_is_retried(tmp_path: Path, files: FileServer) -> None:
    files.faults["/w.safetensors"] = ["drop"]
    got = _url_fetch(files.base_url + "/w.safetensors", Cache(tmp_path / "c"), sha256=SHA)
    assert got.blob.sha256 == SHA
    assert files.gets["/w.safetensors"] >= 2


def test_http_always_dropping_gives_up_with_transport_error(
    tmp_path: Path, files: FileServer
) -> None:
    files.faults["/w.safetensors"] = ["drop"] * 10
    cache = Cache(tmp_path / "c")
    with pytest.raises(TransportError, match="failed 3 times"):
        _url_fetch(files.base_url + "/w.safetensors", cache, sha256=SHA)
    assert (
        not any(cache.root.joinpath("objects").rglob("*"))
        if cache.root.joinpath("objects").exists()
        else True
    )
    assert not list((cache.root / "tmp").iterdir()), "no temp file left behind"


def test_wrong_bytes_fail_the_pin_and_store_nothing(tmp_path: Path, files: FileServer) -> None:
    files.faults["/w.safetensors"] = ["corrupt"]
    cache = Cache(tmp_path / "c")
    with pytest.raises(SourceError, match=f"the pin says {SHA}") as info:
        _url_fetch(files.base_url + "/w.safetensors", cache, sha256=SHA)
    assert "has sha256" in str(info.value)
    assert not cache.has_object(SHA)
    assert not list((cache.root / "tmp").iterdir())


def test_missing_url_is_a_user_error(tmp_path: Path, files: FileServer) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        _url_fetch(files.base_url + "/nope.safetensors", Cache(tmp_path / "c"))


def test_offline_uses_the_store_and_names_what_is_missing(
    tmp_path: Path, files: FileServer
) -> None:
    cache = Cache(tmp_path / "c")
    url = files.base_url + "/w.safetensors"
    with pytest.raises(SourceError, match=r"not in the cache .* offline"):
        _url_fetch(url, cache, sha256=SHA, offline=True)
    _url_fetch(url, cache, sha256=SHA)
    assert _url_fetch(url, cache, sha256=SHA, offline=True).hit


def test_locked_digest_avoids_the_network(tmp_path: Path, files: FileServer) -> None:
    cache = Cache(tmp_path / "c")
    url = files.base_url + "/w.safetensors"
    first = _url_fetch(url, cache)
    locked = {"url": url, "sha256": first.blob.sha256, "etag": "v1"}
    again = UrlSource(url, "k").fetch(cache, Pins(), FetchOptions(), locked)
    assert again.hit and files.gets["/w.safetensors"] == 1
    refreshed = UrlSource(url, "k").fetch(cache, Pins(), FetchOptions(refresh=True), locked)
    assert not refreshed.hit and files.gets["/w.safetensors"] == 2


def test_s3_source(tmp_path: Path, s3: str) -> None:
    cache = Cache(tmp_path / "c")
    got = _url_fetch(f"s3://{s3}/models/w.safetensors", cache, sha256=SHA)
    assert got.blob.sha256 == SHA and got.record["etag"]


def test_s3_remote_cache_is_read_through_and_verified(
    tmp_path: Path, s3: str, files: FileServer
) -> None:
    remote_url = f"s3://{s3}/cache"
    writer = Cache(tmp_path / "a", remote=RemoteCache(remote_url))
    url = files.base_url + "/w.safetensors"
    _url_fetch(url, writer, sha256=SHA)
    writer.put_action("k" * 64, {"answer": 42})
    # another machine: empty local cache, same remote; the source is down
    files.files.clear()
    reader = Cache(tmp_path / "b", remote=RemoteCache(remote_url), remote_write=False)
    got = _url_fetch(url, reader, sha256=SHA)
    assert got.hit and got.blob.path.read_bytes() == PAYLOAD
    assert reader.get_action("k" * 64) == {"answer": 42}


def test_broken_remote_cache_warns_and_falls_back(tmp_path: Path, files: FileServer) -> None:
    warnings: list[str] = []
    remote = RemoteCache("http://127.0.0.1:9/cache")  # nothing listens on port 9
    cache = Cache(tmp_path / "c", remote=remote, warn=warnings.append)
    got = _url_fetch(files.base_url + "/w.safetensors", cache, sha256=SHA)
    assert got.blob.sha256 == SHA
    assert cache.get_action("0" * 64) is None
    assert len(warnings) == 1 and "going on with the local cache only" in warnings[0]


def test_local_source_uses_stat_cache(tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(PAYLOAD)
    os.utime(path, (1_600_000_000, 1_600_000_000))
    cache = Cache(tmp_path / "c")
    source = LocalSource(path, tmp_path, "models.image.weights")
    first = source.fetch(cache, Pins(sha256=SHA), FetchOptions(), None)
    second = source.fetch(cache, Pins(sha256=SHA), FetchOptions(), None)
    assert (first.hit, second.hit) == (False, True)
    assert second.record == {"path": "w.bin"}
    path.write_bytes(PAYLOAD[::-1])  # same size, new content and mtime
    os.utime(path, (1_600_000_100, 1_600_000_100))
    with pytest.raises(SourceError, match="the pin says"):
        source.fetch(cache, Pins(sha256=SHA), FetchOptions(), None)


def test_fresh_files_are_not_trusted_by_stat(tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(PAYLOAD)  # mtime is now: a same-size rewrite could share it
    cache = Cache(tmp_path / "c")
    source = LocalSource(path, tmp_path, "k")
    source.fetch(cache, Pins(), FetchOptions(), None)
    assert not source.fetch(cache, Pins(), FetchOptions(), None).hit


def test_gasbuild_offline_env_var(tmp_path: Path, files: FileServer) -> None:
    from conftest import run_cli

    (tmp_path / "m.py").write_text("def load_model(weights_path, num_classes=2):\n    pass\n")
    (tmp_path / "gas.toml").write_text(
        "[models.image]\n"
        'architecture = { file = "m.py" }\n'
        f'weights = {{ url = "{files.base_url}/w.safetensors" }}\n'
    )
    result = run_cli("build", "-C", str(tmp_path), env={"GASBUILD_OFFLINE": "1"})
    assert result.returncode == 2
    assert "is not in the cache" in result.stderr and "offline" in result.stderr
    assert files.gets.get("/w.safetensors", 0) == 0
