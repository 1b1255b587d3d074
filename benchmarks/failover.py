#!/usr/bin/env python3
"""Failover time (RTO) and lost acknowledged writes (RPO) of the Patroni cluster under a steady writer.

Runs against the containers of the molecule `patroni` scenario (converge it first:
`flock /tmp/molecule-patroni.lock molecule converge -s patroni`). For each fault a writer on the client commits
numbered rows through the router (HAProxy, 127.0.0.1:5000), one connection per row, and logs every attempt with
its time and outcome. The fault hits the current leader; the script then measures:

- RTO: seconds from the fault to the first acknowledged commit among those started once the fault was in effect (a
  commit already in flight when the fault hits does not count; the RTO includes the fault command's own duration,
  the switchover's for a switchover);
- lost: acknowledged ids absent from the table afterwards (the RPO in rows; 0 expected in synchronous mode);
- failed and read-only: attempts that failed during the outage, and those refused as read-only;
- writable: the most members found accepting writes at once while the fault lasted (docker exec, every ~0.5 s).

Faults: kill (kill -9 of the leader's postmaster), switchover (planned, REST API), stop (docker stop of the leader's
container), pause (docker pause: a frozen leader), partition (nftables in the leader's container drops every packet
but loopback: molecule/patroni/files/eterna-partition). Each fault runs in synchronous mode, then asynchronous mode
(`--mode sync` or `--mode async` for one): the script switches `synchronous_mode` in etcd with
`patronictl edit-config` and puts the cluster's value back at the end (a converge does too). Prints a table and the
load average; asserts nothing.

    benchmarks/failover.py [--mode sync|async|both] [FAULT ...]
"""

# ruff: noqa: S608 - the SQL holds table names and ids this script generates, never input.

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = ["patroni-db1", "patroni-db2", "patroni-db3"]
CLIENT = "patroni-client"
CA = "/etc/ssl/certs/ca-certificates.crt"
LOG = "/root/bench-writer"
FAULTS = ("kill", "switchover", "stop", "pause", "partition")
PSQL_LOCAL = ["runuser", "-u", "postgres", "--", "psql", "-X", "-A", "-t", "-c"]
MODES = {"sync": True, "async": False}
# Members cut off the network by the partition fault: patronictl there cannot reach etcd.
ISOLATED: set[str] = set()


