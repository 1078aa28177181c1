"""The zip writer: readable by zipfile and unzip, deterministic, streaming, zip64 when needed."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gasbuild.blobs import measure_file
from gasbuild.errors import BuildError
from gasbuild.stages import package
from gasbuild.stages.package import Entry, write_zip, zip_date_time


def _entries(tmp_path: Path, weights: bytes = b"\x00\x01" * 5000) -> list[Entry]:
    w = tmp_path / "weights.bin"
    w.write_bytes(weights)
    return [
        Entry.text("model.py", b"import torch\n"),
        Entry.text("model_config.yaml", b'name: "x"\n' * 20),
        Entry.file("model.safetensors", measure_file(w)),
    ]


def test_layout_is_plain_and_fixed(tmp_path: Path) -> None:
    dest = tmp_path / "out.zip"
    result = write_zip(dest, _entries(tmp_path))
    assert result.sha256 == hashlib.sha256(dest.read_bytes()).hexdigest()
    assert result.size == dest.stat().st_size
    with zipfile.ZipFile(dest) as zf:
        assert zf.testzip() is None
        infos = zf.infolist()
        assert [i.filename for i in infos] == ["model.py", "model_config.yaml", "model.safetensors"]
        for info in infos:
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == 0o100644
            assert info.create_system == 3
            assert info.extra == b""
            assert not info.flag_bits & 0x08, "no data descriptors"
        # Stored, all of them: deflate's bytes depend on the zlib build (zlib-ng differs).
        methods = {i.filename: i.compress_type for i in infos}
        assert methods == {
            "model.py": zipfile.ZIP_STORED,
            "model_config.yaml": zipfile.ZIP_STORED,
            "model.safetensors": zipfile.ZIP_STORED,
        }
        assert zf.read("model.safetensors") == b"\x00\x01" * 5000
    if shutil.which("unzip"):
        check = subprocess.run(["unzip", "-t", str(dest)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout


def test_local_headers_carry_crc_and_sizes(tmp_path: Path) -> None:
    dest = tmp_path / "out.zip"
    write_zip(dest, _entries(tmp_path))
    data = dest.read_bytes()
    with zipfile.ZipFile(dest) as zf:
        for info in zf.infolist():
            off = info.header_offset
            sig, _, flags, _, _, _, crc, csize, usize = struct.unpack(
                "<IHHHHHIII", data[off : off + 26]
            )
            assert sig == 0x04034B50
            assert (crc, csize, usize) == (info.CRC, info.compress_size, info.file_size)
            assert flags & 0x08 == 0


def test_source_date_epoch(tmp_path: Path) -> None:
    assert zip_date_time({"SOURCE_DATE_EPOCH": "1700000000"}) == (2023, 11, 14, 22, 13, 20)
    assert zip_date_time({"SOURCE_DATE_EPOCH": "0"}) == (1980, 1, 1, 0, 0, 0)
    assert zip_date_time({}) == (1980, 1, 1, 0, 0, 0)
    with pytest.raises(BuildError, match="SOURCE_DATE_EPOCH"):
        zip_date_time({"SOURCE_DATE_EPOCH": "yesterday"})
    dest = tmp_path / "o.zip"
    write_zip(dest, _entries(tmp_path), date_time=(2023, 11, 14, 22, 13, 20))
    with zipfile.ZipFile(dest) as zf:
        assert zf.infolist()[0].date_time == (2023, 11, 14, 22, 13, 20)


def test_file_changed_after_hashing_is_refused(tmp_path: Path) -> None:
    entries = _entries(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"\x00\x02" * 5000)  # same size, other bytes
    dest = tmp_path / "o.zip"
    with pytest.raises(BuildError, match="changed while it was being packaged"):
        write_zip(dest, entries)
    assert not dest.exists()
    assert not list(tmp_path.glob(".o.zip.*")), "temp file removed"


def test_zip64_records_when_sizes_pass_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(package, "ZIP64_LIMIT", 1000)
    dest = tmp_path / "o.zip"
    write_zip(dest, _entries(tmp_path, weights=bytes(range(256)) * 40))
    with zipfile.ZipFile(dest) as zf:
        assert zf.testzip() is None
        assert zf.read("model.safetensors") == bytes(range(256)) * 40
        big = zf.getinfo("model.safetensors")
        assert big.extra[:2] == b"\x01\x00"
    assert b"PK\x06\x06" in dest.read_bytes(), "zip64 end of central directory"


names = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1, max_size=20),
    min_size=1,
    max_size=6,
    unique=True,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    names=names,
    sizes=st.lists(st.integers(0, 70_000), min_size=6, max_size=6),
    seed=st.binary(min_size=1, max_size=16),
)
def test_same_entries_give_same_bytes(
    tmp_path: Path, names: list[str], sizes: list[int], seed: bytes
) -> None:
    entries: list[Entry] = []
    for i, name in enumerate(sorted(names)):
        payload = (seed * (sizes[i] // len(seed) + 1))[: sizes[i]]
        if i % 2:
            blob_path = tmp_path / f"blob{i}"
            blob_path.write_bytes(payload)
            entries.append(Entry.file(name, measure_file(blob_path)))
        else:
            entries.append(Entry.text(name, payload))
    first = write_zip(tmp_path / "a.zip", entries)
    second = write_zip(tmp_path / "b.zip", entries)
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert zf.namelist() == sorted(names)
        for entry in entries:
            expected = entry.data if isinstance(entry.data, bytes) else entry.data.path.read_bytes()
            assert zf.read(entry.name) == expected
