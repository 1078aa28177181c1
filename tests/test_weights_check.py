"""Safetensors header checks (GAS4xx): hand-written headers for every way one can be wrong, real
files from safetensors for the ways one is right, and a 4 GiB sparse file read in milliseconds."""

from __future__ import annotations

import io
import json
import struct
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save as np_save
from safetensors.torch import save as torch_save

from gasbuild.check.findings import (
    CheckOptions,
    DirectorySubmission,
    Finding,
    StagedSubmission,
    ZipSubmission,
)
from gasbuild.check.weights import (
    DTYPE_BITS,
    MAX_REPORTED,
    SafetensorsHeader,
    WeightsFormatError,
    check_weights,
    read_header,
    read_header_path,
    scan_values,
)

CONFIG = b"name: x\nmodality: image\nmodel:\n  num_classes: 2\n"


def _file(
    header: Mapping[str, object] | bytes, data: bytes = b"", length: int | None = None
) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    size = len(raw) if length is None else length
    return struct.pack("<Q", size) + raw + data


def _read(data: bytes) -> SafetensorsHeader:
    return read_header(io.BytesIO(data), len(data))


def _fails(data: bytes) -> WeightsFormatError:
    with pytest.raises(WeightsFormatError) as info:
        _read(data)
    return info.value


def _entry(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, object]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def _check(
    weights: bytes, deep: bool = False, config: bytes = CONFIG, name: str = "model.safetensors"
) -> list[Finding]:
    entries: dict[str, bytes | Path] = {"model_config.yaml": config, name: weights}
    return check_weights(StagedSubmission(entries, "sub"), CheckOptions(deep=deep))


def _codes(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.code, f.severity) for f in findings]


# --------------------------------------------------------------------------- valid files


def test_numpy_file_round_trips() -> None:
    data = np_save(
        {"w": np.ones((3, 4), np.float32), "b": np.arange(5, dtype=np.int64)},
        metadata={"format": "np"},
    )
    header = _read(data)
    assert {(t.name, t.dtype, tuple(t.shape)) for t in header.tensors} == {
        ("w", "F32", (3, 4)),
        ("b", "I64", (5,)),
    }
    assert header.metadata == {"format": "np"}
    assert header.data_size == 48 + 40
    assert _check(data, deep=True) == []


def test_torch_file_with_every_float_dtype_is_clean() -> None:
    tensors = {
        "f16": torch.ones(4, dtype=torch.float16),
        "bf16": torch.ones(4, dtype=torch.bfloat16),
        "f64": torch.ones(2, dtype=torch.float64),
        "e5m2": torch.ones(3, dtype=torch.float8_e5m2),
        "e4m3": torch.ones(3, dtype=torch.float8_e4m3fn),
        "empty": torch.zeros((0, 3)),
        "flag": torch.ones(2, dtype=torch.bool),
    }
    assert _check(torch_save(tensors), deep=True) == []


