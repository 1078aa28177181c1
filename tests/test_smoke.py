"""The smoke test: tiny models written here, each run in the sandboxed child as the loader would.

Every case is a real child process importing torch (about 2 s each), so the cases run two at a
time from one module fixture; each test then waits only for its own case.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gasbuild.check import smoke
from gasbuild.check.findings import (
    CheckOptions,
    DirectorySubmission,
    Finding,
    StagedSubmission,
    has_errors,
)
from gasbuild.check.smoke import check_smoke, smoke_available
from gasbuild.sandbox import loader_child as child
from gasbuild.sandbox import runner, smoke_child
from gasbuild.sandbox.runner import child_env

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

pytestmark = pytest.mark.slow

# One model for the three modalities: it casts and scales inside forward, as the contract asks.
MODEL_PY = """\
import torch
import torch.nn as nn
from safetensors.torch import load_file


class Tiny(nn.Module):
    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=3, padding=1)
        self.head = nn.Linear(4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        if x.dim() == 2:  # audio [B, 96000] in [-1, 1]: fold into a small image
            x = (x[:, : 3 * 32 * 32].reshape(batch, 3, 32, 32) + 1) * 127.5
        if x.dim() == 5:  # video [B, T, 3, H, W]: frames share the network, then pool
            x = x.flatten(0, 1)
        feats = self.conv(x.to(self.head.weight.dtype) / 255.0).mean(dim=(2, 3))
        feats = feats.view(batch, -1, feats.shape[-1]).mean(dim=1)
        return LOGITS


def load_model(weights_path: str, num_classes: int = 2) -> nn.Module:
    LOAD
    return RESULT
"""

LOGITS = "self.head(feats)"
LOAD = "model = Tiny(num_classes)\n    model.load_state_dict(load_file(weights_path))"
RESULT = "model"

CONFIGS = {
    "image": "modality: image\npreprocessing:\n  resize: [32, 32]\n",
    "video": "modality: video\npreprocessing:\n  resize: [16, 16]\n  num_frames: 3\n",
    "audio": "modality: audio\npreprocessing:\n  sample_rate: 16000\n  duration_seconds: 6.0\n",
}


def model_py(logits: str = LOGITS, load: str = LOAD, result: str = RESULT, top: str = "") -> str:
    source = MODEL_PY.replace("LOGITS", logits).replace("LOAD", load).replace("RESULT", result)
    return top + source


def weights(
    num_classes: int = 2,
    prefix: str = "",
    extra: bool = False,
    head: bool = True,
    rename: dict[str, str] | None = None,
) -> bytes:
    rename = rename or {}
    generator = torch.Generator().manual_seed(3)
    tensors = {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=generator) * 0.1,
        "conv.bias": torch.zeros(4),
        "head.weight": torch.randn(num_classes, 4, generator=generator) * 0.1,
        "head.bias": torch.zeros(num_classes),
    }
    if not head:
        del tensors["head.weight"], tensors["head.bias"]
    tensors = {rename.get(k, k): v for k, v in tensors.items()}
    if extra:
        tensors["aux.weight"] = torch.ones(2)
    return bytes(safetensors_torch.save({prefix + k: v for k, v in tensors.items()}))


# Names that no prefix maps onto the model's, and a load_model that maps them itself.
FILE_NAMES = {
    "conv.weight": "stem.w",
    "conv.bias": "stem.b",
    "head.weight": "fc.weight",
    "head.bias": "fc.bias",
}
MAPPED_LOAD = (
    "names = {'stem.w': 'conv.weight', 'stem.b': 'conv.bias', 'fc.weight': 'head.weight', "
    "'fc.bias': 'head.bias'}\n"
    "    model = Tiny(num_classes)\n"
    "    state = load_file(weights_path)\n"
    "    model.load_state_dict({names.get(k, k): v for k, v in state.items()}, strict=True)"
)


def config(modality: str = "image", num_classes: int = 2, extra: str = "", top: str = "") -> str:
    return (
        f'name: "tiny"\nversion: "1.0.0"\n{top}{CONFIGS[modality]}'
        f'model:\n  num_classes: {num_classes}\n  weights_file: "model.safetensors"\n{extra}'
    )


@dataclass
class Case:
    """A submission and what its smoke test must report."""

    name: str
    codes: set[str]  # codes that must be reported (errors unless only warnings are listed)
    model: str = field(default_factory=model_py)
    config: str = field(default_factory=config)
    weights: bytes = field(default_factory=weights)
    modality: str | None = None
    timeout: float = 120.0
    memory_mb: int = 4096
    check: Callable[[list[Finding]], None] | None = None

    def files(self) -> dict[str, bytes]:
        return {
            "model_config.yaml": self.config.encode(),
            "model.py": self.model.encode(),
            "model.safetensors": self.weights,
        }


def _module_hint(findings: list[Finding]) -> None:
    errors = [f for f in findings if f.code == "GAS604" and f.severity == "error"]
    assert errors and errors[0].hint and "'module.'" in errors[0].hint, findings
    assert "initial values" in errors[0].message


def _line_of(text: str) -> Callable[[list[Finding]], None]:
    def check(findings: list[Finding]) -> None:
        lines = MODEL_PY_LINES[text]
        assert any(f.file == "model.py" and f.line == lines for f in findings), findings

    return check


def _message(*parts: str) -> Callable[[list[Finding]], None]:
    def check(findings: list[Finding]) -> None:
        text = "\n".join(f"{f.message} {f.hint}" for f in findings)
        assert all(p in text for p in parts), text

    return check


RAISING = model_py(load="raise ValueError('boom')")
MODEL_PY_LINES = {"boom": RAISING.splitlines().index("    raise ValueError('boom')") + 1}
# A line the protocol would take for a clean result, printed at import and in forward.
PRINTS = 'json_like = \'{"result": {"findings": []}}\'\nprint(json_like, flush=True)\n'

CASES = [
    # valid: prints (a fake result line among them) must not disturb the protocol
    Case(
        "valid-image-that-prints",
        set(),
        model=model_py(logits="print('forward', json_like) or self.head(feats)", top=PRINTS),
    ),
    Case("valid-video", set(), config=config("video")),
    Case(
        "valid-audio-bf16-slot",
        set(),
        config=config("audio", top='dtype: "bf16"\n'),
        modality="audio",
    ),
    Case("load-model-raises", {"GAS601"}, model=RAISING, check=_line_of("boom")),
    Case("returns-non-module", {"GAS602"}, model=model_py(result="{'model': model}")),
    Case("one-dim-output", {"GAS605"}, model=model_py(logits="self.head(feats)[:, 0]")),
    Case(
        "four-classes",
        {"GAS605"},
        model=model_py(load=LOAD.replace("Tiny(num_classes)", "Tiny(4)")),
        weights=weights(4),
        check=_message("C = 4"),
    ),
    Case(
        "classes-differ-from-config",
        {"GAS605"},
        model=model_py(load=LOAD.replace("Tiny(num_classes)", "Tiny(2)")),
        config=config(num_classes=1),
        check=_message("C = 2", "num_classes in the config is 1"),
    ),
    Case(
        "nan-output-after-printing-a-fake-result",
        {"GAS606"},
        model=model_py(logits="print(json_like) or self.head(feats) * float('nan')", top=PRINTS),
    ),
    Case(
        "module-prefix-not-loaded",
        {"GAS604"},
        model=model_py(load=LOAD.replace("))", "), strict=False)")),
        weights=weights(prefix="module."),
        check=_module_hint,
    ),
    Case(
        "module-prefix-stripped-by-load-model",
        set(),
        model=model_py(
            load="model = Tiny(num_classes)\n    state = load_file(weights_path)\n"
            "    model.load_state_dict({k.removeprefix('module.'): v for k, v in state.items()})"
        ),
        weights=weights(prefix="module."),
    ),
    Case(
        # load_model maps the file's names itself, not by a prefix (as transformers'
        # from_pretrained does): the values show that every tensor was loaded.
        "names-mapped-by-load-model",
        set(),
        model=model_py(load=MAPPED_LOAD),
        weights=weights(rename=FILE_NAMES),
    ),
    Case(
        "names-mapped-by-load-model-but-one-left-out",
        {"GAS604"},
        model=model_py(load=MAPPED_LOAD.replace("strict=True", "strict=False")).replace(
            "'fc.weight': 'head.weight', ", ""
        ),
        weights=weights(rename=FILE_NAMES),
        check=_message("'head.weight'", "keep their initial values"),
    ),
    Case(
        "weights-never-loaded",
        {"GAS604"},
        model=model_py(load="model = Tiny(num_classes)"),
        check=_message("differ from the model.safetensors tensors"),
    ),
    Case(
        "unused-tensor-in-file",
        {"GAS604"},
        model=model_py(load=LOAD.replace("))", "), strict=False)")),
        weights=weights(extra=True),
        check=_message("'aux.weight'"),
    ),
    Case(
        "kwargs-rejected-then-retried",
        {"GAS603"},
        config=config(extra="  width: 4\n"),
        check=_message("width", "num_classes only"),
    ),
    Case(
        # The loader binds the signature first: a TypeError raised inside load_model is a
        # failure, even though a retry with num_classes only would have worked.
        "type-error-inside-load-model-is-not-retried",
        {"GAS601"},
        model=model_py(
            load="if kwargs:\n        raise TypeError('width is not supported')\n    " + LOAD
        ).replace(
            "num_classes: int = 2) -> nn.Module:", "num_classes: int = 2, **kwargs) -> nn.Module:"
        ),
        config=config(extra="  width: 4\n"),
        check=_message("load_model raised TypeError: width is not supported"),
    ),
    Case(
        "signature-takes-neither-call",
        {"GAS601"},
        model=model_py().replace(
            "def load_model(weights_path: str, num_classes: int = 2)",
            "def load_model(weights_path: str, *, width: int)",
        ),
        check=_message("cannot be called as the loader calls it", "missing a required argument"),
    ),
    Case(
        # The benchmark reads embeddings from the head's input; a head forward skips has none.
        "head-never-called",
        {"GAS609"},
        model=model_py(logits="feats[:, :2]"),
        check=_message("'head'", "forward never calls it"),
    ),
    Case(
        "no-classification-head",
        {"GAS609"},
        model=model_py(logits="feats[:, :2]")
        .replace("        self.head = nn.Linear(4, num_classes)\n", "")
        .replace("self.head.weight.dtype", "self.conv.weight.dtype"),
        weights=weights(head=False),
        check=_message("finds no classification head", "self.classifier = nn.Linear(features, 2)"),
    ),
    Case(
        "checkpoint-head-has-other-classes",
        {"GAS601"},
        config=config(num_classes=3),
        weights=weights(num_classes=2),
        check=_message("size mismatch for head.weight", "set num_classes = 2"),
    ),
    Case(
        "endless-loop",
        {"GAS607"},
        model=model_py(load="while True:\n        pass"),
        timeout=10.0,
        check=_message("load_model"),
    ),
    Case(
        "memory-hog",
        {"GAS608"},
        model=model_py(load="hog = torch.ones(1024, 1024, 1024)"),
        memory_mb=1200,
        check=_message("out of memory while load_model", "1200 MB"),
    ),
    Case(
        "crash-without-result",
        {"GAS608"},
        model=model_py(load="import ctypes\n    ctypes.string_at(0)"),
        check=_message("SIGSEGV", "load_model"),
    ),
    Case(
        "fails-at-batch-one",
        {"GAS605"},
        model=model_py(logits="self.head(feats).squeeze()"),
        check=_message("batch of 1"),
    ),
    Case(
        "network-blocked",
        {"GAS601"},
        model=model_py(load="torch.hub.load_state_dict_from_url('https://example.com/w.pth')"),
        check=_message("load_model raised", "runs offline"),
    ),
    Case("syntax-error", {"GAS601"}, model="def load_model(:\n", check=_message("SyntaxError")),
]


def _run_case(case: Case, root: Path) -> list[Finding]:
    path = root / case.name
    path.mkdir()
    for name, data in case.files().items():
        (path / name).write_bytes(data)
    opts = CheckOptions(
        modality=case.modality,  # type: ignore[arg-type]
        smoke_batch=2,
        smoke_timeout=case.timeout,
        smoke_memory_mb=case.memory_mb,
    )
    return check_smoke(DirectorySubmission(path, case.name), opts)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[list[Finding]]]]:
    root = tmp_path_factory.mktemp("smoke")
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {case.name: pool.submit(_run_case, case, root) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, results: dict[str, Future[list[Finding]]]) -> None:
    findings = results[case.name].result()
    rendered = "\n".join(f.format(case.name) for f in findings)
    if not case.codes:
        assert findings == [], rendered
        return
    reported = {f.code for f in findings}
    assert case.codes <= reported, rendered
    if any(f.code in case.codes and f.severity == "error" for f in findings):
        assert has_errors(findings)
    if case.check is not None:
        case.check(findings)


@pytest.mark.parametrize("case", ["head-never-called", "no-classification-head"])
def test_a_missing_head_is_only_a_warning(
    case: str, results: dict[str, Future[list[Finding]]]
) -> None:
    findings = results[case].result()
    assert [(f.code, f.severity) for f in findings] == [("GAS609", "warning")]


@pytest.mark.parametrize(
    ("modules", "expected"),
    [
        # An explicit self.classifier wins, however shallow.
        ({"classifier": (4, 2), "deep.fc": (8, 2)}, "classifier"),
        # A classifier with the wrong width is skipped for the deepest Linear with C outputs.
        ({"classifier": (4, 3), "a.fc": (4, 2), "a.b.fc": (4, 2)}, "a.b.fc"),
        # Same depth: more inputs first, then the first one found.
        ({"a.fc": (4, 2), "b.fc": (8, 2), "c.fc": (8, 2)}, "b.fc"),
        ({"a.fc": (4, 3)}, None),
    ],
)
def test_the_head_is_found_as_the_benchmark_finds_it(
    modules: dict[str, tuple[int, int]], expected: str | None
) -> None:
    root = torch.nn.Module()
    for dotted, (features, classes) in modules.items():
        parent = root
        *path, leaf = dotted.split(".")
        for part in path:
            if not hasattr(parent, part):
                parent.add_module(part, torch.nn.Module())
            parent = getattr(parent, part)
        parent.add_module(leaf, torch.nn.Linear(features, classes))
    head = smoke_child.find_head(root, 2, torch)
    assert (head[0] if head else None) == expected


def _plan(num_classes: int = 2) -> child.Plan:
    kwargs = {"num_classes": num_classes}
    return child.Plan(
        Path("m.py"), Path("w"), "w", kwargs, "float32", "image", (3, 8, 8), num_classes
    )


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (
            RuntimeError(
                "Error(s) in loading state_dict for ViT:\n\tsize mismatch for pos_embed: copying "
                "a param with shape torch.Size([1, 197, 192]) from checkpoint, the shape in "
                "current model is torch.Size([1, 101, 192])."
            ),
            ["pos_embed was made for another input size", "pass_input_size = true"],
        ),
        (
            RuntimeError(
                "size mismatch for fc.weight: copying a param with shape torch.Size([2, 512]) "
                "from checkpoint, the shape in current model is torch.Size([3, 512])."
            ),
            ["fc.weight has 2 outputs, and num_classes is 3", "set num_classes = 2"],
        ),
        (
            RuntimeError(
                "size mismatch for conv.weight: copying a param with shape torch.Size([8, 3]) "
                "from checkpoint, the shape in current model is torch.Size([16, 3])."
            ),
            ["has shape [8, 3], the model's [16, 3]", "another architecture"],
        ),
        (
            AssertionError("Input height (160) doesn't match model (224)."),
            ["another input size than preprocessing.resize", "pass_input_size = true"],
        ),
        (
            TypeError("ResNet.__init__() got an unexpected keyword argument 'img_size'"),
            ["pass_input_size = false"],
        ),
        (  # transformers 5's from_pretrained: the shapes are in a log table, not the message
            RuntimeError(
                "You set `ignore_mismatched_sizes` to `False`, thus raising an error. For "
                "details look at the above report!"
            ),
            ["num_classes must match its num_labels", "image_size"],
        ),
    ],
)
def test_well_known_failures_get_a_fix(error: BaseException, words: list[str]) -> None:
    hint = child.known_fix(error, _plan(num_classes=3))
    assert hint is not None and all(w in hint for w in words), hint


def test_other_failures_get_no_invented_fix() -> None:
    assert child.known_fix(ValueError("boom"), _plan()) is None
    assert child.known_fix(TypeError("unexpected keyword argument 'width'"), _plan()) is None


def test_kwargs_fallback_is_only_a_warning(results: dict[str, Future[list[Finding]]]) -> None:
    findings = results["kwargs-rejected-then-retried"].result()
    assert [(f.code, f.severity) for f in findings] == [("GAS603", "warning")]


def test_large_local_files_are_linked_not_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Path] = []
    real_link = smoke._link

    def spy(source: Path, dest: Path) -> bool:
        seen.append(source)
        return real_link(source, dest)

    monkeypatch.setattr(smoke, "LINK_MIN_BYTES", 0)
    monkeypatch.setattr(smoke, "_link", spy)
    big = tmp_path / "big.safetensors"
    big.write_bytes(weights())
    sub = StagedSubmission(
        {
            "model_config.yaml": config().encode(),
            "model.py": model_py().encode(),
            "model.safetensors": big,
        },
        "staged",
    )
    assert check_smoke(sub, CheckOptions(smoke_batch=2)) == []
    assert seen == [big]


# ---------------------------------------------------------------------------------------------
# Pieces that need no child.


def test_smoke_is_available_here() -> None:
    assert smoke_available()


def test_missing_torch_is_a_skip_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smoke, "CHILD_MODULES", ("torch", "no_such_module_for_gasbuild"))
    sub = StagedSubmission({"model.py": b""}, "x")
    findings = check_smoke(sub, CheckOptions())
    assert [(f.code, f.severity) for f in findings] == [("GAS600", "warning")]
    assert not smoke_available()


def test_child_env_is_offline_and_keeps_no_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GASBUILD_TEST_SECRET", "hunter2")
    monkeypatch.setenv("PYTHONPATH", "/nowhere")
    env = child_env(tmp_path)
    assert "GASBUILD_TEST_SECRET" not in env and "PYTHONPATH" not in env
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"
    assert env["https_proxy"] == env["HTTPS_PROXY"] == runner.DEAD_PROXY
    assert env["no_proxy"] == ""
    assert Path(env["HOME"]).is_relative_to(tmp_path)


def test_importing_the_smoke_modules_imports_no_torch() -> None:
    code = textwrap.dedent(
        """
        import sys
        import gasbuild.check.smoke
        import gasbuild.sandbox.smoke_child
        gasbuild.check.smoke.smoke_available()
        print(",".join(sorted({"torch", "onnx", "onnxruntime", "safetensors"} & set(sys.modules))))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    ("unexpected", "missing", "rename"),
    [
        (["module.a.w", "module.b.w"], ["a.w", "b.w"], ("module.", "")),
        (["module.enc.a.w", "module.enc.b.w"], ["enc.a.w", "enc.b.w"], ("module.", "")),
        (["a.w", "b.w"], ["backbone.a.w", "backbone.b.w"], ("", "backbone.")),
        (["x.w"], ["y.w"], None),
        ([], ["y.w"], None),
    ],
)
def test_find_rename(
    unexpected: list[str], missing: list[str], rename: tuple[str, str] | None
) -> None:
    assert child.find_rename(missing, unexpected) == rename


