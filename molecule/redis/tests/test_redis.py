"""The redis role, exercised from a client container: ACL users, TLS, persistence, exporter, file modes.

The same promises hold for both implementations the role installs (Redis, Valkey): the one under test is
ETERNA_REDIS_IMPLEMENTATION when set (molecule.yml passes it to the role), else the release's default."""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
import time
import uuid

import pytest
from eterna_testinfra import node, secrets

JOURNAL_UNITS = ["redis-server", "valkey-server", "prometheus-redis-exporter"]
JOURNAL_HOSTS = ["redis-cache"]

SERVER = "redis-cache"
CLIENT = "redis-client"
CA = "/root/eterna-internal-ca.crt"  # copied to the client by converge.yml
USERS = {"app": "eterna", "admin": "admin", "exporter": "exporter"}
NOPERM = "NOPERM"

# What follows the implementation (the role's vars/main.yml promises these names and paths).
IMPLEMENTATIONS = {
    "redis": {
        "package": "redis-server",
        "service": "redis-server",
        "user": "redis",
        "conf_dir": "/etc/redis",
        "conf_file": "/etc/redis/redis.conf",
        "data_dir": "/var/lib/redis",
        "cli": "redis-cli",
        "version_field": "redis_version",
    },
    "valkey": {
        "package": "valkey-server",
        "service": "valkey-server",
        "user": "valkey",
        "conf_dir": "/etc/valkey",
        "conf_file": "/etc/valkey/valkey.conf",
        "data_dir": "/var/lib/valkey",
        "cli": "valkey-cli",
        "version_field": "valkey_version",
    },
}
# The role's default per Debian major version (README: Redis 7.0 on 12, Valkey on 13).
DEFAULT_IMPLEMENTATION = {"12": "redis", "13": "valkey"}


@functools.cache
def impl() -> dict[str, str]:
    """The implementation under test, with its names and paths."""
    release = node(SERVER).check_output(". /etc/os-release && echo $VERSION_ID").strip()
    name = os.environ.get("ETERNA_REDIS_IMPLEMENTATION") or DEFAULT_IMPLEMENTATION[release]
    return {"name": name, **IMPLEMENTATIONS[name]}


@functools.cache
def password(account: str) -> str:
    """The password the role derives for ``account`` (app, admin, exporter)."""
    key = node(SERVER).ansible.get_variables()["eterna_master_key"]
    purpose = {"app": "redis/eterna", "admin": "redis/admin", "exporter": "redis/exporter"}[account]
    return secrets().derive_secret(key, purpose)


def cli(
    *args: str,
    account: str | None = "app",
    secret: str | None = None,
    tls: bool = False,
    where: str = CLIENT,
    host: str = SERVER,
    stdin: str | None = None,
    cacert: str = CA,
):
    """Run the implementation's CLI on ``where`` against ``host``; stdout and stderr are joined in ``.out``."""
    parts = ["timeout", "20", impl()["cli"], "--no-auth-warning", "-h", host, "-p", "6380" if tls else "6379"]
    if tls:
        parts += ["--tls", "--cacert", cacert]
    env = ""
    if account is not None:
        parts += ["--user", USERS[account]]
        env = f"REDISCLI_AUTH={shlex.quote(secret if secret is not None else password(account))} "
    cmd = env + " ".join(shlex.quote(p) for p in parts + list(args))
    if stdin is not None:
        cmd = f"printf %s {shlex.quote(stdin)} | {cmd}"
    res = node(where).run(cmd)
    res.out = (res.stdout + res.stderr).strip()
    return res


def admin(*args: str):
    """The CLI as the admin user on the server itself (localhost)."""
    return cli(*args, account="admin", where=SERVER, host="127.0.0.1")


def unique_key(label: str) -> str:
    return f"eterna:test:{label}:{uuid.uuid4().hex}"


def wait_until_ready(attempts: int = 60) -> None:
    """Poll (bounded, not timed) until Redis answers PING and has finished loading its data."""
    for _ in range(attempts):
        if admin("PING").out == "PONG" and "loading:0" in admin("INFO", "persistence").out:
            return
        time.sleep(1)
    pytest.fail(f"{impl()['service']} did not come back")


# --------------------------------------------------------------------------------------------------
# service, listeners


