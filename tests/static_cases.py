"""model.py evasions as data: ``(name, source, expected_code, expected_line)``.

Each source is a clean, realistic model.py with one deliberate defect, so a test (or a corpus
generator writing submission zips) can assert that ``analyze_source(source)`` reports
``expected_code`` at ``expected_line`` (None: a file-level finding without a line). ``CLEAN`` alone
must give no finding at all.
"""

from __future__ import annotations

CLEAN = '''\
"""A realistic detector: a timm backbone, normalisation inside forward(), a linear head."""

from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class Detector(nn.Module):
    """EfficientNet features, pooled, then a head over [real, synthetic]."""

    def __init__(self, num_classes: int = 2, backbone: str = "efficientnet_b0") -> None:
        super().__init__()
        self.backbone = timm.create_model(backbone, pretrained=False, num_classes=0)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)
        self.head = nn.Linear(self.backbone.num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.head.weight.dtype) / 255.0
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        return self.head(self.backbone(x))


def load_model(weights_path: str, num_classes: int = 2, **kwargs: Any) -> nn.Module:
    """Called by the network as load_model(weights_path, **model_keys)."""
    model = Detector(num_classes=num_classes, **kwargs)
    model.load_state_dict(load_file(weights_path), strict=True)
    return model
'''

_CLEAN_LINES = CLEAN.count("\n")
_LOAD_MODEL_DEF = (
    "def load_model(weights_path: str, num_classes: int = 2, **kwargs: Any) -> nn.Module:"
)
_LOAD_MODEL_LINE = CLEAN.splitlines().index(_LOAD_MODEL_DEF) + 1
_RETURN_MODEL = "    return model\n"
_RETURN_LINE = _CLEAN_LINES  # the last line of CLEAN

Case = tuple[str, bytes, str, int | None]


def appended(name: str, snippet: str, code: str, line_in_snippet: int) -> Case:
    """CLEAN followed by ``snippet``; the line is counted from the snippet's first line."""
    return name, (CLEAN + snippet).encode(), code, _CLEAN_LINES + line_in_snippet


def prepended(name: str, snippet: str, code: str, line_in_snippet: int) -> Case:
    """``snippet`` followed by CLEAN (for what must sit at the top: cookies, __future__)."""
    return name, (snippet + CLEAN).encode(), code, line_in_snippet


def in_load_model(name: str, snippet: str, code: str) -> Case:
    """``snippet`` (one statement) inserted before load_model's ``return model``."""
    source = CLEAN.replace(_RETURN_MODEL, f"    {snippet}\n{_RETURN_MODEL}")
    return name, source.encode(), code, _RETURN_LINE


