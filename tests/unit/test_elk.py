"""The Elasticsearch, Logstash and Kibana roles without their vendor packages (issue #17).

What can run here: filter_plugins/elk.py (templates, ILM policies, Kibana's saved objects) with known values and bad
input; every configuration file the three roles write (and rsyslog's central file with the Logstash output), rendered
by ansible-playbook from the roles' own defaults and vars for a single node and for a three-node cluster, then parsed
(YAML, JSON) and checked; nginx's site for Kibana checked by ``nginx -t`` when nginx is installed; the inventory values
of the molecule/elk scenario against each role's argument spec. The vendor programs themselves (elasticsearch,
logstash --config.test_and_exit, kibana) run only in molecule/elk.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KEY = "4fdfdb9da08744734653f0afb7572f18f00923fa88ba3e943ada45facf1877ec"  # the public molecule key
CLASSES = {"access": 14, "application": 30, "audit": 365, "security": 180}


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


elk = _load("eterna_filter_elk", ROOT / "filter_plugins" / "elk.py")
validation = _load("eterna_filter_validation", ROOT / "filter_plugins" / "validation.py")
secrets = _load("eterna_filter_secrets", ROOT / "filter_plugins" / "secrets.py")

FILES = {
    "elasticsearch.yml": "roles/elasticsearch/templates/etc/elasticsearch/elasticsearch.yml.j2",
    "heap.options": "roles/elasticsearch/templates/etc/elasticsearch/jvm.options.d/eterna-heap.options.j2",
    "kibana.yml": "roles/kibana/templates/etc/kibana/kibana.yml.j2",
    "kibana-nginx.conf": "roles/kibana/templates/etc/nginx/conf.d/eterna-kibana.conf.j2",
    "logstash.yml": "roles/logstash/templates/etc/logstash/logstash.yml.j2",
    "pipelines.yml": "roles/logstash/templates/etc/logstash/pipelines.yml.j2",
    "eterna.conf": "roles/logstash/templates/etc/logstash/conf.d/eterna.conf.j2",
    "default-logstash": "roles/logstash/templates/etc/default/logstash.j2",
    "central.conf": "roles/rsyslog/templates/etc/rsyslog.d/05-eterna-central.conf.j2",
}


def render(tmp_path: Path, **extra) -> dict[str, str]:
    """Render every file of FILES on a local host es1 with the roles' defaults and vars; name -> text."""
    out = tmp_path / "out"
    out.mkdir()
    inventory = tmp_path / "hosts.yml"
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(
        yaml.safe_dump({"all": {"children": {"logging": {"hosts": {h: local for h in ("es1", "es2", "es3")}}}}})
    )
    var_files = [
        str(ROOT / "roles" / role / kind / "main.yml")
        for role in ("elasticsearch", "kibana", "logstash", "rsyslog")
        for kind in ("defaults", "vars")
    ]
    play = [
        {
            "hosts": "es1",
            "gather_facts": True,
            "vars_files": var_files,
            "tasks": [
                {
                    "name": f"Render {name}",
                    "ansible.builtin.template": {"src": str(ROOT / src), "dest": str(out / name), "mode": "0600"},
                }
                for name, src in FILES.items()
            ]
            + [
                {
                    "name": "Render the saved objects",
                    "ansible.builtin.copy": {
                        "content": "{{ _kibana_saved_objects | to_ndjson }}",
                        "dest": str(out / "saved.ndjson"),
                        "mode": "0600",
                    },
                },
                {
                    "name": "Render the policies and templates",
                    "ansible.builtin.copy": {
                        "content": "{{ {'ilm': _elasticsearch_ilm_policies,"
                        " 'templates': _elasticsearch_index_templates} | to_json }}",
                        "dest": str(out / "data.json"),
                        "mode": "0600",
                    },
                },
            ],
        }
    ]
    playbook = tmp_path / "render.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    extra_vars = {"eterna_master_key": KEY, "eterna_elk_enabled": True, "eterna_private_ip": "192.0.2.10"} | extra
    result = subprocess.run(
        [
            shutil.which("ansible-playbook") or str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(inventory),
            str(playbook),
            "-e",
            json.dumps(extra_vars),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ | {"ANSIBLE_FILTER_PLUGINS": str(ROOT / "filter_plugins"), "ANSIBLE_NOCOLOR": "1"},
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return {p.name: p.read_text() for p in out.iterdir()}


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> dict[str, str]:
    return render(tmp_path_factory.mktemp("single"), elasticsearch_nodes=["es1"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> dict[str, str]:
    return render(
        tmp_path_factory.mktemp("cluster"),
        elasticsearch_nodes=["es1", "es2", "es3"],
        elasticsearch_heap_mb=2048,
        elasticsearch_snapshot_s3_endpoint="objects.internal:8333",
        rsyslog_elasticsearch_url="https://es1:9200",
        rsyslog_logstash_target="es2",
        kibana_allowed_networks=["10.0.0.0/8", "2001:db8::/32"],
    )


def test_ilm_policies_delete_after_each_class_retention():
    policies = elk.elk_ilm_policies(CLASSES, "eterna-logs")
    assert sorted(policies) == [f"eterna-logs-{c}" for c in sorted(CLASSES)]
    for name, days in CLASSES.items():
        policy = policies[f"eterna-logs-{name}"]["policy"]
        assert policy["phases"]["delete"] == {"min_age": f"{days}d", "actions": {"delete": {}}}
        assert re.fullmatch(r"[0-9a-f]{64}", policy["_meta"]["eterna_hash"])
    # The hash follows the content: another period, another hash; the same input, the same hash.
    other = elk.elk_ilm_policies({"access": 15}, "eterna-logs")["eterna-logs-access"]["policy"]["_meta"]
    assert other["eterna_hash"] != policies["eterna-logs-access"]["policy"]["_meta"]["eterna_hash"]
    assert elk.elk_ilm_policies(CLASSES, "eterna-logs") == policies


def test_index_templates_name_their_policy_and_map_the_tenant_as_keyword():
    mappings = {"properties": {"json": {"properties": {"tenant": {"type": "keyword"}}}}}
    templates = elk.elk_index_templates(CLASSES, "eterna-logs", 1, mappings)
    access = templates["eterna-logs-access"]
    assert access["index_patterns"] == ["eterna-logs-access-*"]
    index = access["template"]["settings"]["index"]
    assert index["lifecycle"] == {"name": "eterna-logs-access"} and index["number_of_replicas"] == 1
    assert access["template"]["mappings"] == mappings
    assert access["_meta"]["eterna_hash"] == elk.with_hash(access)["_meta"]["eterna_hash"]


@pytest.mark.parametrize(
    ("classes", "prefix", "replicas", "match"),
    [
        ({}, "eterna-logs", 0, "non-empty"),
        ({"Access": 3}, "eterna-logs", 0, "Access"),
        ({"access": 0}, "eterna-logs", 0, "access"),
        ({"access": "x"}, "eterna-logs", 0, "access"),
        (CLASSES, "Eterna", 0, "prefix"),
        (CLASSES, "eterna-logs", -1, "replicas"),
    ],
)
def test_bad_input_is_refused_naming_it(classes, prefix, replicas, match):
    with pytest.raises(Exception, match=match):
        elk.elk_index_templates(classes, prefix, replicas, {})


def test_saved_objects_reference_only_each_other():
    objects = elk.kibana_saved_objects(CLASSES, "eterna-logs")
    ids = {(o["type"], o["id"]) for o in objects}
    assert len(ids) == len(objects) == 3 * len(CLASSES)
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in ids, (obj["id"], ref)
    dashboards = [o for o in objects if o["type"] == "dashboard"]
    assert len(dashboards) == len(CLASSES)
    for dashboard in dashboards:
        panels = json.loads(dashboard["attributes"]["panelsJSON"])
        assert {p["panelRefName"] for p in panels} == {r["name"] for r in dashboard["references"]}
    searches = [o for o in objects if o["type"] == "search"]
    for search in searches:
        source = json.loads(search["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert source["indexRefName"] == search["references"][0]["name"]
    lines = elk.to_ndjson(objects).splitlines()
    assert [json.loads(line) for line in lines] == json.loads(json.dumps(objects))


def test_single_node_configuration(single):
    conf = yaml.safe_load(single["elasticsearch.yml"])
    assert conf["discovery.type"] == "single-node" and "cluster.initial_master_nodes" not in conf
    assert conf["xpack.security.enabled"] is True and conf["xpack.security.http.ssl.enabled"] is True
    assert conf["xpack.security.transport.ssl.verification_mode"] == "full"
    for side in ("http", "transport"):
        # Relative to /etc/elasticsearch: Elasticsearch reads TLS files only from its configuration directory.
        assert conf[f"xpack.security.{side}.ssl.key"] == "certs/eterna/elasticsearch.key"
    assert conf["network.host"] == "192.0.2.10" and conf["node.name"] == "es1"
    assert not any(k.startswith("s3.") for k in conf)
    heap = re.findall(r"^-Xm[sx](\d+)m$", single["heap.options"], re.M)
    assert len(heap) == 2 and heap[0] == heap[1] and 512 <= int(heap[0]) <= 31744
    data = json.loads(single["data.json"])
    template = data["templates"]["eterna-logs-audit"]["template"]
    assert template["settings"]["index"]["number_of_replicas"] == 0
    assert template["mappings"]["properties"]["json"]["properties"]["tenant_id"]["type"] == "keyword"
    assert data["ilm"]["eterna-logs-audit"]["policy"]["phases"]["delete"]["min_age"] == "365d"


def test_cluster_configuration(cluster):
    conf = yaml.safe_load(cluster["elasticsearch.yml"])
    assert "discovery.type" not in conf
    assert conf["discovery.seed_hosts"] == ["es1:9300", "es2:9300", "es3:9300"]
    assert conf["cluster.initial_master_nodes"] == ["es1", "es2", "es3"]
    assert conf["s3.client.eterna.endpoint"] == "objects.internal:8333" and conf["s3.client.eterna.protocol"] == "https"
    assert "secret" not in cluster["elasticsearch.yml"].lower().replace("secure", "")
    assert re.findall(r"^-Xm[sx](\d+)m$", cluster["heap.options"], re.M) == ["2048", "2048"]
    template = json.loads(cluster["data.json"])["templates"]["eterna-logs-access"]
    assert template["template"]["settings"]["index"]["number_of_replicas"] == 1


def test_kibana_configuration(single):
    conf = yaml.safe_load(single["kibana.yml"])
    assert conf["server.host"] == "127.0.0.1" and conf["server.port"] == 5611
    assert conf["elasticsearch.hosts"] == ["https://es1:9200", "https://es2:9200", "https://es3:9200"]
    assert conf["elasticsearch.password"] == secrets.derive_secret(KEY, "elasticsearch/kibana_system")
    for key in (
        "xpack.security.encryptionKey",
        "xpack.encryptedSavedObjects.encryptionKey",
        "xpack.reporting.encryptionKey",
    ):
        assert len(conf[key]) >= 32
    assert len({conf["xpack.security.encryptionKey"], conf["xpack.encryptedSavedObjects.encryptionKey"]}) == 2
    assert conf["elasticsearch.ssl.verificationMode"] == "full" and conf["xpack.security.secureCookies"] is True
    objects = [json.loads(line) for line in single["saved.ndjson"].splitlines()]
    assert {o["id"] for o in objects if o["type"] == "dashboard"} == {f"eterna-logs-{c}-dashboard" for c in CLASSES}


def nginx_check(site: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """``nginx -t`` of a main configuration that includes ``site``, with a throwaway certificate at its paths."""
    tls = tmp_path / "tls"
    tls.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=t",
         "-keyout", str(tls / "kibana.key"), "-out", str(tls / "kibana.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    (tmp_path / "site.conf").write_text(site.replace("/etc/nginx/tls/kibana", str(tls)))
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    return subprocess.run(["nginx", "-t", "-c", str(main), "-p", str(tmp_path)], capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed on this machine")
def test_kibana_site_passes_nginx_and_limits_networks(single, cluster, tmp_path):
    # The site listens on an address of this machine for the check.
    for name, files in (("single", single), ("cluster", cluster)):
        site = files["kibana-nginx.conf"].replace("192.0.2.10:", "127.0.0.1:")
        (tmp_path / name).mkdir()
        result = nginx_check(site, tmp_path / name)
        assert result.returncode == 0, result.stderr
    assert "allow 10.0.0.0/8;" in cluster["kibana-nginx.conf"] and "deny all;" in cluster["kibana-nginx.conf"]
    assert "deny all;" not in single["kibana-nginx.conf"]
    assert "proxy_pass http://127.0.0.1:5611;" in single["kibana-nginx.conf"]


def test_logstash_configuration(single):
    assert yaml.safe_load(single["logstash.yml"])["config.reload.automatic"] is False
    pipelines = yaml.safe_load(single["pipelines.yml"])
    assert (
        pipelines[0]["path.config"] == "/etc/logstash/conf.d/eterna.conf" and pipelines[0]["queue.type"] == "persisted"
    )
    pipeline = single["eterna.conf"]
    # Balanced braces outside comments, strings and regular expressions (the structure Logstash parses), mutual TLS
    # on the input, the password by reference only.
    bare = re.sub(r"(?m)^\s*#.*$", "", pipeline)
    bare = re.sub(r'"(?:\\.|[^"\\])*"', '""', bare)
    bare = re.sub(r"=~\s*/(?:\\.|[^/\\])*/", "=~ //", bare)
    depth = 0
    for char in bare:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0 and bare.count("{") >= 10
    assert 'ssl_client_authentication => "required"' in pipeline
    assert 'password => "${ETERNA_ES_PASSWORD}"' in pipeline
    password = secrets.derive_secret(KEY, "elasticsearch/eterna_logstash")
    assert password not in pipeline
    assert f'ETERNA_ES_PASSWORD="{password}"' in single["default-logstash"]
    assert re.search(r'^LS_JAVA_OPTS="-Xms(\d+)m -Xmx\1m"$', single["default-logstash"], re.M)
    assert 'index => "eterna-logs-%{[event][dataset]}-%{+YYYY.MM.dd}"' in pipeline
    assert 'document_id => "%{[event][id]}"' in pipeline


def test_rsyslog_sends_through_logstash_or_to_the_store(single, cluster):
    through = cluster["central.conf"]
    assert 'type="omfwd" name="logstash"' in through and 'StreamDriverPermittedPeers="es2"' in through
    assert 'StreamDriverAuthMode="x509/name"' in through
    assert "omelasticsearch" not in through
    # Without a Logstash target and without a store URL: neither output.
    assert "omfwd" not in single["central.conf"] and "omelasticsearch" not in single["central.conf"]


def test_the_elk_scenario_values_pass_each_role_argument_spec():
    scenario = yaml.safe_load((ROOT / "molecule" / "elk" / "molecule.yml").read_text())
    given = scenario["provisioner"]["inventory"]["group_vars"]["all"]
    for role in ("elasticsearch", "logstash", "kibana", "rsyslog"):
        options = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
        options = options["argument_specs"]["main"]["options"]
        plain = {k: v for k, v in given.items() if not (isinstance(v, str) and "{{" in v)}
        assert validation.argument_spec_errors(plain, options, role) == [], role
        bad = validation.argument_spec_errors({f"{role}_enabled": "perhaps"}, options, role)
        assert bad and f"{role}_enabled" in bad[0], role
