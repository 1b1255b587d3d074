"""The seaweedfs role, probed from a client container over TLS with boto3 (Debian's python3-boto3).

Credentials are derived here exactly as the role derives them (filter_plugins/secrets.py), from the master
key of the molecule inventory; nothing is read back from the server to authenticate.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import time
import uuid
from pathlib import Path

import pytest
import yaml
from eterna_testinfra import node

JOURNAL_UNITS = ["seaweedfs"]
JOURNAL_HOSTS = ["seaweedfs-s3"]

SERVER = "seaweedfs-s3"
CLIENT = "seaweedfs-client"
ENDPOINT = f"https://{SERVER}:8333"
BUCKETS = ["documents", "bim-models"]
ROOT = Path(__file__).resolve().parents[3]
ROLE_DEFAULTS = yaml.safe_load((ROOT / "roles/seaweedfs/defaults/main.yml").read_text())


def _secrets_module():
    spec = importlib.util.spec_from_file_location("eterna_secrets", ROOT / "filter_plugins/secrets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def creds():
    master = node(SERVER).ansible.get_variables()["eterna_master_key"]
    derive = _secrets_module().derive_secret
    return {
        "app": (derive(master, "s3/eterna-access", length=20), derive(master, "s3/eterna-secret", length=40)),
        "admin": (derive(master, "s3/admin-access", length=20), derive(master, "s3/admin-secret", length=40)),
    }


def s3(op: str, *args: str, auth: tuple[str, str] | None = None) -> tuple[int, dict]:
    """Run one S3 operation on the client; (exit code, JSON answer). auth None = anonymous."""
    env = f"S3_ENDPOINT={ENDPOINT}"
    if auth is not None:
        env += f" S3_ACCESS_KEY={shlex.quote(auth[0])} S3_SECRET_KEY={shlex.quote(auth[1])}"
    res = node(CLIENT).run(f"env {env} s3probe {op} {' '.join(shlex.quote(a) for a in args)}")
    assert res.stdout.strip(), f"s3probe printed nothing: {res.stderr}"
    return res.rc, json.loads(res.stdout)


def ok(op: str, *args: str, auth: tuple[str, str]) -> dict:
    rc, out = s3(op, *args, auth=auth)
    assert rc == 0 and out["ok"], f"{op} {args}: {out}"
    return out


def refused(op: str, *args: str, auth: tuple[str, str] | None) -> str:
    rc, out = s3(op, *args, auth=auth)
    assert rc == 3 and not out["ok"], f"{op} {args} should have been refused: {out}"
    return out["code"]


def key() -> str:
    return f"test/{uuid.uuid4().hex}.txt"


# --- the host ---------------------------------------------------------------------------------------------


def test_service_runs_as_its_own_user():
    host = node(SERVER)
    svc = host.service("seaweedfs")
    assert svc.is_running
    assert svc.is_enabled
    assert host.check_output("systemctl show -p User --value seaweedfs") == "seaweedfs"
    pid = host.check_output("systemctl show -p MainPID --value seaweedfs")
    assert host.check_output(f"ps -o user= -p {pid}") == "seaweedfs"


def test_unit_is_hardened():
    props = node(SERVER).check_output(
        "systemctl show seaweedfs -p NoNewPrivileges -p ProtectSystem -p PrivateTmp -p ProtectHome "
        "-p CapabilityBoundingSet -p RestrictSUIDSGID -p MemoryDenyWriteExecute"
    )
    settings = dict(line.split("=", 1) for line in props.splitlines())
    assert settings["NoNewPrivileges"] == "yes"
    assert settings["ProtectSystem"] == "strict"
    assert settings["PrivateTmp"] == "yes"
    assert settings["ProtectHome"] == "yes"
    assert settings["CapabilityBoundingSet"] == ""
    assert settings["RestrictSUIDSGID"] == "yes"
    assert settings["MemoryDenyWriteExecute"] == "yes"


def test_binary_is_the_pinned_one():
    host = node(SERVER)
    binary = host.file("/usr/local/bin/weed")
    assert binary.is_symlink
    assert binary.linked_to == f"/opt/seaweedfs/{ROLE_DEFAULTS['seaweedfs_version']}/weed"
    assert host.file(binary.linked_to).sha256sum == ROLE_DEFAULTS["seaweedfs_sha256"]
    assert host.file(binary.linked_to).user == "root"


@pytest.mark.parametrize(
    ("path", "user", "mode"),
    [
        ("/etc/seaweedfs/s3.json", "seaweedfs", 0o600),
        ("/etc/seaweedfs/security.toml", "seaweedfs", 0o600),
        ("/etc/seaweedfs/tls/seaweedfs.key", "seaweedfs", 0o640),
        ("/etc/seaweedfs/tls/seaweedfs-grpc.key", "seaweedfs", 0o640),
        ("/etc/seaweedfs/server.options", "root", 0o640),
    ],
)
def test_secret_file_modes(path, user, mode):
    f = node(SERVER).file(path)
    assert f.is_file
    assert f.user == user
    assert f.group == "seaweedfs"
    assert f.mode == mode


def test_data_directory_is_private():
    d = node(SERVER).file("/var/lib/seaweedfs")
    assert d.user == "seaweedfs"
    assert d.mode == 0o750


def test_identities_file_has_no_anonymous_and_a_limited_app(creds):
    doc = json.loads(node(SERVER).check_output("cat /etc/seaweedfs/s3.json"))
    names = {i["name"] for i in doc["identities"]}
    assert "anonymous" not in names
    app = next(i for i in doc["identities"] if i["credentials"][0]["accessKey"] == creds["app"][0])
    assert all(":" in action for action in app["actions"]), "every app action must be limited to a bucket"
    assert {a.split(":", 1)[1] for a in app["actions"]} == set(BUCKETS)


# --- the network ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("port", [9333, 8080, 8888, 19333, 18080, 18888])
def test_internal_ports_are_loopback_only(port):
    assert node(SERVER).socket(f"tcp://127.0.0.1:{port}").is_listening
    res = node(CLIENT).run(f"timeout 5 bash -c '</dev/tcp/{SERVER}/{port}'")
    assert res.rc != 0, f"port {port} is reachable from another host"


def test_plain_http_is_not_served():
    res = node(CLIENT).run(f"curl -sS -o /dev/null -w '%{{http_code}}' --max-time 10 http://{SERVER}:8333/")
    assert res.stdout.strip() in ("000", "400"), f"plain HTTP answered {res.stdout}"
    code = node(CLIENT).check_output(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 {ENDPOINT}/")
    assert code == "403", "HTTPS verified with the system trust store should answer (and refuse anonymous)"


def test_grpc_requires_this_hosts_certificate():
    """The S3 gateway's gRPC port is reachable, so it must insist on mutual TLS with the server's own CN."""
    client = node(CLIENT)
    probe = (
        "(printf 'PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n'; sleep 2) | "
        f"timeout 20 openssl s_client -connect {SERVER}:18333 -alpn h2 -CAfile /etc/probe-tls/ca.crt {{}} 2>&1"
    )
    no_cert = client.run(probe.format(""))
    assert "certificate required" in no_cert.stdout, no_cert.stdout[-600:]
    other_cert = client.run(probe.format("-cert /etc/probe-tls/client.crt -key /etc/probe-tls/client.key"))
    assert "bad certificate" in other_cert.stdout, other_cert.stdout[-600:]


def test_metrics_are_exposed():
    out = node(CLIENT).check_output(f"curl -sf --max-time 10 http://{SERVER}:9327/metrics")
    assert "SeaweedFS_" in out


# --- S3 ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bucket", BUCKETS)
def test_app_put_get_list_delete(creds, bucket):
    name, body = key(), f"payload {uuid.uuid4()}"
    ok("put", bucket, name, body, auth=creds["app"])
    assert ok("get", bucket, name, auth=creds["app"])["body"] == body
    assert name in ok("list", bucket, auth=creds["app"])["keys"]
    ok("delete", bucket, name, auth=creds["app"])
    assert name not in ok("list", bucket, auth=creds["app"])["keys"]
    assert refused("get", bucket, name, auth=creds["app"]) == "NoSuchKey"


def test_app_sees_only_its_buckets(creds):
    assert ok("buckets", auth=creds["app"])["buckets"] == sorted(BUCKETS)


def test_wrong_secret_is_refused(creds):
    access, secret = creds["app"]
    assert refused("list", "documents", auth=(access, secret[::-1])) == "SignatureDoesNotMatch"


def test_unknown_access_key_is_refused():
    assert refused("list", "documents", auth=("AKIAEXAMPLEUNKNOWN00", "x" * 40)) == "InvalidAccessKeyId"


@pytest.mark.parametrize("op", [("list", "documents"), ("get", "documents", "test/any.txt"), ("buckets",)])
def test_anonymous_reads_are_refused(op):
    assert refused(*op, auth=None) == "AccessDenied"


def test_anonymous_write_is_refused(creds):
    name = key()
    assert refused("put", "documents", name, "anonymous", auth=None) == "AccessDenied"
    assert name not in ok("list", "documents", auth=creds["app"])["keys"]


@pytest.mark.parametrize("other", ["documents-archive", "eterna-other"])
def test_app_cannot_touch_another_bucket(creds, other):
    # The administrator owns a bucket outside the app's list; "documents-archive" also shares a prefix.
    rc, out = s3("create", other, auth=creds["admin"])
    assert rc == 0 or out.get("code") == "BucketAlreadyOwnedByYou", out
    ok("put", other, "admin.txt", "admin data", auth=creds["admin"])
    assert refused("put", other, key(), "x", auth=creds["app"]) == "AccessDenied"
    assert refused("get", other, "admin.txt", auth=creds["app"]) == "AccessDenied"
    assert refused("list", other, auth=creds["app"]) == "AccessDenied"
    assert refused("delete", other, "admin.txt", auth=creds["app"]) == "AccessDenied"
    assert ok("get", other, "admin.txt", auth=creds["admin"])["body"] == "admin data"


@pytest.mark.parametrize(
    "op",
    [
        ("create", "eterna-app-made"),
        ("set-versioning", "documents", "Suspended"),
        ("put-policy", "documents", '{"Version":"2012-10-17","Statement":[]}'),
        ("delete-policy", "documents"),
        ("put-lifecycle", "documents", "1"),
        ("delete-lifecycle", "bim-models"),
        ("delete-bucket", "bim-models"),
    ],
    ids=lambda op: op[0],
)
def test_app_cannot_create_or_reconfigure_buckets(creds, op):
    # SeaweedFS maps bucket configuration to its coarse "Write" action: the role's bucket policy must deny it.
    assert refused(*op, auth=creds["app"]) == "AccessDenied"


def test_bucket_configuration_is_intact(creds):
    for bucket in BUCKETS:
        assert ok("versioning", bucket, auth=creds["admin"])["status"] == "Enabled"
        assert ok("lifecycle", bucket, auth=creds["admin"])["rules"]


def test_app_cannot_erase_history(creds):
    name = key()
    first = ok("put", "documents", name, "original", auth=creds["app"])["version"]
    ok("put", "documents", name, "replacement", auth=creds["app"])
    assert refused("delete-version", "documents", name, first, auth=creds["app"]) == "AccessDenied"
    ok("delete", "documents", name, auth=creds["app"])  # a delete marker, allowed
    assert refused("get", "documents", name, auth=creds["app"]) == "NoSuchKey"
    assert ok("get", "documents", name, first, auth=creds["app"])["body"] == "original"


@pytest.mark.parametrize("bucket", BUCKETS)
def test_buckets_are_versioned_with_expiry_of_old_versions(creds, bucket):
    assert ok("versioning", bucket, auth=creds["admin"])["status"] == "Enabled"
    rules = ok("lifecycle", bucket, auth=creds["admin"])["rules"]
    assert [r["NoncurrentVersionExpiration"]["NoncurrentDays"] for r in rules if r["Status"] == "Enabled"] == [30]


def test_versioning_keeps_the_overwritten_version(creds):
    name = key()
    first = ok("put", "documents", name, "version one", auth=creds["app"])["version"]
    ok("put", "documents", name, "version two", auth=creds["app"])
    assert ok("get", "documents", name, auth=creds["app"])["body"] == "version two"
    versions = ok("versions", "documents", name, auth=creds["app"])["versions"]
    assert len(versions) == 2
    old = [v["id"] for v in versions if not v["latest"]]
    assert old == [first]
    assert ok("get", "documents", name, first, auth=creds["app"])["body"] == "version one"


def test_data_survives_a_restart(creds):
    name, body = key(), f"persistent {uuid.uuid4()}"
    ok("put", "bim-models", name, body, auth=creds["app"])
    server = node(SERVER)
    server.check_output("systemctl restart seaweedfs")
    deadline = time.monotonic() + 180
    while True:
        rc, out = s3("get", "bim-models", name, auth=creds["app"])
        if rc == 0:
            break
        assert time.monotonic() < deadline, f"object not readable after the restart: {out}"
        time.sleep(3)
    assert out["body"] == body
    assert server.service("seaweedfs").is_running