CASES: list[Case] = [
    # GAS301 encoding
    prepended("coding-latin-1", "# -*- coding: latin-1 -*-\n", "GAS301", 1),
    prepended("coding-on-second-line", "#!/usr/bin/env python\n# coding: cp1252\n", "GAS301", 2),
    ("nul-byte", (CLEAN + "X = 1\x00\n").encode(), "GAS301", _CLEAN_LINES + 1),
    ("invalid-utf8", CLEAN.encode() + b"X = '\xff'\n", "GAS301", _CLEAN_LINES + 1),
    ("utf8-bom", b"\xef\xbb\xbf" + CLEAN.encode(), "GAS301", 1),
    # GAS302 syntax
    appended("syntax-error", "\ndef broken(:\n    pass\n", "GAS302", 2),
    appended("compile-only-error", "\ndef twice(a, a):\n    return a\n", "GAS302", 2),
    # GAS303 blocked imports
    prepended("import-os", "import os\n", "GAS303", 1),
    prepended("import-os-path-alias", "import os.path as osp\n", "GAS303", 1),
    prepended("import-sys-as", "import sys as system\n", "GAS303", 1),
    prepended("from-subprocess", "from subprocess import run as go\n", "GAS303", 1),
    prepended("from-google-cloud", "from google.cloud import storage\n", "GAS303", 1),
    prepended("from-concurrent-futures", "from concurrent.futures import Future\n", "GAS303", 1),
    prepended("star-from-blocked", "from pickle import *\n", "GAS303", 1),
    prepended("import-builtins", "import builtins\n", "GAS303", 1),
    # GAS304 unlisted imports
    prepended("import-unlisted", "import yaml\n", "GAS304", 1),
    prepended("import-torch-utils-data", "import torch.utils.data\n", "GAS304", 1),
    prepended("from-torchvision-io", "from torchvision.io import read_image\n", "GAS304", 1),
    prepended("from-torch-import-jit", "from torch import jit\n", "GAS304", 1),
    prepended("from-future", "from __future__ import annotations\n", "GAS304", 1),
    prepended("star-from-allowed", "from torch import *\n", "GAS304", 1),
    # GAS305 relative imports
    prepended("relative-import", "from . import helpers\n", "GAS305", 1),
    prepended("relative-module-import", "from .layers import Block\n", "GAS305", 1),
    # GAS306 blocked builtins
    appended("eval-call", "\nX = eval('1 + 1')\n", "GAS306", 2),
    appended("exec-call", "\ndef run() -> None:\n    exec('x = 1')\n", "GAS306", 3),
    appended("compile-builtin", "\nCODE = compile('1', '<s>', 'eval')\n", "GAS306", 2),
    appended("dunder-import-call", "\nM = __import__('os')\n", "GAS306", 2),
    appended("getattr-call", "\nLOAD = getattr(torch, 'load')\n", "GAS306", 2),
    appended(
        "setattr-call", "\ndef poke(m: nn.Module) -> None:\n    setattr(m, 'x', 1)\n", "GAS306", 3
    ),
    appended("globals-call", "\nG = globals()\n", "GAS306", 2),
    appended("locals-call", "\ndef peek() -> dict:\n    return locals()\n", "GAS306", 3),
    appended("vars-lookup", "\nJIT = vars(torch)['jit']\n", "GAS306", 2),
    appended("eval-alias", "\nrun = eval\n", "GAS306", 2),
    appended("getattr-as-argument", "\nFNS = list(map(getattr, [torch], ['nn']))\n", "GAS306", 2),
    appended("shadow-eval", "\ndef eval(x: int) -> int:\n    return x\n", "GAS306", 2),
    in_load_model("method-eval", "model.eval()", "GAS306"),
    in_load_model("torch-compile", "model = torch.compile(model)", "GAS306"),
    in_load_model("open-for-writing", "open('/tmp/x', 'w').close()", "GAS306"),
    in_load_model("breakpoint", "breakpoint()", "GAS306"),
    # GAS307 blocked members
    appended("torch-jit-script", "\nS = torch.jit.script\n", "GAS307", 2),
    appended("alias-jit-script", "\nimport torch as t\n\nS = t.jit.script\n", "GAS307", 4),
    prepended("from-torch-jit-import-script", "from torch.jit import script\n", "GAS307", 1),
    appended("from-jit-then-use", "\nfrom torch import jit\n\nT = jit.trace\n", "GAS307", 4),
    appended("utils-alias", "\nimport torch.utils as u\n\nC = u.cpp_extension\n", "GAS307", 4),
    appended("assigned-alias", "\nJ = torch.jit\nK = J\nT = K.trace\n", "GAS307", 4),
    prepended("import-cpp-extension", "import torch.utils.cpp_extension\n", "GAS307", 1),
    prepended("import-numpy-ctypeslib", "import numpy.ctypeslib\n", "GAS307", 1),
    prepended("from-numpy-ctypeslib", "from numpy import ctypeslib\n", "GAS307", 1),
    in_load_model("torch-hub-load", "model = torch.hub.load('a/b', 'c')", "GAS307"),
    in_load_model("ops-load-library", "torch.ops.load_library('x.so')", "GAS307"),
    appended(
        "numpy-allow-pickle",
        "\nimport numpy as np\n\nDATA = np.load('x.npy', allow_pickle=True)\n",
        "GAS307",
        4,
    ),
    in_load_model("torch-load-unsafe", "torch.load(weights_path, weights_only=False)", "GAS307"),
    appended("pathlib-os", "\nimport pathlib\n\nSYSTEM = pathlib.os.system\n", "GAS307", 4),
    appended(
        "class-attribute-alias",
        "\n\nclass Tools:\n    j = torch.jit\n\n    def go(self) -> None:\n"
        "        self.j.script(self)\n",
        "GAS307",
        7,
    ),
    appended(
        "parameter-chain", "\ndef go(m: Any) -> Any:\n    return m.jit.script(m)\n", "GAS307", 3
    ),
    in_load_model("trust-remote-code", "model.cfg = dict(trust_remote_code=True)", "GAS307"),
    in_load_model("torch-save", "torch.save(model, '/tmp/copy.pt')", "GAS306"),
    in_load_model("path-write-text", "Path(weights_path).write_text('x')", "GAS306"),
    in_load_model("method-open-for-writing", "Path(weights_path).open('ab').close()", "GAS306"),
    appended("torch-private-bindings", "\nSCRIPT = torch._C._jit_script_compile\n", "GAS307", 2),
    appended(
        "jit-compilation-unit",
        "\nCU = torch.jit.CompilationUnit('def f(x): return x')\n",
        "GAS307",
        2,
    ),
    # GAS308 dunders and string-built names
    appended("builtins-dunder", "\nB = __builtins__\n", "GAS308", 2),
    appended(
        "subclasses-escape", "\nS = ().__class__.__bases__[0].__subclasses__()\n", "GAS308", 2
    ),
    appended("dict-lookup", "\nJ = torch.__dict__['jit']\n", "GAS308", 2),
    appended("globals-of-function", "\nG = load_model.__globals__\n", "GAS308", 2),
    appended("built-getattr-name", "\nJ = getattr(torch, 'j' + 'it')\n", "GAS308", 2),
    appended("built-module-name", "\nsys_mod = 'o' + 's'\n", "GAS308", 2),
    appended("joined-name", "\nNAME = ''.join(['ev', 'al'])\n", "GAS308", 2),
    appended("fstring-dunder", "\nNAME = f\"__{'class'}__\"\n", "GAS308", 2),
    appended("reversed-name", "\nNAME = 'tij'[::-1]\n", "GAS308", 2),
    appended("format-string-dunder", "\nG = '{0.__globals__}'.format(load_model)\n", "GAS308", 2),
    appended("file-dunder", "\nHERE = __file__\n", "GAS308", 2),
    appended("chr-map-join", "\nNAME = ''.join(map(chr, [111, 115]))\n", "GAS308", 2),
    appended("percent-built", "\nNAME = '%s%s' % ('ev', 'al')\n", "GAS308", 2),
    appended("dunder-keyword", "\nX = dict(__class__=1)\n", "GAS308", 2),
    appended(
        "match-class-dunder",
        "\n\ndef kind(x: Any) -> Any:\n    match x:\n        case object(__class__=c):\n"
        "            return c\n    return None\n",
        "GAS308",
        5,
    ),
    appended(
        "dunder-method-definition",
        "\n\nclass Sneaky:\n    def __getattribute__(self, name: str) -> Any:\n"
        "        return name\n",
        "GAS308",
        4,
    ),
    # GAS309 / GAS310 load_model
    (
        "no-load-model",
        CLEAN.replace("def load_model(", "def make_model(").encode(),
        "GAS309",
        None,
    ),
    (
        "load-model-no-params",
        CLEAN.replace(_LOAD_MODEL_DEF, "def load_model() -> nn.Module:").encode(),
        "GAS309",
        _LOAD_MODEL_LINE,
    ),
    (
        "load-model-async",
        CLEAN.replace("def load_model(", "async def load_model(").encode(),
        "GAS309",
        _LOAD_MODEL_LINE,
    ),
    (
        "load-model-no-keywords",
        CLEAN.replace(_LOAD_MODEL_DEF, "def load_model(weights_path: str) -> nn.Module:")
        .replace("num_classes=num_classes, **kwargs", "")
        .encode(),
        "GAS310",
        _LOAD_MODEL_LINE,
    ),
    # GAS311 module-level side effects
    appended("top-level-call", "\ntorch.manual_seed(0)\n", "GAS311", 2),
    # GAS312 dynamic code
    appended("type-three-args", "\nKlass = type('Klass', (nn.Module,), {})\n", "GAS312", 2),
    appended(
        "get-type-hints",
        "\nfrom typing import get_type_hints\n\nHINTS = get_type_hints(load_model)\n",
        "GAS312",
        4,
    ),
]

WARNING_CODES = frozenset({"GAS310", "GAS311"})