def test_read_header_path(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(np_save({"x": np.zeros(7, np.float16)}))
    header = read_header_path(path)
    assert [(t.begin, t.end) for t in header.tensors] == [(0, 14)]
    assert header.data_start == 8 + header.header_size


def test_empty_file_is_a_warning() -> None:
    assert _codes(_check(_file({}))) == [("GAS405", "warning")]
    assert _codes(_check(_file({"__metadata__": {"a": "b"}}))) == [("GAS405", "warning")]


def test_padding_spaces_after_the_json_are_fine() -> None:
    data = _file(b'{"x": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}    ', b"ab")
    assert _read(data).tensors[0].name == "x"


def test_the_config_names_the_weights_file() -> None:
    config = CONFIG + b"  weights_file: other.safetensors\n"
    assert _codes(_check(_file({}), config=config, name="other.safetensors")) == [
        ("GAS405", "warning")
    ]
    assert _check(b"garbage", config=config, name="model.safetensors") == []  # not the weights


def test_missing_weights_file_is_left_to_other_checks() -> None:
    sub = StagedSubmission({"model_config.yaml": CONFIG}, "sub")
    assert check_weights(sub, CheckOptions()) == []


def test_weights_inside_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "s.zip"
    data = torch_save({"x": torch.tensor([1.0, float("nan")])})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model_config.yaml", CONFIG)
        zf.writestr("model.safetensors", data)
    with zipfile.ZipFile(path) as zf:
        findings = check_weights(ZipSubmission(zf, "s.zip"), CheckOptions(deep=True))
    assert _codes(findings) == [("GAS404", "error")]


# --------------------------------------------------------------------------- GAS401


@pytest.mark.parametrize("data", [b"", b"\x00", b"1234567"])
def test_shorter_than_eight_bytes(data: bytes) -> None:
    assert _fails(data).code == "GAS401"


def test_header_length_over_the_cap() -> None:
    error = _fails(struct.pack("<Q", 2**63) + b"{}")
    assert error.code == "GAS401" and "limit" in error.message
    error = _fails(struct.pack("<Q", 100_000_001) + b"{}")
    assert error.code == "GAS401"


def test_header_length_past_the_file() -> None:
    error = _fails(_file(b"{}", length=50))
    assert error.code == "GAS401" and "past the end" in error.message


def test_custom_header_cap() -> None:
    data = _file({})
    with pytest.raises(WeightsFormatError):
        read_header(io.BytesIO(data), len(data), max_header=1)


def test_pickle_file_is_not_safetensors() -> None:
    buffer = io.BytesIO()
    torch.save({"x": torch.ones(2)}, buffer)
    assert _fails(buffer.getvalue()).code == "GAS401"


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b' {"a": 1}', "'{'"),  # the format requires '{' first
        (b"{not json}", "JSON"),
        (b'{"a": NaN}', "JSON"),
        (b"[1, 2]", "'{'"),
        (b'{"x": 1, "x": 2}', "duplicate"),
        (b'{"\xff": 1}', "UTF-8"),
        (b"{" * 100_000, "JSON"),
        (b'{"__metadata__": {"a": 1}}', "__metadata__"),
        (b'{"__metadata__": ["a"]}', "__metadata__"),
    ],
)
def test_bad_json(raw: bytes, words: str) -> None:
    error = _fails(_file(raw))
    assert error.code == "GAS401"
    assert words in error.message


@pytest.mark.parametrize("shape", [[-1], [2.0], [True], "2", None, [[2]], [2**64]])
def test_bad_shape(shape: object) -> None:
    entry = {"dtype": "U8", "shape": shape, "data_offsets": [0, 2]}
    assert _fails(_file({"x": entry}, b"ab")).code == "GAS401"


def test_entry_not_an_object() -> None:
    assert _fails(_file({"x": [1, 2]})).code == "GAS401"


# --------------------------------------------------------------------------- GAS402


@pytest.mark.parametrize("dtype", ["F128", "f32", "float32", "", None, 32])
def test_unknown_dtype(dtype: object) -> None:
    entry = {"dtype": dtype, "shape": [1], "data_offsets": [0, 4]}
    error = _fails(_file({"x": entry}, b"\x00" * 4))
    assert error.code == "GAS402"


def test_missing_dtype() -> None:
    assert _fails(_file({"x": {"shape": [1], "data_offsets": [0, 1]}}, b"\x00")).code == "GAS402"


@pytest.mark.parametrize("dtype", sorted(DTYPE_BITS))
def test_every_known_dtype_parses(dtype: str) -> None:
    count = 8  # whole bytes for the 4- and 6-bit formats too
    size = count * DTYPE_BITS[dtype] // 8
    header = _read(_file({"x": _entry(dtype, [count], 0, size)}, b"\x00" * size))
    assert header.tensors[0].dtype == dtype


@pytest.mark.parametrize("dtype", ["F8_E8M0", "F4", "F6_E2M3"])
def test_dtypes_torch_cannot_load(dtype: str) -> None:
    size = 8 * DTYPE_BITS[dtype] // 8
    findings = _check(_file({"x": _entry(dtype, [8], 0, size)}, b"\x00" * size))
    assert _codes(findings) == [("GAS402", "error")]
    assert dtype in findings[0].message


def test_complex_weights_warn_about_the_cast() -> None:
    data = torch_save({"c": torch.ones(2, dtype=torch.complex64)})
    findings = _check(data, config=CONFIG + b"dtype: fp16\n")
    assert _codes(findings) == [("GAS402", "warning")]
    assert "float16" in findings[0].message


# --------------------------------------------------------------------------- GAS403


def test_size_does_not_match_shape() -> None:
    error = _fails(_file({"x": _entry("F32", [2], 0, 4)}, b"\x00" * 4))
    assert error.code == "GAS403" and "needs 8" in error.message


