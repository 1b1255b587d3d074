"""PostgreSQL's client authentication rules (pg_hba.conf) as data.

The postgres role writes ``pg_hba.conf`` with community.postgresql's ``postgresql_pg_hba`` module (``overwrite``,
``sort_rules: false``); this filter builds the module's ``rules``: the role's fixed policy, one pair of rules per
network allowed in, then the operator's extra rules, in match order (PostgreSQL reads the file top down and the
first rule whose type, database, user and address match decides; "The pg_hba.conf File" in PostgreSQL's manual).

All logic lives in plain, typed functions; ``FilterModule`` only maps the public names.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - exercised only when ansible is absent

    class AnsibleFilterError(ValueError):  # type: ignore[no-redef]
        """Stand-in used when ansible-core is not importable."""


# Keys of one entry of postgresql_pg_hba's ``rules`` (its 'rule-specific arguments'), ``state`` left out.
RULE_KEYS = frozenset({"contype", "databases", "users", "address", "netmask", "method", "options", "comment"})
CONTYPES = frozenset({"local", "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc"})
# The address keywords pg_hba.conf knows besides addresses, networks and host names.
ADDRESS_KEYWORDS = frozenset({"all", "samehost", "samenet"})
_HOSTNAME_RE = re.compile(r"\.?[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})")

# The fixed policy: the postgres superuser only over the local socket (peer), everybody else with SCRAM; no plain
# TCP at all, and no remote login or replication as postgres even over TLS.
_POLICY: tuple[dict[str, str], ...] = (
    {"contype": "local", "databases": "all", "users": "postgres", "method": "peer"},
    {"contype": "local", "databases": "replication", "users": "postgres", "method": "peer"},
    {"contype": "local", "databases": "all", "users": "all", "method": "scram-sha-256"},
    {"contype": "hostnossl", "databases": "all", "users": "all", "address": "all", "method": "reject"},
    {"contype": "hostnossl", "databases": "replication", "users": "all", "address": "all", "method": "reject"},
    {"contype": "hostssl", "databases": "all", "users": "postgres", "address": "all", "method": "reject"},
    {"contype": "hostssl", "databases": "replication", "users": "postgres", "address": "all", "method": "reject"},
)
LOOPBACK = ("127.0.0.1/32", "::1/128")


def _fail(message: str) -> AnsibleFilterError:
    return AnsibleFilterError(f"postgres_hba_rules: {message}")


def hba_address(value: Any, what: str) -> str:
    """An address column of pg_hba.conf: a keyword, an IP address or network (CIDR), or a host name.

    Addresses come back as written (``10.0.2.0/24``, ``fd00::/64``); a bare IP address gets its full-length mask
    (``/32``, ``/128``), which PostgreSQL requires when no ``netmask`` column follows.

    :raises AnsibleFilterError: naming ``what`` for a non-string, or text with spaces, quotes or other characters
        PostgreSQL would read as another column.
    """
    if not isinstance(value, str):
        raise _fail(f"{what}: an address must be a string, got {type(value).__name__} {value!r}")
    text = value.strip()
    if text in ADDRESS_KEYWORDS:
        return text
    try:
        if "/" in text:
            ipaddress.ip_network(text, strict=False)
            return text
        address = ipaddress.ip_address(text)
    except ValueError:
        if "/" not in text and ":" not in text and _HOSTNAME_RE.fullmatch(text):
            return text
        raise _fail(f"{what}: {value!r} is no address keyword, IP address or network, or host name") from None
    return f"{address.compressed}/{address.max_prefixlen}"


def postgres_hba_rules(sources: Any, replication_user: Any, extra: Any = ()) -> list[dict[str, str]]:
    """The role's pg_hba rules as postgresql_pg_hba ``rules`` entries, in match order.

    :param sources: the networks allowed in (``postgres_hba_sources``): each gets, after the loopback addresses,
        a ``hostssl`` + ``scram-sha-256`` rule for replication by ``replication_user`` and one for every database.
    :param replication_user: the streaming replication role (``postgres_replication_user``).
    :param extra: the operator's rules (``postgres_hba_extra``), mappings of postgresql_pg_hba's rule keys
        (``contype`` and ``method`` required), appended after the role's rules.
    :returns: a list of dicts with ``contype``, ``databases``, ``users``, ``address`` (not for ``local``) and
        ``method`` (plus ``options``, ``netmask`` or ``comment`` where an extra rule has them).
    :raises AnsibleFilterError: naming the variable, for sources that are not a list of addresses, an extra rule
        with an unknown key, type or no method, or two rules with the same type, database, user and address
        (postgresql_pg_hba keeps only one of them).
    """
    if isinstance(sources, str | bytes) or not isinstance(sources, Iterable):
        raise _fail(f"postgres_hba_sources must be a list, got {type(sources).__name__}")
    if not isinstance(replication_user, str) or not replication_user or any(c.isspace() for c in replication_user):
        raise _fail(f"postgres_replication_user must be a role name without spaces, got {replication_user!r}")
    if isinstance(extra, str | bytes | Mapping) or not isinstance(extra, Iterable):
        raise _fail(f"postgres_hba_extra must be a list of rules, got {type(extra).__name__}")
    addresses = [*LOOPBACK, *(hba_address(s, "postgres_hba_sources") for s in sources)]
    rules = [dict(rule) for rule in _POLICY]
    for address in dict.fromkeys(addresses):
        for database, user in (("replication", replication_user), ("all", "all")):
            rules.append(
                {"contype": "hostssl", "databases": database, "users": user, "address": address,
                 "method": "scram-sha-256"}
            )  # fmt: skip
    for index, rule in enumerate(extra):
        what = f"postgres_hba_extra[{index}]"
        if not isinstance(rule, Mapping):
            raise _fail(f"{what} must be a mapping of postgresql_pg_hba rule keys, got {rule!r}")
        unknown = sorted(set(rule) - RULE_KEYS)
        if unknown:
            raise _fail(f"{what} has unknown keys {unknown}; allowed: {sorted(RULE_KEYS)}")
        if rule.get("contype") not in CONTYPES or not rule.get("method"):
            raise _fail(f"{what} needs a contype ({', '.join(sorted(CONTYPES))}) and a method, got {dict(rule)!r}")
        entry = {"databases": "all", "users": "all", **{k: str(v) for k, v in rule.items()}}
        if entry["contype"] != "local":
            entry["address"] = hba_address(rule.get("address", "samehost"), what)
        rules.append(entry)
    seen: dict[tuple[str, ...], int] = {}
    for index, rule in enumerate(rules):
        key = (rule["contype"], rule["databases"], rule["users"], rule.get("address", ""))
        if key in seen:
            raise _fail(f"two rules for {' '.join(k for k in key if k)}: postgresql_pg_hba would keep one; "
                        "remove the repetition from postgres_hba_sources or postgres_hba_extra")  # fmt: skip
        seen[key] = index
    return rules


class FilterModule:
    """Ansible filter entry point."""

    def filters(self) -> dict[str, Any]:
        return {"postgres_hba_rules": postgres_hba_rules}
