"""model.py static analysis: one case per evasion (code and line), clean models pass, and the
analyzer never raises on anything, bytes or text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gasbuild.check.findings import CheckOptions, Finding, StagedSubmission
from gasbuild.check.static import analyze_source, blocked_reason, check_static
from static_cases import CASES, CLEAN, HARMLESS, WARNING_CODES

REPO = Path(__file__).resolve().parent.parent


def _analyze(source: str) -> list[Finding]:
    return analyze_source(source.encode())


def _at(findings: list[Finding], code: str) -> list[int | None]:
    return [f.line for f in findings if f.code == code]


def _only(source: str) -> list[tuple[str, int | None]]:
    """(code, line) of every finding, for snippets that need no load_model check."""
    return [(f.code, f.line) for f in _analyze(source) if f.code != "GAS309"]


# --------------------------------------------------------------------------- clean models


def test_a_clean_realistic_model_has_no_finding() -> None:
    assert _analyze(CLEAN) == []


def test_the_bundled_examples_and_init_template_are_clean() -> None:
    import jinja2

    for path in sorted((REPO / "examples").glob("*/models/*.py")):
        assert analyze_source(path.read_bytes()) == [], path
    template = jinja2.Template((REPO / "templates" / "init" / "model.py.j2").read_text())
    for modality in ("image", "video", "audio"):
        rendered = template.render(modality=modality, input_doc="the benchmark's tensor")
        assert _analyze(rendered) == [], modality


@pytest.mark.parametrize("control", HARMLESS, ids=[c[0] for c in HARMLESS])
def test_harmless_controls_have_no_finding(control: tuple[str, str]) -> None:
    name, source = control
    findings = _analyze(source)
    assert findings == [], "\n".join(f.format(name) for f in findings)


_GUARDED = [
    # (call template, literals that are safe, literals that are not)
    ("np.load(p, allow_pickle={})", ["False"], ["True", "1", "'yes'", "None"]),
    ("torch.load(p, weights_only={})", ["True"], ["False", "1", "None"]),
    ("np.memmap(p, mode={})", ["'r'", "'c'"], ["'w+'", "'r+'", "None"]),
    ("Path(p).open({})", ["'r'", "'rb'"], ["'w'", "'a'", "'r+'", "'x'"]),
    ("open(p, {})", ["'r'", "'rt'"], ["'w'", "'wb'", "'a+'"]),
    ("timm.create_model('r', pretrained={})", ["False", "None"], ["True", "1"]),
    ("torch.from_file(p, shared={})", ["False", "None"], ["True"]),
]
_EXPRESSIONS = ["m", "m.x", "not m", "m or True", "f(m)", "m[0]", "(m := 1)", "**m"]


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(_GUARDED),
    st.data(),
)
def test_guarded_arguments_are_safe_only_as_known_literals(
    guarded: tuple[str, list[str], list[str]], data: st.DataObject
) -> None:
    """A guarded argument is safe only as a literal known safe; any other literal, any
    expression and any spread that could carry it is the dangerous value."""
    template, safe, unsafe = guarded
    value = data.draw(st.sampled_from([*safe, *unsafe, *_EXPRESSIONS]))
    spread = re.sub(r"\w+=\{\}", "{}", template) if value == "**m" else template
    call = spread.format(value)
    source = (
        "from pathlib import Path\nimport numpy as np\nimport timm\nimport torch\n"
        f"def load_model(p, m=None, **kw):\n    return {call}\n"
    )
    errors = [f for f in _analyze(source) if f.severity == "error" and f.line == 6]
    assert bool(errors) == (value not in safe), (call, errors)


def test_ordinary_idioms_are_not_flagged() -> None:
    source = """\
import torch
import torch.nn as nn
from torch.cuda import amp
from torch.nn import functional as F
from torch import nn as tnn, tensor
from collections import OrderedDict
import scipy.signal
import torchvision.models as models


class Block(nn.Module):
    def __init__(self) -> None:
        nn.Module.__init__(self)
        self.layers = nn.ModuleDict(OrderedDict(a=nn.Identity()))

    def __len__(self) -> int:
        return len(self.layers)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting() or torch.cuda.is_available():
            pass
        with amp.autocast(enabled=False):
            out = F.relu(self.layers["a"](input))
        return out + tensor(scipy.signal.windows.hann(3)).sum()


def load_model(path: str, **kwargs: int) -> nn.Module:
    return Block()
