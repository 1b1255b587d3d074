#!/usr/bin/python3
"""Run a command with the variables of a systemd EnvironmentFile, read the way systemd reads it.

Usage: envfile.py FILE COMMAND [ARGS...]

The root wrappers (eterna-app-manage, eterna-app-dbcheck) used to source the app's environment file with /bin/sh,
which expands ``$(...)``, backquotes and ``$VAR`` in values that systemd hands to the services verbatim.  This reads
the file with the grammar of systemd's ``parse_env_file_internal`` (src/basic/env-file.c, systemd 252 as in
Debian 12; described in systemd.exec(5) under EnvironmentFile=) and then executes COMMAND, without a shell.

Standard library only: it runs with the system's python3 before any virtualenv exists.
"""

from __future__ import annotations

import os
import re
import sys

_WHITESPACE = " \t\n\r"
_NEWLINE = "\n\r"
_COMMENTS = "#;"
_SHELL_NEED_ESCAPE = '"\\`$'
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse(text: str) -> dict[str, str]:
    """Return the assignments of an environment file as systemd would pass them to a unit.

    A later assignment of a name replaces an earlier one; assignments with an invalid name are ignored, as
    systemd's load_env_file_push() does.
    """
    result: dict[str, str] = {}
    state = "PRE_KEY"
    key: list[str] = []
    value: list[str] = []
    last_key_ws: int | None = None
    last_value_ws: int | None = None

    def push() -> None:
        name = "".join(key[:last_key_ws] if last_key_ws is not None else key)
        if _ENV_NAME_RE.fullmatch(name):
            result[name] = "".join(value)

    for c in text:
        if state == "PRE_KEY":
            if c in _COMMENTS:
                state = "COMMENT"
            elif c not in _WHITESPACE:
                state, key, value, last_key_ws = "KEY", [c], [], None
        elif state == "KEY":
            if c in _NEWLINE:
                state = "PRE_KEY"
            elif c == "=":
                state, last_value_ws = "PRE_VALUE", None
            else:
                if c not in _WHITESPACE:
                    last_key_ws = None
                elif last_key_ws is None:
                    last_key_ws = len(key)
                key.append(c)
        elif state == "PRE_VALUE":
            if c in _NEWLINE:
                push()
                state = "PRE_KEY"
            elif c == "'":
                state = "SINGLE_QUOTE_VALUE"
            elif c == '"':
                state = "DOUBLE_QUOTE_VALUE"
            elif c == "\\":
                state = "VALUE_ESCAPE"
            elif c not in _WHITESPACE:
                state = "VALUE"
                value.append(c)
        elif state == "VALUE":
            if c in _NEWLINE:
                if last_value_ws is not None:
                    del value[last_value_ws:]
                push()
                state = "PRE_KEY"
            elif c == "\\":
                state, last_value_ws = "VALUE_ESCAPE", None
            else:
                if c not in _WHITESPACE:
                    last_value_ws = None
                elif last_value_ws is None:
                    last_value_ws = len(value)
                value.append(c)
        elif state == "VALUE_ESCAPE":
            state = "VALUE"
            if c not in _NEWLINE:  # an escaped newline continues the line
                value.append(c)
        elif state == "SINGLE_QUOTE_VALUE":
            if c == "'":
                state = "PRE_VALUE"
            else:
                value.append(c)
        elif state == "DOUBLE_QUOTE_VALUE":
            if c == '"':
                state = "PRE_VALUE"
            elif c == "\\":
                state = "DOUBLE_QUOTE_VALUE_ESCAPE"
            else:
                value.append(c)
        elif state == "DOUBLE_QUOTE_VALUE_ESCAPE":
            state = "DOUBLE_QUOTE_VALUE"
            if c in _SHELL_NEED_ESCAPE:
                value.append(c)
            elif c != "\n":  # any other escaped character keeps its backslash, like the shell
                value += ["\\", c]
        elif state == "COMMENT":
            if c == "\\":
                state = "COMMENT_ESCAPE"
            elif c in _NEWLINE:
                state = "PRE_KEY"
        elif state == "COMMENT_ESCAPE":
            state = "COMMENT"

    if state in (
        "PRE_VALUE",
        "VALUE",
        "VALUE_ESCAPE",
        "SINGLE_QUOTE_VALUE",
        "DOUBLE_QUOTE_VALUE",
        "DOUBLE_QUOTE_VALUE_ESCAPE",
    ):
        if state == "VALUE" and last_value_ws is not None:
            del value[last_value_ws:]
        push()
    return result


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(f"usage: {argv[0]} FILE COMMAND [ARGS...]", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        os.environ.update(parse(handle.read()))
    os.execvp(argv[2], argv[2:])  # noqa: S606 - runs the operator's command, no shell on purpose
    return 127  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv))
