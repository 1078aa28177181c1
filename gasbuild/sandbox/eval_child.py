"""The eval's child process: load the model as the loader does, then run it on ready batches.

``gasbuild/eval/engine.py`` runs this file by path (``python -I eval_child.py``) in the smoke
test's sandbox and never imports it for a run. The protocol is the smoke child's: one JSON job
on stdin (the loader job plus an ``eval`` section); JSON lines on the original stdout,
``{"phase": ...}`` as each step starts, ``{"ready": true}`` once the model is loaded and, last,
``{"result": {"batches": n}}`` or ``{"error": {"message", "hint"}}``.

The child never sees a media file or a label. The trusted parent decodes and preprocesses the
media into the exact arrays the benchmark feeds and streams them down a pipe (``in_fd``): per
batch a JSON header line ``{"index", "shape", "dtype"}`` and the array's C-order bytes; the
parent closes the pipe after the last one. For each batch the child runs
``model(torch.from_numpy(batch))`` under ``torch.no_grad()``, unwraps the output as the loader
does (``pytorch_session.py``: ``.logits``, a ``logits``/``output`` key, a one-element tuple) and
writes one JSON line to a second pipe (``out_fd``): ``{"index", "ms", "logits"}`` (the float32
logits as ``.cpu().to(torch.float32)`` gives them, as nested lists: a float32 survives JSON's
float64 exactly) or ``{"index", "error"}`` (the batch's samples are all errors, as
``run_batch_and_record`` records them). Predictions and metrics are computed by the parent, out
of the model code's reach, which checks every line before use. Pipes, not files: the batches
never touch a file system, and the parent learns of a dead child as an EOF.

Loading reuses the loader child's steps (``Loader.import_torch``, ``import_model``, ``load``):
the eval sees the model the smoke test and the network's loader see, cast to the config's dtype.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Run by path under -I (launch.py puts this folder on sys.path) or imported by tests: either
# way only the siblings here are imported, never gasbuild itself.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))

if TYPE_CHECKING:
    from gasbuild.sandbox.loader_child import (
        Channel,
        Loader,
        Stop,
        is_out_of_memory,
        limit_resources,
        one_line,
        read_plan,
        unwrap,
    )
else:
    from loader_child import (
        Channel,
        Loader,
        Stop,
        is_out_of_memory,
        limit_resources,
        one_line,
        read_plan,
        unwrap,
    )

_MAX_HEADER = 4096  # bytes of a batch's header line
_READ_BUFFER = 1 << 20
_MAX_TEXT = 300
_CLASSES = (1, 2, 3)


def first_error(findings: list[dict[str, Any]]) -> dict[str, Any]:
    """The smoke steps' first error as ``{"message", "hint"}``."""
    errors = [f for f in findings if f.get("severity") == "error"] or findings
    if not errors:
        return {"message": "the model could not be loaded", "hint": None}
    first = errors[0]
    where = str(first.get("file") or "")
    if where and first.get("line"):
        where += f":{first['line']}"
    return {
        "message": (f"{where}: " if where else "") + str(first["message"]),
        "hint": first.get("hint"),
    }


def logits_of(torch: Any, output: Any, batch: int) -> Any:
    """The loader's unwrapping, and the shape the benchmark can read: ``[B, C]``, C in 1..3."""
    logits = unwrap(output)
    if isinstance(output, dict) and logits is output:
        raise ValueError(f"the output dict has keys {sorted(map(str, output))} and no 'logits'")
    if not isinstance(logits, torch.Tensor):
        raise ValueError(f"the output is {type(logits).__name__}, not a tensor of logits")
    if logits.dim() != 2 or int(logits.shape[0]) != batch or int(logits.shape[1]) not in _CLASSES:
        raise ValueError(f"the logits have shape {list(logits.shape)}; expected [{batch}, 1..3]")
    return logits.detach().cpu().to(torch.float32).numpy()


def read_exact(reader: Any, view: memoryview) -> bool:
    """Fill ``view`` from the pipe; False at an end of file before it is full."""
    done = 0
    while done < len(view):
        count = reader.readinto(view[done:])
        if not count:
            return False
        done += count
    return True


def next_batch(reader: Any, np: Any) -> tuple[int, Any] | None:
    """The next batch the parent sent, as a fresh array (the benchmark hands every batch its own
    tensor); None once the parent has closed the pipe."""
    line = reader.readline(_MAX_HEADER)
    if not line:
        return None
    header = json.loads(line)
    batch = np.empty(tuple(header["shape"]), dtype=np.dtype(header["dtype"]))
    if not read_exact(reader, memoryview(batch).cast("B")):
        raise EOFError("the parent's batch stream ended inside a batch")
    return int(header["index"]), batch


def send_line(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


def run_batches(job: dict[str, Any], smoke: Loader) -> int:
    """Load the model, then score batches until the parent closes the stream; the batch count."""
    import numpy as np

    spec = job["eval"]
    plan = read_plan(job, smoke.report)
    torch = smoke.import_torch()
    module = smoke.import_model(plan)
    model = smoke.load(plan, module, torch)
    if any(f["severity"] == "error" for f in smoke.report.findings):
        raise Stop
    smoke.channel.send({"ready": True})
    smoke.phase("running batches")
    out_fd = int(spec["out_fd"])
    count = 0
    with os.fdopen(int(spec["in_fd"]), "rb", buffering=_READ_BUFFER) as reader:
        while (item := next_batch(reader, np)) is not None:
            index, batch = item
            started = time.perf_counter()
            try:
                with torch.no_grad():
                    logits = logits_of(torch, model(torch.from_numpy(batch)), int(batch.shape[0]))
            except Exception as exc:  # every sample of the batch is an error, as the benchmark says
                send_line(out_fd, {"index": index, "error": one_line(exc)[:_MAX_TEXT]})
            else:
                elapsed = (time.perf_counter() - started) * 1000
                send_line(out_fd, {"index": index, "ms": elapsed, "logits": logits.tolist()})
            count += 1
    return count


def main() -> None:
    job = json.loads(sys.stdin.read())
    limit_resources(int(job["memory_mb"]))
    channel = Channel()
    for entry in job["sys_path"]:
        if entry not in sys.path:
            sys.path.append(entry)
    smoke = Loader(job, channel)
    try:
        channel.send({"result": {"batches": run_batches(job, smoke)}})
    except Stop:
        channel.send({"error": first_error(smoke.report.findings)})
    except BaseException as exc:  # a bug here, or model code escaping a step: still one line
        message = (
            f"{'out of memory' if is_out_of_memory(exc) else 'the eval failed'}: {one_line(exc)}"
        )
        channel.send({"error": {"message": message[:_MAX_TEXT], "hint": None}})
    sys.stderr.flush()
    os._exit(0)  # a thread the model started must not hold us until the timeout


if __name__ == "__main__":
    main()
