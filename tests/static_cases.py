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


def attack(name: str, imports: str, statement: str, code: str) -> Case:
    """CLEAN, then ``imports`` (";"-separated) and a function whose last line is ``statement``;
    the finding is expected on that line. ``m`` is a parameter: a value gasbuild cannot read."""
    lines = "".join(f"{imp.strip()}\n" for imp in imports.split(";") if imp.strip())
    snippet = f"\n{lines}\n\ndef attack(weights_path: str, m: Any = 'w') -> Any:\n    {statement}\n"
    return appended(name, snippet, code, snippet.count("\n"))


# Issue 14: routes to exec, shell, file writes, unpickling and the network through the allowed
# modules, each by the rule that refuses it (a kind per line, not a list of snippets).
BYPASSES: list[Case] = [
    # shell and exec through helpers of torch and numpy (private, test and tool namespaces)
    attack("collect-env-run", "", "return torch.utils.collect_env.run('id')", "GAS307"),
    attack(
        "fx-exec-with-source",
        "",
        "return torch.fx.graph_module._exec_with_source('x = 1', {})",
        "GAS307",
    ),
    attack(
        "numpy-testing-runstring",
        "import numpy as np",
        "return np.testing._private.utils.runstring('x = 1', {})",
        "GAS307",
    ),
    attack("numpy-private-module", "import numpy as np", "return np._core.multiarray", "GAS307"),
    attack("torch-testing", "", "return torch.testing._internal.common_utils", "GAS307"),
    attack(
        "from-numpy-testing",
        "from numpy.testing import assert_equal",
        "return assert_equal(1, 1)",
        "GAS307",
    ),
    attack("torch-fx-symbolic", "", "return torch.fx.symbolic_trace(m)", "GAS307"),
    attack("jit-unlisted-member", "", "return torch.jit.freeze(m)", "GAS307"),
    attack("ops-import-module", "", "return torch.ops.import_module('os')", "GAS307"),
    attack("torch-library", "", "return torch.library.Library('x', 'DEF')", "GAS307"),
    attack("classes-load-library", "", "return torch.classes.load_library('x.so')", "GAS307"),
    attack("numpy-f2py-compile", "import numpy as np", "return np.f2py.compile('x')", "GAS307"),
    attack(
        "kaldi-io-pipe",
        "import torchaudio",
        "return torchaudio.kaldi_io.read_vec_int_ark('ark: ls |')",
        "GAS307",
    ),
    attack("utils-data-workers", "", "return torch.utils.data.DataLoader([], 2)", "GAS307"),
    attack("utils-benchmark", "", "return torch.utils.benchmark.Timer('x')", "GAS307"),
    attack("pil-imageshow", "from PIL import ImageShow", "return ImageShow", "GAS307"),
    attack("pil-show", "from PIL import Image", "return Image.new('RGB', (2, 2)).show()", "GAS307"),
    # file writes through the allowed libraries
    attack("path-open-mode-variable", "", "return Path(weights_path).open(mode=m)", "GAS306"),
    attack("path-open-positional-variable", "", "return Path(weights_path).open(m)", "GAS306"),
    attack("path-open-spread", "", "return Path(weights_path).open(**{'mode': 'w'})", "GAS306"),
    attack("unbound-path-open", "import pathlib", "return pathlib.Path.open(Path(m), m)", "GAS306"),
    attack("path-mkdir", "", "return Path(weights_path).with_name('x').mkdir()", "GAS306"),
    attack("path-rename", "", "return Path(weights_path).rename('/tmp/x')", "GAS306"),
    attack("path-replace", "", "return Path(weights_path).replace('/tmp/x')", "GAS306"),
    attack("path-symlink", "", "return Path(m).symlink_to(weights_path)", "GAS306"),
    attack("path-touch", "", "return Path(m).touch()", "GAS306"),
    attack("path-chmod", "", "return Path(m).chmod(0o777)", "GAS306"),
    attack("serialization-save", "", "return torch.serialization.save(m, '/tmp/x')", "GAS306"),
    attack("jit-save", "", "return torch.jit.save(m, '/tmp/x')", "GAS306"),
    attack(
        "safetensors-save-model",
        "from safetensors.torch import save_model",
        "return save_model(m, '/x')",
        "GAS306",
    ),
    attack(
        "safetensors-numpy-save",
        "import safetensors.numpy",
        "return safetensors.numpy.save_file({}, '/tmp/x')",
        "GAS306",
    ),
    attack("from-file-shared", "", "return torch.from_file('/tmp/x', True, 4)", "GAS306"),
    attack(
        "storage-from-file-shared",
        "",
        "return torch.UntypedStorage.from_file('/tmp/x', shared=m, nbytes=4)",
        "GAS306",
    ),
    attack(
        "memmap-w-plus",
        "import numpy as np",
        "return np.memmap(m, mode='w+', shape=(1,))",
        "GAS306",
    ),
    attack("memmap-default-mode", "import numpy as np", "return np.memmap(m)", "GAS306"),
    attack(
        "open-memmap",
        "import numpy as np",
        "return np.lib.format.open_memmap(m, mode='w+', shape=(1,))",
        "GAS306",
    ),
    attack(
        "numpy-load-mmap-write", "import numpy as np", "return np.load(m, mmap_mode='w+')", "GAS306"
    ),
    attack(
        "pil-image-save",
        "from PIL import Image",
        "return Image.new('RGB', (2, 2)).save('/tmp/x.png')",
        "GAS306",
    ),
    attack("scipy-savemat", "import scipy", "return scipy.io.savemat('/tmp/x.mat', {})", "GAS306"),
    attack(
        "scipy-wavfile-write",
        "import scipy",
        "return scipy.io.wavfile.write('/tmp/x.wav', 16000, m)",
        "GAS306",
    ),
    attack(
        "torchvision-write-file",
        "import torchvision",
        "return torchvision.io.write_file('/tmp/x', m)",
        "GAS306",
    ),
    attack("cv2-imwrite", "import cv2", "return cv2.imwrite('/tmp/x.png', m)", "GAS306"),
    attack("ndarray-dump", "", "return m.numpy().dump('/tmp/x')", "GAS306"),
    attack("method-alias-save", "", "save = m.save; return save('/tmp/x')", "GAS306"),
    attack("method-alias-open", "", "opener = Path(m).open; return opener('w')", "GAS306"),
    attack(
        "partial-path-open",
        "import functools",
        "return functools.partial(Path(m).open, mode='w')",
        "GAS306",
    ),
    attack("open-mode-variable", "", "return open(weights_path, m)", "GAS306"),
    # unpickling
    attack(
        "numpy-load-splat",
        "import numpy as np",
        "return np.load(weights_path, **{'allow_pickle': True})",
        "GAS307",
    ),
    attack(
        "partial-numpy-load",
        "import functools; import numpy as np",
        "return functools.partial(np.load, allow_pickle=True)",
        "GAS307",
    ),
    attack(
        "read-array-pickle",
        "import numpy as np",
        "return np.lib.format.read_array(m, allow_pickle=True)",
        "GAS307",
    ),
    attack(
        "torch-load-splat",
        "",
        "return torch.load(weights_path, **{'weights_only': False})",
        "GAS307",
    ),
    attack(
        "torch-load-flag-variable", "", "return torch.load(weights_path, weights_only=m)", "GAS307"
    ),
    attack(
        "partial-torch-load",
        "import functools",
        "return functools.partial(torch.load, weights_only=True)",
        "GAS307",
    ),
    attack("map-torch-load", "", "return list(map(torch.load, [weights_path]))", "GAS307"),
    attack("numpy-ma-load", "import numpy as np", "return np.ma.load(m)", "GAS307"),
    attack(
        "timm-load-checkpoint",
        "",
        "return timm.models.load_checkpoint(m, weights_path, weights_only=False)",
        "GAS307",
    ),
    # the network: downloads and remote code
    attack(
        "timm-pretrained-true",
        "",
        "return timm.create_model('resnet18', pretrained=True)",
        "GAS307",
    ),
    attack(
        "timm-pretrained-positional", "", "return timm.create_model('resnet18', True)", "GAS307"
    ),
    attack(
        "timm-pretrained-variable",
        "",
        "return timm.create_model('resnet18', pretrained=m)",
        "GAS307",
    ),
    attack("timm-kwargs-splat", "", "return timm.create_model('resnet18', **m)", "GAS307"),
    attack(
        "torchvision-weights",
        "import torchvision",
        "return torchvision.models.resnet18(weights='DEFAULT')",
        "GAS307",
    ),
    attack(
        "from-pretrained-hub-id",
        "import transformers",
        "return transformers.AutoModel.from_pretrained('attacker/model')",
        "GAS307",
    ),
    attack(
        "from-pretrained-built-id",
        "import transformers",
        "return transformers.AutoModel.from_pretrained(f\"attacker/{'x'}\")",
        "GAS307",
    ),
    attack(
        "trust-remote-code-variable",
        "import transformers",
        "return transformers.AutoModel.from_pretrained(weights_path, trust_remote_code=m)",
        "GAS307",
    ),
    attack(
        "from-pretrained-splat",
        "import transformers",
        "return transformers.AutoModel.from_pretrained(weights_path, **m)",
        "GAS307",
    ),
    attack(
        "transformers-pipeline",
        "import transformers",
        "return transformers.pipeline('x')",
        "GAS307",
    ),
    attack(
        "transformers-cached-file",
        "import transformers",
        "return transformers.utils.hub.cached_file('a/b', 'c')",
        "GAS307",
    ),
    attack("push-to-hub", "", "return m.push_to_hub('attacker/leak')", "GAS307"),
    attack("numpy-loadtxt-url", "import numpy as np", "return np.loadtxt('http://x/y')", "GAS307"),
    attack("cv2-videocapture", "import cv2", "return cv2.VideoCapture('http://x/y')", "GAS307"),
    attack("torch-hub-via-alias", "", "h = torch.hub; return h.load('a/b', 'c')", "GAS307"),
    attack("dataset-download", "", "return m.MNIST('/tmp', download=True)", "GAS307"),
    attack("onnx-export", "", "return torch.onnx.export(m, m, '/tmp/x.onnx')", "GAS307"),
    attack(
        "detection-weights",
        "import torchvision",
        "return torchvision.models.detection.fasterrcnn_resnet50_fpn(weights='DEFAULT')",
        "GAS307",
    ),
    attack(
        "timm-hf-hub-name", "", "return timm.create_model('hf-hub:a/b', pretrained=False)", "GAS307"
    ),
    attack(
        "transformers-utils-cached-file",
        "import transformers",
        "return transformers.utils.cached_file('a/b', 'c')",
        "GAS307",
    ),
    attack(
        "ultralytics-yolo", "import ultralytics", "return ultralytics.YOLO('yolov8n.pt')", "GAS307"
    ),
    attack(
        "torchaudio-pipelines",
        "import torchaudio",
        "return torchaudio.pipelines.WAV2VEC2_BASE.get_model()",
        "GAS307",
    ),
    attack("config-to-json-file", "", "return m.config.to_json_file('/tmp/x')", "GAS306"),
    attack("ultralytics-export", "", "return m.export(format='onnx')", "GAS306"),
    # modules passed around: their members cannot be followed
    attack("module-in-list", "import numpy as np", "return [np][0].save('/tmp/x', m)", "GAS307"),
    attack("module-as-argument", "import numpy as np", "return m(np)", "GAS307"),
    # introspection and dynamic classes
    attack("type-subclasses", "", "return type(m).__subclasses__()", "GAS308"),
    attack("class-base", "", "return m.__class__.__base__", "GAS308"),
    attack("built-attribute-name", "", "return m['__cla' + 'ss__']", "GAS308"),
    attack(
        "make-dataclass",
        "import dataclasses",
        "return dataclasses.make_dataclass('X', ['a'])",
        "GAS312",
    ),
]


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
    prepended("import-torch-optim", "import torch.optim\n", "GAS304", 1),
    prepended("from-torchvision-ops", "from torchvision.ops import nms\n", "GAS304", 1),
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

