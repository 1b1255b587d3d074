"""The postgres role's client authentication rules (filter_plugins/postgres.py) written and read back by the module
that writes them (community.postgresql's postgresql_pg_hba renderer and parser), and read the way PostgreSQL reads
pg_hba.conf: first match wins. The running server's own check (pg_hba_file_rules, logins refused and accepted) is
in the postgres and ipv6 scenarios."""

from __future__ import annotations

import ipaddress

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.community.postgresql.plugins.modules import postgresql_pg_hba as pg_hba
from module_loader import load_file

pg = load_file("filter_plugins/postgres.py", "eterna_filter_postgres")


def written(rules: list[dict]) -> list[dict]:
    """What the module writes for ``rules`` (overwrite, no sorting), parsed back by the module's parser."""
    text = pg_hba.render_rule_list(pg_hba.from_rule_list(rules))
    return [rule.to_dict() for rule in pg_hba.rule_list_from_hba_file(text)]


def first_match(rules: list[dict], contype: str, database: str, user: str, address: str | None) -> str:
    """The method of the first rule that matches a connection (PostgreSQL's order; keywords all/samenet only)."""
    for rule in rules:
        kind = rule["contype"]
        if contype == "local" and kind != "local":
            continue
        if contype != "local" and (kind == "local" or kind == {"ssl": "hostnossl", "plain": "hostssl"}[contype]):
            continue
        if rule["databases"] not in ("all", database) or rule["users"] not in ("all", user):
            continue
        if contype != "local" and rule["address"] != "all":
            if rule["address"] == "samenet":
                if not address.startswith("10."):  # the test's "same network"
                    continue
            elif ipaddress.ip_address(address) not in ipaddress.ip_network(rule["address"]):
                continue
        return rule["method"]
    return "no rule (refused)"


@pytest.fixture
def rules() -> list[dict]:
    extra = [{"contype": "hostssl", "databases": "reports", "users": "analyst", "address": "192.0.2.7",
              "method": "scram-sha-256"}]  # fmt: skip
    return written(pg.postgres_hba_rules(["samenet", "fd00:2::/64"], "replicator", extra))


@pytest.mark.parametrize(
    ("contype", "database", "user", "address", "method"),
    [
        ("local", "eterna", "postgres", None, "peer"),
        ("local", "replication", "postgres", None, "peer"),
        ("local", "eterna", "postgres_exporter", None, "scram-sha-256"),
        ("plain", "eterna", "eterna", "10.0.2.5", "reject"),  # no plain TCP, even from inside
        ("plain", "replication", "replicator", "127.0.0.1", "reject"),
        ("ssl", "eterna", "postgres", "127.0.0.1", "reject"),  # the superuser never over the network
        ("ssl", "replication", "postgres", "10.0.2.5", "reject"),
        ("ssl", "eterna", "eterna", "10.0.2.5", "scram-sha-256"),
        ("ssl", "replication", "replicator", "fd00:2::9", "scram-sha-256"),
        ("ssl", "eterna", "eterna", "::1", "scram-sha-256"),
        ("ssl", "eterna", "eterna", "198.51.100.1", "no rule (refused)"),  # outside every source
        ("ssl", "reports", "analyst", "192.0.2.7", "scram-sha-256"),  # the extra rule, after the role's
    ],
)
def test_first_match_decides_as_the_policy_says(rules, contype, database, user, address, method):
    assert first_match(rules, contype, database, user, address) == method


def test_rules_keep_their_order_and_columns_through_the_module():
    built = pg.postgres_hba_rules(["10.0.2.0/24"], "replicator")
    back = written(built)
    assert back == built
    assert back[-2:] == [
        {"contype": "hostssl", "databases": "replication", "users": "replicator", "address": "10.0.2.0/24",
         "method": "scram-sha-256"},
        {"contype": "hostssl", "databases": "all", "users": "all", "address": "10.0.2.0/24", "method": "scram-sha-256"},
    ]  # fmt: skip


def test_loopback_is_always_in_and_written_once():
    addresses = [r.get("address") for r in pg.postgres_hba_rules(["127.0.0.1", "::1", "samenet"], "replicator")]
    assert addresses.count("127.0.0.1/32") == 2 and addresses.count("::1/128") == 2
    assert addresses.count("samenet") == 2


def test_a_bare_address_gets_its_full_mask():
    assert pg.hba_address("192.0.2.7", "x") == "192.0.2.7/32"
    assert pg.hba_address("2001:db8::0:1", "x") == "2001:db8::1/128"
    assert pg.hba_address("db.example.org", "x") == "db.example.org"


@pytest.mark.parametrize(
    ("sources", "extra", "message"),
    [
        ("samenet", [], "postgres_hba_sources must be a list"),
        (["10.0.0.0/8 trust"], [], "postgres_hba_sources: '10.0.0.0/8 trust'"),
        (["10.0.0.0/33"], [], "postgres_hba_sources"),
        ([42], [], "postgres_hba_sources: an address must be a string"),
        (["samenet"], ["host all all 0.0.0.0/0 trust"], r"postgres_hba_extra\[0\] must be a mapping"),
        (["samenet"], [{"contype": "hostssl", "method": "trust", "user": "x"}], r"postgres_hba_extra\[0\] has unknown"),
        (["samenet"], [{"contype": "hots", "method": "trust"}], r"postgres_hba_extra\[0\] needs a contype"),
        (["samenet"], [{"contype": "host"}], r"postgres_hba_extra\[0\] needs a contype .* and a method"),
        (["samenet"], [{"contype": "host", "address": "a b", "method": "md5"}], r"postgres_hba_extra\[0\]"),
        (["samenet"], [{"contype": "hostssl", "address": "samenet", "method": "cert"}], "two rules for hostssl all"),
        (["samenet"], {"contype": "host"}, "postgres_hba_extra must be a list"),
    ],
)
def test_bad_input_is_refused_naming_the_variable(sources, extra, message):
    with pytest.raises(AnsibleFilterError, match=message):
        pg.postgres_hba_rules(sources, "replicator", extra)


def test_a_replication_user_with_a_space_is_refused():
    with pytest.raises(AnsibleFilterError, match="postgres_replication_user"):
        pg.postgres_hba_rules(["samenet"], "repl icator")
