"""Architecture templates: the registry, argument checking with file:line errors, project
templates, safe and deterministic rendering, the CLI, and end-to-end builds from checkpoints."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import math
import re
import shutil
import textwrap
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import run_cli
from gasbuild import lock, manifest, plan
from gasbuild.cache import Cache
from gasbuild.check.findings import Finding
from gasbuild.check.static import analyze_source
from gasbuild.errors import CheckFailed, ManifestError
from gasbuild.manifest import ModelTarget, Project
from gasbuild.stages import render
from gasbuild.templates import (
    Arg,
    ArgError,
    Template,
    TemplateError,
    builtin_dir,
    load_template,
    py_literal,
    registry,
)

BUILTINS = {
    "timm-image": ("image", {"model_name", "pass_input_size", "drop_rate"}),
    "timm-video": ("video", {"model_name", "pooling", "pass_input_size"}),
    "audio-cnn": ("audio", {"n_fft", "hop_length", "channels", "dropout"}),
    "hf-image": ("image", {"config"}),
}


def _write(directory: Path, text: str, name: str = "gas.toml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def _line_of(path: Path, needle: str) -> int:
    """1-based number of the only line of ``path`` holding ``needle``."""
    lines = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    assert len(lines) == 1, (needle, lines)
    return lines[0]


def _load_error(path: Path) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        manifest.load(path)
    error = info.value
    assert error.exit_code == 2
    assert "\n" not in str(error)
    assert error.location is not None and error.location.file.endswith(path.name)
    return error


def _rendered(project: Project, target: ModelTarget) -> bytes:
    arch = target.spec.architecture
    assert arch is not None and arch.template is not None
    template = project.template_registry().get(arch.template)
    assert template is not None
    return render.render_model_py(target, template, template.values(arch.args))


def _errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def _assignment(source: bytes, name: str) -> ast.expr:
    """The value assigned to module-level ``name`` in ``source``."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return node.value
    raise AssertionError(f"{name} is not assigned in model.py")


# ------------------------------------------------------------------------------------------------
# 1. The registry


def test_the_four_builtins_load_with_their_modalities_and_arguments() -> None:
    reg = registry()
    assert set(BUILTINS) <= set(reg.templates)
    for name, (modality, args) in BUILTINS.items():
        template = reg.get(name)
        assert template is not None and template.builtin
        assert template.name == name
        assert template.modalities == (modality,)
        assert set(template.args) == args
        assert template.description
        assert all(arg.help for arg in template.args.values())
    assert reg.get("timm-image").args["model_name"].required  # type: ignore[union-attr]
    assert reg.get("timm-video").args["pooling"].choices == ("mean", "max")  # type: ignore[union-attr]
    channels = reg.get("audio-cnn").args["channels"]  # type: ignore[union-attr]
    assert (channels.type, channels.items, channels.default) == ("list", "integer", [16, 32, 64])
    hf = reg.get("hf-image")
    assert hf is not None and hf.files == {"config.json": "config"}
    assert hf.args["config"].type == "file" and hf.requires == ("transformers",)
    assert reg.get("audio-cnn").requires == ()  # type: ignore[union-attr]


def test_digest_is_stable_and_follows_every_file(tmp_path: Path) -> None:
    original = registry().get("audio-cnn")
    assert original is not None
    assert original.digest() == original.digest()
    assert len(original.digest()) == 64

    copy = tmp_path / "templates" / "audio-cnn"
    shutil.copytree(original.directory, copy, ignore=shutil.ignore_patterns("__pycache__"))
    copied = load_template(copy, builtin=False)
    assert copied.digest() == original.digest(), "the digest does not depend on the location"

    source = copy / "model.py.j2"
    source.write_text(source.read_text() + "# one more line\n")
    edited = copied.digest()
    assert edited != original.digest()

    (copy / "NOTES.md").write_text("notes")
    with_notes = copied.digest()
    assert with_notes != edited, "an added file changes the digest"
    (copy / "NOTES.md").rename(copy / "NOTES2.md")
    assert copied.digest() != with_notes, "a renamed file changes the digest"

    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "x.pyc").write_bytes(b"junk")
    assert copied.digest() == load_template(copy, builtin=False).digest()


def test_project_templates_shadow_builtins_and_add_names(tmp_path: Path) -> None:
    extra = tmp_path / "tpl"
    _tiny_template(extra / "tiny-image")
    shutil.copytree(builtin_dir() / "audio-cnn", extra / "audio-cnn")
    (extra / "audio-cnn" / "model.py.j2").write_text(
        (extra / "audio-cnn" / "model.py.j2").read_text() + "# PROJECT COPY\n"
    )
    reg = registry(extra)
    assert set(BUILTINS) | {"tiny-image"} == set(reg.templates)
    assert reg.get("audio-cnn").builtin is False  # type: ignore[union-attr]
    assert reg.get("audio-cnn").directory == extra / "audio-cnn"  # type: ignore[union-attr]
    assert reg.get("tiny-image").builtin is False  # type: ignore[union-attr]
    assert reg.get("timm-image").builtin is True  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------------
# 2. Manifest errors name the full key and its line

IMAGE = '[models.image]\nweights = { path = "w.safetensors" }\n'


