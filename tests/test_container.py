"""Zip container checks: every GAS1xx rule on zips built with zipfile and, for the evil ones,
byte by byte (overlapping entries, lying headers, encrypted flags)."""

from __future__ import annotations

import functools
import io
import stat
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gasbuild.blobs import measure_file
from gasbuild.check.container import check_zip, infer_format
from gasbuild.check.findings import CheckOptions, Finding
from gasbuild.stages import package
from gasbuild.stages.package import Entry, write_zip

CONFIG = b'name: "d"\nmodality: "image"\nmodel:\n  num_classes: 2\n'
MODEL = b"import torch\n"
WEIGHTS = b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "
OPTS = CheckOptions()


def _check(path: Path, opts: CheckOptions = OPTS, **kwargs: int) -> list[Finding]:
    findings, zf = check_zip(path, opts, **kwargs)
    if zf is not None:
        zf.close()
    return findings


def _codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings if f.severity == "error"}


def _zip(path: Path, files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _valid_files(**extra: bytes) -> dict[str, bytes]:
    return {"model_config.yaml": CONFIG, "model.py": MODEL, "model.safetensors": WEIGHTS, **extra}


# --------------------------------------------------------------------------- raw zip writer


@dataclass
class Raw:
    """One hand-written entry; every field the two headers carry can be made to lie."""

    name: bytes
    data: bytes  # the bytes stored in the zip (already compressed when method is 8)
    size: int | None = None  # uncompressed size (default len(data))
    method: int = 0
    flags: int = 0
    crc: int | None = None
    mode: int = 0o100644
    local_name: bytes | None = None
    local_size: int | None = None
    local_csize: int | None = None
    local_method: int | None = None
    offset: int | None = None  # central directory's header offset override
    extra: bytes = b""  # the central directory's extra field
    local_extra: bytes = b""


def _local(e: Raw) -> bytes:
    crc = zlib.crc32(e.data) if e.crc is None else e.crc
    size = len(e.data) if e.size is None else e.size
    name = e.name if e.local_name is None else e.local_name
    return (
        struct.pack(
            "<4sHHHHHIIIHH",
            b"PK\x03\x04",
            20,
            e.flags,
            e.method if e.local_method is None else e.local_method,
            0,
            0x21,
            crc,
            len(e.data) if e.local_csize is None else e.local_csize,
            size if e.local_size is None else e.local_size,
            len(name),
            len(e.local_extra),
        )
        + name
        + e.local_extra
    )


def _central(e: Raw, offset: int) -> bytes:
    crc = zlib.crc32(e.data) if e.crc is None else e.crc
    size = len(e.data) if e.size is None else e.size
    return (
        struct.pack(
            "<4sHHHHHHIIIHHHHHII",
            b"PK\x01\x02",
            (3 << 8) | 20,
            20,
            e.flags,
            e.method,
            0,
            0x21,
            crc,
            len(e.data),
            size,
            len(e.name),
            len(e.extra),
            0,
            0,
            0,
            e.mode << 16,
            offset if e.offset is None else e.offset,
        )
        + e.name
        + e.extra
    )


def _end(count: int, cd_size: int, cd_offset: int) -> bytes:
    return struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, cd_size, cd_offset, 0)


def raw_zip(entries: list[Raw]) -> bytes:
    out = bytearray()
    offsets = []
    for e in entries:
        offsets.append(len(out))
        out += _local(e) + e.data
    cd = b"".join(_central(e, off) for e, off in zip(entries, offsets, strict=True))
    return bytes(out) + cd + _end(len(entries), len(cd), len(out))


def _raw_valid(**overrides: object) -> list[Raw]:
    fields: dict[str, object] = {"name": b"model.safetensors", "data": WEIGHTS, **overrides}
    weights = Raw(**fields)  # type: ignore[arg-type]
    return [Raw(b"model_config.yaml", CONFIG), Raw(b"model.py", MODEL), weights]


