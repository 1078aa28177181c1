"""Findings at the files a user edits, not inside a zip that does not exist.

A build (and ``gasbuild check`` of a project) checks entries staged in memory: the zip they
would go into is written only after the checks pass, so ``dist/image_detector.zip/model.py:7``
names a file nobody can open. Each finding is pointed at where its entry comes from instead
(``Finding.source``):

- ``model.py``: the architecture file (``./model.py:7:8``); a template's or a URL's model.py
  has no file of its own, so the staged bytes are kept under ``.gasbuild/rendered/<modality>/``
  and the finding points there;
- ``model_config.yaml``: rendered from gas.toml, so gas.toml at the key the config line came
  from (the model's table when there is no closer key);
- the weights (or a ready ONNX file): the weights path or URL in gas.toml;
- an exported ONNX file: the model.py it was exported from;
- a template's file argument: that file;
- anything else (the submission as a whole, the smoke test's limits): the model's table in
  gas.toml.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gasbuild.blobs import atomic_write
from gasbuild.check.findings import Finding
from gasbuild.errors import Location, display_path
from gasbuild.manifest import ModelTarget, Project
from gasbuild.resources import STATE_DIR
from gasbuild.stages.package import Entry
from gasbuild.submission import CONFIG_FILE, MODEL_FILE
from gasbuild.urls import redact_url

RENDERED_DIR = Path(STATE_DIR) / "rendered"


def rendered_model_py(project: Project, modality: str) -> Path:
    """Where a model.py without a file of its own is kept for reading:
    ``.gasbuild/rendered/<modality>/model.py``."""
    return project.root / RENDERED_DIR / modality / MODEL_FILE


def project_label(project: Project, target: ModelTarget) -> str:
    """How ``gasbuild check`` names a project's model: ``gas.toml [models.image]``."""
    return f"{display_path(project.path)} [{target.key}]"


def locate(
    project: Project, target: ModelTarget, entries: list[Entry], findings: list[Finding]
) -> list[Finding]:
    """``findings`` on the staged ``entries``, each with the ``source`` a user edits."""
    sources = _Sources(project, target, entries)
    return [sources.place(f) for f in findings]


class _Sources:
    """The real file behind each entry of one model's staged submission (model.py's copy is
    written only when a finding needs it)."""

    def __init__(self, project: Project, target: ModelTarget, entries: list[Entry]) -> None:
        self.project = project
        self.target = target
        self.entries = {e.name: e.data for e in entries}

    def place(self, finding: Finding) -> Finding:
        if finding.source is not None:
            return finding
        name = finding.file
        spec = self.target.spec
        if name == MODEL_FILE:
            source = self.model_py()
            if source is not None:
                return replace(finding, source=source)
        elif name == CONFIG_FILE:
            return self._at(finding, self.config_location(finding.line))
        elif name == spec.weights_file or (name is not None and name.endswith(".onnx")):
            exported = name.endswith(".onnx") and spec.architecture is not None
            source = self.model_py() if exported else self.weights()
            if source is not None:
                return replace(finding, source=source, line=None, col=None)
        elif name is not None and self.template_file(name) is not None:
            return replace(finding, source=self.template_file(name))
        return self._at(finding, self.project.locate(self.target.key))

    @staticmethod
    def _at(finding: Finding, where: Location) -> Finding:
        return replace(finding, source=where.file, line=where.line, col=where.col)

    def model_py(self) -> str | None:
        """The architecture file, else the staged model.py kept under .gasbuild/rendered/."""
        arch = self.target.spec.architecture
        if arch is None:
            return None
        if arch.file and not arch.url:
            return display_path(self.project.resolve(arch.file))
        data = self.entries.get(MODEL_FILE)
        if not isinstance(data, bytes):
            return None
        path = rendered_model_py(self.project, self.target.modality)
        try:
            if not path.is_file() or path.read_bytes() != data:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, data, durable=False)
        except OSError:  # a read-only project: the finding still names the declaration
            return None
        return display_path(path)

    def weights(self) -> str | None:
        spec = self.target.spec.weights
        if spec.url is not None:
            return redact_url(spec.url)
        return None if spec.path is None else display_path(self.project.resolve(spec.path))

    def template_file(self, name: str) -> str | None:
        """The file a template argument ships under ``name`` (e.g. ``config.json``)."""
        arch = self.target.spec.architecture
        if arch is None or arch.template is None:
            return None
        template = self.project.template_registry().get(arch.template)
        arg = None if template is None else template.files.get(name)
        given = None if arg is None else arch.args.get(arg)
        return None if not isinstance(given, str) else display_path(self.project.resolve(given))

    def config_location(self, line: int | None) -> Location:
        """gas.toml at the key a model_config.yaml line was rendered from."""
        keys = _config_keys(self.entries.get(CONFIG_FILE), line)
        return self.project.locate(("models", self.target.modality, *_manifest_keys(keys)))


def _config_keys(data: object, line: int | None) -> tuple[str, ...]:
    """The key path of the block-style YAML mapping entry at 1-based ``line``."""
    if not isinstance(data, bytes) or line is None:
        return ()
    import yaml

    try:
        node = yaml.compose(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return ()
    path: list[str] = []
    while isinstance(node, yaml.MappingNode):
        above = [(k, v) for k, v in node.value if k.start_mark.line + 1 <= line]
        if not above or not isinstance(above[-1][0].value, str):
            break
        key, node = above[-1]
        path.append(key.value)
    return tuple(path)


def _manifest_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    """A model_config.yaml key path as the model table's (``model.num_classes`` is the
    table's ``num_classes``; ``model.<kwarg>`` its ``model`` table; the rest by name)."""
    if keys[:1] == ("model",) and keys[1:2] in (("num_classes",), ("weights_file",)):
        return keys[1:2]
    if keys[:1] == ("modality",):
        return ()
    return keys