@pytest.mark.parametrize(
    ("text", "key", "needle", "expected"),
    [
        pytest.param(
            IMAGE + 'architecture = { template = "timm-imag", args = { model_name = "r" } }\n',
            "models.image.architecture.template",
            'template = "timm-imag"',
            ["names no known template", 'did you mean "timm-image"?'],
            id="unknown-template",
        ),
        pytest.param(
            IMAGE + 'architecture = { template = "timm-video", args = { model_name = "r" } }\n',
            "models.image.architecture.template",
            'template = "timm-video"',
            ["timm-video is for video models, not image"],
            id="wrong-modality",
        ),
        pytest.param(
            '[models.audio]\nweights = { path = "w.safetensors" }\n\n'
            '[models.audio.architecture]\ntemplate = "audio-cnn"\nargs = { n_ffts = 512 }\n',
            "models.audio.architecture.args.n_ffts",
            "n_ffts",
            ["is not an argument of template audio-cnn", 'did you mean "n_fft"?'],
            id="unknown-arg",
        ),
        pytest.param(
            '[models.audio]\nweights = { path = "w.safetensors" }\n'
            'architecture.template = "audio-cnn"\narchitecture.args.n_fft = "512"\n',
            "models.audio.architecture.args.n_fft",
            "args.n_fft",
            ['must be an integer (got "512")'],
            id="string-for-integer",
        ),
        pytest.param(
            '[models.audio]\nweights = { path = "w.safetensors" }\n'
            'architecture.template = "audio-cnn"\n'
            '# a comment line\narchitecture.args.channels = [4, "8"]\n',
            "models.audio.architecture.args.channels",
            "args.channels",
            ['[1] must be an integer (got "8")'],
            id="list-item-type",
        ),
        pytest.param(
            '[models.audio]\nweights = { path = "w.safetensors" }\n'
            'architecture = { template = "audio-cnn", args = { dropout = 1.5 } }\n',
            "models.audio.architecture.args.dropout",
            "dropout = 1.5",
            ["must be at most 1.0 (got 1.5)"],
            id="out-of-range",
        ),
        pytest.param(
            '[models.audio]\nweights = { path = "w.safetensors" }\n'
            'architecture = { template = "audio-cnn", args = { channels = [] } }\n',
            "models.audio.architecture.args.channels",
            "channels = []",
            ["must have at least 1 items (got 0)"],
            id="too-few-items",
        ),
        pytest.param(
            '[models.video]\nweights = { path = "w.safetensors" }\narchitecture = { '
            'template = "timm-video", args = { model_name = "r", pooling = "median" } }\n',
            "models.video.architecture.args.pooling",
            "pooling",
            ['must be one of "mean", "max" (got "median")'],
            id="choice",
        ),
        pytest.param(
            IMAGE + 'architecture = { template = "timm-image", args = { drop_rate = 0.1 } }\n',
            "models.image.architecture.args",
            "drop_rate",
            ["lacks model_name, which template timm-image requires", "model_name (string"],
            id="missing-required",
        ),
        pytest.param(
            IMAGE + 'architecture = { file = "model.py", args = { x = 1 } }\n',
            "models.image.architecture.args",
            "args =",
            ["applies only to a template"],
            id="args-with-file",
        ),
        pytest.param(
            IMAGE + 'architecture = { file = "model.py", template = "timm-image" }\n',
            "models.image.architecture",
            "architecture =",
            ["must give exactly one of file, url or template (got file and template)"],
            id="file-and-template",
        ),
        pytest.param(
            IMAGE + 'architecture = { url = "https://x.org/m.py", template = "timm-image" }\n',
            "models.image.architecture",
            "architecture =",
            ["(got url and template)"],
            id="url-and-template",
        ),
        pytest.param(
            IMAGE + 'architecture = { template = "timm-image", sha256 = "' + "a" * 64 + '", '
            'args = { model_name = "r" } }\n',
            "models.image.architecture.sha256",
            "sha256",
            ["pins a file or url, not a template", "gas.lock records the rendered model.py"],
            id="sha256-with-template",
        ),
        pytest.param(
            IMAGE + 'architecture = { template = "timm-image", args = { model_name = "r" } }\n'
            "model = { width = 3 }\n",
            "models.image.model",
            "model = {",
            ["is not used with a template", "architecture.args"],
            id="kwargs-with-template",
        ),
        pytest.param(
            '[models.image]\nformat = "onnx"\n\n'
            'weights = { path = "m.onnx", strip_prefix = "module." }\n',
            "models.image.weights.strip_prefix",
            "strip_prefix",
            ["converts a checkpoint to safetensors, which an ONNX file is not"],
            id="conversion-on-onnx",
        ),
        pytest.param(
            '[models.image]\nformat = "onnx"\nweights = { path = "m.onnx", dtype = "float16" }\n',
            "models.image.weights.dtype",
            "dtype",
            ["converts a checkpoint to safetensors"],
            id="dtype-on-onnx",
        ),
        pytest.param(
            '[models.image]\narchitecture = { file = "model.py" }\n'
            'weights = { path = "w.pt", dtype = "int8" }\n',
            "models.image.weights.dtype",
            "int8",
            ["must be 'float32', 'fp32', 'float16', 'fp16', 'bfloat16' or 'bf16' (got 'int8')"],
            id="bad-weights-dtype",
        ),
    ],
)
def test_template_manifest_errors_name_key_and_line(
    tmp_path: Path, text: str, key: str, needle: str, expected: list[str]
) -> None:
    path = _write(tmp_path, text)
    error = _load_error(path)
    rendered = str(error)
    assert error.key == key, rendered
    assert f" {key} " in rendered, rendered
    assert error.location is not None
    assert error.location.line == _line_of(path, needle), rendered
    for piece in expected:
        assert piece in rendered, rendered


def test_arg_error_column_points_at_the_key_inside_an_inline_table(tmp_path: Path) -> None:
    text = IMAGE + 'architecture = { template = "timm-image", args = { model_name = 7 } }\n'
    path = _write(tmp_path, text)
    error = _load_error(path)
    assert error.key == "models.image.architecture.args.model_name"
    assert error.location is not None
    assert error.location.col == text.splitlines()[2].index("model_name") + 1
    assert "must be a non-empty string (got 7)" in str(error)


def test_every_bad_argument_is_reported(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[models.audio]\nweights = { path = "w.safetensors" }\n'
        'architecture = { template = "audio-cnn", args = { n_fft = 1, hop = 2, dropout = "x" } }\n',
    )
    error = _load_error(path)
    keys = [error.key, *(m.key for m in error.more)]  # type: ignore[attr-defined]
    assert sorted(keys) == [
        "models.audio.architecture.args.dropout",
        "models.audio.architecture.args.hop",
        "models.audio.architecture.args.n_fft",
    ]