"""
    assert _analyze(source) == []


# --------------------------------------------------------------------------- the evasion table


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_each_evasion_is_reported_at_its_line(case: tuple[str, bytes, str, int | None]) -> None:
    name, source, code, line = case
    findings = analyze_source(source)
    hits = [f for f in findings if f.code == code and f.line == line]
    rendered = "\n".join(f.format(name) for f in findings)
    assert hits, f"expected {code} at line {line}:\n{rendered}"
    severity = "warning" if code in WARNING_CODES else "error"
    assert any(f.severity == severity for f in hits), rendered
    assert all(f.file == "model.py" for f in findings)


def test_the_table_is_large_and_covers_every_code() -> None:
    assert len(CASES) >= 25
    assert {c[2] for c in CASES} >= {f"GAS3{n:02d}" for n in range(1, 13) if n != 10} | {"GAS310"}
    assert len({c[0] for c in CASES}) == len(CASES), "case names are unique"


# --------------------------------------------------------------------------- one test per evasion


def test_alias_import_then_attribute_chain() -> None:
    assert ("GAS307", 2) in _only("import torch as t\nt.jit.script(f)\n")


def test_from_import_with_alias_then_call() -> None:
    findings = _only("from torch import jit as j\nx = j.trace(m, y)\n")
    assert ("GAS304", 1) in findings and ("GAS307", 2) in findings


def test_attribute_chain_through_an_assigned_alias() -> None:
    assert ("GAS307", 4) in _only("import torch\nj = torch.jit\nk = j\nk.script(m)\n")


def test_submodule_alias_reaching_cpp_extension() -> None:
    findings = _only("import torch.utils as u\nu.cpp_extension.load_inline('x', '')\n")
    assert ("GAS304", 1) in findings and ("GAS307", 2) in findings


def test_blocked_module_import_forms() -> None:
    source = (
        "import os.path\nimport google.cloud.storage as gcs\nfrom concurrent.futures import x\n"
        "from os import *\n"
    )
    assert _at(_analyze(source), "GAS303") == [1, 2, 3, 4]


def test_unlisted_submodules_of_allowed_packages() -> None:
    source = "import torch.optim\nfrom torchvision.ops import nms\nfrom torch import hub\n"
    findings = _only(source)
    assert ("GAS304", 1) in findings and ("GAS304", 2) in findings
    assert ("GAS307", 3) in findings  # torch.hub is not merely unlisted: it downloads


def test_builtins_dunder() -> None:
    assert ("GAS308", 1) in _only("b = __builtins__['eval']\n")


def test_dunder_import_is_a_blocked_call_and_its_argument_a_blocked_name() -> None:
    findings = _only("m = __import__('os')\n")
    assert ("GAS306", 1) in findings and ("GAS308", 1) not in findings


def test_subclasses_escape_reports_every_dunder() -> None:
    findings = _analyze("x = ().__class__.__bases__[0].__subclasses__()\n")
    dunders = [(f.line, f.col) for f in findings if f.code == "GAS308"]
    assert dunders == [(1, 8), (1, 18), (1, 31)]


def test_getattr_vars_globals() -> None:
    source = "a = getattr(torch, 'nn')\nb = vars(torch)\nc = globals()\nd = locals\n"
    assert _at(_analyze(source), "GAS306") == [1, 2, 3, 4]


def test_eval_exec_compile_as_calls_and_references() -> None:
    source = "eval('1')\nexec('1')\nx = compile('1', 's', 'eval')\nf = exec\nuse(eval)\n"
    assert _at(_analyze(source), "GAS306") == [1, 2, 3, 4, 5]


def test_method_eval_carries_the_train_false_hint() -> None:
    findings = [f for f in _analyze("def f(model):\n    model.eval()\n") if f.code == "GAS306"]
    assert [(f.line, f.col) for f in findings] == [(2, 11)]
    assert findings[0].hint is not None and "model.train(False)" in findings[0].hint
    assert "loader calls .eval() itself" in findings[0].hint


def test_methods_named_like_blocked_builtins() -> None:
    source = "import re\np = re.compile('x')\nv = obj.getattr('y')\nm = model.eval\n"
    assert _at(_analyze(source), "GAS306") == [2, 3, 4]


def test_open_for_writing_is_an_error_and_reading_is_fine() -> None:
    source = (
        "open('x', 'w')\nopen('x', mode='a')\nopen('x', m)\nopen('x', *a)\nopen('x')\n"
        "open('x', 'rb')\nopen('x', 'r', encoding='utf-8')\n"
    )
    found = [(f.line, f.severity) for f in _analyze(source) if f.code == "GAS306"]
    assert found == [(1, "error"), (2, "error"), (3, "error"), (4, "error")]


def test_open_and_input_as_local_names_are_not_the_builtins() -> None:
    source = "def forward(self, input, open=None):\n    return open(input)\n"
    assert [f for f in _analyze(source) if f.code == "GAS306"] == []


def test_string_built_names() -> None:
    source = (
        "a = getattr(torch, 'j' + 'it')\nb = torch.__dict__['jit']\nsys_mod = 'o' + 's'\n"
        "c = ''.join(['__cla', 'ss__'])\nd = 'OS'.lower()\ne = chr(111) + chr(115)\n"
    )
    assert sorted({line or 0 for line in _at(_analyze(source), "GAS308")}) == [1, 2, 3, 4, 5, 6]


def test_strings_are_only_flagged_where_they_can_name_something() -> None:
    source = (
        '"""Mentions os, eval and __class__ freely."""\n\n# import os\nX = "os"\nY = ["eval"]\n'
    )
    assert _only(source) == []


def test_non_utf8_encoding_cookie() -> None:
    findings = analyze_source(b"# -*- coding: latin-1 -*-\nimport torch\n")
    assert [(f.code, f.line, f.col) for f in findings if f.code == "GAS301"] == [("GAS301", 1, 15)]


def test_invalid_utf8_and_nul_bytes_are_located_and_analysis_goes_on() -> None:
    findings = analyze_source(b"x = 1\ny = '\xff'\nz = 2\x00\nimport os\n")
    located = [(f.code, f.line) for f in findings]
    assert ("GAS301", 2) in located and ("GAS301", 3) in located and ("GAS303", 4) in located


def test_relative_import() -> None:
    source = "from . import x\nfrom .m import y\nfrom ..p import z\n"
    assert _at(_analyze(source), "GAS305") == [1, 2, 3]


def test_from_future_import() -> None:
    findings = [f for f in _analyze("from __future__ import annotations\n") if f.code == "GAS304"]
    assert [f.line for f in findings] == [1]
    assert findings[0].hint is not None and "refuses" in findings[0].hint


def test_missing_load_model_has_no_line() -> None:
    findings = [f for f in _analyze("import torch\n") if f.code == "GAS309"]
    assert [(f.line, f.severity) for f in findings] == [(None, "error")]


def test_load_model_with_no_parameters() -> None:
    findings = _analyze("X = 1\n\ndef load_model():\n    return None\n")
    assert ("GAS309", 3) in [(f.code, f.line) for f in findings]
    assert ("GAS310", 3) in [(f.code, f.line) for f in findings]


def test_load_model_forms() -> None:
    assert _at(_analyze("def load_model(*paths): ...\n"), "GAS310") == [1]
    assert _analyze("def load_model(p, num_classes=2): ...\n") == []
    assert _analyze("load_model = lambda p, **kw: p\n") == []
    later = _analyze("def load_model(): ...\nif True:\n    def load_model(p, **k): ...\n")
    assert later == [], "the last module-level binding is the one the loader calls"


def test_top_level_side_effects_are_warnings() -> None:
    source = "import torch\ntorch.manual_seed(0)\nfor i in range(3):\n    pass\n"
    found = [(f.line, f.severity) for f in _analyze(source) if f.code == "GAS311"]
    assert found == [(2, "warning"), (3, "warning")]


def test_dynamic_class_creation_and_string_evaluation() -> None:
    source = "import typing\nK = type('K', (), {})\nH = typing.get_type_hints(f)\n"
    assert _at(_analyze(source), "GAS312") == [2, 3]


def test_torch_load_needs_weights_only() -> None:
    source = (
        "import torch\na = torch.load(p)\nb = torch.load(p, weights_only=True)\n"
        "c = torch.load(p, weights_only=False)\n"
    )
    found = [(f.line, f.severity) for f in _analyze(source) if f.code == "GAS307"]
    assert found == [(2, "warning"), (4, "error")]


def test_module_objects_that_escape_are_refused() -> None:
    assert ("GAS307", 2) in _only("import torch\nhelper(torch.jit)\n")


# --------------------------------------------------------------------------- report shape


def test_findings_are_sorted_and_columns_count_characters() -> None:
    findings = _analyze("é = 1; x = ().__class__\nimport os\n")
    keys = [(f.line or 0, f.col or 0) for f in findings]
    assert keys == sorted(keys)
    assert [(f.line, f.col) for f in findings if f.code == "GAS308"] == [(1, 15)]


def test_syntax_error_position() -> None:
    findings = [f for f in _analyze("x = 1\ndef broken(:\n") if f.code == "GAS302"]
    assert [(f.line, f.col) for f in findings] == [(2, 12)]


def test_check_static_reads_model_py_and_skips_a_missing_one() -> None:
    opts = CheckOptions(smoke=False)
    assert check_static(StagedSubmission({}, "sub"), opts) == []
    found = check_static(StagedSubmission({"model.py": b"import os\n"}, "sub"), opts)
    assert "GAS303" in {f.code for f in found}


def test_blocked_reason() -> None:
    assert blocked_reason("torch") is None and blocked_reason("torch.nn.functional") is None
    assert "blocked" in (blocked_reason("os.path") or "")
    assert "allow-list" in (blocked_reason("torch.optim") or "")
    assert "blocked" in (blocked_reason("torch.utils.data") or "")
    assert blocked_reason("torch.jit.script") is not None


def test_deep_nesting_is_refused_not_crashed() -> None:
    findings = analyze_source(b"x = " + b"+".join([b"'a'"] * 5000) + b"\n")
    assert "GAS302" in {f.code for f in findings}
    assert isinstance(analyze_source(b"x = " + b"[" * 150 + b"]" * 150 + b"\n"), list)


# --------------------------------------------------------------------------- never raises


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    assert isinstance(analyze_source(data), list)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=3000))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    assert isinstance(analyze_source(text.encode("utf-8", "surrogatepass")), list)


_TOKENS = [
    "import torch",
    "from torch import jit",
    "x",
    "=",
    "(",
    ")",
    "[",
    "]",
    ".",
    ",",
    ":",
    "\n",
    "    ",
    "def f(a):",
    "class A:",
    "return",
    "__class__",
    "eval",
    "getattr",
    "'os'",
    "'j'",
    "+",
    "f'{x}'",
    "lambda y: y",
    "open",
    "torch",
    "jit",
    "script",
    "*",
    "**",
    "1",
    "None",
    "if",
    "else",
    "for i in x:",
    "''.join",
    "'a'[::-1]",
    "load_model",
    "super().__init__()",
    "@dec",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), max_size=60).map(" ".join))
def test_never_raises_on_python_like_text(text: str) -> None:
    assert isinstance(analyze_source(text.encode()), list)


def test_plain_words_that_name_blocked_modules_are_not_flagged() -> None:
    """A buffer named "signal" or mode="trace" reaches nothing: every lookup by name is blocked."""
    source = (
        "import torch\n"
        "class M(torch.nn.Module):\n"
        "    def __init__(self) -> None:\n"
        "        super().__init__()\n"
        '        self.register_buffer("signal", torch.zeros(1))\n'
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
        '        y = torch.nn.functional.interpolate(x, size=(4, 4), mode="bilinear")\n'
        "        return y + self.signal\n"
        "def load_model(weights_path: str, num_classes: int = 2) -> torch.nn.Module:\n"
        '    config = {"code": 1, "trace": False}\n'
        "    return M()\n"
    )
    assert [f for f in analyze_source(source.encode()) if f.severity == "error"] == []
    built = analyze_source(b'name = "si" + "gnal"\n')
    assert any(f.code == "GAS308" for f in built), "built strings are still held to every name"


def test_from_pretrained_warns_unless_it_is_told_to_stay_local() -> None:
    remote = "import transformers\nc = transformers.AutoConfig.from_pretrained('vit')\n"
    local = (
        "import transformers\n"
        "c = transformers.AutoConfig.from_pretrained('.', local_files_only=True)\n"
    )
    maybe = (
        "import transformers\n"
        "flag = True\n"
        "c = transformers.AutoConfig.from_pretrained('.', local_files_only=flag)\n"
    )
    assert ("GAS307", 2) in _only(remote)
    assert "GAS307" not in {code for code, _ in _only(local)}
    assert ("GAS307", 3) in _only(maybe)  # only a literal True is known to stay local
