"""model_config.yaml checks: each GAS2xx rule, with the line it points at."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gasbuild.check.config import MAX_CONFIG_BYTES, check_config, parse_config
from gasbuild.check.findings import (
    CheckOptions,
    DirectorySubmission,
    Finding,
    StagedSubmission,
)
from gasbuild.submission import Modality

IMAGE = """\
name: "my-detector-v1"
version: "1.0.0"
modality: "image"
dtype: "float32"
preprocessing:
  resize: [224, 224]
  normalize:
    mean: [0.485, 0.456, 0.406]
    std: [0.229, 0.224, 0.225]
model:
  num_classes: 2
  weights_file: "model.safetensors"
  backbone: "efficientnet_b0"
"""

VIDEO = """\
name: video-1
version: "2"
modality: video
dtype: bf16
preprocessing:
  resize: [256, 256]
  num_frames: 16
  frame_rate: 8.0
model:
  num_classes: 3
"""

AUDIO = """\
name: audio_1
modality: audio
preprocessing:
  sample_rate: 16000
  duration_seconds: 6
model:
  num_classes: 1
  layers: [64, 128]
  head: {dropout: 0.1, act: null, bias: true}
"""


def _check(
    text: str | bytes,
    modality: Modality | None = None,
    names: tuple[str, ...] = ("model.py", "model.safetensors"),
) -> list[Finding]:
    data = text.encode() if isinstance(text, str) else text
    entries: dict[str, bytes | Path] = {name: b"" for name in names}
    entries["model_config.yaml"] = data
    return check_config(StagedSubmission(entries, "sub"), CheckOptions(modality=modality))


def _errors(findings: list[Finding]) -> list[tuple[str, int | None]]:
    return [(f.code, f.line) for f in findings if f.severity == "error"]


def _warnings(findings: list[Finding]) -> list[tuple[str, int | None]]:
    return [(f.code, f.line) for f in findings if f.severity == "warning"]


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


# --------------------------------------------------------------------------- valid configs


@pytest.mark.parametrize(
    ("text", "modality"), [(IMAGE, "image"), (VIDEO, "video"), (AUDIO, "audio")]
)
def test_valid_configs_have_no_findings(text: str, modality: Modality) -> None:
    assert _check(text, modality) == []
    assert _check(text) == []


def test_findings_name_the_config_file() -> None:
    findings = _check(_replace(IMAGE, "num_classes: 2", "num_classes: 7"))
    assert [f.file for f in findings] == ["model_config.yaml"]


def test_parse_config_returns_the_mapping() -> None:
    config, findings = parse_config(IMAGE.encode())
    assert findings == []
    assert config is not None and config["model"]["num_classes"] == 2


def test_utf8_bom_is_accepted() -> None:
    assert _check(b"\xef\xbb\xbf" + IMAGE.encode()) == []


# --------------------------------------------------------------------------- GAS201


def test_python_tag_is_refused_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"name: x\nbad: !!python/object/apply:os.system ['touch {marker}']\n"
    findings = _check(text)
    assert _errors(findings) == [("GAS201", 2)]
    assert "refused YAML tag" in findings[0].message
    assert not marker.exists()


def test_unknown_local_tag_is_refused() -> None:
    assert _errors(_check("name: !custom x\n")) == [("GAS201", 1)]


def test_syntax_error_has_line_and_column() -> None:
    findings = _check("name: x\nmodel:\n  num_classes: [2\n  other: 1\n")
    assert [f.code for f in findings] == ["GAS201"]
    assert findings[0].line == 4 and findings[0].col is not None


def test_tab_indentation_is_a_syntax_error() -> None:
    findings = _check("name: x\nmodel:\n\tnum_classes: 2\n")
    assert _errors(findings) == [("GAS201", 3)]


@pytest.mark.parametrize(
    "text",
    ["", "   \n\n", "# just a comment\n", "---\n", "- a\n- b\n", "just a string\n", "42\n"],
)
def test_empty_or_not_a_mapping(text: str) -> None:
    assert [f.code for f in _check(text)] == ["GAS201"]


def test_not_utf8() -> None:
    findings = _check(b"name: \xff\xfe\n")
    assert [f.code for f in findings] == ["GAS201"]
    assert "UTF-8" in findings[0].message


def test_duplicate_key_has_the_second_line() -> None:
    text = _replace(IMAGE, "  num_classes: 2\n", "  num_classes: 2\n  num_classes: 3\n")
    assert _errors(_check(text)) == [("GAS201", 12)]


def test_two_documents() -> None:
    assert [f.code for f in _check(IMAGE + "---\nname: y\n")] == ["GAS201"]


def test_impossible_date_points_at_its_line() -> None:
    assert _errors(_check("name: x\nwhen: 2024-13-45\n")) == [("GAS201", 2)]


def test_missing_config() -> None:
    sub = StagedSubmission({"model.py": b""}, "sub")
    assert [f.code for f in check_config(sub, CheckOptions())] == ["GAS201"]


def test_too_large_config_is_not_parsed() -> None:
    findings = _check(b"#" * (MAX_CONFIG_BYTES + 1))
    assert [f.code for f in findings] == ["GAS201"]


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    assert [f.code for f in _check("a: " + "[" * 5000)] == ["GAS201"]


# --------------------------------------------------------------------------- GAS202-204


def test_name_is_required() -> None:
    findings = _check(_replace(IMAGE, 'name: "my-detector-v1"\n', ""))
    assert _errors(findings) == [("GAS202", None)]


@pytest.mark.parametrize("value", ['"my detector"', '"näme"', '"a/b"', '""', "1234", "yes", "~"])
def test_bad_names(value: str) -> None:
    findings = _check(_replace(IMAGE, '"my-detector-v1"', value))
    expected_line = None if value == "~" else 1  # null counts as missing
    assert _errors(findings) == [("GAS202", expected_line)]


def test_numeric_version_is_a_warning() -> None:
    findings = _check(_replace(IMAGE, '"1.0.0"', "1.10"))
    assert _errors(findings) == []
    assert _warnings(findings) == [("GAS202", 2)]


@pytest.mark.parametrize("value", ['"images"', '"Image"', "1", "[image]"])
def test_bad_modality(value: str) -> None:
    assert _errors(_check(_replace(IMAGE, '"image"', value))) == [("GAS203", 3)]


def test_missing_modality() -> None:
    assert _errors(_check(_replace(IMAGE, 'modality: "image"\n', ""))) == [("GAS203", None)]


def test_modality_must_match_the_slot() -> None:
    findings = _check(IMAGE, modality="video")
    assert ("GAS203", 3) in _errors(findings)
    assert "video slot" in findings[0].message


@pytest.mark.parametrize("value", ['"float64"', '"FP16"', '"half"', "16", "true"])
def test_bad_dtype(value: str) -> None:
    assert _errors(_check(_replace(IMAGE, '"float32"', value))) == [("GAS204", 4)]


@pytest.mark.parametrize("value", ["fp32", "float16", "fp16", "bfloat16", "bf16"])
def test_every_dtype_spelling(value: str) -> None:
    assert _check(_replace(IMAGE, '"float32"', value)) == []


# --------------------------------------------------------------------------- GAS205


@pytest.mark.parametrize(
    "value",
    ["[224]", "[0, 224]", "[224.0, 224]", '"224x224"', "[yes, 224]", "[224, 224, 3]", "224"],
)
def test_bad_resize(value: str) -> None:
    assert _errors(_check(_replace(IMAGE, "[224, 224]", value))) == [("GAS205", 6)]


def test_missing_resize_is_a_warning_about_224() -> None:
    findings = _check(_replace(IMAGE, "  resize: [224, 224]\n", ""))
    assert _errors(findings) == []
    assert _warnings(findings) == [("GAS205", 5)]
    assert "224x224" in findings[0].message


def test_missing_preprocessing_is_a_warning_for_image() -> None:
    text = "name: x\nmodality: image\nmodel:\n  num_classes: 2\n"
    assert _warnings(_check(text)) == [("GAS205", None)]


@pytest.mark.parametrize("value", ["0", "65", "yes", "16.0", '"16"'])
def test_bad_num_frames(value: str) -> None:
    assert _errors(_check(_replace(VIDEO, "num_frames: 16", f"num_frames: {value}"))) == [
        ("GAS205", 7)
    ]


@pytest.mark.parametrize("value", ["0", "-1.5", ".nan", ".inf", "fast", "on"])
def test_bad_frame_rate(value: str) -> None:
    assert _errors(_check(_replace(VIDEO, "frame_rate: 8.0", f"frame_rate: {value}"))) == [
        ("GAS205", 8)
    ]


def test_video_num_frames_without_resize_is_an_error() -> None:
    findings = _check(_replace(VIDEO, "  resize: [256, 256]\n", ""))
    assert ("GAS205", 6) in _errors(findings)
    assert any("only with resize" in f.message for f in findings)


def test_image_with_video_and_audio_keys_warns() -> None:
    text = _replace(IMAGE, "  resize:", "  num_frames: 8\n  sample_rate: 16000\n  resize:")
    findings = _check(text)
    assert _errors(findings) == []
    assert _warnings(findings) == [("GAS205", 6), ("GAS205", 7)]


def test_unknown_preprocessing_key_warns() -> None:
    findings = _check(_replace(IMAGE, "  resize:", "  crop: center\n  resize:"))
    assert _warnings(findings) == [("GAS205", 6)]


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ("sample_rate: 16000", "sample_rate: 8000", 4),
        ("sample_rate: 16000", "sample_rate: 16000.5", 4),
        ("duration_seconds: 6", "duration_seconds: 3.0", 5),
        ("duration_seconds: 6", "duration_seconds: yes", 5),
    ],
)
def test_audio_shape_must_be_96000(old: str, new: str, line: int) -> None:
    assert _errors(_check(_replace(AUDIO, old, new))) == [("GAS205", line)]


def test_audio_product_of_two_wrong_values() -> None:
    text = _replace(_replace(AUDIO, "16000", "8000"), "duration_seconds: 6", "duration_seconds: 3")
    findings = _check(text)
    assert [code for code, _ in _errors(findings)] == ["GAS205"] * 3
    assert any("96000" in f.message for f in findings)


def test_audio_with_resize_warns() -> None:
    findings = _check(_replace(AUDIO, "  sample_rate:", "  resize: [1, 1]\n  sample_rate:"))
    assert _warnings(findings) == [("GAS205", 4)]


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ("[0.485, 0.456, 0.406]", "[0.5, 0.5]", 8),
        ("[0.485, 0.456, 0.406]", '["a", 0.5, 0.5]', 8),
        ("[0.229, 0.224, 0.225]", "[0.229, 0, 0.225]", 9),
        ("[0.229, 0.224, 0.225]", "[0.229, -1, 0.225]", 9),
        ("    std: [0.229, 0.224, 0.225]\n", "", 7),
    ],
)
def test_bad_normalize(old: str, new: str, line: int) -> None:
    assert _errors(_check(_replace(IMAGE, old, new))) == [("GAS205", line)]


def test_preprocessing_not_a_mapping() -> None:
    text = "name: x\nmodality: image\npreprocessing: [224, 224]\nmodel: {num_classes: 2}\n"
    assert _errors(_check(text)) == [("GAS205", 3)]


# --------------------------------------------------------------------------- GAS206-209


def test_model_section_is_required() -> None:
    text = "name: x\nmodality: image\npreprocessing: {resize: [224, 224]}\n"
    assert _errors(_check(text)) == [("GAS206", None)]
    assert _errors(_check(text + "model: 2\n")) == [("GAS206", 4)]


@pytest.mark.parametrize("value", ["0", "4", "100", "-1"])
def test_num_classes_out_of_range(value: str) -> None:
    findings = _check(_replace(IMAGE, "num_classes: 2", f"num_classes: {value}"))
    assert _errors(findings) == [("GAS206", 11)]
    assert findings[0].hint is not None and "misread" in findings[0].hint


@pytest.mark.parametrize("value", ["yes", "on", "true", "2.0", '"2"', "[2]"])
def test_num_classes_must_be_an_int_not_a_boolean(value: str) -> None:
    findings = _check(_replace(IMAGE, "num_classes: 2", f"num_classes: {value}"))
    assert _errors(findings) == [("GAS206", 11)]


def test_num_classes_is_required() -> None:
    assert _errors(_check(_replace(IMAGE, "  num_classes: 2\n", ""))) == [("GAS206", 10)]


@pytest.mark.parametrize(
    "value", ['"../model.safetensors"', '"w/model.safetensors"', '"model.bin"', "5", '""']
)
def test_bad_weights_file(value: str) -> None:
    text = _replace(IMAGE, '"model.safetensors"', value)
    assert _errors(_check(text)) == [("GAS207", 12)]


def test_weights_file_must_be_in_the_submission() -> None:
    findings = _check(IMAGE, names=("model.py",))
    assert _errors(findings) == [("GAS207", 12)]
    text = _replace(IMAGE, '  weights_file: "model.safetensors"\n', "")
    assert _errors(_check(text, names=("model.py",))) == [("GAS207", 10)]
    text = _replace(IMAGE, '"model.safetensors"', '"other.safetensors"')
    assert _check(text, names=("model.py", "other.safetensors")) == []


@pytest.mark.parametrize(
    "value",
    ["2024-01-01", "!!binary aGVsbG8=", "!!set {a, b}", "{[1]: 2}"],
    ids=["date", "binary", "set", "list-key"],
)
def test_model_kwargs_must_be_plain_yaml(value: str) -> None:
    text = _replace(IMAGE, '"efficientnet_b0"', value)
    codes = _errors(_check(text))
    assert codes in ([("GAS208", 13)], [("GAS201", 13)])  # PyYAML refuses unhashable keys itself


def test_recursive_alias_in_kwargs() -> None:
    text = _replace(IMAGE, 'backbone: "efficientnet_b0"', "loop: &a [1, *a]")
    assert _errors(_check(text)) == [("GAS208", 13)]


def test_kwarg_named_weights_path_collides() -> None:
    text = _replace(IMAGE, "backbone:", "weights_path:")
    assert _errors(_check(text)) == [("GAS208", 13)]


def test_non_identifier_kwarg_warns() -> None:
    findings = _check(_replace(IMAGE, "backbone:", "back-bone:"))
    assert _errors(findings) == [] and _warnings(findings) == [("GAS208", 13)]


def test_nested_plain_kwargs_pass() -> None:
    text = _replace(IMAGE, '"efficientnet_b0"', "{a: [1, 2.5, {b: null}], c: true}")
    assert _check(text) == []


def test_alias_bomb_is_cheap() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    text = IMAGE + "".join(f"  {line}\n" for line in lines)
    start = time.perf_counter()
    assert _check(text) == []
    assert time.perf_counter() - start < 2.0


def test_alias_chain_deeper_than_the_text() -> None:
    lines = ["c0: &c0 [1]"] + [f"c{i}: &c{i} [*c{i - 1}]" for i in range(1, 200)]
    text = IMAGE + "".join(f"  {line}\n" for line in lines)
    findings = _check(text)
    assert all(code == "GAS208" for code, _ in _errors(findings))
    assert any("levels deep" in f.message for f in findings)


def test_unknown_top_level_key_warns() -> None:
    findings = _check(IMAGE + "author: me\n")
    assert _errors(findings) == []
    assert _warnings(findings) == [("GAS209", 14)]


def test_many_problems_at_once_each_on_its_line() -> None:
    text = """\