def _write(tmp_path: Path, data: bytes, name: str = "s.zip") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- valid zips


def test_valid_zipfile_zip_has_no_findings(tmp_path: Path) -> None:
    findings, zf = check_zip(_zip(tmp_path / "s.zip", _valid_files()), OPTS)
    assert findings == []
    assert zf is not None
    assert sorted(zf.namelist()) == ["model.py", "model.safetensors", "model_config.yaml"]
    zf.close()


def test_optional_config_json_is_allowed(tmp_path: Path) -> None:
    path = _zip(tmp_path / "s.zip", _valid_files(**{"config.json": b"{}"}))
    assert _check(path) == []


def test_hand_written_valid_zip_is_clean(tmp_path: Path) -> None:
    assert _check(_write(tmp_path, raw_zip(_raw_valid()))) == []


@pytest.mark.parametrize("zip64_limit", [package.ZIP64_LIMIT, 10])
def test_package_writer_output_is_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zip64_limit: int
) -> None:
    """What gasbuild itself writes passes, including its zip64 records (forced small here)."""
    monkeypatch.setattr(package, "ZIP64_LIMIT", zip64_limit)
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(WEIGHTS)
    entries = [
        Entry.text("model.py", MODEL),
        Entry.text("model_config.yaml", CONFIG),
        Entry.file("model.safetensors", measure_file(weights)),
    ]
    write_zip(tmp_path / "s.zip", entries)
    assert _check(tmp_path / "s.zip") == []


def test_zipfile_forced_zip64_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in _valid_files().items():
            with zf.open(name, "w", force_zip64=True) as member:
                member.write(data)
    assert _check(path) == []


class _Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then writes data descriptors (flag bit 3)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.buffer += data
        return len(data)


def test_data_descriptor_zip_is_clean(tmp_path: Path) -> None:
    stream = _Unseekable()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in _valid_files().items():
            zf.writestr(name, data)
    path = _write(tmp_path, bytes(stream.buffer))
    with zipfile.ZipFile(path) as zf:
        assert all(info.flag_bits & 0x08 for info in zf.infolist())
    assert _check(path) == []


# --------------------------------------------------------------------------- GAS101


@pytest.mark.parametrize(
    "data",
    [b"", b"PK", b"not a zip at all" * 10, b"PK\x05\x06" + b"\x00" * 10],
    ids=["empty", "two-bytes", "text", "short-end-record"],
)
def test_not_a_zip(tmp_path: Path, data: bytes) -> None:
    findings, zf = check_zip(_write(tmp_path, data), OPTS)
    assert zf is None
    assert _codes(findings) == {"GAS101"}


def test_missing_file_is_gas101(tmp_path: Path) -> None:
    findings, zf = check_zip(tmp_path / "nope.zip", OPTS)
    assert zf is None and _codes(findings) == {"GAS101"}


