"""The smoke test: load a safetensors submission as the network's loader does, and run it.

``model.py`` is arbitrary code, so it never runs in this process: the sandbox runner
(``gasbuild.sandbox.runner``) starts ``gasbuild/sandbox/smoke_child.py`` in a fresh temporary
directory holding the submission's files, bounded in time and memory, offline. This module stages
the files, hands the child its job and turns what came back into findings; nothing the child
says is trusted unchecked.

Codes::

    GAS600  warning  smoke test not run: torch (or safetensors, yaml) is not installed;
                     error: the config gives nothing to run (modality, dtype, num_frames)
    GAS601  error    importing model.py, load_model, the cast or the forward raised (with the
                     model.py line from the traceback), model.py has no load_model, or its
                     signature takes neither the model keys nor num_classes alone
    GAS602  error    load_model returned something other than a torch.nn.Module
    GAS603  warning  load_model's signature cannot take the model keys; the loader calls it
                     with num_classes only, so the other keys are ignored
    GAS604  error    model parameters with no tensor in the weights file (hint: a prefix such
                     as 'module.' to strip); warning: buffers missing, tensors unused, or loaded
                     values that differ from the file's
    GAS605  error    the output is not [B, C] floating-point logits, C not in 1..3, or C not
                     model.num_classes
    GAS606  error    the logits hold NaN or Inf
    GAS607  error    the child did not finish within the timeout (--smoke-timeout), or
                     ran out of CPU time
    GAS608  error    out of memory under the limit (--smoke-memory), a file larger than the
                     limit, the child died without a result, or its result lacks the raw
                     measurements the verdict is made from (a forged or truncated report)
    GAS609  warning  no classification head for the benchmark's embeddings (self.classifier, or
                     the deepest nn.Linear with C outputs), or forward never calls it
    GAS610  warning  a containment layer of the sandbox is not available here (another OS,
                     an old kernel): the model ran with the layers listed

The verdict is made here, never by the child: the child reports failures it saw (which can
only make its own model look worse) and, for each forward, the raw logits; a run counts as
passed only when those measurements are present for every batch asked and pass this module's
own checks (shape [B, C], C allowed, finite). See ``gasbuild.sandbox.runner`` for the threat
model.
"""

from __future__ import annotations

import math
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gasbuild.check.config import is_plain_name
from gasbuild.check.findings import CheckOptions, Finding, Submission
from gasbuild.sandbox import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT
from gasbuild.sandbox.runner import (
    LOADER_MODULES,
    ChildRun,
    child_messages,
    exit_text,
    last_phase,
    loader_job,
    module_paths,
    run_child,
    sandbox_dir,
)
from gasbuild.submission import MODEL_FILE, NUM_CLASSES_ALLOWED

# Files at least this large are symlinked into the temporary directory instead of copied.
LINK_MIN_BYTES = 1 << 20
CHILD_MODULES = LOADER_MODULES  # what the child imports (torch, safetensors, yaml)
# Derived limits: address space for the framework plus room for the weights held a few times
# over (the file's mapping, the model, a cast copy), and time to read and run them on CPU.
MEMORY_PER_WEIGHT = 4
SECONDS_PER_GIB = 120.0
_MIB = 1 << 20
MEMORY_FLAG = "--smoke-memory MB (gas.toml: [build] smoke_memory)"
TIMEOUT_FLAG = "--smoke-timeout S (gas.toml: [build] smoke_timeout)"
# Layers whose absence is worth a warning; the rest follow from these (contain.py).
_KEY_LAYERS = ("pdeathsig", "rlimits", "namespaces", "seccomp", "landlock_fs", "landlock_net")


@dataclass(frozen=True)
class Limits:
    """The smoke child's limits: the user's, or derived from the submission's size."""

    memory_mb: int
    timeout: float


def smoke_limits(sub: Submission, opts: CheckOptions) -> Limits:
    """``--smoke-memory``/``--smoke-timeout`` when set; else a base plus a share per byte of
    the submission (its weights, mostly), so a 2.5 GiB model is not refused a mapping."""
    size = sum(sub.size(name) for name in sub.names())
    memory = opts.smoke_memory_mb or DEFAULT_MEMORY_MB + math.ceil(MEMORY_PER_WEIGHT * size / _MIB)
    timeout = opts.smoke_timeout or DEFAULT_TIMEOUT + SECONDS_PER_GIB * size / (1 << 30)
    return Limits(memory, timeout)


def smoke_available() -> bool:
    """Whether the child can import torch (and safetensors, yaml), without importing them."""
    return module_paths(CHILD_MODULES) is not None


def check_smoke(sub: Submission, opts: CheckOptions) -> list[Finding]:
    """Run the submission's model in a sandboxed child; its findings, or why it failed."""
    paths = module_paths(CHILD_MODULES)
    if paths is None:
        missing = ", ".join(CHILD_MODULES)
        message = f"smoke test not run: the child needs {missing}, and one is not installed"
        return [Finding("GAS600", "warning", message, hint="pip install 'gasbuild[torch]'")]
    limits = smoke_limits(sub, opts)
    with sandbox_dir("smoke-") as root:
        model_dir = _stage(sub, root / "submission")
        job = loader_job(
            model_dir,
            modality=opts.modality,
            batch=opts.smoke_batch,
            memory_mb=limits.memory_mb,
            paths=paths,
        )
        job["nonce"] = secrets.token_hex(16)
        run = run_child(job, root, limits.timeout)
    if opts.on_sandbox is not None:
        opts.on_sandbox(run.layers)
    return layer_findings(run.layers) + _findings(run, limits, opts.smoke_batch)


