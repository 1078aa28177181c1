"""onnxruntime's error messages, shortened: shared by ``gasbuild.check.onnx`` (trusted side)
and ``export_child.py`` (a sibling import in the sandbox). Standard library only."""

from __future__ import annotations

import re

MAX_MESSAGE = 300
_ORT_STATUS = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")
_ORT_SOURCE = re.compile(r"/\S+\.(?:h|cc|cpp):\d+ [^(]*\([^)]*\)\s*")


def ort_text(exc: BaseException) -> str:
    """onnxruntime's message without its status prefix and C++ source location."""
    text = _ORT_STATUS.sub("", " ".join(str(exc).split()))
    text = " ".join(_ORT_SOURCE.sub("", text).split())
    return text[:MAX_MESSAGE] if text else type(exc).__name__
