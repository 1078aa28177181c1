"""The eval's child process: load the model as the loader does, then run it on ready batches.

``gasbuild/eval/engine.py`` runs this file by path (``python -I eval_child.py``) in the smoke
test's sandbox and never imports it for a run. The protocol is the smoke child's: one JSON job
on stdin (the loader job plus an ``eval`` section); JSON lines on the original stdout,
``{"phase": ...}`` as each step starts, ``{"ready": true}`` once the model is loaded and, last,
``{"result": {"batches": n}}`` or ``{"error": {"message", "hint"}}``.

The child never sees a media file or a label. The trusted parent decodes and preprocesses the
media into the exact arrays the benchmark feeds, and writes them as ``.npy`` batches
(``<in_dir>/000000.npy``, ...; ``end.json`` says how many there are). For each batch the child
runs ``model(torch.from_numpy(batch))`` under ``torch.no_grad()``, unwraps the output as the
loader does (``pytorch_session.py``: ``.logits``, a ``logits``/``output`` key, a one-element
tuple) and writes ``<out_dir>/<n>.npy`` (float32 logits, as ``.cpu().to(torch.float32)``) and
``<out_dir>/<n>.json`` (``{"ms": ...}`` or ``{"error": ...}``: the batch's samples are all
errors, as ``run_batch_and_record`` records them). Predictions and metrics are computed by the
parent, out of the model code's reach.

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

_POLL = 0.002  # seconds between looks for the next batch
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


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def next_batch(in_dir: Path, index: int, deadline: float) -> Path | None:
    """The batch file ``index`` once the parent has renamed it in; None after the last one."""
    path = in_dir / f"{index:06d}.npy"
    end = in_dir / "end.json"
    while time.monotonic() < deadline:
        if path.exists():
            return path
        if end.exists():
            total = json.loads(end.read_text())["batches"]
            if index >= total:
                return None
            if path.exists():
                return path
        time.sleep(_POLL)
    raise TimeoutError("no batch arrived from the parent")


def run_batches(job: dict[str, Any], smoke: Loader) -> int:
    """Load the model, then score batches until the parent's end marker; the batch count."""
    import io

    import numpy as np

    spec = job["eval"]
    plan = read_plan(job, smoke.report)
    torch = smoke.import_torch()
    module = smoke.import_model(plan)
    model = smoke.load(plan, module, torch)
    if any(f["severity"] == "error" for f in smoke.report.findings):
        raise Stop
    in_dir, out_dir = Path(spec["in_dir"]), Path(spec["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    smoke.channel.send({"ready": True})
    smoke.phase("running batches")
    deadline = time.monotonic() + float(spec["wait_seconds"])
    index = 0
    while (path := next_batch(in_dir, index, deadline)) is not None:
        batch = np.load(path, allow_pickle=False)
        started = time.perf_counter()
        try:
            with torch.no_grad():
                logits = logits_of(torch, model(torch.from_numpy(batch)), int(batch.shape[0]))
        except Exception as exc:  # every sample of the batch is an error, as the benchmark says
            report: dict[str, object] = {"error": one_line(exc)[:_MAX_TEXT]}
        else:
            elapsed = (time.perf_counter() - started) * 1000
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(logits), allow_pickle=False)
            write_atomic(out_dir / f"{index:06d}.npy", buffer.getvalue())
            report = {"ms": elapsed}
        write_atomic(out_dir / f"{index:06d}.json", json.dumps(report).encode())
        index += 1
    return index


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
