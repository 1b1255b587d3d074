"""Shared testinfra helpers for every scenario in molecule/<scenario>/tests.

``node(name)`` returns a testinfra host for another container of the running scenario, so a test
acts from a client host against a server host. ``journal(host, units)`` reads recent journal lines.
``secrets()`` is the repository's secrets filter module (derive the passwords the roles set; ``redact(text)``
removes what it derived),
``ansible_env()`` the environment a test runs ansible-playbook with, ``curl(...)`` one HTTP
request sent from a container, ``patroni_members(hosts)`` Patroni's member list, ``pg_cluster(host)`` the
PostgreSQL cluster a host runs (its release's version),
``wait_until(...)`` a bounded poll, ``play_recap(output)`` and ``changed_results(output)`` what a run reports,
and ``assert_lynis_report(host, name)`` Lynis's verdict on a host;
``app_python``, ``tenant_rows``, ``tenant_objects`` and ``tenant_cache_keys`` read what the stores hold of one tenant.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import testinfra

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def node(name: str):
    """A testinfra host for container ``name`` of the running scenario."""
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")


def journal(host_name: str, units: list[str]) -> str:
    """The last journal lines of ``units`` on ``host_name`` (every failed unit when empty). A unit may be a
    pattern (``postgresql@*-main.service``: whichever version the release runs); systemd names the units it matches."""
    host = node(host_name)
    if not units:
        units = host.run("systemctl --failed --no-legend --plain | awk '{print $1}'").stdout.split()
    matched = []
    for unit in units:
        if any(c in unit for c in "*?["):
            listed = host.run(f"systemctl list-units --all --no-legend --plain {shlex.quote(unit)}").stdout
            matched += [line.split()[0] for line in listed.splitlines() if line.strip()] or [unit]
        else:
            matched.append(unit)
    units = matched
    out = []
    for unit in units:
        res = host.run(f"journalctl -u {unit} -n 60 --no-pager")
        out.append(f"--- {host_name}: journalctl -u {unit} ---\n{res.stdout}{res.stderr}")
    return "\n".join(out)


@functools.cache
def secrets():
    """filter_plugins/secrets.py as a module: ``secrets().derive_secret(key, purpose)``.

    Every master key given to ``derive_secret`` and every secret it returns is remembered, so that
    ``redact`` (molecule/conftest.py applies it to each test report) keeps them out of failure output.
    """
    spec = importlib.util.spec_from_file_location("eterna_secrets", ROOT / "filter_plugins" / "secrets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    derive = module.derive_secret

    @functools.wraps(derive)
    def derive_secret(master_key: str, *args, **kwargs) -> str:
        value = derive(master_key, *args, **kwargs)
        _SECRETS_SEEN.update({str(master_key), value})
        return value

    module.derive_secret = derive_secret
    return module


# Secrets the tests derived (see secrets()); shorter strings are not redacted (they would match ordinary text).
_SECRETS_SEEN: set[str] = set()
_REDACT_MIN_LENGTH = 8


def redact(text: str) -> str:
    """``text`` with every secret the tests derived so far replaced by ``<redacted>``."""
    for secret in sorted(_SECRETS_SEEN, key=len, reverse=True):
        if len(secret) >= _REDACT_MIN_LENGTH:
            text = text.replace(secret, "<redacted>")
    return text


def access_token(
    master_key: str,
    tenant: str,
    role: str = "owner",
    *,
    environment: str = "lab",
    generation: int = 1,
    key: str | None = None,
    kid: str | None = None,
    algorithm: str = "HS256",
    lifetime: int = 300,
    **claims,
) -> str:
    """An access token as the app issues it (PyJWT, HS256 with the jwt_keyring's key of ``environment`` and
    ``generation``, kid ``<environment>-g<generation>``).

    ``key``/``kid`` replace the signing key or the kid header (forgeries), ``lifetime`` sets exp relative to now
    in seconds (negative = already expired), and ``claims`` override or add claims (``None`` removes one).
    """
    import jwt  # PyJWT, a pinned test dependency

    ring = secrets().jwt_keyring(master_key, environment, generation)
    ring_kid, ring_secret = ring.split(",")[0].split(":")[:2]
    now = int(time.time())
    payload = {
        "iss": "eterna-home",
        "aud": "eterna-api",
        "sub": str(uuid.uuid4()),
        "tid": tenant,
        "role": role,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    headers = {"kid": kid if kid is not None else ring_kid}
    return jwt.encode(payload, key if key is not None else ring_secret, algorithm=algorithm, headers=headers)


def ansible_env() -> dict[str, str]:
    """Environment of an ansible-playbook run from a test: the repository's roles and filters, no color."""
    return dict(
        os.environ,
        ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
        ANSIBLE_FILTER_PLUGINS=str(ROOT / "filter_plugins"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
    )


def run_playbook(playbook: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``playbooks/<playbook>`` with ``args`` on the scenario's inventory from the repository root, as an operator
    would: its CompletedProcess with text output captured (a failed run is returned, not raised). Raises
    subprocess.TimeoutExpired after 30 minutes and KeyError outside Molecule (no MOLECULE_INVENTORY_FILE)."""
    return subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(ROOT / "playbooks" / playbook), *args],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=ROOT,
        env=ansible_env(),
    )


def leak_check_of_verbose_run(playbooks: list[str], master_key: str, log: Path) -> subprocess.CompletedProcess:
    """Run ``playbooks`` (paths under playbooks/) with -vvv against the scenario's inventory, output into ``log``,
    then scripts/leak_check.py over it: its CompletedProcess (returncode 0 = no derived secret, signing key,
    token or password hash in the output). Raises CalledProcessError when a playbook fails."""
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    with log.open("w") as fh:
        for playbook in playbooks:
            subprocess.run(
                ["ansible-playbook", "-vvv", "-i", inventory, str(ROOT / "playbooks" / playbook)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=3600,
                check=True,
                env=ansible_env(),
            )
    return subprocess.run(
        [str(ROOT / "scripts" / "leak_check.py"), "--key", master_key, str(log)], capture_output=True, text=True
    )


_RECAP_LINE = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$")
_RESULT_HEADER = re.compile(r"^(TASK|RUNNING HANDLER) \[(.*)\]")
_CHANGED_RESULT = re.compile(r"^changed: \[([^\]]+)\]")


def play_recap(output: str) -> dict[str, dict[str, int]]:
    """The last PLAY RECAP of ansible-playbook ``output`` (text of a run at any verbosity, without color): per host,
    its counters as ints, e.g. ``{"stack-ops": {"ok": 263, "changed": 0, ...}}``. Empty when the output has no
    recap (the run died before it)."""
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("PLAY RECAP")]
    recap: dict[str, dict[str, int]] = {}
    for line in lines[starts[-1] + 1 :] if starts else []:
        match = _RECAP_LINE.match(line.strip())
        if not match:
            break
        recap[match.group(1)] = {k: int(v) for k, v in (pair.split("=") for pair in match.group(2).split())}
    return recap


def changed_results(output: str) -> list[str]:
    """Every ``changed`` result of ansible-playbook ``output`` as ``"<host>: <task or handler name>"``, in order: what
    Molecule's idempotence step lists when a second converge changes something."""
    header, found = "", []
    for line in output.splitlines():
        if match := _RESULT_HEADER.match(line):
            header = match.group(2)
        elif match := _CHANGED_RESULT.match(line):
            found.append(f"{match.group(1)}: {header}")
    return found


def curl(
    client: str,
    url: str,
    method: str = "GET",
    tenant: str | None = None,
    body=None,
    form=None,
    token: str | None = None,
    extra: tuple[str, ...] = (),
):
    """(status, body text) of one request sent with curl from container ``client``: JSON ``body`` or
    multipart ``form`` fields (curl -F syntax), a bearer ``token``, a (claimed) tenant in X-Tenant-ID and
    ``extra`` curl arguments."""
    resp = "/tmp/eterna-curl.resp"  # noqa: S108 - inside the test container
    args = ["curl", "-s", "--max-time", "30", "-o", resp, "-w", "%{http_code}", "-X", method, *extra, url]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    if tenant:
        args += ["-H", f"X-Tenant-ID: {tenant}"]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data", json.dumps(body)]
    for key, value in (form or {}).items():
        args += ["-F", f"{key}={value}"]
    host = node(client)
    status = host.check_output(shlex.join(args))
    return int(status), host.run(f"cat {resp}").stdout


@functools.cache
def pg_cluster(name: str) -> dict[str, str]:
    """The first PostgreSQL cluster of container ``name`` as ``pg_lsclusters`` lists it, so tests read the
    release's version and paths instead of writing them: version, cluster, port, data and conf (directories),
    unit (systemd), json_log_glob (the postgres role's JSON logs)."""
    version, cluster, port, _status, _owner, data, *_ = node(name).check_output("pg_lsclusters --no-header").split()
    return {
        "version": version,
        "cluster": cluster,
        "port": port,
        "data": data,
        "conf": f"/etc/postgresql/{version}/{cluster}",
        "unit": f"postgresql@{version}-{cluster}",
        "json_log_glob": f"/var/log/postgresql/postgresql-{version}-{cluster}-*.json",
    }


def patroni_members(hosts: Iterable[str]) -> list[dict]:
    """patronictl's member list (``Member``, ``Role``, ``State``, ``TL``, ``Lag in MB``...) asked on the first of
    ``hosts`` (db containers running Patroni) whose patronictl answers; [] when none does."""
    for host in hosts:
        res = node(host).run('patronictl -c "$(ls /etc/patroni/*-main.yml)" list -f json')
        if res.rc == 0:
            return json.loads(res.stdout)
    return []


# The app's management wrapper on an app host (the current release) and the buckets the app writes.
APP_MANAGE = "eterna-app-manage /opt/eterna-app/current"
APP_BUCKETS = ("documents", "bim-models")


def app_python(host: str, script: str) -> str:
    """stdout of the Python ``script`` run with the app's settings and clients on app host ``host``
    (``eterna-app-manage ... python -c``). Raises AssertionError when it exits non-zero."""
    return node(host).check_output(f"{APP_MANAGE} python -c {shlex.quote(script)}")


def tenant_rows(host: str, tenant: str, psql: str = "runuser -u postgres -- psql -d eterna") -> dict[str, int]:
    """Rows naming ``tenant`` (a tenant id made by the test) per public table with a ``tenant_id`` column, plus its
    row in ``tenants``, read straight from PostgreSQL with the ``psql`` command line on container ``host`` (default:
    the local cluster's eterna database as postgres; a restored copy by its socket directory and port)."""
    h = node(host)

    def q(sql: str) -> str:
        return h.check_output(f"cd /tmp && {psql} -Atc {shlex.quote(sql)}")

    tables = q(
        "SELECT table_name FROM information_schema.columns WHERE column_name = 'tenant_id' "
        "AND table_schema = 'public' ORDER BY 1"
    ).split()
    # Table names from the catalogue, tenant ids from the test: no outside input reaches the SQL.
    counts = {t: int(q(f"SELECT count(*) FROM {t} WHERE tenant_id = '{tenant}'")) for t in tables}  # noqa: S608
    counts["tenants"] = int(q(f"SELECT count(*) FROM tenants WHERE id = '{tenant}'"))  # noqa: S608
    return counts


def tenant_objects(host: str, tenant: str, buckets: tuple[str, ...] = APP_BUCKETS) -> list[list]:
    """Every S3 object version and delete marker under ``tenant``/ in ``buckets``, listed with the app's own client
    on app host ``host``: sorted [bucket, key, version id, is a delete marker]."""
    script = (
        "import json; from app.storage import s3_client; s3 = s3_client(); out = []\n"
        f"for b in {list(buckets)!r}:\n"
        f"    r = s3.list_object_versions(Bucket=b, Prefix={tenant + '/'!r})\n"
        "    out += [[b, v['Key'], v['VersionId'], False] for v in r.get('Versions', [])]\n"
        "    out += [[b, v['Key'], v['VersionId'], True] for v in r.get('DeleteMarkers', [])]\n"
        "print(json.dumps(sorted(out)))"
    )
    return json.loads(app_python(host, script))


def tenant_cache_keys(host: str, tenant: str) -> list[str]:
    """The Redis keys of ``tenant`` (the app's tenant key pattern), listed by the app's client on app host ``host``."""
    script = (
        "from app.cache import redis_client, tenant_key_pattern\n"
        f"print('\\n'.join(sorted(k.decode() for k in redis_client().scan_iter(match=tenant_key_pattern({tenant!r})))))"
    )
    return app_python(host, script).split()


# Hardening index Lynis must give every host (issue #19); the README's table keeps the figures.
LYNIS_MIN_INDEX = 85


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 2.0) -> bool:
    """Poll ``predicate`` every ``step`` seconds for up to ``timeout`` seconds; its last answer (bool)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def assert_lynis_report(host, name: str, capsys) -> None:
    """Print Lynis's hardening index, tests, warnings and suggestions from ``host``'s /var/log/lynis-report.dat
    (written by ``lynis audit system``) and assert no warning and an index of at least LYNIS_MIN_INDEX.

    Raises AssertionError (a warning, a low index) or AttributeError (no report: Lynis did not finish)."""
    report = host.file("/var/log/lynis-report.dat").content_string
    index = int(re.search(r"^hardening_index=(\d+)$", report, re.M).group(1))
    tests = int(re.search(r"^lynis_tests_done=(\d+)$", report, re.M).group(1))
    warnings = re.findall(r"^warning\[\]=(.*)$", report, re.M)
    suggestions = re.findall(r"^suggestion\[\]=([^|]+\|[^|]+)", report, re.M)
    version = (re.search(r"^lynis_version=(.*)$", report, re.M) or [None, "?"])[1]
    with capsys.disabled():
        print(f"\nLynis {version} {name}: hardening index {index} ({tests} tests), {len(warnings)} warnings")
        for s in suggestions:
            print(f"  suggestion {s}")
    assert not warnings, warnings
    assert index >= LYNIS_MIN_INDEX, suggestions
