"""The seaweedfs role, probed from a client container over TLS with boto3 (Debian's python3-boto3).

Credentials are derived here exactly as the role derives them (filter_plugins/secrets.py), from the master
key of the molecule inventory; nothing is read back from the server to authenticate. S3 operations run in
batches through files/s3probe.py on the client (one boto3 start per test on a loaded machine).
"""

from __future__ import annotations

import json
import shlex
import time
import uuid
from pathlib import Path

import pytest
import yaml
from eterna_testinfra import node, secrets

JOURNAL_UNITS = ["seaweedfs"]
JOURNAL_HOSTS = ["seaweedfs-s3"]

SERVER = "seaweedfs-s3"
CLIENT = "seaweedfs-client"
ENDPOINT = f"https://{SERVER}:8333"
BUCKETS = ["documents", "bim-models"]
ROOT = Path(__file__).resolve().parents[3]
ROLE_DEFAULTS = yaml.safe_load((ROOT / "roles/seaweedfs/defaults/main.yml").read_text())


def _derive():
    return secrets().derive_secret


@pytest.fixture(scope="module")
def creds() -> dict[str, tuple[str, str]]:
    master = node(SERVER).ansible.get_variables()["eterna_master_key"]
    derive = _derive()
    app = (derive(master, "s3/eterna-access", length=20), derive(master, "s3/eterna-secret", length=40))
    return {
        "app": app,
        "admin": (derive(master, "s3/admin-access", length=20), derive(master, "s3/admin-secret", length=40)),
        "wrongsecret": (app[0], app[1][::-1]),
        "unknown": ("AKIAEXAMPLEUNKNOWN00", "x" * 40),
    }


def s3(creds: dict, *steps: tuple) -> list[dict]:
    """Run steps (identity, operation, *args) on the client in one batch; one result dict per step."""
    env = [f"S3_ENDPOINT={ENDPOINT}"]
    for name, (access, secret) in creds.items():
        env += [f"S3_{name.upper()}_ACCESS={access}", f"S3_{name.upper()}_SECRET={secret}"]
    cmd = f"env {' '.join(shlex.quote(e) for e in env)} s3probe <<'EOF'\n{json.dumps(steps)}\nEOF"
    res = node(CLIENT).run(cmd)
    assert res.rc == 0 and res.stdout.strip(), f"s3probe failed: {res.stderr}"
    results = json.loads(res.stdout)
    assert len(results) == len(steps)
    return results


def ok(result: dict) -> dict:
    assert result["ok"], result
    return result


def refused(result: dict, code: str = "AccessDenied") -> None:
    assert not result["ok"] and result["code"] == code, f"expected {code}, got {result}"


def key() -> str:
    return f"test/{uuid.uuid4().hex}.txt"


# --- the host ---------------------------------------------------------------------------------------------


def test_service_runs_as_its_own_user():
    host = node(SERVER)
    svc = host.service("seaweedfs")
    assert svc.is_running
    assert svc.is_enabled
    pid = host.check_output("systemctl show -p MainPID --value seaweedfs")
    assert host.check_output(f"ps -o user= -p {pid}") == "seaweedfs"


def test_unit_is_hardened():
    props = node(SERVER).check_output(
        "systemctl show seaweedfs -p User -p NoNewPrivileges -p ProtectSystem -p PrivateTmp -p ProtectHome "
        "-p CapabilityBoundingSet -p RestrictSUIDSGID -p MemoryDenyWriteExecute -p ReadWritePaths"
    )
    settings = dict(line.split("=", 1) for line in props.splitlines())
    assert settings == {
        "User": "seaweedfs",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "CapabilityBoundingSet": "",
        "RestrictSUIDSGID": "yes",
        "MemoryDenyWriteExecute": "yes",
        "ReadWritePaths": "/var/lib/seaweedfs",
    }


def test_binary_is_the_pinned_one():
    host = node(SERVER)
    target = f"/opt/seaweedfs/{ROLE_DEFAULTS['seaweedfs_version']}/weed"
    assert host.check_output("readlink /usr/local/bin/weed") == target
    assert host.check_output(f"sha256sum {target}").split()[0] == ROLE_DEFAULTS["seaweedfs_sha256"]
    assert host.check_output(f"stat -c '%U %a' {target}") == "root 755"


