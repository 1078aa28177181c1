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
    GAS607  error    the child did not finish within the timeout
    GAS608  error    out of memory under the limit, or the child died without a result
    GAS609  warning  no classification head for the benchmark's embeddings (self.classifier, or
                     the deepest nn.Linear with C outputs), or forward never calls it
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from gasbuild.check.config import is_plain_name
from gasbuild.check.findings import CheckOptions, Finding, Submission
from gasbuild.sandbox.runner import (
    LOADER_MODULES,
    ChildRun,
    child_messages,
    exit_text,
    last_line,
    loader_job,
    module_paths,
    phase_text,
    run_child,
)
from gasbuild.submission import MODEL_FILE

# Files at least this large are symlinked into the temporary directory instead of copied.
LINK_MIN_BYTES = 1 << 20
CHILD_MODULES = LOADER_MODULES  # what the child imports (torch, safetensors, yaml)


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
    with tempfile.TemporaryDirectory(prefix="gasbuild-smoke-") as tmp:
        root = Path(tmp)
        model_dir = _stage(sub, root / "submission")
        job = loader_job(
            model_dir,
            modality=opts.modality,
            batch=opts.smoke_batch,
            memory_mb=opts.smoke_memory_mb,
            paths=paths,
        )
        run = run_child(job, root, opts.smoke_timeout)
    return _findings(run, opts)


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


def _findings(run: ChildRun, opts: CheckOptions) -> list[Finding]:
    messages = child_messages(run.stdout)
    results = [m["result"] for m in messages if isinstance(m.get("result"), dict)]
    if results and run.returncode == 0:
        return [f for f in map(_finding, results[-1].get("findings", [])) if f is not None]
    phases = [m for m in messages if "phase" in m]
    where = phase_text(phases[-1]) if phases else "starting"
    last = last_line(run.stderr)
    if run.returncode is None:
        message = f"the smoke test did not finish within {opts.smoke_timeout:g} s, while {where}"
        hint = f"last output: {last}" if last else "an endless loop, or a model too slow on CPU"
        return [Finding("GAS607", "error", message, file=MODEL_FILE, hint=hint)]
    how = exit_text(run.returncode)
    message = f"the smoke test's process {how} while {where}" + (f": {last}" if last else "")
    hint = f"the memory limit is {opts.smoke_memory_mb} MB"
    return [Finding("GAS608", "error", message, file=MODEL_FILE, hint=hint)]


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
