#!/usr/bin/env bash
# Backup and restore throughput of pgBackRest (the backup role's settings: zst, aes-256-cbc, TLS between hosts)
# for a database of at least 1 GB, next to a raw copy of the same data directory on the same host (the physical
# floor), printed as ratios. Uses the molecule `backup` scenario's containers, converging them when absent
# (`molecule destroy -s backup` removes them afterwards). Figures only; nothing is asserted.
#   benchmarks/backup_throughput.sh            # BENCH_GB=1.2 by default
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
DB=backup-db REPO=backup-repo
GB=${BENCH_GB:-1.2}

running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
if ! running "$DB" || ! running "$REPO"; then
  echo "converging the backup scenario first (molecule converge -s backup)..." >&2
  molecule converge -s backup >/dev/null
fi
on() { local host=$1; shift; docker exec "$host" bash -c "$*"; }
# The cluster's data directory (the release's PostgreSQL version: 15 on Debian 12, 17 on Debian 13).
DATA=$(on "$DB" "pg_lsclusters --no-header" | awk 'NR == 1 { print $6 }')
psql_db() { on "$DB" "runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d ${2:-postgres} -c \"$1\""; }
secs() { date +%s.%N; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1048576 / s }'; }

echo "creating a ${GB} GB database (md5 text rows, about 2:1 compressible)..." >&2
psql_db "DROP DATABASE IF EXISTS eterna_bench" >/dev/null
psql_db "CREATE DATABASE eterna_bench" >/dev/null
rows=$(awk -v gb="$GB" 'BEGIN { printf "%d", gb * 1073741824 / 136 }')
psql_db "CREATE TABLE bench (id bigint, a text, b text, c text) WITH (autovacuum_enabled = off);
         INSERT INTO bench SELECT g, md5(g::text), md5((g * 7)::text), md5(random()::text) FROM generate_series(1, $rows) g;
         CHECKPOINT;" eterna_bench >/dev/null
bytes=$(on "$DB" "du -sb $DATA | cut -f1")

echo "raw copy of the data directory on $DB..." >&2
on "$DB" "rm -rf /var/tmp/bench-raw; sync"
t0=$(secs); on "$DB" "cp -a $DATA /var/tmp/bench-raw && sync"; t1=$(secs)
raw=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
on "$DB" "rm -rf /var/tmp/bench-raw"

echo "pgBackRest full backup ($DB -> $REPO)..." >&2
t0=$(secs); on "$REPO" "cd /tmp && runuser -u pgbackrest -- pgbackrest --stanza=eterna --type=full --log-level-console=warn backup"; t1=$(secs)
backup=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
label=$(on "$REPO" "cd /tmp && runuser -u pgbackrest -- pgbackrest --stanza=eterna --output=json info" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["backup"][-1]["label"])')
repo_bytes=$(on "$REPO" "cd /tmp && runuser -u pgbackrest -- pgbackrest --stanza=eterna --output=json info" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["backup"][-1]["info"]["repository"]["delta"])')

echo "pgBackRest restore of that backup on $REPO (no WAL replay)..." >&2
target=/var/lib/eterna-backup/drill/bench
on "$REPO" "rm -rf $target && install -d -o pgbackrest -g pgbackrest -m 0700 $target"
t0=$(secs)
on "$REPO" "cd /tmp && runuser -u pgbackrest -- pgbackrest --config=/etc/pgbackrest/drill.conf --stanza=eterna --set=$label --pg1-path=$target --type=immediate --log-level-console=error restore && sync"
t1=$(secs)
restore=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')

on "$REPO" "rm -rf $target; cd /tmp && runuser -u pgbackrest -- pgbackrest --stanza=eterna --set=$label --log-level-console=error expire" || true
psql_db "DROP DATABASE eterna_bench" >/dev/null

printf '%-34s %10s\n' "data directory" "$(awk -v b="$bytes" 'BEGIN { printf "%.2f GiB", b / 1073741824 }')"
printf '%-34s %10s\n' "repository size (zst, encrypted)" "$(awk -v b="$repo_bytes" 'BEGIN { printf "%.2f GiB", b / 1073741824 }')"
printf '%-34s %8s s %8s MiB/s\n' "raw copy (cp -a, same host)" "$(printf %.1f "$raw")" "$(mbps "$bytes" "$raw")"
printf '%-34s %8s s %8s MiB/s\n' "pgbackrest backup (over TLS)" "$(printf %.1f "$backup")" "$(mbps "$bytes" "$backup")"
printf '%-34s %8s s %8s MiB/s\n' "pgbackrest restore (local repo)" "$(printf %.1f "$restore")" "$(mbps "$bytes" "$restore")"
printf '%-34s %10s\n' "backup / raw copy throughput" "$(awk -v r="$raw" -v b="$backup" 'BEGIN { printf "%.2f", r / b }')"
printf '%-34s %10s\n' "restore / raw copy throughput" "$(awk -v r="$raw" -v b="$restore" 'BEGIN { printf "%.2f", r / b }')"