def test_good_template_manifests_load(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    path = _write(
        tmp_path,
        """\
        [models.image]
        weights = { path = "w.safetensors" }
        architecture = { template = "hf-image", args = { config = "config.json" } }

        [models.video]
        weights = { path = "w.pt", strip_prefix = ["module.", "model."], dtype = "float16" }
        architecture = { template = "timm-video", args = { model_name = "resnet18" } }

        [models.audio]
        weights = { path = "w.ckpt", state_dict_key = "state_dict", rename = { "a." = "b." } }
        architecture = { template = "audio-cnn", args = { channels = [4, 8], dropout = 0 } }
        """,
    )
    project = manifest.load(path)
    image, video, audio = project.targets()
    assert video.spec.weights.conversion_options() == {
        "strip_prefix": ["module.", "model."],
        "dtype": "float16",
    }
    assert audio.spec.weights.conversion_options() == {
        "state_dict_key": "state_dict",
        "rename": {"a.": "b."},
    }
    assert image.spec.weights.conversion_options() == {}
    # a template normalises inside forward(): the emitted config says ImageNet's mean and std
    assert image.preprocessing.normalize == manifest.IMAGENET_NORMALIZE
    assert audio.preprocessing.normalize is None


# ------------------------------------------------------------------------------------------------
# 3. Project templates ([build] templates)

TINY_TOML = """\
description = "A tiny torch-only image model (tests)."
modalities = ["image"]

[args.width]
type = "integer"
default = 4
min = 1
max = 64
help = "conv channels"

[args.label]
type = "string"
default = "tiny"
help = "any text; reaches model.py through the py filter"
"""

TINY_J2 = '''\
"""{{ name }}: a tiny project template."""

import torch
from safetensors.torch import load_file
from torch import nn

WIDTH = {{ args.width | py }}
LABEL = {{ args.label | py }}
INPUT_SIZE = {{ resize | py }}


class Detector(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, WIDTH, 3)
        self.head = nn.Linear(WIDTH, num_classes)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.conv(pixels.float() / 255.0).mean(dim=(2, 3))
        return self.head(x)


def load_model(weights_path: str, num_classes: int = {{ num_classes }}) -> nn.Module:
    model = Detector(num_classes)
    model.load_state_dict(load_file(weights_path), strict=True)
    return model.train(False)
'''


def _tiny_template(directory: Path, toml: str = TINY_TOML, source: str | None = TINY_J2) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "template.toml").write_text(toml)
    if source is not None:
        (directory / "model.py.j2").write_text(source)
    return directory


@pytest.mark.parametrize(
    ("toml", "source", "culprit", "expected"),
    [
        pytest.param(TINY_TOML, None, "tiny", "has no model.py.j2", id="no-model-py-j2"),
        pytest.param(
            TINY_TOML + 'colour = "red"\n',
            TINY_J2,
            "template.toml",
            "colour is not a known key",
            id="unknown-key",
        ),
        pytest.param(
            TINY_TOML.replace("default = 4", 'default = "four"'),
            TINY_J2,
            "template.toml",
            'args.width.default must be an integer (got "four")',
            id="default-of-wrong-type",
        ),
        pytest.param(
            TINY_TOML.replace("default = 4", "default = 100"),
            TINY_J2,
            "template.toml",
            "args.width.default must be at most 64 (got 100)",
            id="default-out-of-range",
        ),
        pytest.param(
            'files = { "weights.bin" = "cfg" }\n'
            + TINY_TOML
            + '\n[args.cfg]\ntype = "file"\nhelp = "a file"\n',
            TINY_J2,
            "template.toml",
            "files.weights.bin cannot be shipped",
            id="files-not-config-json",
        ),
        pytest.param(
            'files = { "config.json" = "label" }\n' + TINY_TOML,
            TINY_J2,
            "template.toml",
            "files.config.json must name a file argument",
            id="files-names-a-string-arg",
        ),
        pytest.param(
            TINY_TOML.replace('["image"]', '["text"]'),
            TINY_J2,
            "template.toml",
            "modalities has 'text'",
            id="unknown-modality",
        ),
        pytest.param(
            TINY_TOML.replace("default = 4", 'default = 4\npattern = "[0-9]+"'),
            TINY_J2,
            "template.toml",
            "args.width.pattern applies to strings only",
            id="pattern-on-an-integer",
        ),
        pytest.param(
            TINY_TOML + '\n[args.tag]\ntype = "string"\nhelp = "h"\npattern = "(["\n',
            TINY_J2,
            "template.toml",
            "args.tag.pattern is not a regular expression",
            id="pattern-that-does-not-compile",
        ),
        pytest.param(
            TINY_TOML
            + '\n[args.tag]\ntype = "string"\nhelp = "h"\npattern = "[a-z]+"\ndefault = "X"\n',
            TINY_J2,
            "template.toml",
            'args.tag.default must match [a-z]+ (got "X")',
            id="default-that-misses-its-pattern",
        ),
        pytest.param(
            TINY_TOML.replace('type = "integer"', 'type = "int"'),
            TINY_J2,
            "template.toml",
            "args.width.type must be one of",
            id="unknown-arg-type",
        ),
    ],
)
def test_malformed_project_template_is_a_one_line_error_naming_the_file(
    tmp_path: Path, toml: str, source: str | None, culprit: str, expected: str
) -> None:
    _tiny_template(tmp_path / "tpl" / "tiny", toml, source)
    with pytest.raises(TemplateError) as info:
        registry(tmp_path / "tpl")
    text = str(info.value)
    assert info.value.exit_code == 2
    assert "\n" not in text
    assert expected in text, text
    assert culprit in text and "tpl" in text, text

    # through gas.toml: a manifest error at [build] templates, carrying the same message
    path = _write(
        tmp_path,
        '[build]\ntemplates = "tpl"\n\n'
        '[models.image]\nweights = { path = "w.safetensors" }\n'
        'architecture = { template = "tiny" }\n',
    )
    error = _load_error(path)
    assert error.key == "build.templates"
    assert error.location is not None and error.location.line == 2
    assert expected in str(error) and culprit in str(error)


def test_missing_project_template_dir_is_an_error_at_build_templates(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[models.image]\nweights = { path = "w.safetensors" }\n'
        'architecture = { template = "timm-image", args = { model_name = "r" } }\n\n'
        '[build]\ntemplates = "nowhere"\n',
    )
    error = _load_error(path)
    assert error.key == "build.templates"
    assert error.location is not None and error.location.line == _line_of(path, "nowhere")
    assert "template directory does not exist" in str(error)


def test_template_names_must_be_lowercase(tmp_path: Path) -> None:
    _tiny_template(tmp_path / "tpl" / "Tiny_Model")
    with pytest.raises(TemplateError, match="Tiny_Model: template names are lowercase"):
        registry(tmp_path / "tpl")


def _tiny_weights(path: Path, width: int = 4) -> Path:
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(1)
    tensors = {
        "conv.weight": torch.randn(width, 3, 3, 3, generator=generator),
        "conv.bias": torch.randn(width, generator=generator),
        "head.weight": torch.randn(2, width, generator=generator),
        "head.bias": torch.randn(2, generator=generator),
    }
    save_file(tensors, str(path))
    return path


