"""``format = "onnx"`` with an architecture: gas.toml to a legacy ONNX zip, through the export
stage (sandboxed torch.onnx export, onnxruntime parity), reproducibly."""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from conftest import EXAMPLES
from gasbuild import manifest, plan
from gasbuild.cache import Cache
from gasbuild.check import Finding
from gasbuild.errors import CheckFailed, ManifestError

pytestmark = pytest.mark.slow

IMAGE_ONNX = """\
[models.image]
format = "onnx"
architecture = { file = "image_model.py" }
weights = { path = "image.safetensors" }
preprocessing = { resize = [64, 64] }
model = { width = 16 }
"""


def _image_project(root: Path, toml: str = IMAGE_ONNX) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLES / "quickstart" / "models" / "image_model.py", root)
    shutil.copy(EXAMPLES / "quickstart" / "weights" / "image.safetensors", root)
    (root / "gas.toml").write_text(toml)
    return root


def _build(root: Path, cache: Path) -> plan.BuildReport:
    project = manifest.load(root / "gas.toml")
    return plan.build(project, Cache(cache), plan.BuildOptions())


def test_an_architecture_and_weights_export_to_a_legacy_onnx_zip(tmp_path: Path) -> None:
    import onnx

    report = _build(_image_project(tmp_path / "a"), tmp_path / "cache-a")
    (result,) = report.results
    assert [s.name for s in result.stages] == ["fetch", "render", "export", "validate", "package"]
    with zipfile.ZipFile(result.zip_path) as zf:
        assert zf.namelist() == ["image_detector.onnx"]
        model = onnx.load_from_string(zf.read("image_detector.onnx"))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [3, 64, 64] and isinstance(dims[0], str)  # dynamic batch only
    assert not [f for f in result.findings if f.severity == "error"]


def test_the_export_is_byte_for_byte_reproducible_and_cached(tmp_path: Path) -> None:
    first = _build(_image_project(tmp_path / "a"), tmp_path / "cache-a").results[0]
    second = _build(_image_project(tmp_path / "b"), tmp_path / "cache-b").results[0]
    assert first.sha256 == second.sha256  # two projects, two caches, one export each
    again = _build(tmp_path / "a", tmp_path / "cache-a").results[0]
    assert {s.name: s.hit for s in again.stages}["export"] is True


def test_model_py_is_checked_before_the_export_runs_it(tmp_path: Path) -> None:
    root = _image_project(tmp_path / "a")
    source = (root / "image_model.py").read_text()
    (root / "image_model.py").write_text("import subprocess\n" + source)
    seen: list[str] = []
    project = manifest.load(root / "gas.toml")
    with pytest.raises(CheckFailed, match="was not exported"):
        plan.build(
            project,
            Cache(tmp_path / "cache"),
            plan.BuildOptions(),
            on_findings=lambda origin, fs: seen.extend(f.code for f in fs),
        )
    assert "GAS303" in seen or "GAS304" in seen
    assert not (root / "dist").exists()


def test_onnx_keys_that_only_a_shipped_safetensors_zip_has_are_refused(tmp_path: Path) -> None:
    toml = IMAGE_ONNX.replace("model = {", 'weights_file = "w.safetensors"\nmodel = {')
    root = _image_project(tmp_path / "a", toml)
    with pytest.raises(ManifestError, match=r"models\.image\.weights_file applies only to"):
        manifest.load(root / "gas.toml")


