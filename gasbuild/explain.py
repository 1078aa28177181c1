"""``gasbuild explain CODE``: one finding code's section of docs/checks.md, as shipped.

docs/checks.md ships inside the wheel (``gasbuild/_data/docs``), so hints can cite
``gasbuild explain GAS304`` instead of a file that no installed user has.
"""

from __future__ import annotations

import difflib
import re

from gasbuild.errors import UsageError
from gasbuild.resources import data_dir

_HEADING = re.compile(r"^### (GAS\d{3}) — (.*)$")


def sections() -> dict[str, tuple[str, str]]:
    """Code -> (title, section text) for every ``### GASnnn — title`` of checks.md."""
    text = (data_dir("docs") / "checks.md").read_text("utf-8")
    found: dict[str, tuple[str, str]] = {}
    code, title, lines = "", "", list[str]()
    for line in [*text.splitlines(), "## end"]:
        match = _HEADING.match(line)
        if match or line.startswith(("## ", "### ")):
            if code:
                found[code] = (title, "\n".join(lines).strip() + "\n")
            code, title, lines = (match.group(1), match.group(2), []) if match else ("", "", [])
        elif code:
            lines.append(line)
    return found


def explain(code: str) -> str:
    """The documentation of one code, as plain text (links reduced to their words)."""
    wanted = code.strip().upper()
    if wanted.isdigit():
        wanted = f"GAS{wanted}"
    known = sections()
    if wanted not in known:
        near = difflib.get_close_matches(wanted, list(known), n=3)
        hint = f"did you mean {', '.join(near)}?" if near else "codes run GAS101 to GAS609"
        raise UsageError(f"no check code {code!r}", hint=hint)
    title, body = known[wanted]
    return f"{wanted}: {title}\n\n{_plain(body)}"


def _plain(markdown: str) -> str:
    """[words](#anchor) -> words; the rest of the markdown reads well as it is."""
    return re.sub(r"\[([^\]]+)\]\((#[^)]*)\)", r"\1", markdown)
