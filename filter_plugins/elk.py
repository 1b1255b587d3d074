"""Data of the Elasticsearch and Kibana roles, built once in Python: per data class, the ILM policy, the index template
and Kibana's saved objects (a data view, a saved search and a dashboard).

The roles render these with ``to_json``/``to_nice_json``; tests/unit/test_elk.py checks them. The ``_meta.eterna_hash``
each object carries is the SHA-256 of its canonical JSON without that field, so a role writes an object only when it
changed (Elasticsearch keeps ``_meta`` of policies and templates as given).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - unit tests import this without Ansible installed in some tools
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

_CLASS = re.compile(r"^[a-z]+$")
_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# Columns of each class's saved search (ECS fields written by the rsyslog role and Logstash).
_COLUMNS = {
    "access": ["host.name", "json.tenant", "json.status", "json.uri", "json.request_id"],
    "application": ["host.name", "process.name", "log.level", "json.tenant_id", "message"],
    "audit": ["host.name", "process.name", "json.tenant_id", "message"],
    "security": ["host.name", "process.name", "auth.user", "auth.source", "message"],
}
_DEFAULT_COLUMNS = ["host.name", "process.name", "log.level", "message"]


def _fail(func: str, message: str) -> AnsibleFilterError:
    return AnsibleFilterError(f"{func}: {message}")


def _classes(func: str, classes: Any, prefix: Any) -> dict[str, int]:
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise _fail(func, f"prefix must be lowercase letters, digits, - and _, got {prefix!r}")
    if not isinstance(classes, Mapping) or not classes:
        raise _fail(func, "data classes must be a non-empty mapping of class name to retention days")
    out = {}
    for name, days in classes.items():
        try:
            number = int(days)
        except (TypeError, ValueError):
            number = 0
        if not isinstance(name, str) or not _CLASS.match(name) or number < 1:
            raise _fail(func, f"class {name!r}: a lowercase name and whole days >= 1 are required, got {days!r}")
        out[name] = number
    return out


def with_hash(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with ``_meta.eterna_hash``: the SHA-256 of its canonical JSON (sorted keys) without ``_meta``.

    :param body: a JSON-compatible mapping
    :returns: a new mapping; ``_meta`` also names the role (``managed_by``)
    """
    plain = {k: v for k, v in body.items() if k != "_meta"}
    digest = hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()
    return plain | {"_meta": {"eterna_hash": digest, "managed_by": "eterna elasticsearch role"}}