def test_build_uses_a_project_template_and_a_shadowed_builtin(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    _tiny_template(proj / "my_templates" / "tiny-image")
    shadow = proj / "my_templates" / "audio-cnn"
    shutil.copytree(builtin_dir() / "audio-cnn", shadow)
    (shadow / "model.py.j2").write_text(
        (shadow / "model.py.j2").read_text() + "\n# PROJECT COPY OF AUDIO-CNN\n"
    )
    _tiny_weights(proj / "tiny.safetensors")
    _audio_state_dict_file(proj / "audio.safetensors")
    path = _write(
        proj,
        """\
        [build]
        templates = "my_templates"

        [models.image]
        weights = { path = "tiny.safetensors" }
        architecture = { template = "tiny-image", args = { width = 4, label = "x" } }
        preprocessing.resize = [32, 48]

        [models.audio]
        weights = { path = "audio.safetensors" }
        architecture = { template = "audio-cnn", args = { channels = [4, 8] } }
        """,
    )
    project = manifest.load(path)
    report = plan.build(project, Cache(tmp_path / "cache"), plan.BuildOptions(smoke=False))
    by_modality = {r.modality: r for r in report.results}
    with zipfile.ZipFile(by_modality["image"].zip_path) as zf:
        image_py = zf.read("model.py")
    with zipfile.ZipFile(by_modality["audio"].zip_path) as zf:
        audio_py = zf.read("model.py")
    assert ast.literal_eval(_assignment(image_py, "INPUT_SIZE")) == [32, 48]
    assert ast.literal_eval(_assignment(image_py, "LABEL")) == "x"
    assert b"# PROJECT COPY OF AUDIO-CNN" in audio_py
    assert ast.literal_eval(_assignment(audio_py, "CHANNELS")) == [4, 8]
    entries = lock.read(proj / "gas.lock")
    image_arch = entries["image"]["inputs"]["architecture"]
    audio_arch = entries["audio"]["inputs"]["architecture"]
    assert image_arch["template"] == "tiny-image" and image_arch["source"] == "project"
    assert audio_arch["template"] == "audio-cnn" and audio_arch["source"] == "project"
    shipped = hashlib.sha256(audio_py).hexdigest()
    assert entries["audio"]["entries"]["model.py"] == shipped  # the project copy's rendering


# ------------------------------------------------------------------------------------------------
# 4. Rendering


def _all_builtins_project(tmp_path: Path, image_args: str = 'model_name = "resnet18"') -> Project:
    path = _write(
        tmp_path,
        f"""\
        [models.image]
        num_classes = 3
        weights = {{ path = "w.safetensors" }}
        architecture = {{ template = "timm-image", args = {{ {image_args} }} }}
        preprocessing.resize = [256, 192]

        [models.video]
        weights = {{ path = "w.safetensors" }}
        architecture = {{ template = "timm-video", args = {{ model_name = "r", pooling = "max" }} }}
        preprocessing.num_frames = 8
        preprocessing.normalize = {{ mean = [0.5, 0.5, 0.5], std = [0.25, 0.25, 0.25] }}

        [models.audio]
        num_classes = 1
        weights = {{ path = "w.safetensors" }}
        architecture = {{ template = "audio-cnn", args = {{ channels = [4, 8], n_fft = 256 }} }}
        """,
    )
    return manifest.load(path)


def test_each_builtin_renders_valid_python_the_static_check_accepts(tmp_path: Path) -> None:
    project = _all_builtins_project(tmp_path, 'model_name = "vit_tiny", pass_input_size = true')
    image, video, audio = project.targets()
    sources = {t.modality: _rendered(project, t) for t in (image, video, audio)}
    for modality, source in sources.items():
        ast.parse(source)
        assert _errors(analyze_source(source)) == [], modality
        assert b"{{" not in source and b"{%" not in source, modality
        assert source.endswith(b"\n") and not source.endswith(b"\n\n")

    image_py, video_py, audio_py = sources["image"], sources["video"], sources["audio"]
    assert ast.literal_eval(_assignment(image_py, "MODEL_NAME")) == "vit_tiny"
    assert ast.literal_eval(_assignment(image_py, "INPUT_SIZE")) == [256, 192]
    assert ast.literal_eval(_assignment(image_py, "MEAN")) == list(manifest.IMAGENET_NORMALIZE[0])
    assert b"img_size=tuple(INPUT_SIZE)" in image_py
    assert b"num_classes: int = 3" in image_py
    assert ast.literal_eval(_assignment(video_py, "NUM_FRAMES")) == 8
    assert ast.literal_eval(_assignment(video_py, "STD")) == [0.25, 0.25, 0.25]
    assert b"features.amax(dim=1)" in video_py and b"features.mean(dim=1)" not in video_py
    assert b"img_size" not in video_py
    assert ast.literal_eval(_assignment(audio_py, "CHANNELS")) == [4, 8]
    assert ast.literal_eval(_assignment(audio_py, "N_FFT")) == 256
    assert ast.literal_eval(_assignment(audio_py, "SAMPLES")) == 96000
    assert b"num_classes: int = 1" in audio_py


def test_hf_image_renders_with_its_config_shipped_as_config_json(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "my-config.json").write_text("{}")
    path = _write(
        tmp_path,
        '[models.image]\nweights = { path = "w.safetensors" }\n'
        'architecture = { template = "hf-image", args = { config = "cfg/my-config.json" } }\n',
    )
    project = manifest.load(path)
    source = _rendered(project, project.targets()[0])
    assert _errors(analyze_source(source)) == []
    assert b"config.json" in source and b"my-config" not in source
    # transformers' own loader maps save_pretrained's names onto the installed version's
    # modules, offline; a strict load_state_dict would tie the zip to one version's names.
    assert b"AutoModelForImageClassification.from_pretrained(" in source
    assert source.count(b"local_files_only=True") == 2
    assert b"output_loading_info=True" in source and b".load_state_dict(" not in source


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    first = _all_builtins_project(tmp_path / "a")
    second = _all_builtins_project(tmp_path / "b")
    for one, two in zip(first.targets(), second.targets(), strict=True):
        assert _rendered(first, one) == _rendered(first, one) == _rendered(second, two)


HOSTILE = "x'\"\nimport os\n__import__('os').system('echo owned')  # \\n"


def _imports(source: bytes) -> set[str]:
    """Every module model.py imports (``import x`` and ``from x import y``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_a_hostile_string_reaches_model_py_only_as_a_literal(tmp_path: Path) -> None:
    """The py filter: quotes, newlines and calls in a value stay inside one string constant."""
    proj = tmp_path / "proj"
    _tiny_template(proj / "tpl" / "tiny")
    for hostile in (HOSTILE, 'a"""b', "tail\\", "\\N{oops}", "'''\n\"\"\"\x00\u2028"):
        path = _write(
            proj,
            '[build]\ntemplates = "tpl"\n[models.image]\nweights = { path = "w.safetensors" }\n'
            f'architecture = {{ template = "tiny", args = {{ label = {json.dumps(hostile)} }} }}\n',
        )
        project = manifest.load(path)
        source = _rendered(project, project.targets()[0])
        value = _assignment(source, "LABEL")
        assert isinstance(value, ast.Constant) and value.value == hostile
        assert _errors(analyze_source(source)) == [], hostile
        assert _imports(source) == {"torch", "safetensors.torch"}


