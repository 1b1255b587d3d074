"""The platform's credentials are named once (CREDENTIALS in filter_plugins/secrets.py): roles read them by name,
never with their own derive_secret purpose and length, and the table says who reads each one (issue #16)."""

from __future__ import annotations

import collections
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


def test_a_credential_is_derive_secret_with_the_tables_length_and_format():
    for name, entry in sec.CREDENTIALS.items():
        value = sec.credential(KEY, name)
        assert value == sec.derive_secret(KEY, name, 0, entry.length, entry.fmt)
        assert len(value) == entry.length
    assert sec.credential(KEY, "postgres/eterna", 1) == sec.derive_secret(KEY, "postgres/eterna", 1)
    assert sec.credential(KEY, "postgres/eterna", 1) != sec.credential(KEY, "postgres/eterna")


@pytest.mark.parametrize("name", ["postgres/etrena", "s3/eterna-acess", ""])
def test_a_misspelt_credential_fails_and_names_it(name):
    with pytest.raises(sec.AnsibleFilterError, match=re.escape(f"credential: {name!r} is not a credential")):
        sec.credential(KEY, name)


def test_shared_credentials_keep_the_values_they_had_before_the_table():
    # The values of 1 Dec 2026 (derive_secret with the purpose and length each role used to type): renaming or
    # resizing an entry would change a running platform's passwords.
    before = {
        "postgres/eterna": sec.derive_secret(KEY, "postgres/eterna"),
        "s3/eterna-access": sec.derive_secret(KEY, "s3/eterna-access", length=20),
        "s3/eterna-secret": sec.derive_secret(KEY, "s3/eterna-secret", length=40),
        "backup/pgbackrest": sec.derive_secret(KEY, "backup/pgbackrest", length=64),
        "kibana/encryption_key": sec.derive_secret(KEY, "kibana/encryption_key", length=48),
    }
    assert {name: sec.credential(KEY, name) for name in before} == before