name: bad name
modality: image
dtype: double
preprocessing:
  resize: [224]
model:
  num_classes: 5
  weights_file: w.bin
extra: 1
"""
    assert _errors(_check(text)) == [
        ("GAS202", 1),
        ("GAS204", 3),
        ("GAS205", 5),
        ("GAS206", 7),
        ("GAS207", 8),
    ]
    assert _warnings(_check(text)) == [("GAS209", 9)]


# --------------------------------------------------------------------------- properties


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_parse_config_never_raises_on_text(text: str) -> None:
    config, findings = parse_config(text.encode("utf-8", "surrogatepass"))
    assert config is not None or findings
    assert all(f.code == "GAS201" for f in findings)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_parse_config_never_raises_on_bytes(data: bytes) -> None:
    config, findings = parse_config(data)
    assert config is not None or findings


YAMLISH = st.text(
    alphabet=st.sampled_from(list("ab:-[]{}&*!?|>'\"#,. \n\t01yes~%@`")), max_size=120
)


@settings(max_examples=600, deadline=None)
@given(YAMLISH)
def test_check_config_never_raises_on_yaml_like_text(text: str) -> None:
    findings = _check(text)
    assert all(isinstance(f, Finding) for f in findings)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["name", "modality", "dtype", "preprocessing", "model", "x"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=5), inner, max_size=3)
            ),
            max_leaves=10,
        ),
    )
)
def test_check_config_never_raises_on_random_structures(data: dict[str, object]) -> None:
    import yaml

    findings = _check(yaml.safe_dump(data))
    assert all(isinstance(f, Finding) for f in findings)


def test_unreadable_config(tmp_path: Path) -> None:
    (tmp_path / "model_config.yaml").mkdir()
    sub = DirectorySubmission(tmp_path, "dir")
    assert [f.code for f in check_config(sub, CheckOptions())] == ["GAS201"]
