"""Locate the data that ships with gasbuild (``templates/``, ``schemas/``, ``docs/``), and name
a project's files: its manifest (``MANIFEST_NAME``) and the folder it keeps its own state in
(``STATE_DIR``), so that commands can look for them without importing ``manifest`` (pydantic).

In a wheel they sit inside the package as ``gasbuild/_data/<name>`` (hatch force-include); in a
source checkout or an editable install they are the repository's top-level folders.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
# A project's own state, beside its gas.toml: push receipts and burns, eval results, the
# rendered model.py of template builds, the no-op record. Kept out of git by `gasbuild init`.
STATE_DIR = ".gasbuild"
MANIFEST_NAME = "gas.toml"


def data_dir(name: str) -> Path:
    """The directory of a shipped data folder, e.g. ``data_dir("templates")``."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"gasbuild is installed without its {name}/ folder")