def test_secret_and_config_file_modes():
    expected = {
        "/etc/seaweedfs/s3.json": "seaweedfs seaweedfs 600",
        "/etc/seaweedfs/security.toml": "seaweedfs seaweedfs 600",
        "/etc/seaweedfs/tls/seaweedfs.key": "seaweedfs seaweedfs 640",
        "/etc/seaweedfs/tls/seaweedfs-grpc.key": "seaweedfs seaweedfs 640",
        "/etc/seaweedfs/server.options": "root seaweedfs 640",
        "/etc/seaweedfs": "root seaweedfs 750",
        "/var/lib/seaweedfs": "seaweedfs seaweedfs 750",
    }
    out = node(SERVER).check_output(f"stat -c '%n %U %G %a' {' '.join(expected)}")
    actual = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in out.splitlines()}
    assert actual == expected


def test_identities_file_has_no_anonymous_and_a_limited_app(creds):
    doc = json.loads(node(SERVER).check_output("cat /etc/seaweedfs/s3.json"))
    assert "anonymous" not in {i["name"] for i in doc["identities"]}
    app = next(i for i in doc["identities"] if i["credentials"][0]["accessKey"] == creds["app"][0])
    assert "Admin" not in app["actions"]
    assert {a.split(":", 1)[1] for a in app["actions"] if ":" in a} == set(BUCKETS)
    assert all(":" in a for a in app["actions"]), "every app action must be limited to a bucket"


# --- the network ------------------------------------------------------------------------------------------


def test_internal_ports_are_loopback_only():
    ports = [9333, 8080, 8888, 19333, 18080, 18888]
    listening = node(SERVER).check_output("ss -Hltn | awk '{print $4}'").split()
    for port in ports:
        assert f"127.0.0.1:{port}" in listening, f"{port} is not listening on loopback"
        assert not any(a.endswith(f":{port}") and not a.startswith("127.0.0.1:") for a in listening)
    probe = " ; ".join(f"timeout 5 bash -c '</dev/tcp/{SERVER}/{p}' 2>/dev/null && echo open:{p}" for p in ports)
    assert "open:" not in node(CLIENT).run(probe).stdout


def test_https_only_with_the_internal_ca():
    client = node(CLIENT)
    plain = client.run(f"curl -sS -o /dev/null -w '%{{http_code}}' --max-time 10 http://{SERVER}:8333/")
    assert plain.stdout.strip() in ("000", "400"), f"plain HTTP answered {plain.stdout}"
    # Verified with the system trust store (the internal CA is installed there), and anonymous is refused.
    code = client.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 {ENDPOINT}/")
    assert code == "403"


def test_grpc_requires_this_hosts_certificate():
    """The S3 gateway's gRPC port faces the network, so it must insist on mutual TLS with the server's own CN."""
    probe = (
        "(printf 'PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n'; sleep 2) | "
        f"timeout 20 openssl s_client -connect {SERVER}:18333 -alpn h2 -CAfile /etc/probe-tls/ca.crt {{}} 2>&1"
    )
    no_cert = node(CLIENT).run(probe.format(""))
    assert "certificate required" in no_cert.stdout, no_cert.stdout[-600:]
    other_cert = node(CLIENT).run(probe.format("-cert /etc/probe-tls/client.crt -key /etc/probe-tls/client.key"))
    assert "bad certificate" in other_cert.stdout, other_cert.stdout[-600:]


def test_metrics_are_exposed():
    out = node(CLIENT).check_output(f"curl -sf --max-time 10 http://{SERVER}:9327/metrics")
    assert "SeaweedFS_" in out


# --- S3 ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bucket", BUCKETS)
def test_app_put_get_list_delete(creds, bucket):
    name, body = key(), f"payload {uuid.uuid4()}"
    put, get, listed, delete, listed_after, get_after = s3(
        creds,
        ("app", "put", bucket, name, body),
        ("app", "get", bucket, name),
        ("app", "list", bucket),
        ("app", "delete", bucket, name),
        ("app", "list", bucket),
        ("app", "get", bucket, name),
    )
    ok(put)
    assert ok(get)["body"] == body
    assert name in ok(listed)["keys"]
    ok(delete)
    assert name not in ok(listed_after)["keys"]
    refused(get_after, "NoSuchKey")


def test_app_sees_only_its_buckets(creds):
    (listed,) = s3(creds, ("app", "buckets"))
    assert ok(listed)["buckets"] == sorted(BUCKETS)


def test_other_credentials_are_refused(creds):
    wrong, unknown, admin_key_app_secret = s3(
        {**creds, "mixed": (creds["admin"][0], creds["app"][1])},
        ("wrongsecret", "list", "documents"),
        ("unknown", "list", "documents"),
        ("mixed", "list", "documents"),
    )
    refused(wrong, "SignatureDoesNotMatch")
    refused(unknown, "InvalidAccessKeyId")
    refused(admin_key_app_secret, "SignatureDoesNotMatch")


