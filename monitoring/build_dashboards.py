#!/usr/bin/env python3
"""Write the Grafana dashboards of roles/grafana/files/dashboards/ from the compact definitions below.

The JSON files are committed (Grafana provisions them as they are); run this script after editing a definition.
tests/unit/test_grafana_dashboards.py fails when the committed files and this script disagree.

    python3 monitoring/build_dashboards.py          # rewrite the JSON files
    python3 monitoring/build_dashboards.py --check  # exit 1 when a file is out of date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "roles" / "grafana" / "files" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "eterna-prometheus"}
RATE = "$__rate_interval"
LATENCY = "eterna_http_request_duration_seconds_bucket"
REAL_FS = 'fstype!~"tmpfs|devtmpfs|ramfs|squashfs|nsfs|fuse.*"'

# Panel: (title, kind, unit, [(expr, legend)], description). kind: timeseries | stat | table.
Panel = tuple[str, str, str, list[tuple[str, str]], str]

HOST_VAR = {
    "name": "host",
    "label": "Host",
    "type": "query",
    "datasource": DATASOURCE,
    "definition": "label_values(node_uname_info, host)",
    "query": {"query": "label_values(node_uname_info, host)", "refId": "host"},
    "includeAll": True,
    "multi": True,
    "allValue": ".*",
    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    "refresh": 2,
    "sort": 1,
}

DASHBOARDS: dict[str, dict] = {
    "overview": {
        "uid": "eterna-overview",
        "title": "Eterna Home / Stack overview",
        "panels": [
            ("Targets up", "stat", "none", [("sum(up)", "up")], "Scrape targets answering."),
            (
                "Targets down",
                "stat",
                "none",
                [("count(up == 0) or vector(0)", "down")],
                "Scrape targets not answering.",
            ),
            (
                "Firing alerts",
                "stat",
                "none",
                [('count(ALERTS{alertstate="firing"}) or vector(0)', "firing")],
                "Alerts currently firing (details in Alertmanager).",
            ),
            (
                "Failing probes",
                "stat",
                "none",
                [("count(probe_success == 0) or vector(0)", "failing")],
                "Blackbox probes (public endpoint, app readiness, TLS) that fail.",
            ),
            ("Target health by job", "timeseries", "none", [("sum by (job) (up)", "{{job}}")], "Targets up per job."),
            (
                "API requests/s",
                "timeseries",
                "reqps",
                [(f"sum(rate(eterna_http_requests_total[{RATE}]))", "requests/s")],
                "All API requests.",
            ),
            (
                "API 5xx ratio",
                "timeseries",
                "percentunit",
                [
                    (
                        f'sum(rate(eterna_http_requests_total{{status=~"5.."}}[{RATE}])) '
                        f"/ sum(rate(eterna_http_requests_total[{RATE}]))",
                        "5xx",
                    )
                ],
                "Share of API requests answering 5xx (alert above 5%).",
            ),
            (
                "API p95 latency",
                "timeseries",
                "s",
                [
                    (
                        f"histogram_quantile(0.95, sum by (le) (rate({LATENCY}[{RATE}])))",
                        "p95",
                    )
                ],
                "95th percentile of API response times (objective: 2 s).",
            ),
            (
                "Public endpoint probe",
                "timeseries",
                "s",
                [('probe_duration_seconds{job="blackbox_public"}', "{{instance}}")],
                "Time of the HTTPS probe through the edge.",
            ),
            (
                "App dependencies",
                "timeseries",
                "none",
                [("min by (dependency) (eterna_dependency_up)", "{{dependency}}")],
                "Readiness checks of PostgreSQL, Redis, RabbitMQ and S3 as the app sees them (1 = healthy).",
            ),
            (
                "Certificate days left",
                "table",
                "d",
                [("(probe_ssl_earliest_cert_expiry - time()) / 86400", "{{instance}}")],
                "Days before the probed certificates expire.",
            ),
            (
                "Backup age",
                "timeseries",
                "s",
                [("time() - eterna_backup_last_success_timestamp_seconds", "{{host}} {{stanza}}")],
                "Time since the last successful backup (alert after 26 h).",
            ),
        ],
    },
    "app": {
        "uid": "eterna-app",
        "title": "Eterna Home / App",
        "panels": [
            (
                "Requests/s by route",
                "timeseries",
                "reqps",
                [(f"sum by (route) (rate(eterna_http_requests_total[{RATE}]))", "{{route}}")],
                "API requests per route.",
            ),
            (
                "Errors/s by status",
                "timeseries",
                "reqps",
                [(f'sum by (status) (rate(eterna_http_requests_total{{status=~"[45].."}}[{RATE}]))', "{{status}}")],
                "4xx and 5xx answers.",
            ),
            (
                "5xx ratio by host",
                "timeseries",
                "percentunit",
                [
                    (
                        f'sum by (host) (rate(eterna_http_requests_total{{status=~"5.."}}[{RATE}])) '
                        f"/ sum by (host) (rate(eterna_http_requests_total[{RATE}]))",
                        "{{host}}",
                    )
                ],
                "Share of 5xx per app host.",
            ),
            (
                "Latency percentiles",
                "timeseries",
                "s",
                [
                    (
                        f"histogram_quantile({q}, sum by (le) (rate({LATENCY}[{RATE}])))",
                        f"p{int(q * 100)}",
                    )
                    for q in (0.5, 0.95, 0.99)
                ],
                "p50, p95 and p99 of API response times.",
            ),
            (
                "p95 latency by route",
                "timeseries",
                "s",
                [
                    (
                        "histogram_quantile(0.95, sum by (route, le) "
                        f"(rate(eterna_http_request_duration_seconds_bucket[{RATE}])))",
                        "{{route}}",
                    )
                ],
                "Slowest routes first.",
            ),
            (
                "Requests/s by tenant",
                "timeseries",
                "reqps",
                [(f"sum by (tenant) (rate(eterna_http_requests_total[{RATE}]))", "{{tenant}}")],
                "Per-tenant traffic.",
            ),
            (
                "Errors/s by tenant",
                "timeseries",
                "reqps",
                [(f'sum by (tenant) (rate(eterna_http_requests_total{{status=~"5.."}}[{RATE}]))', "{{tenant}}")],
                "Per-tenant 5xx answers.",
            ),
            (
                "Documents uploaded per tenant (1 h)",
                "timeseries",
                "none",
                [("sum by (tenant) (increase(eterna_documents_uploaded_total[1h]))", "{{tenant}}")],
                "Business metric: uploads per tenant over the last hour.",
            ),
            (
                "BIM conversions per tenant (1 h)",
                "timeseries",
                "none",
                [("sum by (tenant, status) (increase(eterna_bim_conversions_total[1h]))", "{{tenant}} {{status}}")],
                "Business metric: finished BIM conversions per tenant and result over the last hour.",
            ),
            (
                "Readiness probe",
                "timeseries",
                "none",
                [('probe_success{job="blackbox_app_ready"}', "{{host}}")],
                "/health/ready of each app host, probed by the blackbox exporter (1 = ready).",
            ),
            (
                "Dependency check latency",
                "timeseries",
                "s",
                [("max by (dependency) (eterna_dependency_latency_seconds)", "{{dependency}}")],
                "Latency of each dependency check of /health/ready.",
            ),
            # Issue #25, the baseline to monitor: the recorded series of roles/prometheus/files/rules/app.yml
            # (group app_baseline), one panel per alert of that group.
            (
                "p95 latency by tenant and route (slowest 10)",
                "timeseries",
                "s",
                [
                    (
                        "topk(10, tenant_method_route:eterna_http_request_duration_seconds:p95_5m)",
                        "{{tenant}} {{method}} {{route}}",
                    )
                ],
                "Over all app hosts, 5 min windows; AppTenantRouteSlow above 2 s for 10 min (with > 0.05 requests/s).",
            ),
            (
                "5xx ratio by tenant and route (worst 10)",
                "timeseries",
                "percentunit",
                [
                    (
                        "topk(10, tenant_method_route:eterna_http_request_errors:ratio_rate5m)",
                        "{{tenant}} {{method}} {{route}}",
                    )
                ],
                "Over all app hosts, 5 min windows; AppTenantRouteErrors above 5% for 10 min (with > 0.05 requests/s).",
            ),
            (
                "API worker saturation",
                "timeseries",
                "percentunit",
                [
                    ("eterna_http_requests_in_flight / eterna_http_worker_threads", "{{host}} pid {{pid}}"),
                    ("instance:eterna_http_worker_saturation:ratio", "{{host}} all workers"),
                ],
                "Requests in flight over the threads each API worker serves them on; AppWorkersSaturated above 80% "
                "of a host's threads for 10 min.",
            ),
            (
                "Database pool saturation",
                "timeseries",
                "percentunit",
                [
                    ("eterna_db_pool_connections_in_use / eterna_db_pool_connections_max", "{{host}} pid {{pid}}"),
                    ("instance:eterna_db_pool_saturation:max", "{{host}} fullest worker"),
                ],
                "Connections each API worker has checked out of its pool (app_database_pool_size + "
                "app_database_max_overflow); AppDatabasePoolSaturated above 90% for 10 min.",
            ),
            (
                "PostgreSQL connection slots used",
                "timeseries",
                "percentunit",
                [("instance:pg_connections:saturation", "{{host}}")],
                "Connections over max_connections minus superuser_reserved_connections: the app is refused at 100%; "
                "PostgresTooManyConnections above 80% of max_connections.",
            ),
        ],
    },
    "postgres": {
        "uid": "eterna-postgres",
        "title": "Eterna Home / PostgreSQL",
        "panels": [
            ("Up", "stat", "none", [("pg_up", "{{host}}")], "postgres_exporter can connect (1)."),
            (
                "Connections by state",
                "timeseries",
                "none",
                [("sum by (host, state) (pg_stat_activity_count)", "{{host}} {{state}}")],
                "Backends per state.",
            ),
            (
                "Connection slots used",
                "timeseries",
                "percentunit",
                [
                    (
                        "sum by (host) (pg_stat_activity_count) / max by (host) (pg_settings_max_connections)",
                        "{{host}}",
                    )
                ],
                "Share of max_connections in use (alert above 80%).",
            ),
            (
                "Transactions/s",
                "timeseries",
                "ops",
                [
                    (f"sum by (host) (rate(pg_stat_database_xact_commit[{RATE}]))", "{{host}} commits"),
                    (f"sum by (host) (rate(pg_stat_database_xact_rollback[{RATE}]))", "{{host}} rollbacks"),
                ],
                "Commits and rollbacks.",
            ),
            (
                "Longest active query",
                "timeseries",
                "s",
                [('max by (host, datname) (pg_stat_activity_max_tx_duration{state="active"})', "{{host}} {{datname}}")],
                "Slow-query watch: age of the oldest active transaction (alert above 5 min).",
            ),
            (
                "Cache hit ratio",
                "timeseries",
                "percentunit",
                [
                    (
                        f"sum by (host) (rate(pg_stat_database_blks_hit[{RATE}])) / (sum by (host) "
                        f"(rate(pg_stat_database_blks_hit[{RATE}])) + sum by (host) "
                        f"(rate(pg_stat_database_blks_read[{RATE}])))",
                        "{{host}}",
                    )
                ],
                "Share of block reads served from shared buffers.",
            ),
            (
                "Replication lag",
                "timeseries",
                "s",
                [("pg_replication_lag", "{{host}}")],
                "Seconds since the last replayed transaction on replicas.",
            ),
            (
                "Unreplayed WAL",
                "timeseries",
                "bytes",
                [("pg_stat_replication_pg_wal_lsn_diff", "{{host}} -> {{application_name}}")],
                "WAL the replicas have not replayed, seen from the primary.",
            ),
            (
                "Deadlocks",
                "timeseries",
                "none",
                [(f"sum by (host) (increase(pg_stat_database_deadlocks[{RATE}]))", "{{host}}")],
                "Deadlocks detected.",
            ),
            (
                "Database size",
                "timeseries",
                "bytes",
                [("pg_database_size_bytes", "{{host}} {{datname}}")],
                "On-disk size per database.",
            ),
            (
                "WAL archiving",
                "timeseries",
                "none",
                [("eterna_backup_wal_archive_failed", "{{host}}")],
                "1 when the last WAL archive-push failed (backup role).",
            ),
        ],
    },
    "redis": {
        "uid": "eterna-redis",
        "title": "Eterna Home / Redis",
        "panels": [
            ("Up", "stat", "none", [("redis_up", "{{host}}")], "redis_exporter reaches Redis (1)."),
            (
                "Memory",
                "timeseries",
                "bytes",
                [("redis_memory_used_bytes", "{{host}} used"), ("redis_memory_max_bytes", "{{host}} maxmemory")],
                "Used memory against maxmemory.",
            ),
            (
                "Connected clients",
                "timeseries",
                "none",
                [("redis_connected_clients", "{{host}}")],
                "Client connections (app, Celery results, rate limiting).",
            ),
            (
                "Commands/s",
                "timeseries",
                "ops",
                [(f"rate(redis_commands_processed_total[{RATE}])", "{{host}}")],
                "Commands processed.",
            ),
            (
                "Keyspace hit ratio",
                "timeseries",
                "percentunit",
                [
                    (
                        f"rate(redis_keyspace_hits_total[{RATE}]) / (rate(redis_keyspace_hits_total[{RATE}]) "
                        f"+ rate(redis_keyspace_misses_total[{RATE}]))",
                        "{{host}}",
                    )
                ],
                "Share of lookups that found their key.",
            ),
            (
                "Evicted keys/s",
                "timeseries",
                "ops",
                [(f"rate(redis_evicted_keys_total[{RATE}])", "{{host}}")],
                "Keys evicted because of maxmemory.",
            ),
            (
                "Rejected connections",
                "timeseries",
                "none",
                [(f"increase(redis_rejected_connections_total[{RATE}])", "{{host}}")],
                "Clients refused because maxclients was reached.",
            ),
            (
                "Keys per database",
                "timeseries",
                "none",
                [("sum by (host, db) (redis_db_keys)", "{{host}} {{db}}")],
                "Keys.",
            ),
        ],
    },
    "rabbitmq-celery": {
        "uid": "eterna-rabbitmq-celery",
        "title": "Eterna Home / RabbitMQ and Celery",
        "panels": [
            (
                "Ready messages by queue",
                "timeseries",
                "none",
                [("sum by (vhost, queue) (rabbitmq_detailed_queue_messages_ready)", "{{vhost}}/{{queue}}")],
                "Messages waiting for a consumer (alert above 1000).",
            ),
            (
                "Unacknowledged messages by queue",
                "timeseries",
                "none",
                [("sum by (vhost, queue) (rabbitmq_detailed_queue_messages_unacked)", "{{vhost}}/{{queue}}")],
                "Messages taken by workers and not yet acknowledged.",
            ),
            (
                "Celery workers (consumers)",
                "timeseries",
                "none",
                [
                    (
                        'sum by (vhost, queue) (rabbitmq_detailed_queue_consumers{queue=~"celery.*"})',
                        "{{vhost}}/{{queue}}",
                    )
                ],
                "Consumers of the Celery queues: 0 means no worker runs.",
            ),
            (
                "Worker units",
                "timeseries",
                "none",
                [('node_systemd_unit_state{name=~"(eterna-)?celery.*", state="active"}', "{{host}} {{name}}")],
                "systemd state of the Celery units on the app hosts (1 = active).",
            ),
            (
                "Messages/s",
                "timeseries",
                "ops",
                [
                    (f"sum by (host) (rate(rabbitmq_global_messages_received_total[{RATE}]))", "{{host}} published"),
                    (f"sum by (host) (rate(rabbitmq_global_messages_delivered_total[{RATE}]))", "{{host}} delivered"),
                ],
                "Publish and deliver rates.",
            ),
            (
                "Connections and channels",
                "timeseries",
                "none",
                [
                    ("sum by (host) (rabbitmq_connections)", "{{host}} connections"),
                    ("sum by (host) (rabbitmq_channels)", "{{host}} channels"),
                ],
                "Open AMQP connections and channels.",
            ),
            (
                "Broker memory",
                "timeseries",
                "bytes",
                [
                    ("rabbitmq_process_resident_memory_bytes", "{{host}} used"),
                    ("rabbitmq_resident_memory_limit_bytes", "{{host}} alarm threshold"),
                ],
                "Resident memory against the memory alarm threshold.",
            ),
            (
                "BIM conversions/s",
                "timeseries",
                "ops",
                [(f"sum by (status) (rate(eterna_bim_conversions_total[{RATE}]))", "{{status}}")],
                "Asynchronous jobs finished by the workers.",
            ),
        ],
    },
    "nginx": {
        "uid": "eterna-nginx",
        "title": "Eterna Home / nginx edge",
        "panels": [
            ("Up", "stat", "none", [("nginx_up", "{{host}}")], "nginx exporter reaches stub_status (1)."),
            (
                "Requests/s",
                "timeseries",
                "reqps",
                [(f"sum by (host) (rate(nginx_http_requests_total[{RATE}]))", "{{host}}")],
                "Requests handled by nginx.",
            ),
            (
                "Connections",
                "timeseries",
                "none",
                [
                    ("nginx_connections_active", "{{host}} active"),
                    ("nginx_connections_reading", "{{host}} reading"),
                    ("nginx_connections_writing", "{{host}} writing"),
                    ("nginx_connections_waiting", "{{host}} waiting"),
                ],
                "Client connections by state.",
            ),
            (
                "Dropped connections/s",
                "timeseries",
                "ops",
                [
                    (
                        f"sum by (host) (rate(nginx_connections_accepted[{RATE}]) "
                        f"- rate(nginx_connections_handled[{RATE}]))",
                        "{{host}}",
                    )
                ],
                "Accepted but not handled (worker_connections or file limits).",
            ),
            (
                "Public endpoint",
                "timeseries",
                "s",
                [
                    ('probe_duration_seconds{job="blackbox_public"}', "duration"),
                    ('probe_success{job="blackbox_public"}', "success"),
                ],
                "HTTPS probe through the edge: duration and success.",
            ),
            (
                "Public certificate days left",
                "stat",
                "d",
                [('(probe_ssl_earliest_cert_expiry{job="blackbox_public"} - time()) / 86400', "{{instance}}")],
                "Days before the public certificate expires.",
            ),
        ],
    },
    "hosts": {
        "uid": "eterna-hosts",
        "title": "Eterna Home / Hosts",
        "templating": [HOST_VAR],
        "panels": [
            (
                "CPU busy",
                "timeseries",
                "percentunit",
                [
                    (
                        f'1 - avg by (host) (rate(node_cpu_seconds_total{{mode="idle", host=~"$host"}}[{RATE}]))',
                        "{{host}}",
                    )
                ],
                "Share of CPU time not idle.",
            ),
            ("Load (1 min)", "timeseries", "none", [('node_load1{host=~"$host"}', "{{host}}")], "Run-queue length."),
            (
                "Memory available",
                "timeseries",
                "percentunit",
                [
                    (
                        'node_memory_MemAvailable_bytes{host=~"$host"} / node_memory_MemTotal_bytes{host=~"$host"}',
                        "{{host}}",
                    )
                ],
                "Share of memory available (alert below 10%).",
            ),
            (
                "Disk space free",
                "timeseries",
                "percentunit",
                [
                    (
                        f'node_filesystem_avail_bytes{{host=~"$host", {REAL_FS}}} '
                        f'/ node_filesystem_size_bytes{{host=~"$host", {REAL_FS}}}',
                        "{{host}} {{mountpoint}}",
                    )
                ],
                "Free space per filesystem (alert below 15%).",
            ),
            (
                "Disk I/O",
                "timeseries",
                "Bps",
                [
                    (f'sum by (host) (rate(node_disk_read_bytes_total{{host=~"$host"}}[{RATE}]))', "{{host}} read"),
                    (f'sum by (host) (rate(node_disk_written_bytes_total{{host=~"$host"}}[{RATE}]))', "{{host}} write"),
                ],
                "Bytes read and written.",
            ),
            (
                "Network",
                "timeseries",
                "Bps",
                [
                    (
                        "sum by (host) (rate(node_network_receive_bytes_total"
                        f'{{host=~"$host", device!="lo"}}[{RATE}]))',
                        "{{host}} in",
                    ),
                    (
                        "sum by (host) (rate(node_network_transmit_bytes_total"
                        f'{{host=~"$host", device!="lo"}}[{RATE}]))',
                        "{{host}} out",
                    ),
                ],
                "Traffic on the non-loopback interfaces.",
            ),
            (
                "Failed units",
                "timeseries",
                "none",
                [('sum by (host) (node_systemd_unit_state{host=~"$host", state="failed"})', "{{host}}")],
                "Watched systemd units in the failed state.",
            ),
            (
                "OOM kills",
                "timeseries",
                "none",
                [('increase(node_vmstat_oom_kill{host=~"$host"}[1h])', "{{host}}")],
                "Processes killed for lack of memory over the last hour.",
            ),
        ],
    },
}


def panel_json(index: int, panel: Panel) -> dict:
    title, kind, unit, queries, description = panel
    width = 6 if kind == "stat" else 12
    per_row = 24 // width
    return {
        "id": index + 1,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 4 if kind == "stat" else 8, "w": width, "x": (index % per_row) * width, "y": index * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {"refId": chr(ord("A") + n), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for n, (expr, legend) in enumerate(queries)
        ],
    }


def dashboard_json(spec: dict) -> dict:
    return {
        "uid": spec["uid"],
        "title": spec["title"],
        "tags": ["eterna"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "annotations": {"list": []},
        "templating": {"list": spec.get("templating", [])},
        "panels": [panel_json(i, p) for i, p in enumerate(spec["panels"])],
    }


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {f"{name}.json": json.dumps(dashboard_json(spec), indent=2) + "\n" for name, spec in DASHBOARDS.items()}


def main(argv: list[str]) -> int:
    stale = []
    for name, text in render().items():
        path = OUT / name
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    for name in stale:
        print(f"{name} is out of date: run monitoring/build_dashboards.py")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
