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


# Length and the first 48 bits of the SHA-256 (an integer) of every credential for KEY, written down on 2 Dec 2026
# from the lengths the roles typed before the table existed. A renamed, resized or reformatted entry would change a
# running platform's password (Grafana's stored secrets, RabbitMQ's cluster cookie...): this fails first. A new entry
# is added here too.
PINNED = {
    "postgres/eterna": (32, 179174106481914),
    "postgres/replicator": (32, 198510708441515),
    "postgres/exporter": (32, 240230139503135),
    "postgres/superuser": (32, 178127819048583),
    "postgres/rewind": (32, 138194656843207),
    "patroni/restapi": (32, 242334095753812),
    "redis/eterna": (32, 174372926177323),
    "redis/admin": (32, 49639847194473),
    "redis/exporter": (32, 114280610513349),
    "rabbitmq/eterna": (32, 67880182419786),
    "rabbitmq/admin": (32, 262428932720309),
    "rabbitmq/erlang_cookie": (32, 69651938779127),
    "s3/eterna-access": (20, 11991505951283),
    "s3/eterna-secret": (40, 262335734857297),
    "s3/admin-access": (20, 175840472715831),
    "s3/admin-secret": (40, 36726840460898),
    "seaweedfs/jwt-volume": (40, 248248309131266),
    "seaweedfs/jwt-filer": (40, 140560112131123),
    "backup/pgbackrest": (64, 36477909840879),
    "backup/repo2-access": (20, 38563681716562),
    "backup/repo2-secret": (40, 11388507528613),
    "prometheus/admin": (32, 271765904213603),
    "grafana/admin": (32, 250296722466780),
    "grafana/secret_key": (40, 123173239213190),
    "elasticsearch/elastic": (32, 160536011386763),
    "elasticsearch/eterna_admin": (32, 257848747514713),
    "elasticsearch/kibana_system": (32, 127508129720315),
    "elasticsearch/logstash_system": (32, 97332314714495),
    "elasticsearch/beats_system": (32, 150956556770032),
    "elasticsearch/apm_system": (32, 189629994764733),
    "elasticsearch/remote_monitoring_user": (32, 31949767907575),
    "elasticsearch/eterna_rsyslog": (32, 260297528558283),
    "elasticsearch/eterna_logstash": (32, 106292196610800),
    "elasticsearch/eterna_operator": (32, 104507029504030),
    "kibana/encryption_key": (48, 258684298817688),
    "kibana/saved_objects_key": (48, 71073345091291),
    "kibana/reporting_key": (48, 151222193353872),
    "logging/tenant_pseudonym": (32, 131100249635056),
}


def test_every_credential_keeps_its_length_and_value():
    got = {}
    for name in sec.CREDENTIALS:
        value = sec.credential(KEY, name)
        got[name] = (len(value), int(hashlib.sha256(value.encode()).hexdigest()[:12], 16))
    assert got == PINNED
    assert all(value.isalnum() for value in (sec.credential(KEY, name) for name in sec.CREDENTIALS))


def test_a_generation_rotates_one_credential():
    assert sec.credential(KEY, "postgres/eterna", 1) == sec.derive_secret(KEY, "postgres/eterna", 1)
    assert sec.credential(KEY, "postgres/eterna", 1) != sec.credential(KEY, "postgres/eterna")


@pytest.mark.parametrize("name", ["postgres/etrena", "s3/eterna-acess", ""])
def test_a_misspelt_credential_fails_and_names_it(name):
    with pytest.raises(sec.AnsibleFilterError, match=re.escape(f"credential: {name!r} is not a credential")):
        sec.credential(KEY, name)
