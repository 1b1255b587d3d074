"""The base role's nftables ruleset (filter_plugins/syntax.py's nftables_accept_rules and the template) with IPv4
and IPv6 sources, checked by nft itself (``nft -c``)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml
from ansible.errors import AnsibleFilterError
from module_loader import load_file

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "roles/base/templates/etc/nftables.conf.j2"

syn = load_file("filter_plugins/syntax.py", "eterna_filter_syntax_nft")
platform = load_file("filter_plugins/platform.py", "eterna_filter_platform_nft")


BASE_VARS = yaml.safe_load((REPO_ROOT / "roles/base/vars/main.yml").read_text())


def accept_rules(ssh_sources: list[str], hosts: dict, rules: dict) -> list[str]:
    """roles/base/vars/main.yml's _base_firewall_accept_rules for a db host: the SSH rule, then the db group's."""
    ssh = {"port": 22, "comment": "ssh", "variable": "base_ssh_allowed_sources"}
    if ssh_sources:
        ssh["from"] = ssh_sources
    groups = {"all": list(hosts), "app": list(hosts)}
    return syn.nftables_accept_rules([ssh, *rules["db"]], groups, platform.private_addresses(list(hosts), hosts))


def render(ssh_sources: list[str], app_ips: list[str], extra_from: list[str]) -> str:
    # Ansible renders templates with trim_blocks on. StrictUndefined: a variable the template reads and the test
    # does not give fails the render.
    options = {"trim_blocks": True, "keep_trailing_newline": True, "undefined": jinja2.StrictUndefined}
    env = jinja2.Environment(autoescape=False, **options)  # noqa: S701 - nftables syntax, not HTML
    hosts = {f"app{i}": {"eterna_private_ip": ip, "ansible_facts": {}} for i, ip in enumerate(app_ips)}
    rules = {
        "db": [
            {"port": 5432, "from_groups": ["app"], "comment": "postgres"},
            {"port": 9100, "from": extra_from, "comment": "node exporter"},
            {"port": 443},
        ]
    }
    return env.from_string(TEMPLATE.read_text()).render(
        ansible_managed="test",
        base_firewall_log_drops=True,
        _base_firewall_accept_rules=accept_rules(ssh_sources, hosts, rules),
        _base_nftables_table=BASE_VARS["_base_nftables_table"],
    )


def nft_check(text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    if shutil.which("nft") is None or os.geteuid() != 0:
        pytest.skip("nft -c needs the nft binary and root (netlink)")
    path = tmp_path / "nftables.conf"
    path.write_text(text)
    return subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True)


def test_ipv4_only_renders_ip_sets():
    text = render(["10.0.0.0/8"], ["10.0.1.11", "10.0.1.12"], ["10.9.0.0/16"])
    assert 'ip saddr { 10.0.0.0/8 } tcp dport 22 accept comment "ssh"' in text
    assert 'ip saddr { 10.0.1.11, 10.0.1.12 } tcp dport 5432 accept comment "postgres"' in text
    assert "ip6 saddr" not in text
    assert 'tcp dport 443 accept comment "port 443"' in text


def test_mixed_sources_split_by_family(tmp_path):
    text = render(["2001:db8::/32", "192.0.2.0/24"], ["10.0.1.11", "2001:db8:10::11"], ["fd00::/8"])
    assert 'ip6 saddr { 2001:db8::/32 } tcp dport 22 accept comment "ssh"' in text
    assert 'ip saddr { 192.0.2.0/24 } tcp dport 22 accept comment "ssh"' in text
    assert 'ip saddr { 10.0.1.11 } tcp dport 5432 accept comment "postgres"' in text
    assert 'ip6 saddr { 2001:db8:10::11 } tcp dport 5432 accept comment "postgres"' in text
    assert 'ip6 saddr { fd00::/8 } tcp dport 9100 accept comment "node exporter"' in text
    result = nft_check(text, tmp_path)
    assert result.returncode == 0, result.stderr


def test_ipv6_only_ssh_sources_pass_nft(tmp_path):
    """The issue's input: base_ssh_allowed_sources: ["2001:db8::/32"] made nft refuse the whole ruleset."""
    text = render(["2001:db8::/32"], ["2001:db8:10::11"], [])
    assert "ip saddr" not in text
    result = nft_check(text, tmp_path)
    assert result.returncode == 0, result.stderr