@pytest.mark.parametrize("service", ["server", "prometheus-redis-exporter"])
def test_services_run_and_start_at_boot(service):
    svc = node(SERVER).service(impl()["service"] if service == "server" else service)
    assert svc.is_running
    assert svc.is_enabled


@pytest.mark.parametrize("service", ["server", "prometheus-redis-exporter"])
def test_services_start_at_boot_once_the_network_is_online(service):
    """They bind the private address: Debian's units alone may start before it is configured."""
    unit = impl()["service"] if service == "server" else service
    show = node(SERVER).check_output(f"systemctl show -p After,Wants {unit}")
    deps = {key: value.split() for key, value in (line.split("=", 1) for line in show.splitlines())}
    assert "network-online.target" in deps["After"] and "network-online.target" in deps["Wants"], show


def test_only_the_chosen_implementation_is_installed():
    other = next(v for k, v in IMPLEMENTATIONS.items() if k != impl()["name"])
    assert node(SERVER).package(impl()["package"]).is_installed
    assert not node(SERVER).package(other["package"]).is_installed


def test_listeners_are_private_and_local_only():
    srv = node(SERVER)
    private = srv.check_output("ip -4 route get 1.1.1.1 | grep -o 'src [0-9.]*' | cut -d' ' -f2").strip()
    assert private.count(".") == 3
    for port in (6379, 6380):
        assert srv.socket(f"tcp://127.0.0.1:{port}").is_listening
        assert srv.socket(f"tcp://{private}:{port}").is_listening
        assert not srv.socket(f"tcp://0.0.0.0:{port}").is_listening
    assert srv.socket(f"tcp://{private}:9121").is_listening
    assert not srv.socket("tcp://0.0.0.0:9121").is_listening
    assert not srv.socket("tcp://127.0.0.1:9121").is_listening


# --------------------------------------------------------------------------------------------------
# authentication and authorisation


def test_app_user_writes_and_reads_from_the_client():
    key = unique_key("setget")
    assert cli("SET", key, "hello", "EX", "600").out == "OK"
    assert cli("GET", key).out == "hello"
    assert cli("ACL", "WHOAMI", account="admin").out == "admin"  # the admin can, over the network too


def test_app_user_has_what_cache_rate_limits_and_celery_need():
    key = unique_key("ratelimit")
    out = cli(stdin=f"MULTI\nINCR {key}\nEXPIRE {key} 60\nEXEC\n").out
    assert "1" in out.splitlines() and "ERR" not in out and NOPERM not in out
    lua = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
    assert cli("EVAL", lua, "1", key, "5").out == "6"
    assert cli("PUBLISH", "celery-task-meta-probe", "done").out == "0"
    assert cli("SCAN", "0", "MATCH", "eterna:test:ratelimit:*", "COUNT", "1000").rc == 0
    assert int(cli("TTL", key).out) > 0


def test_unauthenticated_access_is_refused():
    res = cli("GET", "eterna:test:pre-existing", account=None)
    assert "NOAUTH" in res.out
    assert "survived" not in res.out
    assert "NOAUTH" in cli("PING", account=None).out


@pytest.mark.parametrize("account", ["app", "admin", "exporter"])
def test_wrong_password_is_refused(account):
    res = cli("GET", "eterna:test:pre-existing", account=account, secret="not-" + password(account))
    assert "WRONGPASS" in res.out
    assert "survived" not in res.out


def test_default_user_is_disabled():
    res = cli("AUTH", "default", "", account=None)
    assert "WRONGPASS" in res.out or "ERR" in res.out
    flags = admin("ACL", "GETUSER", "default").out.splitlines()
    assert "off" in flags
    assert "nopass" not in flags


@pytest.fixture(scope="module")
def canary():
    """A key written before the dangerous attempts; it must still be there after them."""
    key = unique_key("canary")
    assert cli("SET", key, "still-here").out == "OK"
    return key


