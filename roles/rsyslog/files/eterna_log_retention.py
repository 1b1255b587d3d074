#!/usr/bin/python3
"""Retention and integrity of the central log store: the compliance archive on disk and the search indices.

Run by the ``eterna-log-retention`` timer on the ``logging`` hosts (``run``), and by the rsyslog role at deploy
time (``setup``). Reads its settings from a JSON file (``--config``, default /etc/eterna/log-retention.json, 0600
root: it holds the store's password):

    {"archive_dir": "/srv/log-archive", "classes": {"access": 14, "application": 30, ...},
     "seal_after_days": 2, "index_prefix": "eterna-logs", "ilm": "auto",
     "store": {"url": "https://store:9200", "user": "...", "password": "...", "ca_file": "..."} or null}

Archive layout (written by rsyslog): ``<archive_dir>/<class>/<host>/<YYYY-MM-DD>.jsonl``, one JSON event a line.

``run``:
  1. seals every day file older than ``seal_after_days``: its SHA-256 goes into ``SHA256SUMS`` beside it
     (``sha256sum -c SHA256SUMS`` verifies a host's days); a sealed file whose checksum changed is reported and
     the command exits 2 (tampering, or events that arrived after the seal);
  2. deletes day files older than their class's retention (the file's date, not its mtime), drops them from the
     manifest and records each deletion in ``<archive_dir>/RETENTION.log``;
  3. deletes indices ``<prefix>-<class>-YYYY.MM.DD`` older than the class's retention over the plain REST API
     (``_cat/indices``, ``DELETE /<index>``), so retention holds on stores without ILM/ISM.

``setup``: an index template per class (``<prefix>-<class>-*``: field types of the event document) and, when the
store has ILM (``GET /_ilm/status`` answers 200, Elasticsearch), a policy per class deleting indices after its
retention. Prints ``{"changed": true|false}``; an unchanged template or policy (same ``_meta.eterna_hash``) is
not written again.

Every change is printed as one JSON line. Exit status: 0 ok, 1 an error (store unreachable, bad config), 2 a
sealed file's checksum changed.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import re
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")
MANIFEST = "SHA256SUMS"


def index_date(name: str, prefix: str, classes: dict[str, int]) -> tuple[str, dt.date] | None:
    """The data class and day of an index named ``<prefix>-<class>-YYYY.MM.DD``, or None for any other name.

    :param name: index name
    :param prefix: the role's index prefix (rsyslog_index_prefix)
    :param classes: data class -> retention days; a class not in it is not ours
    """
    match = re.fullmatch(re.escape(prefix) + r"-([a-z]+)-(\d{4})\.(\d{2})\.(\d{2})", name)
    if not match or match.group(1) not in classes:
        return None
    try:
        return match.group(1), dt.date(int(match.group(2)), int(match.group(3)), int(match.group(4)))
    except ValueError:
        return None


def expired(day: dt.date, days: int, today: dt.date) -> bool:
    """Whether data of ``day`` is past a retention of ``days`` days on ``today`` (kept: the last ``days`` days)."""
    return day < today - dt.timedelta(days=days)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(path: Path) -> dict[str, str]:
    """File name -> SHA-256 from a ``sha256sum``-format manifest (missing file: empty)."""
    if not path.exists():
        return {}
    entries = {}
    for line in path.read_text().splitlines():
        digest, _, name = line.partition("  ")
        if digest and name:
            entries[name] = digest
    return entries


def write_manifest(path: Path, entries: dict[str, str]) -> None:
    """Write ``entries`` in ``sha256sum`` format, sorted by name, atomically (rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"{digest}  {name}\n" for name, digest in sorted(entries.items())))
    tmp.chmod(0o640)
    tmp.replace(path)


