"""URLs as gas.toml may hold them: never a credential, and never echoed with one.

gas.toml and gas.lock are committed, and messages end up in CI logs, so a URL that carries a
secret (``user:password@``, ``?token=...``, ``#sig=...``) is refused where it is declared, and
every URL a message shows goes through :func:`redact_url` anyway. fsspec chains URLs
(``simplecache::s3://bucket/key``, ``zip://a.bin::https://host/x.zip``): every link of a chain
is judged, since each one reaches a server or a file system of its own.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

CHAIN_SEPARATOR = "::"
MASK = "***"

# Query or fragment parameter names that carry a secret (AWS/GCS/Azure signed URLs included:
# X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, sig, se/sp are harmless alone).
_SECRET_NAME = re.compile(
    r"token|secret|passw|pwd|key|sig|auth|credential|session|cookie|bearer|jwt|private|"
    r"access|client_id|ticket",
    re.IGNORECASE,
)
# Values that are well-known token formats, whatever the parameter is called.
_SECRET_VALUE = re.compile(
    r"^(hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|"
    r"(AKIA|ASIA)[A-Z0-9]{16}|xox[abprs]-[\w-]{10,}|sk-[\w-]{20,}|glpat-[\w-]{20,}|"
    r"eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]*)$"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_urls_in(text: str) -> str:
    """``text`` with every URL in it redacted (see :func:`redact_url`)."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group()), text)


def error_text(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's text (its class name when it has none), every URL in
    it redacted: fsspec backends and HTTP clients echo the URL they were given."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return redact_urls_in(text)[:limit]


def links(url: str) -> list[str]:
    """The links of an fsspec URL chain, outermost first (one link for a plain URL)."""
    return url.split(CHAIN_SEPARATOR)


def is_url(value: str) -> bool:
    """Whether a string is a URL (``scheme://`` or an fsspec chain) rather than a local path."""
    return "://" in value or CHAIN_SEPARATOR in value


def url_secret_problem(url: str) -> str | None:
    """Why ``url`` may not appear in gas.toml or gas.lock, or None when it may.

    Refused: control characters, a missing scheme, and in any link of a chain: a user name or
    password, or a query or fragment parameter whose name or value looks like a credential.
    Credentials come from the environment (AWS_*, HF_TOKEN, ...), never from the URL.
    """
    if _CONTROL.search(url):
        return "holds control characters"
    chain = links(url)
    if not urlsplit_scheme(chain[-1]):
        return "needs a scheme such as https://, s3:// or hf://"
    for link in chain:
        problem = _link_problem(link)
        if problem is not None:
            where = "" if len(chain) == 1 else f" (in the chained link {redact_url(link)!r})"
            return problem + where
    return None


def urlsplit_scheme(link: str) -> str:
    """A link's scheme, or "" (``simplecache`` alone is a scheme in a chain)."""
    if "://" not in link:
        return link if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", link) else ""
    return link.split("://", 1)[0]


def _link_problem(link: str) -> str | None:
    if "://" not in link:
        return None if urlsplit_scheme(link) else "is not a valid URL"
    try:
        parts = urlsplit(link)
        user, password = parts.username, parts.password
        parts.port  # noqa: B018 - raises on a malformed netloc
    except ValueError:
        return "is not a valid URL"
    if user or password or "@" in parts.netloc:
        return "embeds credentials (user:password@)"
    for where, text in (("query", parts.query), ("fragment", parts.fragment)):
        name = _secret_parameter(text)
        if name is not None:
            return f"carries a secret-looking {where} parameter ({name})"
    return None


def _secret_parameter(text: str) -> str | None:
    """The first parameter of a query or fragment that looks like a credential."""
    if not text:
        return None
    pairs = parse_qsl(text, keep_blank_values=True) if "=" in text else [("", text)]
    for name, value in pairs:
        if (name and _SECRET_NAME.search(name)) or _SECRET_VALUE.match(value.strip()):
            return name or "a token"
    return None


def redact_url(url: str) -> str:
    """``url`` fit to print: user info, query values and fragments masked as ``***``.

    Applied to every link of a chain; text that does not parse as a URL is masked whole
    after its scheme.
    """
    return CHAIN_SEPARATOR.join(_redact_link(link) for link in links(url))


def _redact_link(link: str) -> str:
    if "://" not in link:
        return link if urlsplit_scheme(link) or not link else MASK
    try:
        parts = urlsplit(link)
        parts.port  # noqa: B018 - raises on a malformed netloc
    except ValueError:
        return link.split("://", 1)[0] + "://" + MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    query = "&".join(
        f"{name}={MASK}" if value else name
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    if parts.query and not query:
        query = MASK
    fragment = MASK if parts.fragment else ""
    return _CONTROL.sub("?", urlunsplit((parts.scheme, netloc, parts.path, query, fragment)))
