"""Every loader child starts here: contain the process, then run the child script by path.

The runner starts ``python -I launch.py SCRIPT``; the job arrives on stdin. Before any other
import, this reads the job, applies ``contain.contain(job["sandbox"])`` (namespaces, seccomp,
Landlock, limits: see ``contain.py``), sends ``{"sandbox": layers}`` as the first protocol line
and hands the same job to ``SCRIPT`` (``smoke_child.py``, ``export_child.py``, an eval child) on
a fresh ``sys.stdin``. So a child script is contained whether or not it knows about the sandbox.

Only this folder is added to ``sys.path``: the scripts import their siblings here and nothing
else of gasbuild.
"""

from __future__ import annotations

import io
import json
import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    script = sys.argv[1]
    sys.path.append(HERE)
    sys.dont_write_bytecode = True  # model.py's folder is read-only in the sandbox
    from contain import contain  # type: ignore[import-not-found]  # a sibling, by path

    text = sys.stdin.read()
    job = json.loads(text)
    spec = job.get("sandbox")
    layers = contain(spec) if spec is not None else {"contained": "unavailable: switched off"}
    os.write(1, (json.dumps({"sandbox": layers}) + "\n").encode())
    sys.stdin = io.StringIO(text)
    sys.argv = [script]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