def archive_pass(
    archive: Path, classes: dict[str, int], today: dt.date, seal_after: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """Seal and expire the archive's day files. Returns (changes, problems); see the module docstring."""
    changes: list[dict[str, Any]] = []
    problems: list[str] = []
    for data_class, days in sorted(classes.items()):
        class_dir = archive / data_class
        if not class_dir.is_dir():
            continue
        for host_dir in sorted(p for p in class_dir.iterdir() if p.is_dir()):
            manifest_path = host_dir / MANIFEST
            manifest = read_manifest(manifest_path)
            before = dict(manifest)
            for path in sorted(host_dir.iterdir()):
                match = DAY_FILE.match(path.name)
                if not match:
                    continue
                try:
                    day = dt.date.fromisoformat(match.group(1))
                except ValueError:
                    continue
                if expired(day, days, today):
                    path.unlink()
                    manifest.pop(path.name, None)
                    changes.append(
                        {"action": "delete_file", "class": data_class, "host": host_dir.name, "file": str(path)}
                    )
                    continue
                if day < today - dt.timedelta(days=seal_after):
                    digest = sha256_file(path)
                    if path.name not in manifest:
                        manifest[path.name] = digest
                        changes.append({"action": "seal", "file": str(path), "sha256": digest})
                    elif manifest[path.name] != digest:
                        problems.append(f"{path}: sha256 {digest} differs from the sealed {manifest[path.name]}")
            for name in list(manifest):
                if not (host_dir / name).exists():
                    manifest.pop(name)
            if manifest != before:
                write_manifest(manifest_path, manifest)
    return changes, problems


class Store:
    """A minimal client of the Elasticsearch/OpenSearch REST API (standard library only)."""

    def __init__(self, url: str, user: str = "", password: str = "", ca_file: str = "", timeout: float = 30.0):
        if not re.match(r"^https?://", url):
            raise ValueError(f"store.url: an http(s) URL is required, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=ca_file or None)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if user:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send a request; returns (HTTP status, decoded JSON body or None). Raises OSError when unreachable."""
        data = None if body is None else json.dumps(body).encode()
        # noqa S310: the scheme is checked (http/https only) in __init__.
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=self.headers)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as resp:  # noqa: S310
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None


def index_pass(store: Store, prefix: str, classes: dict[str, int], today: dt.date) -> list[dict[str, Any]]:
    """Delete this prefix's indices older than their class's retention. Raises RuntimeError on an API error."""
    status, listing = store.request("GET", f"/_cat/indices/{prefix}-*?format=json&h=index")
    if status == 404:
        return []
    if status != 200 or not isinstance(listing, list):
        raise RuntimeError(f"GET _cat/indices answered {status}")
    changes = []
    for row in sorted(listing, key=lambda r: r.get("index", "")):
        parsed = index_date(row.get("index", ""), prefix, classes)
        if parsed and expired(parsed[1], classes[parsed[0]], today):
            status, _ = store.request("DELETE", "/" + row["index"])
            if status not in (200, 404):
                raise RuntimeError(f"DELETE {row['index']} answered {status}")
            changes.append({"action": "delete_index", "class": parsed[0], "index": row["index"]})
    return changes


def index_template(prefix: str, data_class: str) -> dict[str, Any]:
    """The index template of one data class: the event document's field types (the rest is mapped dynamically)."""
    keyword = {"type": "keyword", "ignore_above": 1024}
    return {
        "index_patterns": [f"{prefix}-{data_class}-*"],
        "priority": 200,
        "template": {
            "settings": {"index": {"number_of_shards": 1}},
            "mappings": {
                "properties": {
                    "@timestamp": {"type": "date"},
                    "message": {"type": "text"},
                    "host": {"properties": {"name": keyword}},
                    "process": {"properties": {"name": keyword, "pid": keyword}},
                    "log": {"properties": {"level": keyword, "syslog": {"properties": {"facility": keyword}}}},
                    "event": {"properties": {"id": keyword, "dataset": keyword}},
                    "service": {"properties": {"name": keyword}},
                    "labels": {"properties": {"environment": keyword}},
                }
            },
        },
    }


def ilm_policy(days: int) -> dict[str, Any]:
    """An ILM policy deleting an index ``days`` days after its creation."""
    delete = {"min_age": f"{days}d", "actions": {"delete": {}}}
    return {"policy": {"phases": {"hot": {"actions": {}}, "delete": delete}}}


def with_hash(body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    """``body`` with ``_meta.eterna_hash`` (SHA-256 of its canonical JSON) set at the top or under ``key``."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    target = body[key] if key else body
    target["_meta"] = {"eterna_hash": digest, "managed_by": "eterna rsyslog role"}
    return body


def setup(store: Store, prefix: str, classes: dict[str, int], ilm: str) -> list[dict[str, Any]]:
    """Write the index templates and (where the store has ILM) the ILM policies that differ. Returns the changes."""
    changes = []
    has_ilm = ilm == "on" or (ilm == "auto" and store.request("GET", "/_ilm/status")[0] == 200)
    for data_class, days in sorted(classes.items()):
        if has_ilm:
            name = f"{prefix}-{data_class}"
            policy = with_hash(ilm_policy(days), "policy")
            status, current = store.request("GET", f"/_ilm/policy/{name}")
            current_hash = ((current or {}).get(name, {}).get("policy", {}).get("_meta") or {}).get("eterna_hash")
            if current_hash != policy["policy"]["_meta"]["eterna_hash"]:
                status, _ = store.request("PUT", f"/_ilm/policy/{name}", policy)
                if status != 200:
                    raise RuntimeError(f"PUT _ilm/policy/{name} answered {status}")
                changes.append({"action": "ilm_policy", "name": name})
        template = index_template(prefix, data_class)
        if has_ilm:
            template["template"]["settings"]["index"]["lifecycle"] = {"name": f"{prefix}-{data_class}"}
        template = with_hash(template)
        name = f"{prefix}-{data_class}"
        status, current = store.request("GET", f"/_index_template/{name}")
        found = [t for t in (current or {}).get("index_templates", []) if t.get("name") == name]
        current_hash = ((found[0]["index_template"].get("_meta") or {}) if found else {}).get("eterna_hash")
        if current_hash != template["_meta"]["eterna_hash"]:
            status, _ = store.request("PUT", f"/_index_template/{name}", template)
            if status != 200:
                raise RuntimeError(f"PUT _index_template/{name} answered {status}")
            changes.append({"action": "index_template", "name": name})
    return changes


def load_config(path: Path) -> dict[str, Any]:
    """Read and check the settings file. Raises ValueError naming the bad setting."""
    config = json.loads(path.read_text())
    classes = config.get("classes")
    if not isinstance(classes, dict) or not classes:
        raise ValueError("classes: a mapping of data class to retention days is required")
    for name, days in classes.items():
        if not re.fullmatch(r"[a-z]+", name) or not isinstance(days, int) or days < 1:
            raise ValueError(f"classes.{name}: a lowercase name and a whole number of days >= 1 are required")
    return config


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["run", "setup"], nargs="?", default="run")
    parser.add_argument("--config", default="/etc/eterna/log-retention.json")
    parser.add_argument("--today", help="YYYY-MM-DD instead of the current UTC date (tests)")
    args = parser.parse_args(argv)
    try:
        config = load_config(Path(args.config))
    except (OSError, ValueError) as err:
        print(f"eterna-log-retention: {args.config}: {err}", file=sys.stderr)
        return 1
    classes = config["classes"]
    prefix = config.get("index_prefix", "eterna-logs")
    today = dt.date.fromisoformat(args.today) if args.today else dt.datetime.now(dt.UTC).date()
    store_cfg = config.get("store") or None
    status = 0
    changes: list[dict[str, Any]] = []
    try:
        store = None
        if store_cfg:
            store = Store(
                store_cfg["url"], store_cfg.get("user", ""), store_cfg.get("password", ""), store_cfg.get("ca_file", "")
            )
        if args.command == "setup":
            changes = setup(store, prefix, classes, config.get("ilm", "auto")) if store else []
            print(json.dumps({"changed": bool(changes), "changes": changes}))
            return 0
        archive_changes, problems = archive_pass(
            Path(config.get("archive_dir", "/srv/log-archive")), classes, today, int(config.get("seal_after_days", 2))
        )
        changes += archive_changes
        if archive_changes:
            with (Path(config.get("archive_dir", "/srv/log-archive")) / "RETENTION.log").open("a") as log:
                for change in archive_changes:
                    if change["action"] == "delete_file":
                        log.write(json.dumps({"date": today.isoformat(), **change}) + "\n")
        for problem in problems:
            print(f"eterna-log-retention: {problem}", file=sys.stderr)
            status = 2
        if store:
            changes += index_pass(store, prefix, classes, today)
    except (OSError, RuntimeError, ValueError) as err:
        print(f"eterna-log-retention: {err}", file=sys.stderr)
        return 1
    for change in changes:
        print(json.dumps(change))
    return status


if __name__ == "__main__":
    sys.exit(main())