@pytest.mark.parametrize("template", ["timm-image", "timm-video"])
@pytest.mark.parametrize(
    "model_name",
    [
        HOSTILE,
        'x"""\nimport os\nos.system("echo owned")\n"""',
        # Names timm resolves by downloading a config: the network's loader is offline.
        "hf-hub:timm/resnet18.a1_in1k",
        "hf_hub:timm/resnet18",
        "local-dir:/models/resnet18",
        "resnet18 ",
    ],
)
def test_timm_model_names_that_are_not_architecture_names_are_refused(
    tmp_path: Path, template: str, model_name: str
) -> None:
    modality = template.split("-")[1]
    path = _write(
        tmp_path,
        f'[models.{modality}]\nweights = {{ path = "w.safetensors" }}\n'
        f'architecture = {{ template = "{template}", '
        f"args = {{ model_name = {json.dumps(model_name)} }} }}\n",
    )
    error = _load_error(path)
    assert error.key == f"models.{modality}.architecture.args.model_name"
    assert "must match" in str(error) and "no hf-hub:" in str(error)


@pytest.mark.parametrize("model_name", ["resnet18", "vit_small_patch16_224.augreg_in21k", "r"])
def test_timm_names_with_a_pretrained_tag_are_accepted(tmp_path: Path, model_name: str) -> None:
    project = _all_builtins_project(tmp_path, f'model_name = "{model_name}"')
    source = _rendered(project, project.targets()[0])
    assert ast.literal_eval(_assignment(source, "MODEL_NAME")) == model_name
    assert _errors(analyze_source(source)) == []
    assert _imports(source) == {"timm", "torch", "safetensors.torch"}


@pytest.mark.parametrize(
    ("line", "undefined"),
    [
        ("WIDTH = {{ args.widht | py }}", "widht"),  # through the py filter
        ("WIDTH = {{ widht }}", "widht"),
        ("{% if args.widht %}\nWIDTH = 1\n{% endif %}", "widht"),
    ],
)
def test_an_undefined_name_in_a_project_template_names_the_template_file(
    tmp_path: Path, line: str, undefined: str
) -> None:
    proj = tmp_path / "proj"
    broken = TINY_J2.replace("WIDTH = {{ args.width | py }}", line)
    assert broken != TINY_J2
    _tiny_template(proj / "tpl" / "tiny", source=broken)
    path = _write(
        proj,
        '[build]\ntemplates = "tpl"\n[models.image]\nweights = { path = "w.safetensors" }\n'
        'architecture = { template = "tiny" }\n',
    )
    project = manifest.load(path)  # the declaration is fine; rendering is where it fails
    with pytest.raises(TemplateError) as info:
        _rendered(project, project.targets()[0])
    text = str(info.value)
    assert "\n" not in text
    assert str(Path("tpl", "tiny", "model.py.j2")) in text, text
    assert "template tiny failed to render" in text, text
    assert undefined in text, text


def test_a_template_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    broken = TINY_J2.replace("WIDTH = {{ args.width | py }}", "{% if args.width %}\nWIDTH = 1")
    _tiny_template(proj / "tpl" / "tiny", source=broken)
    path = _write(
        proj,
        '[build]\ntemplates = "tpl"\n[models.image]\nweights = { path = "w.safetensors" }\n'
        'architecture = { template = "tiny" }\n',
    )
    project = manifest.load(path)
    with pytest.raises(TemplateError) as info:
        _rendered(project, project.targets()[0])
    text = str(info.value)
    assert "\n" not in text
    assert re.search(r"tpl.tiny.model\.py\.j2:\d+: template tiny failed to render", text), text
    assert "endif" in text, text


def test_a_template_rendering_invalid_python_is_a_template_error(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    _tiny_template(proj / "tpl" / "tiny", source=TINY_J2 + "\ndef broken(:\n")
    path = _write(
        proj,
        '[build]\ntemplates = "tpl"\n[models.image]\nweights = { path = "w.safetensors" }\n'
        'architecture = { template = "tiny" }\n',
    )
    project = manifest.load(path)
    with pytest.raises(TemplateError, match="template tiny rendered invalid Python"):
        _rendered(project, project.targets()[0])


def test_template_context_is_taken_from_the_model_table(tmp_path: Path) -> None:
    project = _all_builtins_project(tmp_path)
    video = project.targets()[1]
    template = project.template_registry().get("timm-video")
    assert template is not None
    context = render.template_context(video, template, template.values({"model_name": "r"}))
    assert context["num_classes"] == 2
    assert context["num_frames"] == 8
    assert context["resize"] == [224, 224]
    assert context["mean"] == [0.5, 0.5, 0.5]
    assert context["args"] == {"model_name": "r", "pooling": "mean", "pass_input_size": False}


# ------------------------------------------------------------------------------------------------
# 5. py_literal

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=8), children, max_size=5),
    ),
    max_leaves=25,
)


@given(_values)
def test_py_literal_round_trips(value: Any) -> None:
    text = py_literal(value)
    assert ast.literal_eval(text) == value
    assert "\n" not in text, "a literal stays on one line"