def test_the_audio_cnn_template_exports_its_stft_front_end(tmp_path: Path) -> None:
    """torch.stft exports only in its real-valued form: the template renders that for ONNX."""
    import torch

    root = tmp_path / "audio"
    root.mkdir()
    (root / "gas.toml").write_text(
        "[models.audio]\n"
        'format = "onnx"\n'
        'architecture = { template = "audio-cnn", args = { channels = [4, 8] } }\n'
        'weights = { path = "audio.pt", strip_prefix = "module." }\n'
    )
    project = manifest.load(root / "gas.toml")
    (target,) = project.targets()
    template = project.template_registry().get("audio-cnn")
    assert template is not None and target.spec.architecture is not None
    from gasbuild.stages import render

    source = render.render_model_py(target, template, template.values({"channels": [4, 8]}))
    assert b"return_complex=False" in source
    (root / "rendered.py").write_bytes(source)
    spec = importlib.util.spec_from_file_location(f"audio_{uuid.uuid4().hex}", root / "rendered.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    state = module.Detector(2).state_dict()
    torch.save({f"module.{k}": v for k, v in state.items()}, root / "audio.pt")
    seen: list[str] = []

    def collect(origin: str, findings: list[Finding]) -> None:
        seen.extend(f"{f.code} {f.severity} {f.message}" for f in findings)

    built = plan.build(project, Cache(tmp_path / "cache"), plan.BuildOptions(), on_findings=collect)
    (result,) = built.results
    # torch.stft's framing leaves a stepped Slice unfolded: an exporter note, not a warning.
    assert [m.split()[0] for m in seen] == ["GAS500"], seen  # the ONNX format warning alone
    assert [s.name for s in result.stages][:4] == ["fetch", "convert", "render", "export"]
    with zipfile.ZipFile(result.zip_path) as zf:
        assert zf.namelist() == ["audio_detector.onnx"]


def test_a_teammates_export_is_pulled_from_the_remote_cache(tmp_path: Path) -> None:
    """Conversion and export outputs are objects like any other: a second machine with an
    empty local cache and the same remote reuses them instead of running torch."""
    from gasbuild.cache import RemoteCache

    remote = (tmp_path / "remote").as_uri()
    root = _image_project(tmp_path / "a")
    project = manifest.load(root / "gas.toml")
    first = plan.build(
        project, Cache(tmp_path / "one", remote=RemoteCache(remote)), plan.BuildOptions()
    ).results[0]
    second = plan.build(
        project, Cache(tmp_path / "two", remote=RemoteCache(remote)), plan.BuildOptions()
    ).results[0]
    assert {s.name: s.hit for s in second.stages}["export"] is True
    assert second.sha256 == first.sha256


def test_a_noop_rebuild_never_reads_a_stored_conversion_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The converted weights are trusted by their stat record: a rebuild reads no weight byte
    (using an object only moves its access time, never the mtime that record holds)."""
    from gasbuild import blobs
    from gasbuild.stages import fetch

    toml = IMAGE_ONNX.replace('format = "onnx"\n', "").replace(
        'weights = { path = "image.safetensors" }',
        'weights = { path = "image.safetensors", dtype = "float16" }',
    )
    root = _image_project(tmp_path / "a", toml)
    old = time.time() - 60  # older than the stat cache's racy window
    for path in root.iterdir():
        os.utime(path, (old, old))
    project = manifest.load(root / "gas.toml")
    cache = Cache(tmp_path / "cache")
    first = plan.build(project, cache, plan.BuildOptions(smoke=False)).results[0]
    assert {s.name: s.hit for s in first.stages}["convert"] is False

    def no_reads(path: Path) -> None:
        raise AssertionError(f"read {path}")

    monkeypatch.setattr(fetch, "measure_file", no_reads)
    monkeypatch.setattr(blobs, "measure_file", no_reads)
    monkeypatch.setattr(plan, "measure_file", no_reads)
    again = plan.build(project, cache, plan.BuildOptions(smoke=False)).results[0]
    assert all(s.hit for s in again.stages), again.stages
    assert again.sha256 == first.sha256


TRACED_BRANCH = """\
import torch
from safetensors.torch import load_file
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.head = nn.Linear(3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.float().mean(dim=(2, 3)) / 255.0
        if pooled.sum() > -1.0:  # always true: the tracer keeps this branch as a constant
            return self.head(pooled)
        return self.head(-pooled)


def load_model(weights_path: str, num_classes: int = 2) -> nn.Module:
    model = Net(num_classes)
    model.load_state_dict(load_file(weights_path), strict=True)
    return model.train(False)
"""


def test_the_exporters_warnings_are_reported_on_every_build(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    root = tmp_path / "traced"
    root.mkdir()
    (root / "model.py").write_text(TRACED_BRANCH)
    torch.manual_seed(0)
    save_file({"head.weight": torch.randn(2, 3), "head.bias": torch.zeros(2)}, root / "w.st")
    (root / "gas.toml").write_text(
        '[models.image]\nformat = "onnx"\narchitecture = { file = "model.py" }\n'
        'weights = { path = "w.st" }\npreprocessing = { resize = [32, 32] }\n'
    )
    project = manifest.load(root / "gas.toml")
    for attempt in ("cold", "cached"):
        seen: list[str] = []

        def collect(origin: str, findings: list[Finding], into: list[str] = seen) -> None:
            into.extend(f"{f.code} {f.message}" for f in findings)

        plan.build(project, Cache(tmp_path / "cache"), plan.BuildOptions(), on_findings=collect)
        warned = [m for m in seen if m.startswith("GAS509")]
        assert warned and "boolean" in warned[0], (attempt, seen)


def test_export_settings_reach_the_exporter_and_are_refused_without_an_export(
    tmp_path: Path,
) -> None:
    """`export = { opset, rtol, atol }` changes the export (another opset, another cache key);
    on a model that is not exported it is a manifest error."""
    import onnx

    settings = "export = { opset = 18, rtol = 0.01, atol = 0.001 }\n"
    root = _image_project(tmp_path / "a", IMAGE_ONNX + settings)
    (result,) = _build(root, tmp_path / "cache").results
    with zipfile.ZipFile(result.zip_path) as zf:
        model = onnx.load_from_string(zf.read("image_detector.onnx"))
    assert {o.domain or "": o.version for o in model.opset_import}[""] == 18

    shipped = IMAGE_ONNX.replace('format = "onnx"\n', "")  # safetensors: nothing is exported
    plain = _image_project(tmp_path / "b", shipped + settings)
    with pytest.raises(ManifestError, match=r"models\.image\.export applies only to"):
        manifest.load(plain / "gas.toml")