def secret(purpose: str) -> str:
    """A password the roles derive from the public molecule key (never valid outside tests)."""
    key = re.search(r"eterna_master_key: *([0-9a-f]{64})", (ROOT / ".config/molecule/config.yml").read_text())[1]
    spec = importlib.util.spec_from_file_location("secrets", ROOT / "filter_plugins" / "secrets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.derive_secret(key, purpose)


def sh(host: str, command: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    """Run ``command`` with bash in container ``host``; ``env`` goes through docker exec -e, never the command."""
    args = ["docker", "exec"]
    for name, value in (env or {}).items():
        args += ["-e", f"{name}={value}"]
    res = subprocess.run([*args, host, "bash", "-c", command], capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"{host}: {command[:60]}: {res.stderr.strip()[-300:]}")
    return res.stdout


def running(host: str) -> bool:
    res = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", host], capture_output=True, text=True)
    return res.stdout.strip() == "running"


def members() -> list[dict]:
    for host in MEMBERS:
        if not running(host) or host in ISOLATED:
            continue
        try:
            res = subprocess.run(
                ["docker", "exec", host, "bash", "-c", "patronictl -c /etc/patroni/*-main.yml list -f json"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except subprocess.TimeoutExpired:  # a loaded host: ask the next member
            continue
        if res.returncode == 0:
            return json.loads(res.stdout)
    return []


def leader() -> str | None:
    return next((m["Member"] for m in members() if m["Role"] == "Leader"), None)


def wait_healthy(timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        # Replicas replicating on the leader's timeline with a known lag: a demoted leader runs before its rewind
        # too, and a fault during that rewind would break it (the next fault must wait for it).
        ms = members()
        leaders = [m for m in ms if m["Role"] == "Leader" and m["State"] == "running"]
        if (
            len(ms) == 3
            and len(leaders) == 1
            and all(m["State"] in ("running", "streaming") and m.get("TL") == leaders[0].get("TL") for m in ms)
            and all(isinstance(m.get("Lag in MB"), (int, float)) for m in ms if m is not leaders[0])
        ):
            return
        time.sleep(1)
    raise RuntimeError(f"the cluster is not healthy: {members()}")


def psql(statement: str, attempts: int = 60) -> str:
    """Run ``statement`` through the router, retrying for a minute while a leader settles."""
    conninfo = f"host=127.0.0.1 port=5000 dbname=eterna user=eterna sslmode=verify-full sslrootcert={CA}"
    for attempt in range(attempts):
        try:
            return sh(
                CLIENT,
                f"psql -X -A -t {shlex.quote(conninfo)} -c {shlex.quote(statement)}",
                env={"PGPASSWORD": secret("postgres/eterna")},
            )
        except RuntimeError:
            if attempt == attempts - 1:
                raise
            time.sleep(1)
    return ""


def start_writer(table: str) -> None:
    psql(f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int PRIMARY KEY)")
    loop = (
        f"rm -f {LOG}.*; i=0; while [ ! -e {LOG}.stop ]; do i=$((i+1)); start=$(date +%s.%N); "
        f"err=$(psql -X -q 'host=127.0.0.1 port=5000 dbname=eterna user=eterna sslmode=verify-full sslrootcert={CA} "
        f"connect_timeout=2' -c 'INSERT INTO {table} VALUES ('$i')' 2>&1 >/dev/null); rc=$?; "
        f'ro=0; case "$err" in *read-only*) ro=1;; esac; echo "$i $start $(date +%s.%N) $rc $ro" >> {LOG}.log; '
        f"sleep 0.05; done"
    )
    subprocess.Popen(
        ["docker", "exec", "-d", "-e", f"PGPASSWORD={secret('postgres/eterna')}", CLIENT, "bash", "-c", loop]
    )


def attempts() -> list[tuple[int, float, float, int, int]]:
    """The writer's attempts: (id, start, end, psql exit code, 1 if refused as read-only)."""
    out = sh(CLIENT, f"cat {LOG}.log", check=False)
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 5:
            rows.append((int(parts[0]), float(parts[1]), float(parts[2]), int(parts[3]), int(parts[4])))
    return rows


def fault(kind: str, host: str) -> None:
    if kind == "kill":
        sh(host, "kill -9 $(head -1 /var/lib/postgresql/*/main/postmaster.pid)")
    elif kind == "switchover":
        # In synchronous mode Patroni hands over only to the synchronous standby.
        others = sorted((m for m in members() if m["Role"] != "Leader"), key=lambda m: m["Role"] != "Sync Standby")
        candidate = others[0]["Member"]
        sh(host, f"patronictl -c /etc/patroni/*-main.yml switchover --leader {host} --candidate {candidate} --force")
    elif kind == "stop":
        subprocess.run(["docker", "stop", "-t", "1", host], check=True, capture_output=True)
    elif kind == "pause":
        subprocess.run(["docker", "pause", host], check=True, capture_output=True)
    elif kind == "partition":
        ISOLATED.add(host)
        sh(host, "eterna-partition on")


def restore(kind: str, host: str) -> None:
    if kind == "stop":
        subprocess.run(["docker", "start", host], check=True, capture_output=True)
    elif kind == "pause":
        subprocess.run(["docker", "unpause", host], check=True, capture_output=True)
    elif kind == "partition":
        sh(host, "eterna-partition off")
        ISOLATED.discard(host)


def writable() -> int:
    """How many members accept writes right now (a local psql through docker exec: no network needed)."""
    count = 0
    for host in MEMBERS:
        if running(host):
            res = subprocess.run(
                ["docker", "exec", host, *PSQL_LOCAL, "SELECT pg_is_in_recovery()"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            count += res.returncode == 0 and res.stdout.strip() == "f"
    return count


def set_synchronous_mode(enabled: bool) -> None:
    """Write synchronous_mode to the cluster's dynamic configuration (etcd) and wait until the leader applies it."""
    host = next(h for h in MEMBERS if running(h) and h not in ISOLATED)
    value = "true" if enabled else "false"
    sh(host, f"patronictl -c /etc/patroni/*-main.yml edit-config --force -s synchronous_mode={value}")
    deadline = time.time() + 120
    while time.time() < deadline:
        roles = [m["Role"] for m in members()]
        if ("Sync Standby" in roles) == enabled:
            return
        time.sleep(1)
    raise RuntimeError(f"synchronous_mode={value} not applied: {members()}")


def measure(kind: str, mode: str) -> dict:
    wait_healthy()
    old = leader()
    table = f"bench_{kind}_{mode}"
    start_writer(table)
    time.sleep(5)
    t0 = time.time()
    fault(kind, old)
    t1 = time.time()
    # Wait for a commit after the fault, then let the writer run on the new leader a little; count the writable
    # members all along.
    deadline = t0 + 300
    first_ok = None
    most_writable = 0
    while time.time() < deadline and first_ok is None:
        time.sleep(0.5)
        most_writable = max(most_writable, writable())
        first_ok = next((end for _, start, end, rc, _ in attempts() if start > t1 and rc == 0), None)
    settle = time.time() + 5
    while time.time() < settle:
        most_writable = max(most_writable, writable())
    sh(CLIENT, f"touch {LOG}.stop")
    time.sleep(2)
    rows = attempts()
    restore(kind, old)
    acked = {i for i, _, _, rc, _ in rows if rc == 0}
    present = {int(v) for v in psql(f"SELECT id FROM {table}").split()}
    during = [r for r in rows if r[2] > t0 and (first_ok is None or r[2] < first_ok)]
    return {
        "fault": kind,
        "mode": mode,
        "writable": most_writable,
        "old": old,
        "new": leader(),
        "rto": (first_ok - t0) if first_ok else None,
        "acked": len(acked),
        "lost": len(acked - present),
        "failed": sum(r[3] != 0 for r in during),
        "read_only": sum(r[4] for r in rows),
    }


def main() -> int:
    args = sys.argv[1:]
    modes = ["sync", "async"]
    if args[:1] == ["--mode"] and len(args) > 1:
        modes = list(MODES) if args[1] == "both" else [args[1]]
        args = args[2:]
    faults = args or list(FAULTS)
    bad = [f for f in faults if f not in FAULTS] + [m for m in modes if m not in MODES]
    if bad or not all(running(h) for h in [*MEMBERS, CLIENT]):
        print(__doc__)
        return 2
    wait_healthy()
    lead = sh(leader(), "hostname -I").split()[0]
    config = json.loads(sh(CLIENT, f"curl -s --cacert {CA} https://{lead}:8008/config"))
    load_before = os.getloadavg()
    print(
        f"Patroni failover under a writer: ttl={config.get('ttl')} loop_wait={config.get('loop_wait')} "
        f"retry_timeout={config.get('retry_timeout')} primary_start_timeout={config.get('primary_start_timeout', 300)}"
        f" (the cluster's synchronous_mode={config.get('synchronous_mode')} is put back)"
    )
    print(
        f"{'mode':<6} {'fault':<11} {'old leader':<12} {'new leader':<12} {'RTO s':>7} {'acked':>6} {'lost':>5} "
        f"{'failed':>7} {'read-only':>9} {'writable':>8} {'load':>5}",
        flush=True,
    )
    try:
        for mode in modes:
            set_synchronous_mode(MODES[mode])
            for kind in faults:
                r = measure(kind, mode)
                rto = f"{r['rto']:.1f}" if r["rto"] is not None else "none"
                load = os.getloadavg()[0]
                print(
                    f"{r['mode']:<6} {r['fault']:<11} {r['old']:<12} {r['new'] or '-':<12} {rto:>7} {r['acked']:>6} "
                    f"{r['lost']:>5} {r['failed']:>7} {r['read_only']:>9} {r['writable']:>8} {load:>5.1f}",
                    flush=True,
                )
    finally:
        for host in list(ISOLATED):
            restore("partition", host)
        wait_healthy()
        set_synchronous_mode(bool(config.get("synchronous_mode")))
    load_after = os.getloadavg()
    print(
        f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
        f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} ({os.cpu_count()} CPUs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