def layer_findings(layers: dict[str, str]) -> list[Finding]:
    """GAS610 warnings for the containment layers that did not hold here."""
    if not layers:
        return [
            Finding(
                "GAS610", "warning", "the sandbox reported no containment layers", file=MODEL_FILE
            )
        ]
    missing = [f"{k} ({layers[k]})" for k in _KEY_LAYERS if layers.get(k, "?") != "active"]
    if not missing:
        return []
    message = "the smoke test ran with these sandbox layers unavailable: " + "; ".join(missing)
    hint = "a newer Linux kernel (Landlock ABI 4+, user namespaces) contains model code fully"
    return [Finding("GAS610", "warning", message, file=MODEL_FILE, hint=hint)]


def _stage(sub: Submission, target: Path) -> Path:
    """Put the submission's root entries in ``target``: large local files by symlink."""
    target.mkdir()
    for name in filter(is_plain_name, sub.names()):  # the container check reports the rest
        dest = target / name
        local = sub.local_path(name)
        if local is not None and sub.size(name) >= LINK_MIN_BYTES and _link(local, dest):
            continue
        with sub.open(name) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, length=1 << 20)
    return target


def _link(source: Path, dest: Path) -> bool:
    try:
        dest.symlink_to(source.resolve())
    except OSError:  # no symlinks here (Windows without the privilege): copy instead
        return False
    return True


def _findings(run: ChildRun, limits: Limits, batch: int) -> list[Finding]:
    messages = child_messages(run.stdout)
    results = [m["result"] for m in messages if isinstance(m.get("result"), dict)]
    if results and run.returncode == 0:
        findings = [f for f in map(_finding, results[-1].get("findings", [])) if f is not None]
        if any(f.severity == "error" for f in findings):
            return findings
        problem = measurement_problem(results[-1].get("measured"), batch)
        if problem is None:
            return findings
        message = f"the smoke test's result cannot be believed: {problem}"
        hint = "model.py wrote to the smoke test's channel, or ended the process early"
        return [*findings, Finding("GAS608", "error", message, file=MODEL_FILE, hint=hint)]
    where = last_phase(messages)
    last = run.last_output()
    if run.timed_out:
        message = f"the smoke test {run.timeout_text(limits.timeout)}, while {where}"
        hint = (f"last output: {last}; " if last else "") + f"raise the limit: {TIMEOUT_FLAG}"
        return [Finding("GAS607", "error", message, file=MODEL_FILE, hint=hint)]
    how = exit_text(run.returncode)
    message = f"the smoke test's process {how} while {where}" + (f": {last}" if last else "")
    hint = f"the memory limit is {limits.memory_mb} MB; raise it: {MEMORY_FLAG}"
    return [Finding("GAS608", "error", message, file=MODEL_FILE, hint=hint)]


def measurement_problem(measured: Any, batch: int) -> str | None:
    """Why the child's raw measurements do not show a passing run, or None when they do.

    Every batch asked (the smoke batch, then 1) must have its logits, ``[B, C]`` finite
    numbers with C in the allowed range: this side checks them itself, whatever the child
    says about them."""
    if not isinstance(measured, list):
        return "it carries no measurements of the forward passes"
    seen = {m.get("batch"): m for m in measured if isinstance(m, dict)}
    for size in dict.fromkeys((batch, 1)):
        record = seen.get(size)
        if record is None:
            return f"no measurement of the forward on a batch of {size}"
        logits = record.get("logits")
        shape = record.get("input_shape")
        if not (isinstance(shape, list) and shape and shape[0] == size):
            return f"the input of the batch of {size} has shape {shape!r}"
        if not (isinstance(logits, list) and len(logits) == size):
            return f"the logits of the batch of {size} are not {size} rows"
        widths = {len(row) if isinstance(row, list) else -1 for row in logits}
        if len(widths) != 1 or widths.pop() not in NUM_CLASSES_ALLOWED:
            return f"the logits of the batch of {size} are not [B, C] with C allowed"
        values = [v for row in logits for v in row]
        if not all(isinstance(v, float | int) and math.isfinite(v) for v in values):
            return f"the logits of the batch of {size} are not finite numbers"
    return None


def _finding(raw: object) -> Finding | None:
    """A finding from the child's JSON; malformed entries are dropped, not trusted."""
    if not isinstance(raw, dict):
        return None
    code, severity, message = raw.get("code"), raw.get("severity"), raw.get("message")
    if not (isinstance(code, str) and code.startswith("GAS6") and isinstance(message, str)):
        return None
    if severity not in ("error", "warning"):
        return None
    file, line, hint = raw.get("file"), raw.get("line"), raw.get("hint")
    return Finding(
        code,
        severity,
        message,
        file=file if isinstance(file, str) else None,
        line=line if isinstance(line, int) and not isinstance(line, bool) else None,
        hint=hint if isinstance(hint, str) else None,
    )
