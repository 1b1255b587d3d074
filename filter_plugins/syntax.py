"""Quote values for the syntax of the file or string they are written into.

A password, a host or an operator's value is data; each target syntax gives some of its characters a meaning
(``/`` and ``@`` in a URL, ``$`` and `````` in an environment file, ``:`` in ``.pgpass``, a space in a libpq
connection string, ``"`` and ``$`` in nginx and rsyslog strings).  One function per target syntax, each tested by
parsing its output back with the consumer's own parser (tests/unit/test_syntax.py; nginx and rsyslog strings:
tests/unit/test_config_strings.py).  Every function refuses what its syntax cannot carry, naming the value's role,
instead of writing something the consumer reads differently.

All logic lives in plain, typed functions; ``FilterModule`` only maps the public names.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - exercised only when ansible is absent

    class AnsibleFilterError(ValueError):  # type: ignore[no-redef]
        """Stand-in used when ansible-core is not importable."""


# systemd's env_name_is_valid(): letters, digits and underscore, not starting with a digit.
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, at most 253 characters; '_' is
# accepted too (inventory and container names use it, /etc/hosts and Docker's DNS resolve it).
_HOSTNAME_RE = re.compile(
    r"(?=.{1,253}\Z)(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
    r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?"
)
_LINE_BREAKS = ("\n", "\r")


def _fail(func: str, message: str) -> AnsibleFilterError:
    return AnsibleFilterError(f"{func}: {message}")


def _text(func: str, what: str, value: Any, *, allow_int: bool = False) -> str:
    """Return ``value`` as ``str``; ints only where the syntax has numbers (ports); never bools or None."""
    if value is None:
        raise _fail(func, f"{what} is missing (got None)")
    if isinstance(value, bool):
        raise _fail(func, f"{what} must be a string, got bool {value!r} (quote it in YAML)")
    if allow_int and isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return str(value)
    if type(value).__name__ == "EncryptedString":  # ansible-core >= 2.19 vaulted value, decrypts on str()
        return str(value)
    raise _fail(func, f"{what} must be a string, got {type(value).__name__}")


def _no_nul(func: str, what: str, text: str, *, line_breaks: bool = True) -> str:
    if "\x00" in text:
        raise _fail(func, f"{what} contains a NUL character")
    if line_breaks and any(c in text for c in _LINE_BREAKS):
        raise _fail(func, f"{what} contains a line break")
    return text


# --------------------------------------------------------------------------------------------------------------
# URLs (RFC 3986)


def url_component(value: Any, what: str = "value") -> str:
    """Percent-encode a URL user name, password or path segment (RFC 3986 sections 2.1, 3.2.1, 3.3).

    Everything but the unreserved characters (``A-Z a-z 0-9 - . _ ~``) is encoded, ``/``, ``:``, ``@``, ``%``
    included: Ansible's ``urlencode`` leaves ``/`` as is, and ``redis://u:Kp9/Qz@h:6379`` parses with port
    ``Kp9``.  Non-ASCII text is encoded as UTF-8 first.  Consumers (urllib.parse, redis-py, kombu, SQLAlchemy)
    percent-decode these components.

    Raises AnsibleFilterError for None, bools and non-strings.
    """
    return urllib.parse.quote(_text("url_component", what, value, allow_int=True), safe="")


def url_host(value: Any, what: str = "host") -> str:
    """A host as written in a URL authority, nginx ``server``/``listen`` or a Prometheus target.

    IPv4 addresses and RFC 1123 host names come back unchanged; IPv6 addresses (with or without brackets) come
    back in brackets, compressed (RFC 3986 section 3.2.2 ``IP-literal``).  Zone identifiers (``fe80::1%eth0``)
    are refused: each consumer writes them differently.

    Raises AnsibleFilterError for anything that is not an IP address or a host name (spaces, ``/``, ``@``...).
    """
    text = _text("url_host", what, value).strip()
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        if bare is text and _HOSTNAME_RE.fullmatch(text) and not re.fullmatch(r"[0-9.]+", text):
            return text
        raise _fail("url_host", f"{what} {value!r} is neither an IP address nor a host name") from None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            raise _fail("url_host", f"{what} {value!r} has a zone identifier; use an address without '%zone'")
        return f"[{address.compressed}]"
    return address.compressed


def port_number(value: Any, what: str = "port") -> int:
    """A TCP/UDP port, 1-65535, from an int or a decimal string.  Raises AnsibleFilterError otherwise."""
    text = _text("port_number", what, value, allow_int=True).strip()
    if not re.fullmatch(r"[0-9]{1,5}", text) or not 1 <= int(text) <= 65535:
        raise _fail("port_number", f"{what} must be a port number between 1 and 65535, got {value!r}")
    return int(text)


def host_port(host: Any, port: Any, what: str = "host") -> str:
    """``host:port`` with IPv6 hosts in brackets (``[2001:db8::11]:8000``).

    The one spelling of an endpoint for URLs, nginx ``upstream``/``listen``, exporters' ``--web.listen-address``
    and Prometheus targets (Go's ``net.SplitHostPort`` requires the brackets).

    Raises AnsibleFilterError naming ``what`` for a bad host (see url_host) or a port outside 1-65535.
    """
    return f"{url_host(host, what)}:{port_number(port, what + ' port')}"


def ip_family(values: Any, family: Any, what: str = "addresses") -> list[str]:
    """The addresses or networks (CIDR) of ``values`` of one IP family (4 or 6), in their order.

    Lets an nftables rule put IPv4 sources in an ``ip saddr`` set and IPv6 ones in ``ip6 saddr``.
    Raises AnsibleFilterError naming ``what`` for an entry that is neither an address nor a network.
    """
    if family not in (4, 6, "4", "6"):
        raise _fail("ip_family", f"family must be 4 or 6, got {family!r}")
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise _fail("ip_family", f"{what} must be a list, got {type(values).__name__}")
    chosen = []
    for entry in values:
        text = _text("ip_family", f"entry of {what}", entry).strip()
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise _fail("ip_family", f"{what}: {entry!r} is neither an IP address nor a network") from None
        if network.version == int(family):
            chosen.append(text)
    return chosen


def nftables_accept_rules(rules: Any, groups: Any, addresses: Any, absent_groups: str = "fail") -> list[str]:
    """nft lines of an input chain that accept each rule's port (nft(8), "PAYLOAD EXPRESSION", "SETS").

    :param rules: ``[{port, proto?, from_groups?, from?, comment?, variable?}]``: ``port`` a number or range
        (``8000-8010``), ``proto`` tcp (default) or udp, the sources the members of ``from_groups`` (by their
        address in ``addresses``) and the addresses or networks of ``from``; without either, any source. ``comment``
        defaults to ``port <port>``; ``variable`` names the rule's origin in errors (default ``base_firewall_rules``).
    :param groups: Ansible's ``groups`` (``all`` included).
    :param addresses: ``{host: address}`` for every member of the groups the rules name.
    :param absent_groups: ``fail`` (an operator's rules: a group the inventory lacks is a mistake) or ``empty`` (a
        role's rules name the platform's groups; one the inventory lacks has no members, so it admits nobody).
    :returns: one line per rule and address family: IPv4 sources in an ``ip saddr`` set, IPv6 ones in ``ip6 saddr``
        (nft refuses an IPv6 address in an ``ip`` set); a rule whose sources are all of one family gives one line, a
        rule whose groups are empty gives none.
    :raises AnsibleFilterError: a group the inventory does not have, a member without an address, a source that is
        neither an IP address nor a network (naming the rule), or rules that are not a list of mappings.
    """
    if isinstance(rules, str | bytes) or not isinstance(rules, Iterable):
        raise _fail("nftables_accept_rules", f"rules must be a list, got {type(rules).__name__}")
    if absent_groups not in ("fail", "empty"):
        raise _fail("nftables_accept_rules", f"absent_groups must be fail or empty, got {absent_groups!r}")
    lines = []
    for rule in rules:
        if not isinstance(rule, dict) or "port" not in rule:
            raise _fail("nftables_accept_rules", f"each rule needs a port, got {rule!r}")
        comment = rule.get("comment") or f"port {rule['port']}"
        what = f"{rule.get('variable', 'base_firewall_rules')} ({comment})"
        match = f'{rule.get("proto", "tcp")} dport {rule["port"]} accept comment "{comment}"'
        if "from_groups" not in rule and "from" not in rule:
            lines.append(match)
            continue
        sources: list[str] = []
        for group in rule.get("from_groups") or []:
            if group not in groups:
                if absent_groups == "empty":
                    continue
                raise _fail("nftables_accept_rules", f"{what}: no inventory group {group!r}")
            for host in groups[group]:
                if host not in addresses:
                    raise _fail("nftables_accept_rules", f"{what}: no address for {host!r}")
                sources.append(str(addresses[host]))
        sources += [str(source) for source in rule.get("from") or []]
        unique = list(dict.fromkeys(sources))
        for family, keyword in ((4, "ip"), (6, "ip6")):
            chosen = ip_family(unique, family, what)
            if chosen:
                lines.append(f"{keyword} saddr {{ {', '.join(chosen)} }} {match}")
    return lines


# --------------------------------------------------------------------------------------------------------------
# systemd EnvironmentFile= (systemd.exec(5), "EnvironmentFile="; src/basic/env-file.c)


def env_name(value: Any) -> str:
    """An environment variable name systemd accepts (``env_name_is_valid``): ``[A-Za-z_][A-Za-z0-9_]*``.

    systemd silently drops assignments with other names; this refuses them instead (AnsibleFilterError).
    """
    text = _text("env_name", "environment variable name", value)
    if not _ENV_NAME_RE.fullmatch(text):
        raise _fail("env_name", f"{text!r} is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
    return text


def systemd_env_quote(value: Any, what: str = "value") -> str:
    """A double-quoted value for a systemd ``EnvironmentFile=`` line: ``KEY={{ value | systemd_env_quote }}``.

    systemd.exec(5): in a double-quoted value, a backslash followed by one of ``"\\`$`` preserves that character;
    any other character is taken verbatim, spaces and ``#`` included.  The same text in POSIX sh double quotes
    means the same string, but the wrappers read the file with systemd's rules (roles/app/files/envfile.py),
    never with a shell.  Ints are written in decimal.

    Raises AnsibleFilterError for None, bools, non-strings, NUL and line breaks (one assignment per line).
    """
    text = _no_nul("systemd_env_quote", what, _text("systemd_env_quote", what, value, allow_int=True))
    return '"' + re.sub(r'(["\\`$])', r"\\\1", text) + '"'


# --------------------------------------------------------------------------------------------------------------
# libpq: password file and connection strings (PostgreSQL 15 docs, "The Password File", "Connection Strings")


def pgpass_field(value: Any, what: str = "field") -> str:
    """One field of a ``.pgpass`` line (host, port, database, user or password).

    libpq: "If an entry needs to contain : or \\, escape this character with \\."  libpq takes any character
    after a backslash literally, so ``*`` (the wildcard, when it is a whole field) and ``#`` (a comment when it
    starts the line) are escaped too.  An IPv6 host thus becomes ``fd00\\:\\:11``.

    Raises AnsibleFilterError for None, bools, non-strings, NUL and line breaks.
    """
    text = _no_nul("pgpass_field", what, _text("pgpass_field", what, value, allow_int=True))
    return re.sub(r"([\\:*#])", r"\\\1", text)


def pgpass_line(password: Any, host: Any, port: Any, database: Any, user: Any) -> str:
    """A whole ``.pgpass`` line ``host:port:database:user:password``, every field escaped (see pgpass_field).

    The password comes first so a template reads ``{{ secret | pgpass_line(host, port, db, user) }}``.
    """
    fields = [(host, "host"), (port, "port"), (database, "database"), (user, "user"), (password, "password")]
    return ":".join(pgpass_field(value, what) for value, what in fields)


def conninfo_quote(value: Any, what: str = "value") -> str:
    """A value of a libpq ``keyword=value`` connection string, in single quotes.

    libpq: "To write an empty value, or a value containing spaces, surround it with single quotes ... Single
    quotes and backslashes within a value must be escaped with a backslash, i.e., \\' and \\\\."  Always quoting
    is valid for every value and keeps one code path.

    Raises AnsibleFilterError for None, bools, non-strings and NUL.
    """
    text = _no_nul("conninfo_quote", what, _text("conninfo_quote", what, value, allow_int=True), line_breaks=False)
    return "'" + re.sub(r"(['\\])", r"\\\1", text) + "'"


def postgres_conf_string(value: Any, what: str = "value") -> str:
    """A string value of ``postgresql.conf`` in single quotes.

    PostgreSQL 15 docs, "Parameter Interaction via the Configuration File": string values are written in single
    quotes, a quote doubled; the file's lexer (guc-file.l, GUC_scanstr) also reads backslash escapes (``\\n``,
    octal...), so a backslash is doubled too.

    Raises AnsibleFilterError for None, bools, non-strings, NUL and line breaks.
    """
    text = _no_nul("postgres_conf_string", what, _text("postgres_conf_string", what, value, allow_int=True))
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


# --------------------------------------------------------------------------------------------------------------
# nginx and rsyslog configuration strings


def _no_controls(func: str, what: str, text: str) -> str:
    bad = sorted({f"0x{ord(c):02x}" for c in text if ord(c) < 0x20 or ord(c) == 0x7F})
    if bad:
        raise _fail(func, f"{what} contains control characters ({', '.join(bad)})")
    return text


def nginx_string(value: Any, what: str = "value") -> str:
    """A double-quoted nginx string for a directive that takes text (``add_header``, ``return``...).

    nginx's configuration reader (ngx_conf_read_token) takes ``\\"`` and ``\\\\`` inside double quotes as the
    character itself, and ``;``, ``{``, ``}``, ``#`` and spaces literally.  Values of these directives are then
    compiled as "complex values": a ``$`` always starts a variable and nginx has no escape for it, so a value with
    ``$`` is refused rather than expanded (``$remote_addr``) or refused by ``nginx -t`` (``$1x``).

    Raises AnsibleFilterError for None, bools, non-strings, control characters (line breaks, NUL) and ``$``.
    """
    text = _no_controls("nginx_string", what, _text("nginx_string", what, value, allow_int=True))
    if "$" in text:
        raise _fail("nginx_string", f"{what} contains '$', which nginx reads as a variable (it has no escape for it)")
    return '"' + re.sub(r'(["\\])', r"\\\1", text) + '"'


def rsyslog_string(value: Any, what: str = "value") -> str:
    """A double-quoted RainerScript string constant (rsyslog parameters ``pwd="..."`` and ``set`` values).

    rsyslog's RainerScript docs, "String Constants": backslash escapes as in C; in double quotes an unescaped
    ``$`` is a syntax error that stops rsyslog from starting.  So ``\\``, ``"`` and ``$`` are escaped.

    Raises AnsibleFilterError for None, bools, non-strings and control characters (line breaks, NUL).
    """
    text = _no_controls("rsyslog_string", what, _text("rsyslog_string", what, value, allow_int=True))
    return '"' + re.sub(r'(["\\$])', r"\\\1", text) + '"'


class FilterModule:
    """Ansible filter entry point."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "url_component": url_component,
            "url_host": url_host,
            "port_number": port_number,
            "host_port": host_port,
            "ip_family": ip_family,
            "nftables_accept_rules": nftables_accept_rules,
            "env_name": env_name,
            "systemd_env_quote": systemd_env_quote,
            "pgpass_field": pgpass_field,
            "pgpass_line": pgpass_line,
            "conninfo_quote": conninfo_quote,
            "postgres_conf_string": postgres_conf_string,
            "nginx_string": nginx_string,
            "rsyslog_string": rsyslog_string,
        }