def test_common_prefixes_stop_at_dots() -> None:
    assert child.common_prefixes(["model.enc.a", "model.enc.b"]) == ["model.enc.", "model."]
    assert child.common_prefixes(["modelA.x", "modelB.x"]) == []


def test_unwrap_follows_the_loader() -> None:
    class Out:
        logits = "L"

    assert child.unwrap({"logits": "L", "other": 1}) == "L"
    assert child.unwrap({"output": "O", "other": 1}) == "O"
    assert child.unwrap({"only": "X"}) == "X"
    assert child.unwrap(Out()) == "L"
    assert child.unwrap(("T",)) == "T"
    assert child.unwrap(["T"]) == "T"
    assert child.unwrap(("a", "b")) == ("a", "b")


def test_sample_shapes_follow_the_benchmark() -> None:
    contract = runner.loader_job(Path("."), modality=None, batch=1, memory_mb=1, paths=[])[
        "contract"
    ]
    frames_only = {"preprocessing": {"num_frames": 8}}  # ignored without resize
    assert child.sample_shape(frames_only, "video", contract) == (16, 3, 224, 224)
    both = {"preprocessing": {"num_frames": 8, "resize": [32, 48]}}
    assert child.sample_shape(both, "video", contract) == (8, 3, 32, 48)
    assert child.sample_shape({}, "image", contract) == (3, 224, 224)
    assert child.sample_shape({}, "audio", contract) == (96000,)