def test_gap_between_tensors() -> None:
    header = {"a": _entry("U8", [2], 0, 2), "b": _entry("U8", [2], 4, 6)}
    error = _fails(_file(header, b"\x00" * 6))
    assert error.code == "GAS403" and error.message.startswith("gap")


def test_gap_at_the_start() -> None:
    error = _fails(_file({"a": _entry("U8", [2], 2, 4)}, b"\x00" * 4))
    assert error.code == "GAS403" and error.message.startswith("gap")


def test_overlapping_tensors() -> None:
    header = {"a": _entry("U8", [4], 0, 4), "b": _entry("U8", [4], 2, 6)}
    error = _fails(_file(header, b"\x00" * 6))
    assert error.code == "GAS403" and error.message.startswith("overlap")


def test_two_tensors_sharing_bytes() -> None:
    header = {"a": _entry("U8", [4], 0, 4), "b": _entry("U8", [4], 0, 4)}
    assert _fails(_file(header, b"\x00" * 4)).code == "GAS403"


def test_trailing_bytes_after_the_last_tensor() -> None:
    error = _fails(_file({"a": _entry("U8", [2], 0, 2)}, b"\x00" * 5))
    assert error.code == "GAS403" and "short of the end" in error.message


def test_tensor_past_the_end_of_the_file() -> None:
    error = _fails(_file({"a": _entry("U8", [8], 0, 8)}, b"\x00" * 5))
    assert error.code == "GAS403" and "past the end" in error.message


@pytest.mark.parametrize("offsets", [[4, 0], [0], [0, 1, 2], "0-4", [-1, 3], [0.0, 4.0]])
def test_bad_offsets(offsets: object) -> None:
    entry = {"dtype": "U8", "shape": [4], "data_offsets": offsets}
    assert _fails(_file({"x": entry}, b"\x00" * 4)).code == "GAS403"


def test_sub_byte_dtype_must_fill_whole_bytes() -> None:
    error = _fails(_file({"x": _entry("F4", [3], 0, 2)}, b"\x00" * 2))
    assert error.code == "GAS403" and "whole bytes" in error.message


def test_element_count_overflow() -> None:
    error = _fails(_file({"x": _entry("U8", [2**40, 2**40], 0, 0)}))
    assert error.code == "GAS403" and "64-bit" in error.message


def test_every_broken_entry_is_reported() -> None:
    header = {f"t{i}": _entry("F32", [2], 0, 4) for i in range(3)}
    findings = _check(_file(header, b"\x00" * 4))
    assert len([f for f in findings if f.code == "GAS403"]) >= 3


def test_reports_are_capped() -> None:
    header = {f"t{i:03}": _entry("F32", [1], 0, 0) for i in range(100)}
    findings = _check(_file(header))
    assert len(findings) == MAX_REPORTED + 1
    assert findings[-1].message.startswith("and ")


# --------------------------------------------------------------------------- GAS404


def _nonfinite_file() -> bytes:
    return torch_save(
        {
            "ok32": torch.ones(10),
            "nan32": torch.tensor([1.0, float("nan")]),
            "inf16": torch.tensor([float("-inf"), 0.0], dtype=torch.float16),
            "nanbf16": torch.tensor([0.0, float("nan")], dtype=torch.bfloat16),
            "okbf16": torch.tensor([3.0e38, -3.0e38], dtype=torch.bfloat16),
            "inf64": torch.tensor([float("inf")], dtype=torch.float64),
            "infe5m2": torch.tensor([float("inf")]).to(torch.float8_e5m2),
            "nane4m3": torch.tensor([float("nan")]).to(torch.float8_e4m3fn),
            "oke4m3": torch.tensor([448.0, -448.0]).to(torch.float8_e4m3fn),
            "ints": torch.full((4,), -1, dtype=torch.int32),  # all bits set: not a float
        }
    )


BAD = ["inf16", "inf64", "infe5m2", "nan32", "nanbf16", "nane4m3"]


def test_nan_and_inf_are_found_with_deep() -> None:
    findings = _check(_nonfinite_file(), deep=True)
    assert {f.code for f in findings} == {"GAS404"}
    assert sorted(f.message.split("'")[1] for f in findings) == BAD


def test_values_are_not_read_without_deep() -> None:
    assert _check(_nonfinite_file()) == []