def test_truncated_zip(tmp_path: Path) -> None:
    data = _zip(tmp_path / "s.zip", _valid_files()).read_bytes()
    findings, zf = check_zip(_write(tmp_path, data[: len(data) // 2], "t.zip"), OPTS)
    assert zf is None and _codes(findings) == {"GAS101"}


def test_data_running_into_the_directory(tmp_path: Path) -> None:
    """The last entry's data claims more bytes than exist before the central directory."""
    entries = _raw_valid()
    data = raw_zip(entries)
    cd_start = data.index(b"PK\x01\x02")
    # Cut 5 bytes of weights and shift the directory down: sizes now point past the data.
    cut = data[: cd_start - 5] + data[cd_start:-22]
    cut += _end(3, len(data) - 22 - cd_start, cd_start - 5)
    findings, zf = check_zip(_write(tmp_path, cut), OPTS)
    assert zf is None
    assert "GAS107" in _codes(findings)


def test_bad_central_directory(tmp_path: Path) -> None:
    data = bytearray(raw_zip(_raw_valid()))
    cd_start = data.index(b"PK\x01\x02")
    data[cd_start : cd_start + 4] = b"XXXX"
    findings, zf = check_zip(_write(tmp_path, bytes(data)), OPTS)
    assert zf is None and _codes(findings) == {"GAS101"}


def test_prefixed_data_is_refused(tmp_path: Path) -> None:
    data = _zip(tmp_path / "s.zip", _valid_files()).read_bytes()
    findings, zf = check_zip(_write(tmp_path, b"#!/bin/sh\nexit 0\n" + data, "p.zip"), OPTS)
    assert zf is None
    assert _codes(findings) == {"GAS101"}
    assert "before the zip" in findings[0].message


def test_trailing_data_is_refused(tmp_path: Path) -> None:
    data = _zip(tmp_path / "s.zip", _valid_files()).read_bytes()
    findings, zf = check_zip(_write(tmp_path, data + b"tail", "p.zip"), OPTS)
    assert zf is None and _codes(findings) == {"GAS101"}


def test_crc_mismatch_of_small_entry(tmp_path: Path) -> None:
    entries = _raw_valid(crc=0x12345678)
    findings, zf = check_zip(_write(tmp_path, raw_zip(entries)), OPTS)
    assert zf is None
    assert [(f.code, f.file) for f in findings] == [("GAS109", "model.safetensors")]


def test_too_many_entries_is_refused_before_parsing(tmp_path: Path) -> None:
    files = {f"f{i}": b"" for i in range(100)}
    findings, zf = check_zip(_zip(tmp_path / "s.zip", files), OPTS)
    assert zf is None and _codes(findings) == {"GAS110"}


# --------------------------------------------------------------------------- GAS102-104


@pytest.mark.parametrize(
    "name",
    ["../model.py", "/model.py", "sub/model.py", "sub\\model.py", "dir/", "C:model.py", "a\x01b"],
)
def test_names_not_at_root(tmp_path: Path, name: str) -> None:
    path = _zip(tmp_path / "s.zip", _valid_files(**{name: b"x"}))
    findings, zf = check_zip(path, OPTS)
    assert _codes(findings) == {"GAS102"}
    assert zf is not None  # layout problems still leave the zip readable for reporting
    zf.close()


def test_directory_entry(tmp_path: Path) -> None:
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in _valid_files().items():
            zf.writestr(name, data)
        zf.mkdir("weights")
    findings = _check(path)
    assert _codes(findings) == {"GAS102"}
    assert "directory" in findings[0].message


def test_duplicate_names(tmp_path: Path) -> None:
    path = tmp_path / "s.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns "Duplicate name"
        _zip(path, _valid_files())
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("model.py", b"import os\n")
    findings = _check(path)
    assert _codes(findings) == {"GAS103"}
    assert findings[0].file == "model.py"


def test_names_differing_only_in_case(tmp_path: Path) -> None:
    findings = _check(_zip(tmp_path / "s.zip", _valid_files(**{"Model.py": b"x"})))
    assert "GAS103" in _codes(findings)


def test_symlink(tmp_path: Path) -> None:
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in _valid_files().items():
            info = zipfile.ZipInfo(name)
            if name == "model.safetensors":
                info.create_system = 3
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                data = b"/etc/passwd"
            zf.writestr(info, data)
    assert _codes(_check(path)) == {"GAS104"}


def test_special_file_mode(tmp_path: Path) -> None:
    entries = _raw_valid(mode=stat.S_IFIFO | 0o644)
    assert _codes(_check(_write(tmp_path, raw_zip(entries)))) == {"GAS104"}


# --------------------------------------------------------------------------- GAS105-108


def test_encrypted_flag(tmp_path: Path) -> None:
    findings, zf = check_zip(_write(tmp_path, raw_zip(_raw_valid(flags=0x1))), OPTS)
    assert zf is None
    assert _codes(findings) == {"GAS105"}


def test_other_compression_method(tmp_path: Path) -> None:
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in _valid_files().items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_BZIP2)
    findings, zf2 = check_zip(path, OPTS)
    assert zf2 is None
    assert _codes(findings) == {"GAS106"}
    assert "bzip2" in findings[0].message


@pytest.mark.parametrize(
    ("override", "what"),
    [
        ({"local_name": b"model.safetensorz"}, "name"),  # what a tool reading locals sees
        ({"local_size": 3}, "size"),
        ({"local_csize": 3}, "compressed size"),
        ({"local_method": 8}, "compression method"),
    ],
)
def test_local_header_lies(tmp_path: Path, override: dict[str, object], what: str) -> None:
    findings, zf = check_zip(_write(tmp_path, raw_zip(_raw_valid(**override))), OPTS)
    assert zf is None
    assert _codes(findings) == {"GAS107"}
    assert any(f"local header's {what} " in f.message for f in findings)


def test_stored_entry_with_two_sizes(tmp_path: Path) -> None:
    entries = _raw_valid(size=len(WEIGHTS) + 10, local_size=len(WEIGHTS) + 10)
    findings, zf = check_zip(_write(tmp_path, raw_zip(entries)), OPTS)
    assert zf is None and "GAS107" in _codes(findings)


def test_overlapping_entries_zip_bomb(tmp_path: Path) -> None:
    """Fifield's overlap: entry A's stored data *is* entry B's local header and data."""
    kernel = b"\x00" * 64
    b_entry = Raw(b"model.safetensors", kernel)
    b_bytes = _local(b_entry) + kernel
    a_entry = Raw(b"model.py", b_bytes)
    c_entry = Raw(b"model_config.yaml", CONFIG)
    body = _local(a_entry) + b_bytes
    c_offset = len(body)
    body += _local(c_entry) + CONFIG
    b_offset = len(_local(a_entry))
    cd = _central(a_entry, 0) + _central(b_entry, b_offset) + _central(c_entry, c_offset)
    data = body + cd + _end(3, len(cd), len(body))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:  # zipfile itself lists it happily
        assert len(zf.namelist()) == 3
    findings, zf2 = check_zip(_write(tmp_path, data), OPTS)
    assert zf2 is None
    assert _codes(findings) == {"GAS107"}
    overlap = [f for f in findings if "overlap" in f.message]
    assert [f.file for f in overlap] == ["model.safetensors"]


def test_same_header_offset_twice(tmp_path: Path) -> None:
    a = Raw(b"model.py", MODEL)
    body = _local(a) + MODEL
    twin = Raw(b"model.py", MODEL)
    cd = _central(a, 0) + _central(twin, 0)
    data = body + cd + _end(2, len(cd), len(body))
    assert "GAS107" in _codes(_check(_write(tmp_path, data)))


def test_end_record_count_disagrees(tmp_path: Path) -> None:
    data = raw_zip(_raw_valid())
    cd_start = data.index(b"PK\x01\x02")
    data = data[:-22] + _end(2, len(data) - 22 - cd_start, cd_start)
    assert "GAS107" in _codes(_check(_write(tmp_path, data)))


def test_compression_ratio_bomb(tmp_path: Path) -> None:
    path = _zip(tmp_path / "s.zip", _valid_files(**{"model.safetensors": b"\x00" * (4 << 20)}))
    findings, zf = check_zip(path, OPTS)
    assert zf is None
    assert [(f.code, f.file) for f in findings] == [("GAS108", "model.safetensors")]


def test_declared_ratio_never_extracted(tmp_path: Path) -> None:
    """A 4 GiB declared size is judged from the headers alone, never by inflating."""
    deflated = zlib.compress(WEIGHTS)[2:-4]
    entries = _raw_valid(data=deflated, method=8, size=0xFFFFFFF0, crc=zlib.crc32(WEIGHTS))
    findings, zf = check_zip(_write(tmp_path, raw_zip(entries)), OPTS)
    assert zf is None
    assert _codes(findings) == {"GAS108"}


def test_total_size_cap(tmp_path: Path) -> None:
    path = _zip(tmp_path / "s.zip", _valid_files(), method=zipfile.ZIP_STORED)
    findings, zf = check_zip(path, OPTS, max_total_size=50)
    assert zf is None
    assert _codes(findings) == {"GAS108"}


def test_stored_incompressible_large_entry_passes_ratio(tmp_path: Path) -> None:
    big = bytes(range(256)) * (8 << 10)  # 2 MiB, stored: ratio 1
    path = _zip(tmp_path / "s.zip", _valid_files(**{"model.safetensors": big}), zipfile.ZIP_STORED)
    assert _check(path) == []


# --------------------------------------------------------------------------- GAS110


def test_missing_and_extra_files_are_named(tmp_path: Path) -> None:
    files = _valid_files(**{"README.md": b"hi", "helper.py": b""})
    del files["model.py"]
    findings = _check(_zip(tmp_path / "s.zip", files))
    assert _codes(findings) == {"GAS110"}
    assert {f.file for f in findings} == {"model.py", "README.md", "helper.py"}
    assert [f.message for f in findings if f.file == "model.py"] == ["model.py is missing"]


def test_weights_name_comes_from_config(tmp_path: Path) -> None:
    config = CONFIG + b'  weights_file: "detector.safetensors"\n'
    files = {"model_config.yaml": config, "model.py": MODEL, "detector.safetensors": WEIGHTS}
    assert _check(_zip(tmp_path / "s.zip", files)) == []
    files["model.safetensors"] = WEIGHTS
    findings = _check(_zip(tmp_path / "t.zip", files))
    assert [(f.code, f.file) for f in findings] == [("GAS110", "model.safetensors")]


def test_config_naming_another_weights_file_is_left_to_the_config_check(tmp_path: Path) -> None:
    """The lone .safetensors stands in: GAS207 (the config's code) reports the wrong name."""
    for value in (b"detector.safetensors", b"../model.safetensors"):
        config = CONFIG + b'  weights_file: "' + value + b'"\n'
        files = _valid_files(**{"model_config.yaml": config})
        assert _check(_zip(tmp_path / "s.zip", files)) == []


def test_config_naming_a_missing_weights_file(tmp_path: Path) -> None:
    config = CONFIG + b'  weights_file: "detector.safetensors"\n'
    files = _valid_files(**{"model_config.yaml": config, "extra.safetensors": b""})
    findings = _check(_zip(tmp_path / "s.zip", files))
    assert {(f.code, f.file) for f in findings} == {
        ("GAS110", "detector.safetensors"),
        ("GAS110", "extra.safetensors"),
        ("GAS110", "model.safetensors"),
    }


def test_pt_weights_instead_of_safetensors(tmp_path: Path) -> None:
    files = _valid_files(**{"model.pt": b"\x80\x04"})
    del files["model.safetensors"]
    findings = _check(_zip(tmp_path / "s.zip", files))
    assert {(f.code, f.file) for f in findings} == {
        ("GAS110", "model.safetensors"),
        ("GAS110", "model.pt"),
    }


def test_without_config_the_lone_safetensors_is_the_weights(tmp_path: Path) -> None:
    files = {"model.py": MODEL, "detector.safetensors": WEIGHTS}
    findings = _check(_zip(tmp_path / "s.zip", files))
    assert [(f.code, f.file) for f in findings] == [("GAS110", "model_config.yaml")]


def test_onnx_single_file(tmp_path: Path) -> None:
    assert _check(_zip(tmp_path / "s.zip", {"image_detector.onnx": b"onnx"})) == []


def test_onnx_with_external_data(tmp_path: Path) -> None:
    files = {"image_detector.onnx": b"onnx", "image_detector.onnx.data": b"\x00"}
    findings = _check(_zip(tmp_path / "s.zip", files))
    assert [(f.code, f.file) for f in findings] == [("GAS110", "image_detector.onnx.data")]


def test_onnx_two_models(tmp_path: Path) -> None:
    findings = _check(_zip(tmp_path / "s.zip", {"a.onnx": b"1", "b.onnx": b"2"}))
    assert _codes(findings) == {"GAS110"}
    assert "2 .onnx files" in findings[0].message


def test_expected_format_overrides_inference(tmp_path: Path) -> None:
    path = _zip(tmp_path / "s.zip", {"a.onnx": b"1"})
    findings = _check(path, CheckOptions(format="safetensors"))
    assert {f.file for f in findings} == {
        "a.onnx",
        "model.py",
        "model_config.yaml",
        "model.safetensors",
    }
    findings = _check(_zip(tmp_path / "t.zip", _valid_files()), CheckOptions(format="onnx"))
    assert any(f.message == "no .onnx file" for f in findings)


def test_infer_format() -> None:
    assert infer_format(["model.py", "x.ONNX"]) == "onnx"
    assert infer_format(["model.py", "model.safetensors"]) == "safetensors"
    assert infer_format([]) == "safetensors"


# --------------------------------------------------------------------------- properties


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(tmp_path: Path, data: bytes) -> None:
    findings, zf = check_zip(_write(tmp_path, data, "h.zip"), OPTS)
    if zf is not None:
        zf.close()
    assert zf is None or not any(f.code == "GAS101" for f in findings)


@functools.cache
def _base_zips(tmp: str) -> tuple[bytes, ...]:
    """A hand-written zip, a zipfile deflate zip, and gasbuild's own zip64 layout."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in _valid_files().items():
            zf.writestr(name, data)
    weights = Path(tmp) / "w.safetensors"
    weights.write_bytes(WEIGHTS)
    saved, package.ZIP64_LIMIT = package.ZIP64_LIMIT, 10
    try:
        entries = [Entry.text("model.py", MODEL), Entry.file("w.bin", measure_file(weights))]
        write_zip(Path(tmp) / "z64.zip", entries)
    finally:
        package.ZIP64_LIMIT = saved
    return raw_zip(_raw_valid()), buffer.getvalue(), (Path(tmp) / "z64.zip").read_bytes()


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    base=st.integers(min_value=0, max_value=2),
    flips=st.lists(
        st.tuples(st.integers(min_value=0, max_value=10_000), st.integers(0, 255)), max_size=3
    ),
    cut=st.integers(min_value=0, max_value=10_000),
)
def test_mutated_zips_never_raise(
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    base: int,
    flips: list[tuple[int, int]],
    cut: int,
) -> None:
    """Byte flips and truncations of real zips reach the parser's deep paths."""
    data = bytearray(_base_zips(str(tmp_path_factory.getbasetemp()))[base])
    for position, value in flips:
        data[position % len(data)] = value
    if cut % 3 == 0:
        del data[len(data) - cut % len(data) :]
    findings, zf = check_zip(_write(tmp_path, bytes(data), "m.zip"), OPTS)
    if zf is not None:
        zf.close()
    assert all(isinstance(f, Finding) for f in findings)


# --------------------------------------------------------------------------- issue 15: hostile zips


def _unicode_path(name: bytes, header_name: bytes) -> bytes:
    """An Info-ZIP Unicode Path extra field (0x7075) naming ``name``."""
    body = b"\x01" + struct.pack("<I", zlib.crc32(header_name)) + name
    return struct.pack("<HH", 0x7075, len(body)) + body


def test_crc_of_a_large_stored_entry_is_checked(tmp_path: Path) -> None:
    """One byte flipped in a 2 MiB stored entry: zipfile and unzip say 'Bad CRC-32'."""
    weights = WEIGHTS + bytes(range(256)) * (8 << 10)
    path = _zip(tmp_path / "s.zip", _valid_files(**{"model.safetensors": weights}), 0)
    data = bytearray(path.read_bytes())
    data[data.index(bytes(range(256))) + 1_000_000] ^= 0xFF
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf, pytest.raises(zipfile.BadZipFile, match="CRC"):
        zf.read("model.safetensors")
    findings, zf2 = check_zip(path, OPTS)
    assert zf2 is None
    assert [(f.code, f.file) for f in findings] == [("GAS109", "model.safetensors")]


def test_crc_of_a_large_deflated_entry_is_checked(tmp_path: Path) -> None:
    import random

    weights = WEIGHTS + random.Random(15).randbytes(2 << 20)
    path = _zip(tmp_path / "s.zip", _valid_files(**{"model.safetensors": weights}))
    info = zipfile.ZipFile(path).getinfo("model.safetensors")
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, info.header_offset + 14, info.CRC ^ 1)  # local CRC
    for pos in _all(bytes(data), b"PK\x01\x02"):  # and the directory's: the headers agree
        if data[pos + 46 : pos + 46 + 17] == b"model.safetensors":
            struct.pack_into("<I", data, pos + 16, info.CRC ^ 1)
    path.write_bytes(bytes(data))
    findings, zf = check_zip(path, OPTS)
    assert zf is None
    assert [(f.code, f.file) for f in findings] == [("GAS109", "model.safetensors")]


def _all(data: bytes, needle: bytes) -> list[int]:
    found, pos = [], data.find(needle)
    while pos >= 0:
        found.append(pos)
        pos = data.find(needle, pos + 1)
    return found


def test_deflate_stream_shorter_than_its_compressed_size(tmp_path: Path) -> None:
    """Bytes after the deflate stream's last block, inside the declared compressed size."""
    packed = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = packed.compress(MODEL) + packed.flush() + b"hidden"
    entries = [
        Raw(b"model_config.yaml", CONFIG),
        Raw(b"model.py", body, size=len(MODEL), method=8, crc=zlib.crc32(MODEL)),
        Raw(b"model.safetensors", WEIGHTS),
    ]
    findings, zf = check_zip(_write(tmp_path, raw_zip(entries)), OPTS)
    assert zf is None and _codes(findings) == {"GAS109"}


@pytest.mark.parametrize("where", ["extra", "local_extra"])
def test_unicode_path_extra_field_renaming_an_entry(tmp_path: Path, where: str) -> None:
    extra = _unicode_path(b"evil.py", b"model.py")
    entries = [Raw(b"model_config.yaml", CONFIG), Raw(b"model.py", MODEL, **{where: extra}),
               Raw(b"model.safetensors", WEIGHTS)]  # fmt: skip
    findings, zf = check_zip(_write(tmp_path, raw_zip(entries)), OPTS)
    assert zf is None
    assert [(f.code, f.file) for f in findings] == [("GAS107", "model.py")]
    assert "'evil.py'" in findings[0].message


def test_unicode_path_extra_field_naming_the_same_file_is_fine(tmp_path: Path) -> None:
    extra = _unicode_path(b"model.py", b"model.py")
    entries = [Raw(b"model_config.yaml", CONFIG), Raw(b"model.py", MODEL, extra=extra,
               local_extra=extra), Raw(b"model.safetensors", WEIGHTS)]  # fmt: skip
    assert _check(_write(tmp_path, raw_zip(entries))) == []


def test_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    import os
    import threading

    fifo = tmp_path / "x.zip"
    os.mkfifo(fifo)
    result: list[list[Finding]] = []
    worker = threading.Thread(target=lambda: result.append(_check(fifo)), daemon=True)
    worker.start()
    worker.join(20)
    if worker.is_alive():  # release the reader before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("check_zip blocked on a FIFO")
    assert _codes(result[0]) == {"GAS101"} and "FIFO" in result[0][0].message


def test_device_is_refused(tmp_path: Path) -> None:
    findings = _check(Path("/dev/zero"))
    assert _codes(findings) == {"GAS101"} and "device" in findings[0].message


def test_names_differing_only_in_unicode_normalisation(tmp_path: Path) -> None:
    nfc, nfd = "modèl.py".encode(), "mode\u0300l.py".encode()
    entries = [*_raw_valid(), Raw(nfc, MODEL, flags=0x800), Raw(nfd, MODEL, flags=0x800)]
    findings, _ = check_zip(_write(tmp_path, raw_zip(entries)), OPTS)
    assert any(f.code == "GAS103" and "normalisation" in f.message for f in findings)


@pytest.mark.parametrize("char", ["\u202e", "\u200b", "\ue000"])
def test_invisible_characters_in_a_name(tmp_path: Path, char: str) -> None:
    name = f"model{char}.py".encode()
    findings, _ = check_zip(_write(tmp_path, raw_zip([*_raw_valid(), Raw(name, MODEL,
                            flags=0x800)])), OPTS)  # fmt: skip
    assert any(f.code == "GAS102" and "invisible" in f.message for f in findings)


def test_bytes_hidden_between_entries(tmp_path: Path) -> None:
    entries = _raw_valid()
    data = raw_zip(entries)
    second = data.index(b"PK\x03\x04", 4)
    hidden = data[:second] + b"HIDDEN" + data[second:]
    cd_start = hidden.index(b"PK\x01\x02")
    cd = bytearray(hidden[cd_start:-22])
    for pos in _all(bytes(cd), b"PK\x01\x02"):
        offset = struct.unpack_from("<I", cd, pos + 42)[0]
        if offset >= second:
            struct.pack_into("<I", cd, pos + 42, offset + 6)
    fixed = hidden[:cd_start] + bytes(cd) + _end(3, len(cd), cd_start)
    findings, zf = check_zip(_write(tmp_path, fixed), OPTS)
    assert zf is None
    assert any(f.code == "GAS107" and "belong to no entry" in f.message for f in findings)


def test_second_end_record_in_the_comment(tmp_path: Path) -> None:
    data = raw_zip(_raw_valid())
    fake = data[-22:]
    comment = fake
    doubled = data[:-2] + struct.pack("<H", len(comment)) + comment
    findings, zf = check_zip(_write(tmp_path, doubled), OPTS)
    assert zf is None and _codes(findings) == {"GAS101"}


def test_zip64_end_record_disagreeing_with_the_end_record(tmp_path: Path) -> None:
    path = tmp_path / "z.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in _valid_files().items():
            zf.writestr(name, data)
    raw = path.read_bytes()
    cd_start = raw.index(b"PK\x01\x02")
    cd_size = len(raw) - 22 - cd_start
    zip64 = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, 3, 3, cd_size, cd_start)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, len(raw) - 22, 1)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 2, 2, cd_size, cd_start, 0)  # says 2
    findings, zf2 = check_zip(_write(tmp_path, raw[:-22] + zip64 + locator + end, "y.zip"), OPTS)
    assert zf2 is None and _codes(findings) == {"GAS101"}


def test_data_descriptor_that_lies(tmp_path: Path) -> None:
    stream = _Unseekable()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_STORED) as zf:
        for name, data in _valid_files().items():
            zf.writestr(name, data)
    data = bytearray(stream.buffer)
    pos = data.index(b"PK\x07\x08")
    data[pos + 4] ^= 0xFF  # the first descriptor's CRC
    findings, zf2 = check_zip(_write(tmp_path, bytes(data)), OPTS)
    assert zf2 is None
    assert any(f.code == "GAS107" and "descriptor" in f.message for f in findings)


def test_file_marked_as_a_directory(tmp_path: Path) -> None:
    entries = _raw_valid(mode=0o040755)
    findings, _ = check_zip(_write(tmp_path, raw_zip(entries)), OPTS)
    assert any(f.code == "GAS102" and "directory" in f.message for f in findings)
