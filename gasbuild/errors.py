"""One exception tree for everything gasbuild reports to a user.

The class decides the exit code and whether a caller may retry; the message is one line that
names the file, the place in it (``file:line:col`` when known), what was wrong and how to fix it.
Every exception gasbuild raises to its callers is drawn here; the classes below the first level
live beside the code that raises them (the module in brackets) and subclass one of these::

    GasbuildError                  exit 1   base: reported as one line, never as a traceback
    ├── UserError                  exit 2   bad input the user can fix
    │   ├── ManifestError                   gas.toml or model_config.yaml: key path, line, column
    │   ├── SourceError                     an input that is missing, unreadable or fails its pin
    │   ├── UsageError                      command-line arguments that do not fit together
    │   ├── ConversionError                 a checkpoint that cannot be converted [stages.convert]
    │   ├── LockMismatch                    --locked and gas.lock disagrees [lock]
    │   ├── TemplateError                   a malformed template directory [templates]
    │   ├── ArgError                        a template argument that does not fit [templates]
    │   ├── DataError                       an eval data folder laid out wrongly [eval.data]
    │   ├── MissingDecoder                  no decoder installed for a media file [eval.media]
    │   └── ScoreTooLow                     below [eval] min_score: push refused [eval.gate]
    ├── CheckFailed                exit 1   a submission has error findings (``gasbuild check``)
    │   ├── ExportError                     the ONNX export failed or disagrees [stages.export]
    │   └── EvalError                       the eval's model process failed [eval.engine]
    ├── BuildError                 exit 1   a stage failed for a reason that is not the input's
    ├── WeightsFormatError         exit 1   a safetensors header is malformed [check.weights]
    ├── TransportError             exit 1   network faults; ``retryable`` says whether to try again
    │   ├── ChainUnavailable                the chain endpoint cannot be reached [publish.chain]
    │   └── SubmissionInProgress            the service holds a reservation [publish.gasapi]
    └── PublishError               exit 1   upload or chain refused; never retried as such
        ├── AlreadyUploaded                 the service holds this file already [publish.gasapi]
        ├── UploadsDisabled                 the submission window is closed [publish.gasapi]
        ├── BurnRequired                    the free submission is used [publish.gasapi]
        ├── BurnAlreadyUsed                 the burn receipt was spent already [publish.gasapi]
        ├── BurnDeclined                    the user said no to a burn [publish.push]
        ├── PushDeclined                    the user said no to the push [publish.push]
        ├── BurnFailed                      the chain refused the burn [publish.burn]
        ├── BurnOutcomeUnknown              a burn that may or may not have landed [publish.burn]
        ├── BadSignature                    the service refused the Epistula signature
        ├── EpistulaError                   a request could not be signed [publish.epistula]
        ├── NotRegistered                   the hotkey is not registered [publish.chain]
        ├── QuotaExceeded                   the chain's per-epoch commitment quota [publish.chain]
        └── CommitmentTooLong               over the chain's 128-byte field [publish.chain]

Code that talks to a user (the CLI) catches ``GasbuildError`` and prints ``str(error)``; anything
else escaping is a bug in gasbuild and keeps its traceback. The sandbox's child scripts
(``sandbox/*_child.py``) have private exceptions of their own that never leave their process.
Two signals outside the tree never leave the function that catches them (internal:
MediaError [eval.media], an unreadable file the eval skips with a warning;
_NotRegular [check.container], a special file found when opening a zip).
A test (tests/test_exported_members.py) keeps this drawing and the code in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """Where a problem is: a file and, when known, a 1-based line and column."""

    file: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.col is not None:
                parts.append(str(self.col))
        return ":".join(parts)


# C0 and C1 controls, DEL, and the bidirectional overrides that make text read backwards.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` on one line, safe to print: a newline becomes a space, and every other control
    character taken from user input (a NUL in a path, an escape sequence in a file name) is
    shown escaped, e.g. ``\\x00``, so it can neither hide text nor drive the terminal."""
    return _UNPRINTABLE.sub(_escape, text.replace("\r\n", " ").replace("\n", " "))


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def display_path(path: str | Path) -> str:
    """A path as the user should read it: relative to the working directory when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(p)


class GasbuildError(Exception):
    """Base of every error gasbuild reports to a user as a single line."""

    exit_code: int = 1
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        location: Location | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.location = location
        self.more: list[GasbuildError] = []  # further problems found in the same pass

    def __str__(self) -> str:
        text = self.message
        if self.location is not None:
            text = f"{self.location}: {text}"
        if self.hint:
            text = f"{text} ({self.hint})"
        return printable(text)


class UserError(GasbuildError):
    """Input the user can fix: exit code 2."""

    exit_code = 2


class ManifestError(UserError):
    """A gas.toml (or emitted config) value is wrong; carries the dotted key path."""

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        hint: str | None = None,
        location: Location | None = None,
    ) -> None:
        super().__init__(message, hint=hint, location=location)
        self.key = key


class SourceError(UserError):
    """An input (weights, model.py, template) is missing, unreadable or does not match its pin."""


class UsageError(UserError):
    """Command-line arguments that do not fit together."""


class CheckFailed(GasbuildError):
    """A submission has error findings; the findings themselves were already reported."""


class BuildError(GasbuildError):
    """A build stage failed for a reason that lies outside the user's input."""


class TransportError(GasbuildError):
    """A network fault (timeout, reset, 5xx); ``retryable`` is true unless said otherwise."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable
        self.retry_after = retry_after


class PublishError(GasbuildError):
    """The upload service or the chain refused a step; not retried."""
