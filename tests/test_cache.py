"""The cache's own rules: keys, atomic records, corrupt entries, verify and gc, the CLI."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import run_cli
from gasbuild import cache as cache_mod
from gasbuild.cache import Cache, FileStat, action_key


def _object(cache: Cache, data: bytes) -> Path:
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    tmp = cache.temp_dir() / "x.tmp"
    tmp.write_bytes(data)
    return cache.add_object(tmp, sha)


@given(st.dictionaries(st.text(max_size=5), st.integers(), max_size=4))
def test_action_key_ignores_dict_order_but_not_content(params: dict[str, int]) -> None:
    reordered = dict(reversed(list(params.items())))
    assert action_key("s", "1", params, {}) == action_key("s", "1", reordered, {})
    assert action_key("s", "1", params, {}) != action_key("s", "2", params, {})
    assert action_key("s", "1", params, {}) != action_key("s", "1", params, {"w": "x"})


def test_a_stages_key_version_follows_its_code(tmp_path: Path) -> None:
    """Between releases, a changed stage must not reuse the old code's results."""
    from gasbuild import plan

    folder = tmp_path / "validate"
    folder.mkdir()
    (folder / "a.py").write_text("RULE = 1\n")
    (folder / "notes.txt").write_text("not code")
    single = tmp_path / "convert.py"
    single.write_text("x = 1\n")
    before = plan.source_digest([folder, single])
    (folder / "notes.txt").write_text("still not code")
    assert plan.source_digest([folder, single]) == before
    (folder / "a.py").write_text("RULE = 2\n")
    assert plan.source_digest([folder, single]) != before

    versions = {stage: plan.stage_version(stage, "1") for stage in plan._STAGE_CODE}
    assert len(set(versions.values())) == len(versions)  # each stage its own code
    assert all(v.startswith("1+") for v in versions.values())
    assert plan.stage_version("validate", "2") != versions["validate"]


def test_corrupt_or_truncated_records_are_misses(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.put_action("ab" * 32, {"sha256": "x"})
    path = next((tmp_path / "actions").rglob("*.json"))
    path.write_bytes(b'{"sha256": ')  # as if cut by a crash (cannot happen: renames are atomic)
    assert cache.get_action("ab" * 32) is None
    assert Cache(tmp_path, enabled=False).get_action("cd" * 32) is None


def test_stat_record_follows_the_file(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    os.utime(f, (1_600_000_000, 1_600_000_000))
    cache.put_digests(f, FileStat.of(f), {"sha256": "s"})
    assert cache.get_digests(f) == {"sha256": "s"}
    os.utime(f, (1_600_000_001, 1_600_000_001))
    assert cache.get_digests(f) is None


def test_verify_removes_corrupt_objects_and_records(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    good = _object(cache, b"good")
    bad = _object(cache, b"bad")
    bad.chmod(0o644)
    bad.write_bytes(b"rotten")
    cache.put_action("ef" * 32, {"a": 1})
    broken = tmp_path / "actions" / "00" / ("00" * 32 + ".json")
    broken.parent.mkdir(parents=True)
    broken.write_text("not json")
    removed = cache_mod.verify(cache)
    assert sorted(r.split()[0] for r in removed) == ["action", "object"]
    assert good.exists() and not bad.exists() and not broken.exists()


def test_gc_by_age_size_and_stale_temp(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    old = _object(cache, b"o" * 1000)
    new = _object(cache, b"n" * 1000)
    stale = cache.temp_dir() / "dead.tmp"
    stale.write_bytes(b"x")
    now = time.time()
    os.utime(old, (now - 40 * 86400, now - 40 * 86400))
    os.utime(stale, (now - 7200, now - 7200))
    removed = cache_mod.gc(cache, max_size=None, older_than=30 * 86400, now=now)
    assert {e.path for e in removed} == {old, stale}
    assert new.exists()
    newest = _object(cache, b"z" * 1000)
    os.utime(new, (now - 10, now - 10))
    removed = cache_mod.gc(cache, max_size=1500, older_than=None, now=now)
    assert [e.path for e in removed] == [new]
    assert newest.exists()


def test_cache_commands(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    _object(cache, b"payload")
    env = {"GASBUILD_CACHE_DIR": str(tmp_path / "c")}
    du = run_cli("cache", "du", env=env)
    assert du.returncode == 0 and "object" in du.stdout and "7 B" in du.stdout
    ls = run_cli("cache", "ls", env=env)
    assert (
        ls.returncode == 0
        and "239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5" in ls.stdout
    )
    assert run_cli("cache", "verify", env=env).returncode == 0
    bad = run_cli("cache", "gc", "--max-size", "lots", env=env)
    assert bad.returncode == 2 and "is not a size" in bad.stderr
    gc = run_cli("cache", "gc", "--max-size", "0", env=env)
    assert gc.returncode == 0 and "removed 1 entries" in gc.stdout


def test_cache_commands_use_the_projects_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`gasbuild cache ... -C DIR` looks at the cache the project's builds use ([cache] dir)."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "gas.toml").write_text(
        '[cache]\ndir = "team-cache"\n\n[models.image]\narchitecture = { file = "m.py" }\n'
        'weights = { path = "w.safetensors" }\n'
    )
    _object(Cache(project / "team-cache"), b"payload")
    monkeypatch.delenv("GASBUILD_CACHE_DIR")  # the environment would win over [cache] dir
    env = {"XDG_CACHE_HOME": str(tmp_path / "user-cache")}
    ls = run_cli("cache", "ls", "-C", str(project), env=env)
    assert ls.returncode == 0, ls.stderr
    assert "239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5" in ls.stdout
    elsewhere = run_cli("cache", "du", env=env, cwd=tmp_path)
    assert elsewhere.returncode == 0 and "7 B" not in elsewhere.stdout
