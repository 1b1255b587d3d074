"""playbooks/tenant_export.yml and playbooks/tenant_erase.yml on this machine (local connection), with a stub
eterna-app-manage first on PATH: the refusals happen before any command runs, and the erasure record kept on
the controller carries the date by which the tenant is gone from every backup, from the inventory's retention.
The manage commands themselves are tested in the app's suite (examples/eterna_home_app/tests/test_tenant_data.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from module_loader import load_file

ROOT = Path(__file__).resolve().parents[2]

STUB = """#!/bin/sh
# Stands in for eterna-app-manage: logs its arguments, answers like export-tenant or erase-tenant.
printf '%s\\n' "$*" >> "$STUB_LOG"
case "$*" in *export-tenant*)
  prev=; for arg in "$@"; do [ "$prev" = --out ] && out=$arg; prev=$arg; done
  mkdir -m 700 "$out" "$out/tables"
  echo '{"id": "h1", "tenant_id": "acme"}' > "$out/tables/houses.jsonl"
  echo '{"tenant": "acme"}' > "$out/manifest.json"
  echo '{"tenant": "acme", "out": "'"$out"'", "rows": {"houses": 1}}'
  exit 0;;
esac
cat > "$STUB_LOG.stdin"
[ "${STUB_RC:-0}" = 0 ] || { echo "erase-tenant: stub refusal" >&2; exit "$STUB_RC"; }
cat <<'JSON'
{"record_id": "11111111-2222-3333-4444-555555555555", "action": "tenant_erased", "tenant": "acme",
 "complete": true, "errors": [], "database": {"before": {"houses": 1}, "after": {"houses": 0}}}
