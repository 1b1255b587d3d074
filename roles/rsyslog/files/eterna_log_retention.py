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

``erase-tenant --tenant ID`` (GDPR erasure, issue #20; the key of the pseudonyms on standard input): every archive
line naming the tenant (its id as a whole word in any string of the document: ``json.tenant``, ``json.tenant_id``,
the message...) gets the tenant's keyed pseudonym instead (``tenant-`` + 16 hex of HMAC-SHA256(key, id): the same
tenant gets the same pseudonym on every host, nobody without the key can tell which tenant it was); a sealed day file
is re-sealed in ``SHA256SUMS`` after its checksum was verified (a file that no longer matches its seal is left alone
and reported: erasure never blesses tampering), and each rewrite is recorded in ``RETENTION.log`` with the checksums
before and after and the pseudonym, never the id. Then the store's documents naming the tenant are deleted
(``_search`` for the id, every hit checked for the whole word, ``_delete_by_query`` on those ids). Prints one JSON
summary.

Every change is printed as one JSON line. Exit status: 0 ok, 1 an error (store unreachable, bad config), 2 a
sealed file's checksum changed.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")
# A tenant id as the app and the edge write it (playbooks/tenant_erase.yml checks the same form).
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
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
                    # The parsed JSON lines' tenant and request id (nginx: tenant; the app: tenant_id) as exact values.
                    "json": {"properties": {"tenant": keyword, "tenant_id": keyword, "request_id": keyword}},
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


def tenant_pattern(tenant: str) -> re.Pattern[str]:
    """The tenant id as a whole word: not inside a longer id (``demo`` does not match ``demo-b`` or ``demo2``).

    :param tenant: tenant id (``^[a-z0-9][a-z0-9-]{0,62}$``)
    :raises ValueError: for any other string
    """
    if not isinstance(tenant, str) or not TENANT_ID.match(tenant):
        raise ValueError(f"tenant: a tenant id (lowercase letters, digits and -, 1-63) is required, got {tenant!r}")
    return re.compile(r"(?<![A-Za-z0-9_-])" + re.escape(tenant) + r"(?![A-Za-z0-9_-])")


def pseudonym(tenant: str, key: bytes) -> str:
    """The tenant's keyed pseudonym: ``tenant-`` and the first 16 hex digits of HMAC-SHA256(key, tenant id).

    :param tenant: tenant id
    :param key: secret key (the rsyslog role derives it from the master key: ``logging/tenant_pseudonym``)
    :raises ValueError: an empty key (the pseudonym would be a plain hash anyone can recompute from the id)
    """
    if len(key) < 16:
        raise ValueError("the pseudonym key must have at least 16 bytes")
    return "tenant-" + hmac.new(key, tenant.encode(), hashlib.sha256).hexdigest()[:16]


def replace_in(value: Any, pattern: re.Pattern[str], replacement: str) -> tuple[Any, int]:
    """``value`` (a decoded JSON document) with every match of ``pattern`` in its strings and keys replaced.

    Returns (new value, number of replacements)."""
    if isinstance(value, str):
        return pattern.subn(replacement, value)
    if isinstance(value, list):
        items = [replace_in(item, pattern, replacement) for item in value]
        return [item for item, _ in items], sum(n for _, n in items)
    if isinstance(value, dict):
        out, total = {}, 0
        for key, item in value.items():
            new_key, n_key = pattern.subn(replacement, key)
            new_item, n_item = replace_in(item, pattern, replacement)
            out[new_key] = new_item
            total += n_key + n_item
        return out, total
    return value, 0


def rewrite_line(line: str, pattern: re.Pattern[str], replacement: str) -> tuple[str, bool]:
    """One archive line with the tenant replaced; (line, whether it changed). A line that is not JSON is treated as
    text (the id in an escaped string of a JSON line is found after decoding, e.g. behind ``\\n``)."""
    if not pattern.search(line) and "\\" not in line:
        return line, False
    try:
        document = json.loads(line)
    except ValueError:
        new, count = pattern.subn(replacement, line)
        return new, count > 0
    new_document, count = replace_in(document, pattern, replacement)
    if not count:
        return line, False
    return json.dumps(new_document, ensure_ascii=False, separators=(", ", ": ")), True