@given(st.lists(_scalars, max_size=4))
def test_py_literal_keeps_tuples_tuples(items: list[Any]) -> None:
    value = tuple(items)
    back = ast.literal_eval(py_literal(value))
    assert isinstance(back, tuple) and back == value


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, [1.0, math.inf], {"a": math.nan}])
def test_py_literal_refuses_non_finite_floats(bad: Any) -> None:
    with pytest.raises(TemplateError, match="has no Python literal"):
        py_literal(bad)


@pytest.mark.parametrize("bad", [{1, 2}, b"bytes", object(), 1j])
def test_py_literal_refuses_other_types(bad: Any) -> None:
    with pytest.raises(TemplateError, match=r"cannot be rendered into model\.py"):
        py_literal(bad)


# ------------------------------------------------------------------------------------------------
# 6. Arg.check and Arg.describe


def _rejects(arg: Arg, value: Any) -> str:
    with pytest.raises(ArgError) as info:
        arg.check(value)
    return str(info.value)


def test_integer_bounds_and_booleans_are_not_integers() -> None:
    arg = Arg("n", "integer", "h", default=2, min=1, max=3)
    assert arg.check(1) == 1 and arg.check(3) == 3
    assert "must be at least 1 (got 0)" in _rejects(arg, 0)
    assert "must be at most 3 (got 4)" in _rejects(arg, 4)
    assert "must be an integer (got true)" in _rejects(arg, True)
    assert "must be an integer (got 2.0)" in _rejects(arg, 2.0)
    assert "must be an integer" in _rejects(arg, "2")
    assert arg.describe() == "integer, default 2, 1..3"


def test_numbers_become_floats_and_must_be_finite() -> None:
    arg = Arg("p", "number", "h", min=0.0, max=1.0)
    assert arg.check(1) == 1.0 and isinstance(arg.check(1), float)
    assert arg.check(0.25) == 0.25
    assert "must be a number (got false)" in _rejects(arg, False)
    assert "must be finite" in _rejects(arg, math.inf)
    assert "must be finite" in _rejects(arg, math.nan)
    assert "must be at most 1.0 (got 1.5)" in _rejects(arg, 1.5)
    assert arg.describe() == "number, 0.0..1.0"
    assert Arg("p", "number", "h", min=0.5).describe() == "number, 0.5.."


def test_booleans_strings_and_files() -> None:
    flag = Arg("f", "boolean", "h", default=False)
    assert flag.check(True) is True
    assert "must be true or false (got 1)" in _rejects(flag, 1)
    assert flag.describe() == "boolean, default false"
    text = Arg("s", "string", "h", required=True)
    assert text.check("resnet18") == "resnet18"
    assert "must be a non-empty string" in _rejects(text, "")
    assert "must be a non-empty string (got 3)" in _rejects(text, 3)
    assert text.describe() == "string, required"
    assert "must be a non-empty string" in _rejects(Arg("c", "file", "h"), ["x"])


def test_patterns_match_strings_and_string_items_in_full() -> None:
    arg = Arg("name", "string", "h", required=True, pattern="[a-z]+[0-9]*")
    assert arg.check("resnet18") == "resnet18"
    assert 'must match [a-z]+[0-9]* (got "resnet18:x")' in _rejects(arg, "resnet18:x")
    assert "must match" in _rejects(arg, "18resnet")  # fullmatch, not search
    items = Arg("names", "list", "h", items="string", pattern="[a-z]+")
    assert items.check(["a", "b"]) == ["a", "b"]
    assert '[1] must match [a-z]+ (got "B")' in _rejects(items, ["a", "B"])


def test_choices() -> None:
    arg = Arg("pooling", "string", "h", default="mean", choices=("mean", "max"))
    assert arg.check("max") == "max"
    assert 'must be one of "mean", "max" (got "median")' in _rejects(arg, "median")
    assert arg.describe() == 'string, default "mean", one of "mean", "max"'
    numbers = Arg("k", "integer", "h", choices=(1, 3, 5))
    assert numbers.check(3) == 3
    assert "must be one of 1, 3, 5 (got 2)" in _rejects(numbers, 2)


def test_lists_check_their_length_and_every_item() -> None:
    arg = Arg("c", "list", "h", items="integer", min_items=1, max_items=3, min=1)
    assert arg.check([4, 8]) == [4, 8]
    assert "must have at least 1 items (got 0)" in _rejects(arg, [])
    assert "must have at most 3 items (got 4)" in _rejects(arg, [1, 2, 3, 4])
    assert "must be a list (got 4)" in _rejects(arg, 4)
    assert '[1] must be an integer (got "8")' in _rejects(arg, [4, "8"])
    assert "[0] must be an integer (got true)" in _rejects(arg, [True])
    assert "[1] must be at least 1 (got 0)" in _rejects(arg, [4, 0])
    assert arg.describe() == "list of integer, 1.."
    numbers = Arg("m", "list", "h", items="number")
    assert numbers.check([1, 0.5]) == [1.0, 0.5]
    untyped = Arg("u", "list", "h")
    assert "[0] must be a non-empty string (got 1)" in _rejects(untyped, [1])


def test_values_fill_in_defaults_and_resolve_args_finds_problems() -> None:
    audio = registry().get("audio-cnn")
    assert audio is not None
    assert audio.values({"channels": [4, 8]}) == {
        "n_fft": 512,
        "hop_length": 160,
        "channels": [4, 8],
        "dropout": 0.1,
    }
    assert list(audio.resolve_args({"channels": [4, 8]})) == []
    problems = list(audio.resolve_args({"chanels": [4], "n_fft": 4}))
    assert [p[0] for p in problems] == ["chanels", "n_fft"]
    assert problems[0][2] == 'did you mean "channels"?'
    far = list(audio.resolve_args({"zzzzzz": 1}))
    assert far[0][2] == "its arguments: n_fft, hop_length, channels, dropout"
    timm: Template | None = registry().get("timm-image")
    assert timm is not None
    assert [p[:2] for p in timm.resolve_args({})] == [
        ("", "lacks model_name, which template timm-image requires")
    ]


# ------------------------------------------------------------------------------------------------
# 7. The CLI