@pytest.mark.parametrize(
    "command",
    [
        ["FLUSHALL"],
        ["FLUSHDB"],
        ["CONFIG", "GET", "maxmemory"],
        ["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
        ["DEBUG", "OBJECT", "eterna:test:pre-existing"],
        ["SHUTDOWN", "NOSAVE"],
        ["KEYS", "*"],
        ["MONITOR"],
        ["ACL", "LIST"],
        ["SCRIPT", "FLUSH"],
        ["BGREWRITEAOF"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_app_user_cannot_run_dangerous_commands(command, canary):
    res = cli(*command)
    # DEBUG is refused even earlier (enable-debug-command no); the ACL must deny it on its own as well.
    assert NOPERM in res.out or "DEBUG command not allowed" in res.out, res.out
    assert "no permissions" in admin("ACL", "DRYRUN", USERS["app"], *command).out


def test_dangerous_attempts_changed_nothing(canary):
    assert cli("GET", canary).out == "still-here"
    assert admin("CONFIG", "GET", "maxmemory-policy").out.splitlines()[-1] == "volatile-lru"


def test_exporter_user_only_monitors():
    # The server reports the version of its Debian package (e.g. 7.0.15 from 5:7.0.15-1~deb12u1).
    version = node(SERVER).check_output(f"dpkg-query -W -f '${{Version}}' {impl()['package']}")
    upstream = version.split(":")[-1].split("-")[0].split("+")[0]
    assert f"{impl()['version_field']}:{upstream}" in cli("INFO", "server", account="exporter").out.splitlines()
    assert NOPERM in cli("GET", "eterna:test:pre-existing", account="exporter").out
    assert NOPERM in cli("SET", unique_key("exporter"), "x", account="exporter").out
    assert NOPERM in cli("FLUSHALL", account="exporter").out


# --------------------------------------------------------------------------------------------------
# TLS


def test_tls_with_the_internal_ca():
    key = unique_key("tls")
    assert cli("SET", key, "over-tls", "EX", "600", tls=True).out == "OK"
    assert cli("GET", key, tls=True).out == "over-tls"
    assert "WRONGPASS" in cli("PING", tls=True, secret="not-" + password("app")).out


def test_tls_certificate_verifies_for_the_host_name():
    res = node(CLIENT).run(
        f"openssl s_client -connect {SERVER}:6380 -CAfile {CA} -verify_hostname {SERVER} -verify_return_error "
        "-brief </dev/null"
    )
    assert res.rc == 0, res.stderr
    assert "Verification: OK" in res.stderr


def test_tls_refuses_an_untrusting_client_and_old_protocols():
    other_ca = node(CLIENT).check_output("ls /usr/share/ca-certificates/mozilla/*.crt | head -n 1")
    res = cli("PING", tls=True, cacert=other_ca)
    assert res.out != "PONG"
    old = node(CLIENT).run(f"openssl s_client -connect {SERVER}:6380 -CAfile {CA} -tls1_1 </dev/null")
    assert old.rc != 0


# --------------------------------------------------------------------------------------------------
# persistence and memory


def test_persistence_and_memory_settings():
    def conf(name: str) -> str:
        return admin("CONFIG", "GET", name).out.splitlines()[-1]

    assert conf("appendonly") == "yes"
    assert conf("appendfsync") == "everysec"
    assert conf("save") == "3600 1 300 100 60 10000"
    assert conf("maxmemory-policy") == "volatile-lru"
    assert conf("dir") == impl()["data_dir"]
    memtotal_kb = int(node(SERVER).check_output("awk '/^MemTotal:/ {print $2}' /proc/meminfo"))
    assert int(conf("maxmemory")) == (memtotal_kb // 1024) * 50 // 100 * 1024 * 1024  # README formula


def test_data_of_the_stock_server_survived_the_switch_to_aof():
    assert cli("GET", "eterna:test:pre-existing").out == "survived-aof-conversion"
    assert node(SERVER).file(f"{impl()['data_dir']}/appendonlydir").is_directory


def test_key_survives_a_restart():
    key = unique_key("restart")
    assert cli("SET", key, "kept").out == "OK"
    node(SERVER).check_output(f"systemctl restart {impl()['service']}")
    wait_until_ready()
    assert cli("GET", key).out == "kept"


def test_fsynced_key_survives_kill_9():
    srv = node(SERVER)
    key = unique_key("kill9")
    assert cli("SET", key, "durable").out == "OK"
    assert cli("WAIT", "0", "100").out == "0"  # no replicas: durability comes from the local AOF
    for _ in range(30):  # the AOF buffer is written and no background fsync is pending
        info = admin("INFO", "persistence").out
        if "aof_buffer_length:0" in info and "aof_pending_bio_fsync:0" in info:
            break
        time.sleep(1)
    else:
        pytest.fail("the AOF was not flushed")
    srv.check_output(f"sync {impl()['data_dir']}/appendonlydir/*.incr.aof")
    pid = srv.check_output(f"systemctl show -p MainPID --value {impl()['service']}").strip()
    srv.check_output(f"kill -9 {pid}")
    for _ in range(60):  # Debian's unit has Restart=always
        new_pid = srv.check_output(f"systemctl show -p MainPID --value {impl()['service']}").strip()
        if new_pid not in ("0", pid):
            break
        time.sleep(1)
    else:
        pytest.fail(f"systemd did not restart {impl()['service']} after kill -9")
    wait_until_ready()
    assert cli("GET", key).out == "durable"


def test_service_cannot_rewrite_its_own_configuration():
    res = admin("CONFIG", "REWRITE")
    assert "ERR" in res.out and res.out != "OK"


# --------------------------------------------------------------------------------------------------
# exporter


def test_exporter_reports_redis_up_from_the_client():
    out = node(CLIENT).check_output(f"curl -sf http://{SERVER}:9121/metrics")
    lines = out.splitlines()
    assert "redis_up 1" in lines
    assert 'redis_exporter_last_scrape_error{err=""} 0' in lines
    assert any(line.startswith("redis_memory_max_bytes ") and float(line.split()[1]) > 0 for line in lines)


# --------------------------------------------------------------------------------------------------
# files and units


@pytest.mark.parametrize(
    ("path", "owner", "mode"),
    [
        ("{conf_dir}/users.acl", "{user}", 0o640),
        ("{conf_file}", "{user}", 0o640),
        ("{conf_dir}/tls/redis.key", "{user}", 0o640),
        ("/etc/default/prometheus-redis-exporter", "prometheus", 0o600),
    ],
)
def test_secret_file_modes(path, owner, mode):
    f = node(SERVER).file(path.format(**impl()))
    owner = group = owner.format(**impl())
    assert f.exists
    assert f.user == owner
    assert f.group == group
    assert f.mode == mode


def test_acl_file_holds_hashes_only():
    acl = node(SERVER).file(f"{impl()['conf_dir']}/users.acl").content_string
    for account in USERS:
        secret = password(account)
        assert secret not in acl
        assert f"#{hashlib.sha256(secret.encode()).hexdigest()}" in acl
    leaked = node(SERVER).run(
        f"grep -rlF -e {shlex.quote(password('app'))} -e {shlex.quote(password('admin'))} "
        f"{impl()['conf_dir']} {impl()['data_dir']}"
    )
    assert leaked.rc == 1, f"plaintext password found in {leaked.stdout}"
    assert node(SERVER).run(f"find {impl()['conf_dir']} -name '*~'").stdout == "", "backup files left behind"


def test_units_are_hardened():
    srv = node(SERVER)
    exporter = srv.check_output(
        "systemctl show prometheus-redis-exporter -p NoNewPrivileges -p ProtectSystem -p User -p PrivateTmp"
    )
    assert "NoNewPrivileges=yes" in exporter
    assert "ProtectSystem=strict" in exporter
    assert "User=prometheus" in exporter
    server = srv.check_output(
        f"systemctl show {impl()['service']} -p ProtectSystem -p User -p ReadOnlyPaths -p ReadWritePaths"
    )
    assert f"User={impl()['user']}" in server
    assert "ProtectSystem=strict" in server
    assert impl()["conf_dir"] in server.split("ReadOnlyPaths=")[1].splitlines()[0]
    assert impl()["conf_dir"] not in server.split("ReadWritePaths=")[1].splitlines()[0]


def test_refused_configuration_was_rolled_back():
    """side_effect.yml ran the role with a directive Redis refuses; the previous files must be back."""
    srv = node(SERVER)
    tried = srv.run(f"journalctl -u {impl()['service']} --no-pager | grep -c 'no-such-directive'")
    assert int(tried.stdout.strip() or 0) > 0, "the refused configuration was never tried"
    assert "no-such-directive" not in srv.file(impl()["conf_file"]).content_string
    assert srv.service(impl()["service"]).is_running
    assert cli("GET", "eterna:test:pre-existing").out == "survived-aof-conversion"
