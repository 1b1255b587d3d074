"""subjectAltNames in one comparable form, for _common's check of an installed certificate.

The roles name SANs as ``DNS:name`` and ``IP:address``; ``openssl x509 -ext subjectAltName`` prints
``DNS:name, IP Address:address`` and writes IPv6 addresses its own way (``FD00:0:0:0:0:0:0:1``). Both filters
return the same sorted form (``DNS:`` names in lower case, ``IP:`` addresses as Python's ``ipaddress`` writes
them), so two lists compare with ``==``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - exercised only when ansible is absent

    class AnsibleFilterError(ValueError):  # type: ignore[no-redef]
        """Stand-in used when ansible-core is not importable."""


# openssl's label of a SAN type -> the prefix the roles write.
_OPENSSL_LABELS = {"IP Address": "IP"}


def _normalise(entry: str) -> str:
    kind, sep, value = entry.partition(":")
    if not sep or not value:
        raise AnsibleFilterError(f"tls_sans: {entry!r} is not TYPE:value (DNS:name or IP:address)")
    kind = _OPENSSL_LABELS.get(kind.strip(), kind.strip())
    value = value.strip()
    if kind == "DNS":
        return f"DNS:{value.lower()}"
    if kind == "IP":
        try:
            return f"IP:{ipaddress.ip_address(value)}"
        except ValueError as exc:
            raise AnsibleFilterError(f"tls_sans: {value!r} in {entry!r} is not an IP address") from exc
    return f"{kind}:{value}"


def tls_sans(entries: Iterable[str]) -> list[str]:
    """The sorted, unique, normalised form of SAN entries written as the roles write them (``DNS:...``, ``IP:...``).

    :raises AnsibleFilterError: when ``entries`` is not a list of strings, or an entry is not ``TYPE:value`` or
        names an IP address Python cannot parse.
    """
    if isinstance(entries, str | bytes) or not isinstance(entries, Iterable):
        raise AnsibleFilterError(f"tls_sans: expected a list of SAN entries, got {entries!r}")
    if not all(isinstance(e, str) for e in entries):
        raise AnsibleFilterError(f"tls_sans: every SAN entry must be a string, got {entries!r}")
    return sorted({_normalise(e) for e in entries})


def tls_sans_from_openssl(text: str) -> list[str]:
    """The SANs of ``openssl x509 -noout -ext subjectAltName`` output, in :func:`tls_sans`'s form.

    Lines before the ``X509v3 Subject Alternative Name`` header are ignored (the caller may print other facts
    first); no header gives ``[]``. An entry that does not parse is kept as printed, so it never equals an
    expected name (the certificate is then issued again rather than the run failing).
    """
    if not isinstance(text, str):
        raise AnsibleFilterError(f"tls_sans_from_openssl: expected openssl's text output, got {text!r}")
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if "Subject Alternative Name" in line:
            body = [ln for ln in lines[index + 1 :] if ln[:1].isspace()]
            break
    else:
        return []
    found = set()
    for entry in (e.strip() for ln in body for e in ln.split(",")):
        if not entry:
            continue
        try:
            found.add(_normalise(entry))
        except AnsibleFilterError:
            found.add(entry)
    return sorted(found)


class FilterModule:
    """Ansible filter entry point."""

    def filters(self) -> dict[str, Any]:
        return {"tls_sans": tls_sans, "tls_sans_from_openssl": tls_sans_from_openssl}