def elk_ilm_policies(classes: Mapping[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    """Policy name -> ILM policy body (``PUT _ilm/policy/<name>``) per data class.

    Each deletes an index the class's retention in days after its creation (``min_age``; the indices are daily, so
    no rollover). Source: Elasticsearch's ILM policy API (``phases.delete.min_age``, ``_meta``).

    :param classes: data class -> retention days (int >= 1)
    :param prefix: index prefix (``eterna-logs``)
    :raises AnsibleFilterError: a bad class name, day count or prefix
    """
    checked = _classes("elk_ilm_policies", classes, prefix)
    return {
        f"{prefix}-{name}": {
            "policy": with_hash(
                {"phases": {"hot": {"actions": {}}, "delete": {"min_age": f"{days}d", "actions": {"delete": {}}}}}
            )
        }
        for name, days in sorted(checked.items())
    }


def elk_index_templates(
    classes: Mapping[str, Any], prefix: str, replicas: int, mappings: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Template name -> composable index template (``PUT _index_template/<name>``) per data class.

    Pattern ``<prefix>-<class>-*``, one primary shard (a day of one class is small), ``replicas`` replicas,
    ``best_compression``, the class's ILM policy and the given field mappings.

    :param classes: data class -> retention days
    :param prefix: index prefix
    :param replicas: number of replicas (0 on a single node)
    :param mappings: the ``mappings`` object of the log documents
    :raises AnsibleFilterError: bad classes or prefix, negative replicas, mappings that are not a mapping
    """
    checked = _classes("elk_index_templates", classes, prefix)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise _fail("elk_index_templates", f"replicas must be a whole number >= 0, got {replicas!r}")
    if not isinstance(mappings, Mapping):
        raise _fail("elk_index_templates", "mappings must be a mapping")
    return {
        f"{prefix}-{name}": with_hash(
            {
                "index_patterns": [f"{prefix}-{name}-*"],
                "priority": 200,
                "template": {
                    "settings": {
                        "index": {
                            "number_of_shards": 1,
                            "number_of_replicas": replicas,
                            "codec": "best_compression",
                            "lifecycle": {"name": f"{prefix}-{name}"},
                        }
                    },
                    "mappings": json.loads(json.dumps(dict(mappings))),
                },
            }
        )
        for name in sorted(checked)
    }


def kibana_saved_objects(classes: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Kibana saved objects per data class, for ``POST /api/saved_objects/_import`` (one JSON object a line).

    Per class: a data view ``<prefix>-<class>`` (pattern ``<prefix>-<class>-*``, time field ``@timestamp``), a saved
    search of the class's columns, newest first, and a dashboard ``Eterna logs: <class>`` showing that search.
    Ids are fixed, so an import with ``overwrite=true`` replaces the role's objects and nothing else.
    Source: Kibana's saved objects import API and its ``index-pattern``, ``search`` and ``dashboard`` types.

    :param classes: data class -> retention days (only the names are used)
    :param prefix: index prefix
    :raises AnsibleFilterError: bad classes or prefix
    """
    checked = _classes("kibana_saved_objects", classes, prefix)
    objects: list[dict[str, Any]] = []
    for name in sorted(checked):
        view_id, search_id, dashboard_id = f"{prefix}-{name}", f"{prefix}-{name}-search", f"{prefix}-{name}-dashboard"
        source = {
            "query": {"query": "", "language": "kuery"},
            "filter": [],
            "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index",
        }
        panels = [
            {
                "type": "search",
                "panelIndex": "1",
                "gridData": {"x": 0, "y": 0, "w": 48, "h": 30, "i": "1"},
                "embeddableConfig": {},
                "panelRefName": "panel_1",
            }
        ]
        objects += [
            {
                "type": "index-pattern",
                "id": view_id,
                "attributes": {
                    "title": f"{prefix}-{name}-*",
                    "name": f"Eterna logs: {name}",
                    "timeFieldName": "@timestamp",
                },
                "references": [],
            },
            {
                "type": "search",
                "id": search_id,
                "attributes": {
                    "title": f"Eterna logs: {name}",
                    "description": f"Events of the {name} data class, newest first",
                    "columns": _COLUMNS.get(name, _DEFAULT_COLUMNS),
                    "sort": [["@timestamp", "desc"]],
                    "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source)},
                },
                "references": [
                    {"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern", "id": view_id}
                ],
            },
            {
                "type": "dashboard",
                "id": dashboard_id,
                "attributes": {
                    "title": f"Eterna logs: {name}",
                    "description": f"The {name} logs of every host (data view {prefix}-{name}-*)",
                    "panelsJSON": json.dumps(panels),
                    "optionsJSON": json.dumps({"useMargins": True, "hidePanelTitles": False}),
                    "timeRestore": True,
                    "timeFrom": "now-24h",
                    "timeTo": "now",
                    "kibanaSavedObjectMeta": {
                        "searchSourceJSON": json.dumps({"query": {"query": "", "language": "kuery"}, "filter": []})
                    },
                },
                "references": [{"name": "panel_1", "type": "search", "id": search_id}],
            },
        ]
    return objects


def to_ndjson(objects: list[Any]) -> str:
    """One compact JSON document a line, each line ending with a newline (the bulk and import formats).

    :raises AnsibleFilterError: a value that is not JSON-serialisable
    """
    try:
        return "".join(json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n" for obj in objects)
    except (TypeError, ValueError) as err:
        raise _fail("to_ndjson", str(err)) from err


class FilterModule:
    """Filters of the Elasticsearch and Kibana roles."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "elk_ilm_policies": elk_ilm_policies,
            "elk_index_templates": elk_index_templates,
            "kibana_saved_objects": kibana_saved_objects,
            "to_ndjson": to_ndjson,
        }
