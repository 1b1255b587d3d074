"""Capacity arithmetic the preflights check (issue #25): the app's database connections at peak against PostgreSQL's
connection slots, and the app's process counts (one rule for the systemd units and the check).

- ``app_api_workers`` / ``app_celery_processes``: uvicorn workers and Celery prefork children of an app host from
  ``app_workers`` / ``app_celery_concurrency`` (0 = automatic, from the host's vCPUs).
- ``pg_connection_slots``: connections ordinary roles may open: ``max_connections`` minus
  ``superuser_reserved_connections`` and ``reserved_connections`` (PostgreSQL 16+). Since PostgreSQL 12, WAL sender
  (replication, pg_basebackup) connections have their own ``max_wal_senders`` slots and take none of these.
  Sources: PostgreSQL documentation, "20.3. Connections and Authentication" (max_connections,
  superuser_reserved_connections, reserved_connections) and "20.6. Replication" (max_wal_senders).
- ``app_db_peak``: the most connections the app's processes may hold at once on the database, every app host's
  pools full, plus the other clients the operator lists.

All logic lives in plain, typed functions; ``FilterModule`` only maps the public names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - exercised only when ansible is absent

    class AnsibleFilterError(ValueError):  # type: ignore[no-redef]
        """Stand-in used when ansible-core is not importable."""


# The automatic API worker count: 2 per vCPU plus one (uvicorn's and gunicorn's usual rule), at most this many.
AUTO_API_WORKERS_MAX = 9
# PostgreSQL's defaults (postgresql.conf.sample): what a server runs with when the inventory sets nothing.
PG_DEFAULT_SUPERUSER_RESERVED = 3
PG_DEFAULT_RESERVED = 0
# Names of the per-host settings ``app_db_peak`` reads from each app host's variables (else from ``defaults``).
HOST_SETTINGS = (
    "app_workers",
    "app_celery_concurrency",
    "app_database_pool_size",
    "app_database_max_overflow",
    "app_celery_database_connections",
)


def _count(value: Any, what: str, minimum: int = 0) -> int:
    """``value`` as an int of at least ``minimum``; AnsibleFilterError naming ``what`` otherwise (bools refused)."""
    if isinstance(value, bool) or not re.fullmatch(r"-?[0-9]+", str(value).strip()):
        raise AnsibleFilterError(f"{what} must be a whole number (got {value!r})")
    number = int(str(value).strip())
    if number < minimum:
        raise AnsibleFilterError(f"{what} must be at least {minimum} (got {number})")
    return number


def app_api_workers(app_workers: Any, cpus: Any) -> int:
    """uvicorn worker processes of an app host.

    :param app_workers: ``app_workers`` (int >= 0; 0 = automatic).
    :param cpus: the host's vCPUs (int >= 1), used when ``app_workers`` is 0.
    :returns: ``app_workers`` when above 0, else ``min(2 * cpus + 1, AUTO_API_WORKERS_MAX)`` (processes).
    :raises AnsibleFilterError: a value that is not a whole number, ``app_workers`` below 0 or ``cpus`` below 1.
    """
    workers = _count(app_workers, "app_workers")
    return workers if workers > 0 else min(2 * _count(cpus, "the vCPU count", 1) + 1, AUTO_API_WORKERS_MAX)


def app_celery_processes(app_celery_concurrency: Any, cpus: Any) -> int:
    """Celery prefork children of an app host.

    :param app_celery_concurrency: ``app_celery_concurrency`` (int >= 0; 0 = automatic).
    :param cpus: the host's vCPUs (int >= 1), used when the concurrency is 0.
    :returns: the concurrency when above 0, else ``cpus`` (processes).
    :raises AnsibleFilterError: a value that is not a whole number, the concurrency below 0 or ``cpus`` below 1.
    """
    concurrency = _count(app_celery_concurrency, "app_celery_concurrency")
    return concurrency if concurrency > 0 else _count(cpus, "the vCPU count", 1)


def pg_connection_slots(
    max_connections: Any,
    superuser_reserved: Any = PG_DEFAULT_SUPERUSER_RESERVED,
    reserved: Any = PG_DEFAULT_RESERVED,
    host: str = "the database",
) -> int:
    """Connections roles without SUPERUSER (or pg_use_reserved_connections) may open on a PostgreSQL server.

    Every backend but WAL senders takes one of ``max_connections`` slots, superusers' included; once fewer than
    ``superuser_reserved + reserved`` are free, only those roles may connect.

    :param max_connections: the server's ``max_connections`` (``postgres_max_connections``; int >= 1).
    :param superuser_reserved: ``superuser_reserved_connections`` (int >= 0; PostgreSQL's default 3).
    :param reserved: ``reserved_connections`` (int >= 0; PostgreSQL 16+, default 0).
    :param host: the server, named in error messages.
    :returns: ``max_connections - superuser_reserved - reserved`` (connections).
    :raises AnsibleFilterError: a value that is not a whole number, or nothing left for ordinary roles (PostgreSQL
        itself refuses to start when the reserved slots reach max_connections).
    """
    total = _count(max_connections, f"postgres_max_connections of {host}", 1)
    superuser = _count(superuser_reserved, f"superuser_reserved_connections of {host}")
    others = _count(reserved, f"reserved_connections of {host}")
    if superuser + others >= total:
        raise AnsibleFilterError(
            f"superuser_reserved_connections ({superuser}) + reserved_connections ({others}) of {host} must be below "
            f"postgres_max_connections ({total})"
        )
    return total - superuser - others


def _serial_hosts(serial: Any, hosts: int) -> int:
    """How many hosts one batch of a play with ``serial`` holds (int, "N%" or a list of them: the largest)."""
    if isinstance(serial, (list, tuple)):
        return max((_serial_hosts(item, hosts) for item in serial), default=hosts)
    text = str(serial).strip()
    if isinstance(serial, bool) or not re.fullmatch(r"[0-9]+%?", text):
        raise AnsibleFilterError(f"app_serial must be a number of hosts or a percentage (got {serial!r})")
    # A percentage rounds down (at least one host); serial 0 means the whole play at once.
    size = max(1, math.floor(hosts * int(text[:-1]) / 100)) if text.endswith("%") else int(text) or hosts
    return max(1, min(size, hosts))


def _host_value(hostvars: Mapping[str, Any], host: str, name: str, defaults: Mapping[str, Any]) -> Any:
    own = hostvars.get(host, {}) if hasattr(hostvars, "get") else {}
    if name in own and own[name] is not None:
        return own[name]
    if name not in defaults:
        raise AnsibleFilterError(f"app_db_peak: no value of {name} for {host} and no default given")
    return defaults[name]


def _host_cpus(hostvars: Mapping[str, Any], host: str, defaults: Mapping[str, Any]) -> Any:
    facts = (hostvars.get(host, {}) if hasattr(hostvars, "get") else {}).get("ansible_facts") or {}
    return facts.get("processor_vcpus") or facts.get("processor_nproc") or defaults.get("cpus", 1)


def app_db_peak(
    app_hosts: list[str],
    hostvars: Mapping[str, Any],
    defaults: Mapping[str, Any],
    others: Mapping[str, Any] | None = None,
    serial: Any = 1,
) -> dict[str, Any]:
    """The most connections the app may hold at once on its PostgreSQL server.

    Per app host: API workers x (pool size + max overflow), each worker's SQLAlchemy pool full, plus Celery children
    x ``app_celery_database_connections`` (a prefork child runs one task at a time, and a task of the reference app
    holds one session). Across hosts: their sum, plus the candidate releases a deployment starts beside the serving
    one (one API worker each, on as many hosts as one ``serial`` batch holds), plus one for the daily retention job
    (on the beat host), plus ``others``.

    :param app_hosts: inventory names of the app hosts (``groups['app']``); empty counts nothing for the app.
    :param hostvars: Ansible's ``hostvars`` (or any mapping host -> variables): each host's own values of
        ``HOST_SETTINGS`` and its ``ansible_facts.processor_vcpus`` win over ``defaults``.
    :param defaults: values of ``HOST_SETTINGS`` for hosts that set none (the role's defaults, as the running host
        sees them) and ``cpus``, the vCPUs assumed for a host whose facts were not gathered.
    :param others: connections of other clients at the same time, by name (the exporter, the backup, Patroni,
        operators): ``app_database_other_connections``; ints >= 0.
    :param serial: the app play's ``serial`` (``app_serial``): int, "N%" or a list of them.
    :returns: ``{"total": int, "api": int, "celery": int, "candidates": int, "retention": int, "others": int,
        "hosts": {host: {"api_workers", "celery_processes", "per_api_worker", "connections"}}, "summary": str}``,
        all counts in connections except the process counts; ``summary`` spells the sum out for a failure message.
    :raises AnsibleFilterError: a setting that is not a whole number or out of range (pool size below 1, others
        below 0), naming the variable and the host.
    """
    hosts: dict[str, dict[str, int]] = {}
    for host in app_hosts:
        value = {name: _host_value(hostvars, host, name, defaults) for name in HOST_SETTINGS}
        cpus = _host_cpus(hostvars, host, defaults)
        api_workers = app_api_workers(value["app_workers"], cpus)
        celery = app_celery_processes(value["app_celery_concurrency"], cpus)
        pool = _count(value["app_database_pool_size"], f"app_database_pool_size of {host}", 1)
        overflow = _count(value["app_database_max_overflow"], f"app_database_max_overflow of {host}")
        per_task = _count(value["app_celery_database_connections"], f"app_celery_database_connections of {host}")
        hosts[host] = {
            "api_workers": api_workers,
            "celery_processes": celery,
            "per_api_worker": pool + overflow,
            "per_celery_process": per_task,
            "connections": api_workers * (pool + overflow) + celery * per_task,
        }
    api = sum(h["api_workers"] * h["per_api_worker"] for h in hosts.values())
    celery = sum(h["celery_processes"] * h["per_celery_process"] for h in hosts.values())
    batch = _serial_hosts(serial, len(hosts)) if hosts else 0
    candidates = batch * max((h["per_api_worker"] for h in hosts.values()), default=0)
    retention = 1 if hosts else 0
    other = {name: _count(count, f"app_database_other_connections.{name}") for name, count in (others or {}).items()}
    total = api + celery + candidates + retention + sum(other.values())
    per_host = ", ".join(
        f"{name} {h['api_workers']} x {h['per_api_worker']} + {h['celery_processes']} x {h['per_celery_process']}"
        for name, h in hosts.items()
    )
    summary = (
        f"API workers x (app_database_pool_size + app_database_max_overflow) + Celery processes x "
        f"app_celery_database_connections per host: {per_host or 'no app host'} = {api + celery}; "
        f"candidate releases {batch} x 1 worker = {candidates}; retention job {retention}; "
        f"app_database_other_connections {sum(other.values())}"
        + (f" ({', '.join(f'{k} {v}' for k, v in other.items())})" if other else "")
        + f"; total {total}"
    )
    return {
        "total": total,
        "api": api,
        "celery": celery,
        "candidates": candidates,
        "retention": retention,
        "others": sum(other.values()),
        "hosts": hosts,
        "summary": summary,
    }


class FilterModule:
    """Ansible filter entry point."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "app_api_workers": app_api_workers,
            "app_celery_processes": app_celery_processes,
            "pg_connection_slots": pg_connection_slots,
            "app_db_peak": app_db_peak,
        }
