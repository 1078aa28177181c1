"""gas.toml loading: every bad manifest gives one line naming file, line, column, key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from gasbuild import manifest
from gasbuild.errors import ManifestError, SourceError

GOOD_IMAGE = """\
[models.image]
architecture = { file = "model.py" }
weights = { path = "w.safetensors" }
"""

# (id, gas.toml text, expected line, expected column or None, text the message must contain)
BAD = [
    (
        "unknown-key-typo",
        GOOD_IMAGE + "preprocesing = {}\n",
        4,
        1,
        'models.image.preprocesing is not a known key (did you mean "preprocessing"?)',
    ),
    (
        "unknown-modality",
        '[models.imgae]\nweights = { path = "w" }\n',
        1,
        9,
        'models.imgae is not a known key (did you mean "image"?)',
    ),
    (
        "unknown-top-level",
        "[walet]\nname = 'x'\n" + GOOD_IMAGE,
        1,
        2,
        'walet is not a known key (did you mean "wallet"?)',
    ),
    (
        "sha256-short",
        GOOD_IMAGE.replace('"w.safetensors" }', '"w.safetensors", sha256 = "abc" }'),
        3,
        37,
        "models.image.weights.sha256 must be 64 lowercase hex characters",
    ),
    (
        "num-classes-high",
        GOOD_IMAGE + "num_classes = 5\n",
        4,
        1,
        "models.image.num_classes must be less than or equal to 3 (got 5)",
    ),
    (
        "num-classes-zero",
        GOOD_IMAGE + "num_classes = 0\n",
        4,
        1,
        "models.image.num_classes must be greater than or equal to 1",
    ),
    (
        "num-classes-string",
        GOOD_IMAGE + 'num_classes = "2"\n',
        4,
        1,
        "models.image.num_classes must be an integer (got '2')",
    ),
    (
        "bad-format",
        GOOD_IMAGE + 'format = "pt"\n',
        4,
        1,
        "models.image.format must be 'safetensors' or 'onnx' (got 'pt')",
    ),
    ("bad-dtype", GOOD_IMAGE + 'dtype = "fp8"\n', 4, 1, "models.image.dtype must be"),
    (
        "bad-name",
        GOOD_IMAGE + 'name = "my detector!"\n',
        4,
        1,
        "models.image.name may hold only letters, digits, '-' and '_'",
    ),
    (
        "resize-three",
        GOOD_IMAGE + "preprocessing = { resize = [1, 2, 3] }\n",
        4,
        19,
        "models.image.preprocessing.resize must have at most 2 items",
    ),
    (
        "resize-zero",
        GOOD_IMAGE + "preprocessing = { resize = [224, 0] }\n",
        4,
        34,
        "models.image.preprocessing.resize[1] must be greater than 0",
    ),
    (
        "frames-on-image",
        GOOD_IMAGE + "preprocessing = { num_frames = 8 }\n",
        4,
        19,
        "models.image.preprocessing.num_frames does not apply to image models",
    ),
    (
        "frames-too-many",
        GOOD_IMAGE.replace("image", "video") + "preprocessing = { num_frames = 65 }\n",
        4,
        19,
        "models.video.preprocessing.num_frames must be less than or equal to 64",
    ),
    (
        "audio-sample-rate",
        GOOD_IMAGE.replace("image", "audio") + "preprocessing = { sample_rate = 8000 }\n",
        4,
        19,
        "models.audio.preprocessing.sample_rate must be 16000 (got 8000)",
    ),
    (
        "audio-duration",
        GOOD_IMAGE.replace("image", "audio") + "preprocessing = { duration_seconds = 5.0 }\n",
        4,
        19,
        "models.audio.preprocessing.duration_seconds must be 6.0",
    ),
    (
        "audio-resize",
        GOOD_IMAGE.replace("image", "audio") + "preprocessing = { resize = [8, 8] }\n",
        4,
        19,
        "models.audio.preprocessing.resize does not apply to audio models",
    ),
    (
        "missing-weights",
        '[models.image]\narchitecture = { file = "model.py" }\n',
        1,
        9,
        "models.image.weights is required",
    ),
    (
        "missing-architecture",
        '[models.image]\nweights = { path = "w" }\n',
        1,
        9,
        "models.image.architecture is required for the safetensors format",
    ),
    (
        "onnx-with-dtype",
        GOOD_IMAGE + 'format = "onnx"\ndtype = "fp16"\n',
        5,
        1,
        'models.image.dtype applies only to format = "safetensors"',
    ),
    ("no-models", "[models]\n", 1, 2, "models declares no model"),
    (
        "kwarg-reserved",
        GOOD_IMAGE + "model = { num_classes = 3 }\n",
        4,
        11,
        "models.image.model.num_classes is set by gasbuild",
    ),
    (
        "kwarg-not-identifier",
        GOOD_IMAGE + 'model = { "drop-rate" = 0.1 }\n',
        4,
        11,
        "models.image.model.drop-rate is not a valid Python keyword argument name",
    ),
    (
        "kwarg-datetime",
        GOOD_IMAGE + "model = { when = 2026-01-01 }\n",
        4,
        11,
        "models.image.model.when holds a TOML date/time",
    ),
    (
        "vertical",
        '[network]\nvertical = "humans"\n' + GOOD_IMAGE,
        2,
        1,
        "network.vertical must be 'general' or 'human' (got 'humans')",
    ),
    (
        "netuid-negative",
        "[network]\nnetuid = -1\n" + GOOD_IMAGE,
        2,
        1,
        "network.netuid must be greater than or equal to 0",
    ),
    (
        "weights-file-name",
        GOOD_IMAGE + 'weights_file = "../w.bin"\n',
        4,
        1,
        "models.image.weights_file must be a plain file name ending in .safetensors",
    ),
    (
        "source-both",
        GOOD_IMAGE.replace('path = "w.safetensors"', 'path = "w", url = "s3://b/w"'),
        3,
        1,
        "models.image.weights must give exactly one of path or url (got both)",
    ),
    (
        "source-neither",
        GOOD_IMAGE.replace('path = "w.safetensors"', 'sha256 = "' + "a" * 64 + '"'),
        3,
        1,
        "models.image.weights must give exactly one of path or url (got neither)",
    ),
    (
        "url-credentials",
        GOOD_IMAGE.replace('path = "w.safetensors"', 'url = "https://me:pw@h/w"'),
        3,
        13,
        "models.image.weights.url embeds credentials",
    ),
    (
        "url-token",
        GOOD_IMAGE.replace('path = "w.safetensors"', 'url = "https://h/w?token=abc"'),
        3,
        13,
        "models.image.weights.url carries a secret-looking query parameter (token)",
    ),
    (
        "url-presigned",
        GOOD_IMAGE.replace('path = "w.safetensors"', 'url = "https://h/w?X-Amz-Signature=abc"'),
        3,
        13,
        "secret-looking query parameter (X-Amz-Signature)",
    ),
    (
        "url-no-scheme",
        GOOD_IMAGE.replace('path = "w.safetensors"', 'url = "bucket/w"'),
        3,
        13,
        "models.image.weights.url needs a scheme",
    ),
    ("invalid-toml", "[models.image\n", 1, 14, "invalid TOML: Expected ']'"),
    (
        "duplicate-key",
        GOOD_IMAGE + "num_classes = 2\nnum_classes = 3\n",
        5,
        None,
        "invalid TOML: Cannot overwrite a value",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "col", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_manifest_names_file_line_key_and_fix(
    tmp_path: Path, text: str, line: int, col: int | None, expected: str
) -> None:
    path = tmp_path / "gas.toml"
    path.write_text(text)
    with pytest.raises(ManifestError) as info:
        manifest.load(path)
    error = info.value
    assert error.exit_code == 2
    rendered = str(error)
    assert "\n" not in rendered
    assert error.location is not None
    assert error.location.file.endswith("gas.toml")
    assert error.location.line == line, rendered
    if col is not None:
        assert error.location.col == col, rendered
    assert expected in rendered


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    path = tmp_path / "gas.toml"
    path.write_text(GOOD_IMAGE + "num_classes = 9\ndtype = 'fp7'\n")
    with pytest.raises(ManifestError) as info:
        manifest.load(path)
    keys = [info.value.key, *(m.key for m in info.value.more)]  # type: ignore[attr-defined]
    assert keys == ["models.image.num_classes", "models.image.dtype"]


def test_non_utf8_manifest(tmp_path: Path) -> None:
    path = tmp_path / "gas.toml"
    path.write_bytes(b'[wallet]\nname = "\xff"\n')
    with pytest.raises(ManifestError, match="not valid UTF-8") as info:
        manifest.load(path)
    assert info.value.location is not None and info.value.location.line == 2


def test_missing_manifest_says_how_to_start(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="gasbuild init"):
        manifest.find_manifest(tmp_path)


def test_defaults_are_made_explicit(tmp_path: Path) -> None:
    path = tmp_path / "gas.toml"
    path.write_text(
        GOOD_IMAGE + GOOD_IMAGE.replace("image", "video") + GOOD_IMAGE.replace("image", "audio")
    )
    project = manifest.load(path)
    image, video, audio = project.targets()
    assert image.preprocessing.resize == (224, 224)
    assert (video.preprocessing.resize, video.preprocessing.num_frames) == ((224, 224), 16)
    assert (audio.preprocessing.sample_rate, audio.preprocessing.duration_seconds) == (16000, 6.0)
    assert image.name == "image-detector"
    assert image.spec.weights.path == "w.safetensors"
    assert [t.modality for t in project.targets(frozenset({"audio"}))] == ["audio"]


def test_locate_points_into_inline_tables(tmp_path: Path) -> None:
    path = tmp_path / "gas.toml"
    path.write_text(GOOD_IMAGE)
    project = manifest.load(path)
    assert (
        project.locate("models.image.weights.path").line,
        project.locate("models.image.weights.path").col,
    ) == (3, 13)
    # a key that is not written falls back to its table
    assert project.locate("models.image.num_classes").line == 1


@pytest.mark.parametrize("dtype", ["float32", "fp32", "float16", "fp16", "bfloat16", "bf16"])
def test_weights_dtype_takes_the_loaders_spellings(tmp_path: Path, dtype: str) -> None:
    """weights.dtype and the model's dtype accept the same names (fp16 is float16)."""
    path = tmp_path / "gas.toml"
    path.write_text(GOOD_IMAGE.replace('"w.safetensors" }', f'"w.pt", dtype = "{dtype}" }}'))
    target = manifest.load(path).targets()[0]
    assert target.spec.weights.conversion_options()["dtype"] == dtype


def test_weights_dtype_refuses_other_names(tmp_path: Path) -> None:
    path = tmp_path / "gas.toml"
    path.write_text(GOOD_IMAGE.replace('"w.safetensors" }', '"w.pt", dtype = "half" }'))
    with pytest.raises(ManifestError, match=r"models\.image\.weights\.dtype"):
        manifest.load(path)
