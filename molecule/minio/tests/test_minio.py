"""The minio role, probed from a client container over TLS with boto3 (runs only with real artifacts)."""

from __future__ import annotations

import json
import shlex
import time
import uuid
from pathlib import Path

import pytest
from eterna_testinfra import node, secrets

JOURNAL_UNITS = ["minio"]
JOURNAL_HOSTS = ["minio-s3"]

SERVER = "minio-s3"
CLIENT = "minio-client"
ENDPOINT = f"https://{SERVER}:9000"
BUCKETS = ["documents", "bim-models"]
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def creds() -> dict[str, tuple[str, str]]:
    derive = secrets().derive_secret
    master = node(SERVER).ansible.get_variables()["eterna_master_key"]
    app = (derive(master, "s3/eterna-access", length=20), derive(master, "s3/eterna-secret", length=40))
    return {
        "app": app,
        "admin": (derive(master, "s3/admin-access", length=20), derive(master, "s3/admin-secret", length=40)),
        "wrongsecret": (app[0], app[1][::-1]),
        "unknown": ("AKIAEXAMPLEUNKNOWN00", "x" * 40),
    }


def s3(creds: dict, *steps: tuple) -> list[dict]:
    env = [f"S3_ENDPOINT={ENDPOINT}"]
    for name, (access, secret) in creds.items():
        env += [f"S3_{name.upper()}_ACCESS={access}", f"S3_{name.upper()}_SECRET={secret}"]
    cmd = f"env {' '.join(shlex.quote(e) for e in env)} s3probe <<'EOF'\n{json.dumps(steps)}\nEOF"
    res = node(CLIENT).run(cmd)
    assert res.rc == 0 and res.stdout.strip(), f"s3probe failed: {res.stderr}"
    return json.loads(res.stdout)


def ok(result: dict) -> dict:
    assert result["ok"], result
    return result


def refused(result: dict, code: str = "AccessDenied") -> None:
    assert not result["ok"] and result["code"] == code, f"expected {code}, got {result}"


def key() -> str:
    return f"test/{uuid.uuid4().hex}.txt"


def test_service_is_hardened_and_runs_as_minio():
    host = node(SERVER)
    assert host.service("minio").is_running and host.service("minio").is_enabled
    props = host.check_output("systemctl show minio -p User -p NoNewPrivileges -p ProtectSystem -p PrivateTmp")
    assert dict(line.split("=", 1) for line in props.splitlines()) == {
        "User": "minio",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
    }


def test_four_drives_in_use():
    out = node(SERVER).check_output("ls -d /var/lib/minio/data*/.minio.sys")
    assert len(out.split()) == 4


def test_secret_file_modes():
    out = node(SERVER).check_output(
        "stat -c '%n %U %G %a' /etc/default/minio /etc/minio/certs/minio.key /etc/minio/prometheus.token"
    )
    assert out.splitlines() == [
        "/etc/default/minio root minio 640",
        "/etc/minio/certs/minio.key minio minio 640",
        "/etc/minio/prometheus.token root minio 640",
    ]


def test_app_put_get_list_delete(creds):
    name = key()
    put, get, listed, delete = s3(
        creds,
        ("app", "put", "documents", name, "hello"),
        ("app", "get", "documents", name),
        ("app", "list", "documents"),
        ("app", "delete", "documents", name),
    )
    ok(put)
    assert ok(get)["body"] == "hello"
    assert name in ok(listed)["keys"]
    ok(delete)


def test_other_credentials_and_anonymous_are_refused(creds):
    wrong, unknown, anon_list, anon_put = s3(
        creds,
        ("wrongsecret", "list", "documents"),
        ("unknown", "list", "documents"),
        ("anon", "list", "documents"),
        ("anon", "put", "documents", key(), "x"),
    )
    refused(wrong, "SignatureDoesNotMatch")
    refused(unknown, "InvalidAccessKeyId")
    refused(anon_list)
    refused(anon_put)


def test_app_is_limited_to_its_buckets(creds):
    create, *app_ops = s3(
        creds,
        ("admin", "create", "eterna-other"),
        ("app", "put", "eterna-other", key(), "x"),
        ("app", "list", "eterna-other"),
        ("app", "create", "eterna-app-made"),
        ("app", "set-versioning", "documents", "Suspended"),
        ("app", "put-policy", "documents", '{"Version":"2012-10-17","Statement":[]}'),
        ("app", "put-lifecycle", "documents", "1"),
    )
    assert create["ok"] or create["code"] in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"), create
    for result in app_ops:
        refused(result)


@pytest.mark.parametrize("bucket", BUCKETS)
def test_versioning_and_lifecycle(creds, bucket):
    versioning, lifecycle = s3(creds, ("admin", "versioning", bucket), ("admin", "lifecycle", bucket))
    assert ok(versioning)["status"] == "Enabled"
    days = [r["NoncurrentVersionExpiration"]["NoncurrentDays"] for r in ok(lifecycle)["rules"]]
    assert days == [30]


def test_versioning_keeps_the_overwritten_version(creds):
    name = key()
    first, _, old = s3(
        creds,
        ("app", "put", "documents", name, "one"),
        ("app", "put", "documents", name, "two"),
        ("app", "get", "documents", name, "$0.version"),
    )
    assert ok(first)["version"]
    assert ok(old)["body"] == "one"


def test_metrics_need_the_bearer_token():
    client, server = node(CLIENT), node(SERVER)
    url = f"{ENDPOINT}/minio/v2/metrics/cluster"
    assert client.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' {url}") == "403"
    token = server.check_output("cat /etc/minio/prometheus.token")
    out = client.check_output(f"curl -sf -H 'Authorization: Bearer {token}' {url}")
    assert "minio_" in out


def test_data_survives_a_restart(creds):
    name = key()
    ok(s3(creds, ("app", "put", "bim-models", name, "kept"))[0])
    node(SERVER).check_output("systemctl restart minio")
    deadline = time.monotonic() + 120  # a bound on waiting, not a performance assertion
    while True:
        (result,) = s3(creds, ("app", "get", "bim-models", name))
        if result["ok"]:
            break
        assert time.monotonic() < deadline, result
        time.sleep(3)
    assert result["body"] == "kept"