def rsyslog_pids() -> list[int]:
    """Process ids of running rsyslogd processes (from /proc; empty when none runs)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "rsyslogd":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def open_inodes(pids: list[int]) -> set[tuple[int, int]]:
    """(device, inode) of every file the processes hold open."""
    found = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            entries = list(fd_dir.iterdir())
        except OSError:
            continue
        for entry in entries:
            try:
                stat = entry.stat()
            except OSError:
                continue
            found.add((stat.st_dev, stat.st_ino))
    return found


def release_files(inodes: set[tuple[int, int]], timeout: float = 60.0) -> bool:
    """Make rsyslog close the given files (SIGHUP: omfile closes its files and reopens them by name on the next
    write), and wait until no rsyslogd holds any of them. True when released (or no rsyslogd runs)."""
    import signal  # noqa: PLC0415 - only this command signals
    import time  # noqa: PLC0415

    pids = rsyslog_pids()
    for pid in pids:
        os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while pids and open_inodes(pids) & inodes:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def erase_archive(
    archive: Path,
    classes: dict[str, int],
    tenant: str,
    key: bytes,
    today: dt.date,
    release: Any = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Replace the tenant by its pseudonym in every day file of the archive, re-sealing sealed files.

    Returns (changes, problems): one change per rewritten file (class, host, file, lines, checksums before and
    after, whether it was sealed); a problem per sealed file whose checksum no longer matched its seal (left
    untouched). Each change is appended to ``<archive>/RETENTION.log``. Files keep their owner and mode.

    rsyslog keeps running: each rewritten file replaces the old one by rename, then ``release`` makes rsyslog close
    the old files (as after logrotate), and the lines it appended to an old file in between are rewritten and
    appended to the new one, so nothing is lost.

    :param release: called with the replaced files' (device, inode) set; default ``release_files``
    :raises ValueError: a bad tenant id or key
    """
    release = release or release_files
    pattern = tenant_pattern(tenant)
    replacement = pseudonym(tenant, key)
    needle = tenant.encode()
    changes: list[dict[str, Any]] = []
    problems: list[str] = []
    pending = []  # (change, old file handle, bytes read, manifest path) of each replaced file

    def rewrite(data: bytes) -> tuple[bytes, int]:
        lines, count = [], 0
        for line in data.decode("utf-8", errors="surrogateescape").splitlines():
            new, changed = rewrite_line(line, pattern, replacement)
            lines.append(new)
            count += changed
        return "".join(line + "\n" for line in lines).encode("utf-8", errors="surrogateescape"), count

    for data_class in sorted(classes):
        class_dir = archive / data_class
        if not class_dir.is_dir():
            continue
        for host_dir in sorted(p for p in class_dir.iterdir() if p.is_dir()):
            manifest = read_manifest(host_dir / MANIFEST)
            for path in sorted(p for p in host_dir.iterdir() if DAY_FILE.match(p.name)):
                handle = path.open("rb")
                data = handle.read()
                # Only whole lines: a line rsyslog is writing right now is read with the tail below.
                data = data[: data.rfind(b"\n") + 1]
                if needle not in data:
                    handle.close()
                    continue
                before = hashlib.sha256(data).hexdigest()
                sealed = path.name in manifest
                if sealed and manifest[path.name] != before:
                    handle.close()
                    problems.append(
                        f"{path}: sha256 {before} differs from the sealed {manifest[path.name]}; not rewritten"
                    )
                    continue
                text, count = rewrite(data)
                if not count:
                    handle.close()
                    continue
                stat = os.fstat(handle.fileno())
                tmp = path.with_name(path.name + ".erase-tmp")
                tmp.write_bytes(text)
                os.chown(tmp, stat.st_uid, stat.st_gid)
                tmp.chmod(stat.st_mode & 0o7777)
                tmp.replace(path)
                change = {
                    "action": "pseudonymise",
                    "class": data_class,
                    "host": host_dir.name,
                    "file": str(path),
                    "lines": count,
                    "sha256_before": before,
                    "sha256_after": "",
                    "sealed": sealed,
                    "pseudonym": replacement,
                }
                pending.append((change, handle, len(data), host_dir / MANIFEST))
    if pending and not release({(os.fstat(h.fileno()).st_dev, os.fstat(h.fileno()).st_ino) for _, h, _, _ in pending}):
        problems.append("rsyslog did not release the replaced files within 60 s; lines written meanwhile may be lost")
    for change, handle, offset, manifest_path in pending:
        with handle:
            handle.seek(offset)
            tail, count = rewrite(handle.read())
        path = Path(change["file"])
        if tail.strip():
            with path.open("ab") as out:
                out.write(tail)
            change["lines"] += count
        change["sha256_after"] = sha256_file(path)
        if change["sealed"]:
            manifest = read_manifest(manifest_path)
            manifest[path.name] = change["sha256_after"]
            write_manifest(manifest_path, manifest)
        changes.append(change)
    if changes:
        with (archive / "RETENTION.log").open("a") as log:
            for change in changes:
                log.write(json.dumps({"date": today.isoformat(), "reason": "tenant erasure", **change}) + "\n")
    return changes, problems