@pytest.mark.parametrize("chunk", [8, 16, 24, 1 << 20])
def test_scan_is_chunk_independent(chunk: int) -> None:
    data = _nonfinite_file()
    f = io.BytesIO(data)
    assert sorted(scan_values(f, read_header(f, len(data)), chunk=chunk)) == BAD


class _NoSeek(io.RawIOBase):
    """A pipe-like stream: readable, not seekable."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(min(len(buffer), 5))  # short reads, as from a pipe
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_scan_of_an_unseekable_stream() -> None:
    data = _nonfinite_file()
    f = io.BufferedReader(_NoSeek(data), buffer_size=7)
    assert not f.seekable()
    header = read_header(f, len(data))
    assert sorted(scan_values(f, header, chunk=16)) == BAD


def test_scan_of_a_file_shorter_than_its_header_says() -> None:
    data = np_save({"x": np.ones(4, np.float32)})
    header = _read(data)
    with pytest.raises(WeightsFormatError):
        scan_values(io.BytesIO(data[:-3]), header)


# --------------------------------------------------------------------------- speed


def test_header_of_a_4gib_sparse_file_reads_in_milliseconds(tmp_path: Path) -> None:
    header = json.dumps({"w": _entry("F32", [2**30], 0, 2**32)}).encode()
    path = tmp_path / "big.safetensors"
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(8 + len(header) + 2**32)  # sparse: no 4 GiB written
    assert path.stat().st_size > 2**32
    start = time.perf_counter()
    parsed = read_header_path(path)
    elapsed = time.perf_counter() - start
    assert parsed.data_size == 2**32
    assert elapsed < 0.05, f"{elapsed * 1000:.1f} ms: the data must not be read"


# --------------------------------------------------------------------------- properties


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_read_header_raises_only_its_error_on_bytes(data: bytes) -> None:
    try:
        _read(data)
    except WeightsFormatError as error:
        assert error.code.startswith("GAS40")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
ENTRY = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from([*DTYPE_BITS, "X"]) | JSON,
        "shape": st.lists(st.integers(-1, 5), max_size=3) | JSON,
        "data_offsets": st.lists(st.integers(-1, 40), min_size=2, max_size=2) | JSON,
    }
)


@settings(max_examples=500, deadline=None)
@given(
    header=st.dictionaries(st.text(max_size=4), ENTRY | JSON, max_size=4),
    data=st.binary(max_size=40),
)
def test_read_header_raises_only_its_error_on_headers(
    header: dict[str, object], data: bytes
) -> None:
    blob = _file(header, data)
    try:
        _read(blob)
    except WeightsFormatError as error:
        assert error.code.startswith("GAS40")
    findings = _check(blob, deep=True)
    assert all(isinstance(f, Finding) for f in findings)


def test_corrupt_zip_member_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    """Large members are not CRC-checked by the container; the deep scan meets the bad CRC."""
    path = tmp_path / "s.zip"
    data = torch_save({"x": torch.ones(1000)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("model.safetensors", data)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # inside the tensor data: the header still parses
    path.write_bytes(bytes(raw))
    with zipfile.ZipFile(path) as zf:
        findings = check_weights(ZipSubmission(zf, "s.zip"), CheckOptions(deep=True))
    assert _codes(findings) == [("GAS401", "error")]
    assert "CRC" in findings[0].message


def test_a_folder_named_like_the_weights_is_a_layout_error(tmp_path: Path) -> None:
    """A directory view lists regular files only; the folder is the directory check's GAS102."""
    from gasbuild.check.paths import check_paths

    (tmp_path / "model.safetensors").mkdir()
    sub = DirectorySubmission(tmp_path, "dir")
    assert check_weights(sub, CheckOptions()) == []
    ((_, findings),) = check_paths([tmp_path], CheckOptions(smoke=False), check_manifest=None)  # type: ignore[arg-type]
    codes = {(f.code, f.file) for f in findings}
    assert ("GAS102", "model.safetensors") in codes
    assert ("GAS110", "model.safetensors") in codes


def test_a_dropped_entry_does_not_also_report_a_gap() -> None:
    header = {"a": _entry("Q7", [2], 0, 2), "b": _entry("U8", [2], 2, 4)}
    findings = _check(_file(header, b"\x00" * 4))
    assert _codes(findings) == [("GAS402", "error")]
