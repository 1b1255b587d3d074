"""Which of a role's Debian packages still need apt, read from one ``dpkg-query`` call.

Every role installs its packages with ``ansible.builtin.apt`` (``state: present``). On a host where they are all
installed that module still opens apt's cache and runs ``apt-mark manual`` on the list (ansible-core 2.21,
``modules/apt.py``, ``install()`` then ``mark_installed()``): about 0.6 s of CPU per call and host on the lab. The roles
ask dpkg first (about 10 ms) and call apt only when this filter returns a package, so a re-run skips apt while a
missing, half-installed or removed package still goes through it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - exercised only when ansible is absent

    class AnsibleFilterError(ValueError):  # type: ignore[no-redef]
        """Stand-in used when ansible-core is not importable."""


def dpkg_missing(packages: Iterable[Any], query_output: Any) -> list[str]:
    """The entries of ``packages`` that dpkg does not report as installed.

    ``query_output`` is the standard output of ``dpkg-query --show --showformat='${db:Status-Abbrev} ${Package}\\n'``
    run over the same names. A line's first three characters are dpkg's status abbreviation (dpkg-query(1)): wanted
    state, current state, error flag. A package counts as installed when its current state is ``i`` (installed) and its
    error flag is blank, whatever the wanted state (``ii``, or ``hi`` for a held package). Half-installed, unpacked,
    config-files-only and unknown packages, and names dpkg-query did not print (never installed), are missing.

    An entry that is not a plain package name (a version such as ``nginx=1.26*``, a comparison such as ``foo>=2``, an
    apt wildcard) is always returned: apt decides about it, as it did before this filter. An architecture suffix
    (``libc6:amd64``) is compared without it, as ``${Package}`` prints the name alone.

    :param packages: the package names or apt specifications the role passes to ``ansible.builtin.apt``.
    :param query_output: dpkg-query's standard output (a string; empty when no name matched).
    :returns: the entries of ``packages`` apt must still see, in their order; empty when all are installed.
    :raises AnsibleFilterError: when ``packages`` is a string or holds a non-string, or ``query_output`` is no string.
    Sources: dpkg-query(1) (``--show``, ``db:Status-Abbrev``); ansible-core's ``modules/apt.py``.
    """
    if isinstance(packages, (str, bytes)) or not isinstance(packages, Iterable):
        raise AnsibleFilterError(f"dpkg_missing: packages must be a list of package names, got {packages!r}")
    if not isinstance(query_output, str):
        raise AnsibleFilterError(f"dpkg_missing: the query output must be a string, got {type(query_output).__name__}")
    installed = set()
    for line in query_output.splitlines():
        # "ii  chrony": the abbreviation's blank error flag, then the separator; "iHR foo" carries an error flag.
        status, name = line[:3], line[3:].strip()
        if status[1:2] == "i" and status[2:3] in ("", " "):
            installed.add(name)
    missing = []
    for entry in packages:
        if not isinstance(entry, str) or not entry:
            raise AnsibleFilterError(f"dpkg_missing: every package must be a non-empty string, got {entry!r}")
        name = entry.split(":", 1)[0]
        plain = name.replace("-", "").replace(".", "").replace("+", "").isalnum()
        if not plain or name not in installed:
            missing.append(entry)
    return missing


class FilterModule:
    """Ansible entry point for the filters of this file."""

    def filters(self) -> dict[str, Any]:
        return {"dpkg_missing": dpkg_missing}
