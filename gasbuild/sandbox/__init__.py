"""Running untrusted model code: the runner (trusted side) and the child scripts it starts.

``runner`` is imported by the checks and stages that run a model; the ``*_child.py`` scripts are
run by path in a separate interpreter and are never imported by gasbuild's own process for a run.
"""

DEFAULT_TIMEOUT = 300.0  # seconds a loader child may run
DEFAULT_MEMORY_MB = 8192  # its address-space limit

__all__ = ["DEFAULT_MEMORY_MB", "DEFAULT_TIMEOUT"]