def test_cli_lists_the_builtins(tmp_path: Path) -> None:
    result = run_cli("templates", cwd=tmp_path, env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    for name in BUILTINS:
        assert name in result.stdout


def test_cli_shows_one_template(tmp_path: Path) -> None:
    result = run_cli("templates", "audio-cnn", cwd=tmp_path, env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    for name in BUILTINS["audio-cnn"][1]:
        assert name in result.stdout
    assert "integer, default 512, 16..8192" in result.stdout
    assert 'template = "audio-cnn"' in result.stdout


def test_cli_json(tmp_path: Path) -> None:
    result = run_cli("templates", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert sorted(t["name"] for t in data) == sorted(BUILTINS)
    for entry in data:
        modality, args = BUILTINS[entry["name"]]
        assert entry["modalities"] == [modality]
        assert set(entry["args"]) == args
        assert entry["source"] == "builtin"
    one = json.loads(run_cli("templates", "timm-video", "--json", cwd=tmp_path).stdout)
    assert [t["name"] for t in one] == ["timm-video"]
    pooling = one[0]["args"]["pooling"]
    assert pooling["choices"] == ["mean", "max"] and pooling["default"] == "mean"
    assert one[0]["args"]["model_name"]["required"] is True


def test_cli_unknown_template_is_a_one_line_error_with_a_suggestion(tmp_path: Path) -> None:
    result = run_cli("templates", "timm-imgae", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "no template named 'timm-imgae'" in lines[0]
    assert 'did you mean "timm-image"?' in lines[0]


def test_cli_lists_a_projects_own_templates_with_dash_c(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    _tiny_template(proj / "tpl" / "tiny-image")
    _write(
        proj,
        '[build]\ntemplates = "tpl"\n\n'
        '[models.image]\nweights = { path = "w.safetensors" }\n'
        'architecture = { template = "tiny-image" }\n',
    )
    listed = run_cli("templates", "-C", str(proj), env={"COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    assert "tiny-image" in listed.stdout and "timm-image" in listed.stdout
    data = json.loads(run_cli("templates", "--json", "-C", str(proj)).stdout)
    tiny = next(t for t in data if t["name"] == "tiny-image")
    assert tiny["source"] != "builtin"
    assert set(tiny["args"]) == {"width", "label"}
    assert len(data) == len(BUILTINS) + 1
    elsewhere = run_cli("templates", "--json", cwd=tmp_path)
    assert "tiny-image" not in elsewhere.stdout


def test_cli_with_a_broken_project_template_exits_2(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    _tiny_template(proj / "tpl" / "tiny-image", source=None)
    _write(
        proj,
        '[build]\ntemplates = "tpl"\n\n'
        '[models.image]\nweights = { path = "w.safetensors" }\n'
        'architecture = { template = "tiny-image" }\n',
    )
    result = run_cli("templates", "-C", str(proj))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "has no model.py.j2" in result.stderr


def test_cli_templates_help(tmp_path: Path) -> None:
    result = run_cli("templates", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert 'architecture = { template = "NAME", args = { ... } }' in result.stdout
    assert "--json" in result.stdout


# ------------------------------------------------------------------------------------------------
# 8. End to end: checkpoints -> convert -> render audio-cnn -> smoke -> zip

AUDIO_ARCH = 'architecture = { template = "audio-cnn", args = { channels = [4, 8] } }\n'


@pytest.fixture(scope="module")
def audio_state(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A seeded state dict of the audio-cnn Detector, built from the rendered template."""
    import torch

    root = tmp_path_factory.mktemp("audio-state")
    path = _write(root, '[models.audio]\nweights = { path = "w.safetensors" }\n' + AUDIO_ARCH)
    project = manifest.load(path)
    source = _rendered(project, project.targets()[0])
    (root / "model.py").write_bytes(source)
    spec = importlib.util.spec_from_file_location(
        f"audio_cnn_{uuid.uuid4().hex}", root / "model.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    model = module.Detector(2)
    with torch.no_grad():  # non-default running stats, so a missed buffer would show
        for name, buffer in model.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
    return {k: v.clone() for k, v in model.state_dict().items()}


def _audio_state_dict_file(path: Path) -> Path:
    """A state dict for the audio-cnn template with channels [4, 8] (any seeded values)."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(3)
    shapes = {
        "input_norm": 1,
        "features.0.1": 4,
        "features.1.1": 8,
    }
    tensors: dict[str, torch.Tensor] = {}
    for prefix, n in shapes.items():
        tensors[f"{prefix}.weight"] = torch.rand(n, generator=generator) + 0.5
        tensors[f"{prefix}.bias"] = torch.randn(n, generator=generator)
        tensors[f"{prefix}.running_mean"] = torch.zeros(n)
        tensors[f"{prefix}.running_var"] = torch.ones(n)
        tensors[f"{prefix}.num_batches_tracked"] = torch.tensor(0)
    tensors["features.0.0.weight"] = torch.randn(4, 1, 3, 3, generator=generator)
    tensors["features.1.0.weight"] = torch.randn(8, 4, 3, 3, generator=generator)
    tensors["head.weight"] = torch.randn(2, 8, generator=generator)
    tensors["head.bias"] = torch.randn(2, generator=generator)
    save_file(tensors, str(path))
    return path


def _build_audio(
    proj: Path, weights: str, cache: Path, findings: list[Finding] | None = None
) -> plan.BuildReport:
    path = _write(proj, f"[models.audio]\nweights = {weights}\n{AUDIO_ARCH}")
    project = manifest.load(path)
    sink: Callable[[str, list[Finding]], None] | None = None
    if findings is not None:

        def sink(origin: str, found: list[Finding]) -> None:
            findings.extend(found)

    return plan.build(project, Cache(cache), plan.BuildOptions(smoke=True), on_findings=sink)


def _zip_tensors(zip_path: Path) -> dict[str, Any]:
    from safetensors.torch import load

    with zipfile.ZipFile(zip_path) as zf:
        assert sorted(zf.namelist()) == ["model.py", "model.safetensors", "model_config.yaml"]
        return load(zf.read("model.safetensors"))


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_e2e_module_prefix_stripped_deterministic_cached_and_locked(
    tmp_path: Path, audio_state: dict[str, Any]
) -> None:
    import torch

    proj = tmp_path / "proj"
    proj.mkdir()
    torch.save({f"module.{k}": v for k, v in audio_state.items()}, proj / "w.pt")
    cache = tmp_path / "cache"
    findings: list[Finding] = []
    report = _build_audio(proj, '{ path = "w.pt", strip_prefix = "module." }', cache, findings)
    assert _errors(findings) == []
    (result,) = report.results
    stages = {s.name: s.hit for s in result.stages}
    assert stages["convert"] is False and stages["render"] is False
    tensors = _zip_tensors(result.zip_path)
    assert _same(tensors, audio_state)
    assert not any(name.startswith("module.") for name in tensors)
    first_bytes = result.zip_path.read_bytes()

    # (g) gas.lock records the template, and the model.py it rendered among the entries
    entry = lock.read(proj / "gas.lock")["audio"]
    assert entry["inputs"]["architecture"] == {"template": "audio-cnn", "source": "builtin"}
    model_py = zipfile.ZipFile(result.zip_path).read("model.py")
    assert entry["entries"]["model.py"] == hashlib.sha256(model_py).hexdigest()
    assert entry["output"]["sha256"] == result.sha256

    # (f) again from scratch in dist/: identical bytes, conversion and rendering from the cache
    result.zip_path.unlink()
    again = _build_audio(proj, '{ path = "w.pt", strip_prefix = "module." }', cache)
    (second,) = again.results
    stages = {s.name: s.hit for s in second.stages}
    assert stages["convert"] is True and stages["render"] is True, stages
    assert second.zip_path.read_bytes() == first_bytes
    assert second.sha256 == result.sha256


def test_e2e_module_prefix_without_strip_prefix_fails(
    tmp_path: Path, audio_state: dict[str, Any]
) -> None:
    """The template loads strictly, so the mismatch raises inside load_model: GAS601 (see
    docs/checks.md, GAS604: "With strict=True ... reported as GAS601")."""
    import torch

    proj = tmp_path / "proj"
    proj.mkdir()
    torch.save({f"module.{k}": v for k, v in audio_state.items()}, proj / "w.pt")
    findings: list[Finding] = []
    with pytest.raises(CheckFailed, match="not written"):
        _build_audio(proj, '{ path = "w.pt" }', tmp_path / "cache", findings)
    errors = _errors(findings)
    assert errors, findings
    error = next(f for f in errors if f.code in ("GAS601", "GAS604"))
    assert error.code == "GAS601", error
    assert "16 missing key(s)" in error.message and "'input_norm.weight'" in error.message
    assert "'module." in error.message
    assert error.hint is not None and 'weights.strip_prefix = "module."' in error.hint
    assert not (proj / "dist" / "audio_detector.zip").exists()


def test_e2e_sharded_hf_checkpoint(tmp_path: Path, audio_state: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    proj = tmp_path / "proj"
    proj.mkdir()
    names = sorted(audio_state)
    halves = {
        "model-00001-of-00002.safetensors": names[: len(names) // 2],
        "model-00002-of-00002.safetensors": names[len(names) // 2 :],
    }
    weight_map = {}
    for shard, keys in halves.items():
        save_file({k: audio_state[k].contiguous() for k in keys}, str(proj / shard))
        weight_map.update(dict.fromkeys(keys, shard))
    assert len(set(weight_map.values())) == 2
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (proj / "model.safetensors.index.json").write_text(json.dumps(index))
    report = _build_audio(proj, '{ path = "model.safetensors.index.json" }', tmp_path / "cache")
    (result,) = report.results
    assert _same(_zip_tensors(result.zip_path), audio_state)
    inputs = lock.read(proj / "gas.lock")["audio"]["inputs"]
    assert {f"weights/{shard}" for shard in halves} <= set(inputs)


def test_e2e_lightning_checkpoint_to_float16(tmp_path: Path, audio_state: dict[str, Any]) -> None:
    import torch

    proj = tmp_path / "proj"
    proj.mkdir()
    checkpoint = {"state_dict": dict(audio_state), "epoch": 1, "global_step": 10}
    torch.save(checkpoint, proj / "last.ckpt")
    weights = '{ path = "last.ckpt", state_dict_key = "state_dict", dtype = "float16" }'
    report = _build_audio(proj, weights, tmp_path / "cache")
    (result,) = report.results
    tensors = _zip_tensors(result.zip_path)
    assert tensors.keys() == audio_state.keys()
    for name, tensor in tensors.items():
        original = audio_state[name]
        if original.is_floating_point():
            assert tensor.dtype == torch.float16, name
            assert torch.equal(tensor, original.half()), name
        else:
            assert tensor.dtype == original.dtype and torch.equal(tensor, original), name


def test_e2e_lightning_checkpoint_without_state_dict_key_fails(
    tmp_path: Path, audio_state: dict[str, Any]
) -> None:
    """Conversion itself refuses a nested checkpoint and says which key to set."""
    import torch

    from gasbuild.stages.convert import ConversionError

    proj = tmp_path / "proj"
    proj.mkdir()
    torch.save({"state_dict": dict(audio_state), "epoch": 1}, proj / "last.ckpt")
    path = _write(proj, f'[models.audio]\nweights = {{ path = "last.ckpt" }}\n{AUDIO_ARCH}')
    project = manifest.load(path)
    with pytest.raises(ConversionError) as info:
        plan.build(project, Cache(tmp_path / "cache"), plan.BuildOptions(smoke=False))
    text = str(info.value)
    assert info.value.exit_code == 2 and "\n" not in text
    # located at the weights table of gas.toml, like a manifest error
    assert "proj/gas.toml:2:1: models.audio.weights: last.ckpt:" in text, text
    assert 'state_dict_key = "state_dict"' in text, text
    assert not (proj / "dist" / "audio_detector.zip").exists()


def test_a_ready_safetensors_file_ships_with_the_rendered_model_py(
    tmp_path: Path, audio_state: dict[str, Any]
) -> None:
    """The zip's model.py is byte-for-byte what render_model_py gives for the same target."""
    from safetensors.torch import save_file

    proj = tmp_path / "proj"
    proj.mkdir()
    save_file({k: v.contiguous() for k, v in audio_state.items()}, str(proj / "w.safetensors"))
    path = _write(proj, f'[models.audio]\nweights = {{ path = "w.safetensors" }}\n{AUDIO_ARCH}')
    project = manifest.load(path)
    report = plan.build(project, Cache(tmp_path / "cache"), plan.BuildOptions(smoke=False))
    (result,) = report.results
    with zipfile.ZipFile(result.zip_path) as zf:
        shipped = zf.read("model.py")
        config = zf.read("model_config.yaml")
    assert shipped == _rendered(project, project.targets()[0])
    assert config == render.render_config(project.targets()[0])
    stages = {s.name: s.hit for s in result.stages}
    assert "convert" not in stages, "a ready safetensors file is shipped as it is"
    assert _same(_zip_tensors(result.zip_path), audio_state)
