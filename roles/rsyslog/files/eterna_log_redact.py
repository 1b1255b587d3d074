#!/usr/bin/python3
"""Redact credentials from log events before they leave the host (rsyslog ``mmexternal`` filter).

rsyslog writes one JSON object a line to standard input (``interface.input="fulljson"``: the message's
properties and its ``$!`` tree); for each line this program answers one line, ``{"$!": <tree>}``, the same tree
with every credential replaced by ``[REDACTED]`` and ``eterna.redacted`` set to ``"1"``. The rsyslog ruleset
ships only that tree, and withholds an event whose tree lacks the mark (this filter did not run or failed).

What counts as a credential (OWASP Logging Cheat Sheet, "data to exclude"): the value of any key whose name
contains one of ``SENSITIVE_WORDS`` (``access_token``, ``http_authorization``, ``Cookie``...), and inside any
string: ``Authorization``/``Proxy-Authorization`` and ``Cookie``/``Set-Cookie`` headers, ``Bearer``/``Basic``
credentials, ``key=value`` and ``"key": "value"`` pairs with such a key (URL query strings, form bodies,
JSON in a message), the password of a URL's user information (RFC 3986 section 3.2.1) and JSON Web Tokens.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from typing import Any

MASK = "[REDACTED]"
# Parts of a key name that mark its value as a credential.
SENSITIVE_WORDS = (
    "authorization",
    "cookie",
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "credential",
    "credentials",
    "private_key",
    "session",
    "sessionid",
)
_KEY_WORDS = "|".join(re.escape(w) for w in sorted(SENSITIVE_WORDS, key=len, reverse=True))
_SENSITIVE_KEY = re.compile(rf"(?i)({_KEY_WORDS})")
# In free text, header names are handled by their own patterns (which keep the scheme).
_PAIR_WORDS = "|".join(
    re.escape(w) for w in sorted(SENSITIVE_WORDS, key=len, reverse=True) if w not in ("authorization", "cookie")
)

# Each pattern with the literals one of which any match of it contains (lower case): redact_text runs a pattern on
# ASCII text only when one of its literals occurs, which gives the same result (a pattern cannot match without its
# literal) at a fraction of the cost; most lines contain none of them.
_PATTERNS: list[tuple[tuple[str, ...], re.Pattern[str], Any]] = [
    # Header lines: "Authorization: Bearer abc", "Proxy-Authorization: Basic abc" (scheme kept, credential masked).
    (
        ("authorization",),
        re.compile(
            r"(?i)((?:proxy-)?authorization\\?\"?\s*[:=]\s*\\?\"?)(?:(bearer|basic|digest|negotiate|token)\s+)?"
            r"[^\s,;\"'}&\\]+"
        ),
        lambda m: m.group(1) + (m.group(2) + " " if m.group(2) else "") + MASK,
    ),
    # Cookie headers: everything up to the end of the header value.
    (("cookie",), re.compile(r"(?i)\b((?:set-)?cookie\\?\"?\s*[:=]\s*\\?\"?)[^\r\n\"}\\]+"), r"\1" + MASK),
    # Bearer credentials anywhere else ("Basic" is also an English word: masked only in the header above).
    (("bearer",), re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]{8,}=*"), r"\1 " + MASK),
    # URL user information: scheme://user:password@host
    (("://",), re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^/\s:@\"']+):[^@\s/\"']+@"), r"\1:" + MASK + "@"),
    # key=value and "key": "value" pairs whose key names a credential (query strings, forms, JSON in text).
    (
        tuple(w for w in SENSITIVE_WORDS if w not in ("authorization", "cookie")),
        re.compile(
            rf"(?i)([\w\-.]*(?:{_PAIR_WORDS})[\w\-.]*)(\\?\"?\s*[=:]\s*\\?\"?)(?!\[REDACTED\])([^&\s\"',;}}\\]+)"
        ),
        r"\1\2" + MASK,
    ),
    # JSON Web Tokens (three base64url parts, the first an encoded JSON header).
    (("eyj",), re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), MASK),
]


def redact_text(text: str) -> str:
    """Return ``text`` with every credential pattern masked.

    On ASCII text a pattern runs only when one of its literals occurs (case-insensitively, as the patterns match);
    other text goes through every pattern (Unicode case folding can match a literal spelled with other letters,
    such as the long s). Both give the result of :func:`redact_text_every_pattern`.

    :param text: a log message or field value
    :returns: the same text, credentials replaced by ``[REDACTED]`` (idempotent: redacting twice changes nothing)
    """
    if not text.isascii():
        return redact_text_every_pattern(text)
    lower = text.lower()
    for literals, pattern, replacement in _PATTERNS:
        if any(literal in lower for literal in literals):
            redacted = pattern.sub(replacement, text)
            if redacted != text:
                text, lower = redacted, redacted.lower()
    return text


def redact_text_every_pattern(text: str) -> str:
    """Return ``text`` with every credential pattern masked, running every pattern (the reference for
    :func:`redact_text`).

    :param text: a log message or field value
    :returns: the same text, credentials replaced by ``[REDACTED]``
    """
    for _literals, pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@functools.lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    """Whether a field named ``key`` holds a credential (its name contains one of ``SENSITIVE_WORDS``).

    Answers are cached (at most 4096 names): the same field names recur in every event.
    """
    return bool(_SENSITIVE_KEY.search(key))


def redact(value: Any, key: str = "") -> Any:
    """Return a copy of a JSON value with credentials masked.

    :param value: a JSON value (dict, list, str, number, bool, None)
    :param key: the name of the field holding ``value`` (a sensitive name masks the whole value)
    :returns: the redacted copy; numbers, booleans and nulls under an ordinary key are unchanged
    """
    if key and is_sensitive_key(key) and value not in (None, "", "-"):
        return MASK
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def answer(line: str) -> dict[str, Any]:
    """The reply to one line of rsyslog's ``fulljson`` input: ``{"$!": <redacted tree>}``.

    A line that is not a JSON object gets a tree that withholds the event (fail closed).
    """
    try:
        message = json.loads(line)
        tree = message.get("$!") or {}
        if not isinstance(tree, dict):
            raise ValueError("$! is not an object")
    except ValueError:
        return {"$!": {"message": "[withheld: unreadable event]", "eterna": {"redacted": "0"}}}
    tree = redact(tree)
    tree.setdefault("eterna", {})["redacted"] = "1"
    return {"$!": tree}


def main() -> int:
    """Answer rsyslog line by line until it closes standard input."""
    for line in sys.stdin:
        sys.stdout.write(json.dumps(answer(line), separators=(",", ":")) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