def test_anonymous_is_refused(creds):
    name = key()
    results = s3(
        creds,
        ("anon", "list", "documents"),
        ("anon", "get", "documents", "test/any.txt"),
        ("anon", "buckets"),
        ("anon", "put", "documents", name, "anonymous"),
        ("app", "list", "documents"),
    )
    for result in results[:4]:
        refused(result)
    assert name not in ok(results[4])["keys"]


@pytest.mark.parametrize("other", ["documents-archive", "eterna-other"])
def test_app_cannot_touch_another_bucket(creds, other):
    # The administrator owns a bucket outside the app's list; "documents-archive" also shares a prefix.
    create, admin_put, *app_ops, admin_get = s3(
        creds,
        ("admin", "create", other),
        ("admin", "put", other, "admin.txt", "admin data"),
        ("app", "put", other, key(), "x"),
        ("app", "get", other, "admin.txt"),
        ("app", "list", other),
        ("app", "delete", other, "admin.txt"),
        ("admin", "get", other, "admin.txt"),
    )
    assert create["ok"] or create["code"] == "BucketAlreadyOwnedByYou", create
    ok(admin_put)
    for result in app_ops:
        refused(result)
    assert ok(admin_get)["body"] == "admin data"


def test_app_cannot_create_or_reconfigure_buckets(creds):
    # SeaweedFS maps bucket configuration to its coarse "Write" action: the role's bucket policy denies it.
    steps = [
        ("app", "create", "eterna-app-made"),
        ("app", "set-versioning", "documents", "Suspended"),
        ("app", "put-policy", "documents", '{"Version":"2012-10-17","Statement":[]}'),
        ("app", "delete-policy", "documents"),
        ("app", "put-lifecycle", "documents", "1"),
        ("app", "delete-lifecycle", "bim-models"),
        ("app", "delete-bucket", "bim-models"),
    ]
    for step, result in zip(steps, s3(creds, *steps), strict=True):
        assert not result["ok"] and result["code"] == "AccessDenied", f"{step}: {result}"


@pytest.mark.parametrize("bucket", BUCKETS)
def test_buckets_are_versioned_with_expiry_of_old_versions(creds, bucket):
    versioning, lifecycle = s3(creds, ("admin", "versioning", bucket), ("admin", "lifecycle", bucket))
    assert ok(versioning)["status"] == "Enabled"
    rules = ok(lifecycle)["rules"]
    assert [r["NoncurrentVersionExpiration"]["NoncurrentDays"] for r in rules if r["Status"] == "Enabled"] == [30]


def test_versioning_keeps_the_overwritten_version(creds):
    name = key()
    first, second, latest, versions, old = s3(
        creds,
        ("app", "put", "documents", name, "version one"),
        ("app", "put", "documents", name, "version two"),
        ("app", "get", "documents", name),
        ("app", "versions", "documents", name),
        ("app", "get", "documents", name, "$0.version"),
    )
    assert ok(first)["version"] and ok(second)["version"] != first["version"]
    assert ok(latest)["body"] == "version two"
    listed = ok(versions)["versions"]
    assert sorted(v["id"] for v in listed) == sorted([first["version"], second["version"]])
    assert [v["id"] for v in listed if not v["latest"]] == [first["version"]]
    assert ok(old)["body"] == "version one"


def test_app_cannot_erase_history(creds):
    name = key()
    first, _, erase, delete, current, old = s3(
        creds,
        ("app", "put", "documents", name, "original"),
        ("app", "put", "documents", name, "replacement"),
        ("app", "delete-version", "documents", name, "$0.version"),
        ("app", "delete", "documents", name),
        ("app", "get", "documents", name),
        ("app", "get", "documents", name, "$0.version"),
    )
    ok(first)
    refused(erase)
    ok(delete)  # a delete marker: allowed, and the history stays
    refused(current, "NoSuchKey")
    assert ok(old)["body"] == "original"


def test_data_survives_a_restart(creds):
    name, body = key(), f"persistent {uuid.uuid4()}"
    ok(s3(creds, ("app", "put", "bim-models", name, body))[0])
    server = node(SERVER)
    server.check_output("systemctl restart seaweedfs")
    deadline = time.monotonic() + 180  # a bound on waiting, not a performance assertion
    while True:
        (result,) = s3(creds, ("app", "get", "bim-models", name))
        if result["ok"]:
            break
        assert time.monotonic() < deadline, f"object not readable after the restart: {result}"
        time.sleep(3)
    assert result["body"] == body
    assert server.service("seaweedfs").is_running