def erase_index(store: Store, prefix: str, tenant: str, window: int = 10000) -> list[dict[str, Any]]:
    """Delete the documents of this prefix's indices that name the tenant (its id as a whole word in any field).

    The store is searched for the id as a phrase in every field; each hit's ``_source`` is checked for the whole
    word (an analysed ``demo-b`` also matches the phrase ``demo``), then the confirmed ids are deleted with
    ``_delete_by_query`` (an ``ids`` query) per index. Repeats while a pass deleted something and more hits than the
    search window remained. Returns one change per index with the count deleted.

    :raises RuntimeError: the store answered an error
    """
    pattern = tenant_pattern(tenant)
    query = {"query_string": {"query": json.dumps(tenant), "fields": ["*"]}}
    changes: dict[str, int] = {}
    while True:
        found: dict[str, list[str]] = {}
        total = 0
        for offset in range(0, window, 1000):
            status, answer = store.request(
                "POST",
                f"/{prefix}-*/_search?ignore_unavailable=true&allow_no_indices=true",
                {"query": query, "size": min(1000, window - offset), "from": offset},
            )
            if status == 404:
                return []
            if status != 200 or not isinstance(answer, dict):
                raise RuntimeError(f"POST {prefix}-*/_search answered {status}")
            hits = answer.get("hits", {}).get("hits", [])
            total = int((answer.get("hits", {}).get("total") or {}).get("value", len(hits)))
            for hit in hits:
                if replace_in(hit.get("_source") or {}, pattern, "")[1]:
                    found.setdefault(hit["_index"], []).append(hit["_id"])
            if len(hits) < 1000 or offset + len(hits) >= total:
                break
        for index, ids in sorted(found.items()):
            status, answer = store.request(
                "POST",
                f"/{index}/_delete_by_query?refresh=true&conflicts=proceed",
                {"query": {"ids": {"values": ids}}},
            )
            if status != 200 or not isinstance(answer, dict):
                raise RuntimeError(f"POST {index}/_delete_by_query answered {status}")
            changes[index] = changes.get(index, 0) + int(answer.get("deleted", 0))
        if not found or total <= window:
            break
    return [{"action": "delete_documents", "index": index, "deleted": n} for index, n in sorted(changes.items())]


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


def erase_tenant(config: dict[str, Any], store: Store | None, tenant: str, key: bytes, today: dt.date) -> int:
    """The ``erase-tenant`` command: archive first, then the store; prints one JSON summary. Returns the exit
    status (2 when a sealed file was left alone because it no longer matched its seal).

    :raises ValueError: a bad tenant id or key; RuntimeError: a store error
    """
    archive = Path(config.get("archive_dir", "/srv/log-archive"))
    files, problems = erase_archive(archive, config["classes"], tenant, key, today)
    documents = erase_index(store, config.get("index_prefix", "eterna-logs"), tenant) if store else []
    summary = {
        "changed": bool(files or documents),
        "pseudonym": pseudonym(tenant, key),
        "archive_files": len(files),
        "archive_lines": sum(change["lines"] for change in files),
        "index_documents": sum(change["deleted"] for change in documents),
        "store": bool(store),
        "files": files,
        "indices": documents,
        "problems": problems,
    }
    print(json.dumps(summary))
    return 2 if problems else 0


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["run", "setup", "erase-tenant"], nargs="?", default="run")
    parser.add_argument("--tenant", help="erase-tenant: the tenant id (the pseudonym key is read from stdin)")
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
        if args.command == "erase-tenant":
            return erase_tenant(config, store, args.tenant or "", sys.stdin.buffer.read().strip(), today)
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