def test_nft_refuses_ipv6_in_an_ip_set(tmp_path):
    """The check above can fail: nft -c rejects the ruleset the template used to render."""
    text = render(["10.0.0.0/8"], [], []).replace("ip saddr { 10.0.0.0/8 }", "ip saddr { 2001:db8::/32 }")
    assert nft_check(text, tmp_path).returncode != 0


def test_source_that_is_no_address_is_refused_naming_the_variable():
    with pytest.raises(AnsibleFilterError, match="base_ssh_allowed_sources"):
        render(["bastion.example.com"], [], [])
    with pytest.raises(AnsibleFilterError, match=r"base_firewall_rules \(node exporter\)"):
        render([], [], ["not-an-address"])


def test_a_group_the_inventory_lacks_is_named():
    with pytest.raises(AnsibleFilterError, match="no inventory group 'mq'"):
        syn.nftables_accept_rules([{"port": 5671, "from_groups": ["mq"]}], {"all": []}, {})


def test_the_vars_expression_feeds_the_template():
    """The template prints the rules the role's vars compute and nothing else writes accept rules."""
    text = TEMPLATE.read_text()
    assert "_base_firewall_accept_rules" in text and "dport" not in text
    assert "nftables_accept_rules(" in (REPO_ROOT / "roles/base/vars/main.yml").read_text()


def test_a_role_rule_from_a_group_the_inventory_lacks_admits_nobody():
    """A role's rules name the platform's groups: one missing from the inventory opens nothing (never any source)."""
    rules = [{"port": 5432, "from_groups": ["app", "backup"]}, {"port": 9187, "from_groups": ["monitoring"]}]
    groups, addresses = {"all": ["app1"], "app": ["app1"]}, {"app1": "10.0.1.11"}
    assert syn.nftables_accept_rules(rules, groups, addresses, "empty") == [
        'ip saddr { 10.0.1.11 } tcp dport 5432 accept comment "port 5432"'
    ]
    with pytest.raises(AnsibleFilterError, match="absent_groups"):
        syn.nftables_accept_rules(rules, groups, addresses, "ignore")


HELPER = yaml.safe_load((REPO_ROOT / "roles/_common/tasks/firewall.yml").read_text())


def validate_fragment(text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """The helper's own ``validate`` command (as Ansible runs it: ``%`` formatting, split like a shell) on ``text``."""
    if shutil.which("nft") is None or os.geteuid() != 0:
        pytest.skip("nft -c needs the nft binary and root (netlink)")
    block = next(task for task in HELPER if "block" in task)["block"]
    command = next(task for task in block if "ansible.builtin.template" in task)["ansible.builtin.template"]["validate"]
    path = tmp_path / "eterna-test.nft"
    path.write_text(text)
    return subprocess.run(shlex.split(command % str(path)), capture_output=True, text=True, check=False)


def test_the_helper_validates_a_service_file_as_part_of_a_chain(tmp_path):
    lines = syn.nftables_accept_rules(
        [{"port": 5432, "from_groups": ["app"], "comment": "postgres"}, {"port": 9094, "proto": "udp"}],
        {"all": ["a", "b"], "app": ["a", "b"]},
        {"a": "10.0.1.11", "b": "2001:db8::11"},
        "empty",
    )
    good = validate_fragment("# a comment\n" + "\n".join(lines) + "\n", tmp_path)
    assert good.returncode == 0, good.stderr
    bad = validate_fragment('tcp dport 5432 acept comment "typo"\n', tmp_path)
    assert bad.returncode != 0 and "acept" in bad.stderr


def test_the_ruleset_includes_the_services_files_in_its_input_chain():
    text = TEMPLATE.read_text()
    chain = text[text.index("chain input") : text.index("chain forward")]
    assert 'include "/etc/nftables.d/eterna-*.nft"' in chain
    assert (
        "/etc/nftables.d/eterna-{{ _common_firewall_service }}.nft"
        in (REPO_ROOT / "roles/_common/tasks/firewall.yml").read_text()
    )