JSON
"""


TEST_MASTER_KEY = "test-master-key-" + "k" * 32


def run(tmp_path: Path, playbook: str, *extra: str, stub_rc: int = 0) -> tuple[subprocess.CompletedProcess, Path]:
    """Run ``playbook`` against h1 (app, objectstore) with the production group_vars; h2 is the backup host."""
    inv = tmp_path / "inventory"
    (inv / "group_vars" / "all").mkdir(parents=True)
    for source in (ROOT / "inventories" / "production" / "group_vars" / "all").glob("*.yml"):
        shutil.copy(source, inv / "group_vars" / "all" / source.name)
    # Inventory connection variables win over the play's become: no sudo on this machine.
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False}
    groups = {"app": {"hosts": {"h1": {}}}, "objectstore": {"hosts": {"h1": {}}}, "backup": {"hosts": {"h2": {}}}}
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"h1": host, "h2": host}, "children": groups}}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "eterna-app-manage").write_text(STUB)
    (bin_dir / "eterna-app-manage").chmod(0o755)
    log = tmp_path / "stub.log"
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", STUB_LOG=str(log))
    # The production inventory reads the master key from its vault: a test value here.
    extra = ("-e", f"vault_eterna_master_key={TEST_MASTER_KEY}", *extra)
    env |= {"PATH": f"{bin_dir}:{env['PATH']}", "STUB_RC": str(stub_rc)}
    env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(tmp_path / "facts")
    ansible = Path(sys.executable).with_name("ansible-playbook")
    if not ansible.exists():
        pytest.skip("ansible-playbook not installed next to the test interpreter")
    res = subprocess.run(
        [str(ansible), "-i", str(inv / "hosts.yml"), str(ROOT / "playbooks" / playbook), *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return res, log


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["-e", "tenant_erase_tenant=acme", "-e", "tenant_erase_confirm=acme-2"],
        ["-e", "tenant_erase_tenant=ACME", "-e", "tenant_erase_confirm=ACME"],
    ],
)
def test_erase_refuses_without_confirmation(tmp_path: Path, extra: list[str]) -> None:
    res, log = run(tmp_path, "tenant_erase.yml", *extra)
    assert res.returncode != 0
    assert "Nothing erased" in res.stdout
    assert not log.exists(), "no command ran"


def test_erase_keeps_the_record_with_the_backup_expiry(tmp_path: Path) -> None:
    records = tmp_path / "records"
    start = datetime.now(UTC).replace(microsecond=0)
    res, log = run(
        tmp_path,
        "tenant_erase.yml",
        "-e",
        "tenant_erase_tenant=acme",
        "-e",
        "tenant_erase_confirm=acme",
        "-e",
        f"tenant_erase_record_dir={records}",
        "-e",
        "tenant_erase_actor=ops",
    )
    assert res.returncode == 0, res.stdout + res.stderr
    (argv,) = log.read_text().splitlines()
    assert argv.startswith("/opt/eterna-app/current python -m app.manage erase-tenant --tenant acme --confirm acme")
    assert "--actor ops" in argv
    # The object store's administrator identity, derived as the seaweedfs role derives it, reaches the command on
    # stdin only: not in its arguments, not in the playbook's output.
    assert argv.endswith("--s3-identity -")
    identity = json.loads(log.with_name(log.name + ".stdin").read_text())
    derive = load_file("filter_plugins/secrets.py", "eterna_secrets").derive_secret
    assert identity == {
        "access_key_id": derive(TEST_MASTER_KEY, "s3/admin-access", length=20),
        "secret_access_key": derive(TEST_MASTER_KEY, "s3/admin-secret", length=40),
    }
    assert identity["secret_access_key"] not in argv + res.stdout + res.stderr
    (record_file,) = records.iterdir()
    assert oct(record_file.stat().st_mode & 0o777) == "0o600"
    record = json.loads(record_file.read_text())
    # Production: five weekly fulls (36 days), mirror versions kept 90 days (91), host exports 30 (31).
    assert record["backups"]["days_per_store"] == {
        "pgbackrest": 36,
        "pgbackrest_repo2": 0,
        "objectstore_mirror": 91,
        "host_exports": 31,
    }
    gone_by = datetime.strptime(record["backups"]["gone_by"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert start + timedelta(days=91) <= gone_by <= datetime.now(UTC) + timedelta(days=91)
    assert f"--backups-gone-by {record['backups']['gone_by']}" in argv
    assert record["database"]["after"] == {"houses": 0}


def test_erase_fails_when_the_command_refuses(tmp_path: Path) -> None:
    # 3: nothing stored for the tenant (erased already, or a wrong id); 4: a conversion runs.
    res, _ = run(
        tmp_path, "tenant_erase.yml", "-e", "tenant_erase_tenant=acme", "-e", "tenant_erase_confirm=acme", stub_rc=3
    )
    assert res.returncode != 0 and "stub refusal" in res.stdout


@pytest.mark.parametrize(
    "extra",
    [
        ["-e", "tenant_export_tenant=acme"],
        ["-e", "tenant_export_tenant=acme", "-e", '{"tenant_export_age_recipients": []}'],
        ["-e", "tenant_export_tenant=acme", "-e", '{"tenant_export_age_recipients": ["not a key"]}'],
        ["-e", '{"tenant_export_age_recipients": ["age1' + "q" * 58 + '"]}'],
    ],
)
def test_export_refuses_without_recipients_or_tenant(tmp_path: Path, extra: list[str]) -> None:
    res, log = run(tmp_path, "tenant_export.yml", *extra)
    assert res.returncode != 0 and "never written unencrypted" in res.stdout
    assert not log.exists(), "no command ran"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("age"), reason="needs root (apt, chown) and age installed")
def test_export_fetches_one_encrypted_archive_and_leaves_no_plaintext(tmp_path: Path) -> None:
    key = tmp_path / "key.txt"
    keygen = subprocess.run(["age-keygen", "-o", str(key)], capture_output=True, text=True, check=True)
    recipient = keygen.stderr.split("Public key: ")[1].strip()
    dest, work = tmp_path / "dest", tmp_path / "work"
    work.mkdir()
    res, log = run(
        tmp_path,
        "tenant_export.yml",
        "-e",
        "tenant_export_tenant=acme",
        "-e",
        json.dumps(
            {
                "tenant_export_age_recipients": [recipient],
                "tenant_export_dest": str(dest),
                "tenant_export_work_dir": str(work),
                "app_user": "root",
                "app_group": "root",
            }
        ),
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "export-tenant --tenant acme --out " in log.read_text()
    (archive,) = dest.iterdir()
    assert archive.name.startswith("acme-export-") and archive.name.endswith(".tar.gz.age")
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    assert not archive.read_bytes().startswith(b"\x1f\x8b"), "encrypted, not a plain gzip"
    plain = subprocess.run(["age", "-d", "-i", str(key), str(archive)], capture_output=True, check=True).stdout
    listing = subprocess.run(["tar", "-tz"], input=plain, capture_output=True, check=True).stdout.decode().split()
    name = archive.name.removesuffix(".tar.gz.age")
    assert {f"{name}/manifest.json", f"{name}/tables/houses.jsonl"} <= set(listing)
    assert list(work.iterdir()) == [], "the working directory (plaintext, archive, recipients) is gone"