CASES += BYPASSES

WARNING_CODES = frozenset({"GAS310", "GAS311"})

# Harmless controls: real model code that must give no finding at all (issue 14's "no false
# alarm"): timm and torchvision builders without downloads, weights through safetensors or
# torch.load(weights_only=True), config.json read from the weights' folder, str.replace,
# private helpers ordinary model code uses (torch._assert), torch.jit decorators.
HARMLESS_TIMM = '''\
"""timm backbone, torch.load weights_only, config read from the weights folder."""

from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file


class Detector(nn.Module):
    def __init__(self, num_classes: int = 2, name: str = "resnet18", drop: float = 0.0) -> None:
        super().__init__()
        self.backbone = timm.create_model(name, pretrained=False, num_classes=0, drop_rate=drop)
        self.head = nn.Linear(self.backbone.num_features, num_classes)
        self.save = [1, 2]

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        return set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch._assert(x.dim() == 4, "expected [B, 3, H, W]")
        if torch.jit.is_scripting():
            pass
        x = x.float() / 255.0
        x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        feats = self.backbone.forward_features(x)
        feats = torch.utils.checkpoint.checkpoint(
            self.backbone.forward_head, feats, True, use_reentrant=False
        )
        keep = [f for i, f in enumerate([feats]) if i in self.save]
        return self.head(feats)


def _clean(state: dict) -> dict:
    return {k.replace("module.", ""): v for k, v in state.items()}


def load_model(weights_path: str, num_classes: int = 2, **kwargs: Any) -> nn.Module:
    config_path = Path(weights_path).parent / "config.json"
    if config_path.exists():
        text = config_path.read_text(encoding="utf-8")
        with open(config_path, "r", encoding="utf-8") as handle:
            text = handle.read()
        with config_path.open("rb") as handle:
            raw = handle.read()
    model = Detector(num_classes=num_classes, **kwargs)
    if weights_path.endswith(".safetensors"):
        state = load_file(weights_path, device="cpu")
    else:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    model.load_state_dict(_clean(state), strict=True)
    window = np.hanning(8).astype(np.float32)
    img = Image.fromarray(np.zeros((2, 2), dtype=np.uint8))
    name = Path(weights_path).name.replace(".safetensors", "")
    return model.train(False)
'''

HARMLESS_TRANSFORMERS = """\
from pathlib import Path

import torch
import torchvision
import transformers
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn
from torchvision.models import resnet50


class Wrapper(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values=pixels.float() / 255.0).logits


def load_model(weights_path: str, num_classes: int = 2) -> nn.Module:
    folder = str(Path(weights_path).parent)
    config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
    net = transformers.AutoModelForImageClassification.from_config(config)
    tensors = {}
    with safe_open(weights_path, framework="pt", device="cpu") as f:
        for key in f.keys():
            tensors[key] = f.get_tensor(key)
    net.load_state_dict(tensors)
    backbone = resnet50(weights=None, num_classes=num_classes)
    other = torchvision.models.efficientnet_b0(weights=None)
    return Wrapper(net)
"""

HARMLESS: list[tuple[str, str]] = [
    ("timm-torch-load-config", HARMLESS_TIMM),
    ("transformers-torchvision-safe-open", HARMLESS_TRANSFORMERS),
]
