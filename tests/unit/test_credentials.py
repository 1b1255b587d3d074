"""The platform's credentials are named once (CREDENTIALS in filter_plugins/secrets.py): roles read them by name,
never with their own derive_secret purpose and length, and the table says who reads each one (issue #16)."""

from __future__ import annotations

import collections
import hashlib
import re
from pathlib import Path

import pytest
import yaml
from module_loader import load_file

sec = load_file("filter_plugins/secrets.py", "eterna_filter_secrets_credentials")

ROOT = Path(__file__).resolve().parents[2]
KEY = "9c1e7a54d2b08f36e4a1c97d05b3f8622d4e9a1f7c03b5e8a6d2f4c19b07e358"  # test-only  # pragma: allowlist secret
_CREDENTIAL_CALL = re.compile(r"credential\(\s*['\"]([^'\"]+)['\"]")
_DERIVE_LITERAL = re.compile(r"derive_secret\(\s*['\"]")


def _sources():
    for top in ("roles", "playbooks"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and path.suffix in {".yml", ".yaml", ".j2"}:
                yield path


def _reader(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[1] if rel.parts[0] == "roles" else rel.as_posix()


def test_roles_and_playbooks_read_credentials_by_name_only():
    literal = [str(p.relative_to(ROOT)) for p in _sources() if _DERIVE_LITERAL.search(p.read_text())]
    assert literal == [], "derive a platform credential with credential('<name>'), named in CREDENTIALS"


def test_scenarios_and_inventories_derive_no_platform_credential_themselves():
    """They may derive their own accounts (molecule/owner-a, lab/demo-owner); a platform credential they read with
    credential(), so its length and format come from the table."""
    own = re.compile(r"derive_secret\(\s*['\"]([^'\"]+)['\"]")
    copies = []
    for top in ("molecule", "inventories"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and path.suffix in {".yml", ".yaml", ".j2"}:
                copies += [
                    f"{path.relative_to(ROOT)}: {n}" for n in own.findall(path.read_text()) if n in sec.CREDENTIALS
                ]
    assert copies == []


def test_every_credential_read_is_in_the_table_and_lists_its_readers():
    readers: dict[str, set[str]] = collections.defaultdict(set)
    for path in _sources():
        for name in _CREDENTIAL_CALL.findall(path.read_text()):
            readers[name].add(_reader(path))
    # The postgres role creates its login roles from postgres_users[].secret (any purpose; the default is the app's).
    for user in yaml.safe_load((ROOT / "roles/postgres/defaults/main.yml").read_text())["postgres_users"]:
        readers[user["secret"]].add("postgres")
    unknown = sorted(set(readers) - set(sec.CREDENTIALS))
    assert unknown == []
    unlisted = {name: sorted(who - set(sec.CREDENTIALS[name].used_by)) for name, who in readers.items()}
    assert {name: who for name, who in unlisted.items() if who} == {}
    unread = {name: sorted(set(c.used_by) - readers[name]) for name, c in sec.CREDENTIALS.items()}
    assert {name: who for name, who in unread.items() if who} == {}


# Length and SHA-256 prefix of every credential for KEY, written down on 2 Dec 2026 from the lengths the roles typed
# before the table existed. A renamed, resized or reformatted entry would change a running platform's password
# (Grafana's stored secrets, RabbitMQ's cluster cookie...): this fails first. A new entry is added here too.
PINNED = {
    "postgres/eterna": (32, "a2f538f844fa4006"),
    "postgres/replicator": (32, "b48b6042c1ab8b58"),
    "postgres/exporter": (32, "da7cf021221f7457"),
    "postgres/superuser": (32, "a2019d61068730ac"),
    "postgres/rewind": (32, "7daff36e55c7a416"),
    "patroni/restapi": (32, "dc66cdb1c254bd0b"),
    "redis/eterna": (32, "9e975c52c02b45c9"),
    "redis/admin": (32, "2d25ad756f69f84a"),
    "redis/exporter": (32, "67f00731c1c592c2"),
    "rabbitmq/eterna": (32, "3dbc9629114a46c2"),
    "rabbitmq/admin": (32, "eead7f5046b565db"),
    "rabbitmq/erlang_cookie": (32, "3f591b119ff77ef4"),
    "s3/eterna-access": (20, "0ae7fd73da334238"),
    "s3/eterna-secret": (40, "ee97cc49be51d1ed"),
    "s3/admin-access": (20, "9fed0ce9d2375d25"),
    "s3/admin-secret": (40, "2167224786628286"),
    "seaweedfs/jwt-volume": (40, "e1c7d04828027964"),
    "seaweedfs/jwt-filer": (40, "7fd6b38d9c33e354"),
    "backup/pgbackrest": (64, "212d2cdbb3ef9395"),
    "backup/repo2-access": (20, "2312ce8cc952fef6"),
    "backup/repo2-secret": (40, "0a5b97f21da59622"),
    "prometheus/admin": (32, "f72b6e2ec663e404"),
    "grafana/admin": (32, "e3a4bf3b27dcc9e6"),
    "grafana/secret_key": (40, "7006812b4c869aec"),
    "elasticsearch/elastic": (32, "9201b3eeaf8b1147"),
    "elasticsearch/eterna_admin": (32, "ea8317005b59bcad"),
    "elasticsearch/kibana_system": (32, "73f7ccc727fb283c"),
    "elasticsearch/logstash_system": (32, "5885f20b317f5ac2"),
    "elasticsearch/beats_system": (32, "894b4ff15af026ef"),
    "elasticsearch/apm_system": (32, "ac77ac7a09bd34ff"),
    "elasticsearch/remote_monitoring_user": (32, "1d0ee29118f721a9"),
    "elasticsearch/eterna_rsyslog": (32, "ecbd3db9c2cb633a"),
    "elasticsearch/eterna_logstash": (32, "60ac149f12f0392b"),
    "elasticsearch/eterna_operator": (32, "5f0c705ec01e7d3b"),
    "kibana/encryption_key": (48, "eb45a1bd7098f5be"),
    "kibana/saved_objects_key": (48, "40a40d7cb6db4343"),
    "kibana/reporting_key": (48, "8989291df49073b1"),
    "logging/tenant_pseudonym": (32, "773c27cf38f05f82"),
}


def test_every_credential_keeps_its_length_and_value():
    got = {}
    for name in sec.CREDENTIALS:
        value = sec.credential(KEY, name)
        got[name] = (len(value), hashlib.sha256(value.encode()).hexdigest()[:16])
    assert got == PINNED
    assert all(value.isalnum() for value in (sec.credential(KEY, name) for name in sec.CREDENTIALS))


def test_a_generation_rotates_one_credential():
    assert sec.credential(KEY, "postgres/eterna", 1) == sec.derive_secret(KEY, "postgres/eterna", 1)
    assert sec.credential(KEY, "postgres/eterna", 1) != sec.credential(KEY, "postgres/eterna")


@pytest.mark.parametrize("name", ["postgres/etrena", "s3/eterna-acess", ""])
def test_a_misspelt_credential_fails_and_names_it(name):
    with pytest.raises(sec.AnsibleFilterError, match=re.escape(f"credential: {name!r} is not a credential")):
        sec.credential(KEY, name)
