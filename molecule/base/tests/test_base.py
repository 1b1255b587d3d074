"""The base role: time, updates, journald, deploy user, SSH and the firewall, probed for real."""

import pytest
from eterna_testinfra import node

JOURNAL_UNITS = ["ssh", "nftables", "chrony"]
JOURNAL_HOSTS = ["base-web"]

WEB = "base-web"
CLIENT = "base-client"


def probe(port: int) -> bool:
    """True when the client completes a TCP connect to the web host's port within 3 s."""
    return node(CLIENT).run(f"nc -z -w 3 {WEB} {port}").rc == 0


@pytest.mark.parametrize("service", ["chrony", "ssh", "nftables"])
def test_services_run_and_start_at_boot(service):
    svc = node(WEB).service(service)
    assert svc.is_running
    assert svc.is_enabled


def test_chrony_answers():
    out = node(WEB).check_output("chronyc -n sources")
    assert "debian.pool.ntp.org" in node(WEB).file("/etc/chrony/chrony.conf").content_string
    assert "MS Name/IP address" in out


def test_journal_is_persistent_and_capped():
    web = node(WEB)
    assert web.file("/var/log/journal").is_directory
    cfg = web.check_output("systemd-analyze cat-config systemd/journald.conf")
    assert "Storage=persistent" in cfg
    assert "SystemMaxUse=1G" in cfg
    web.check_output("logger -t eterna-test persistent-journal-probe")
    web.check_output("journalctl --flush")
    files = web.check_output("find /var/log/journal -name '*.journal'")
    assert files.strip(), "journald wrote no file under /var/log/journal"


def test_unattended_upgrades_configured():
    cfg = node(WEB).check_output("apt-config dump")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in cfg
    assert "Debian-Security" in cfg
    # Only the security origin: Debian's own default pattern for point releases must not add up with ours.
    patterns = [line for line in cfg.splitlines() if line.startswith("Unattended-Upgrade::Origins-Pattern:: ")]
    assert patterns, cfg
    assert all("-security,label=Debian-Security" in line for line in patterns), patterns


STAMP = "/var/lib/apt/periodic/update-success-stamp"
# Refreshes of a source list of the test's own, into lists of its own: the host's lists stay as they were.
OWN_LISTS = "-o Dir::Etc::sourceparts=/nonexistent -o Dir::State::Lists=/tmp/apt-lists-test -o Acquire::Retries=0"


def test_only_a_successful_list_refresh_is_stamped():
    """apt's cache_valid_time is read from the stamp base's apt configuration writes after each successful refresh."""
    host = node(WEB)
    host.check_output(
        "mkdir -p /tmp/apt-lists-test/partial /tmp/apt-repo-test && : > /tmp/apt-repo-test/Packages"
        " && echo 'deb [trusted=yes] file:/tmp/apt-repo-test ./' > /tmp/apt-local.list"
        " && echo 'deb http://127.0.0.1:9/debian trixie main' > /tmp/apt-unreachable.list"
    )
    host.check_output(f"touch -d 2000-01-01 {STAMP}")
    # apt exits 0 when a source cannot be reached (a warning), but does not run the success hook.
    failed = host.run(f"apt-get update {OWN_LISTS} -o Dir::Etc::sourcelist=/tmp/apt-unreachable.list")
    assert "Failed to fetch" in failed.stdout + failed.stderr, failed.stdout
    assert host.file(STAMP).mtime.year == 2000, "a failed refresh must not look like a fresh one"
    before = int(host.check_output("date +%s"))
    host.check_output(f"apt-get update {OWN_LISTS} -o Dir::Etc::sourcelist=/tmp/apt-local.list")
    assert host.file(STAMP).mtime.timestamp() >= before


def test_sysctl_file():
    f = node(WEB).file("/etc/sysctl.d/90-eterna.conf")
    assert f.mode == 0o644
    assert "net.ipv4.tcp_syncookies = 1" in f.content_string


def test_sshd_effective_settings():
    cfg = node(WEB).check_output("sshd -T")
    assert "passwordauthentication no" in cfg
    assert "permitrootlogin without-password" in cfg
    assert "kbdinteractiveauthentication no" in cfg


def test_deploy_user_logs_in_with_key_and_sudo():
    client = node(CLIENT)
    ssh = "ssh -i /root/deploy_key -o BatchMode=yes -o StrictHostKeyChecking=no -o ConnectTimeout=5"
    out = client.check_output(f"{ssh} deploy@{WEB} sudo -n id -u")
    assert out.strip() == "0"
    status = node(WEB).check_output("passwd -S deploy").split()
    assert status[1] == "L", "the deploy user's password must be locked"


def test_password_login_is_refused():
    client = node(CLIENT)
    res = client.run(
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o PubkeyAuthentication=no "
        f"-o PreferredAuthentications=password,keyboard-interactive deploy@{WEB} true"
    )
    assert res.rc != 0
    assert "Permission denied (publickey)" in res.stderr


def test_firewall_policy_is_drop():
    rules = node(WEB).check_output("nft list table inet eterna_filter")
    assert "policy drop" in rules


def test_restarting_nftables_keeps_the_tables_of_other_software():
    """A restart (dpkg runs one when it upgrades nftables) replaces the role's table only: another tool's table and
    Docker's DNS redirect to 127.0.0.11 (its nat rules in the container's namespace) survive it (issue #21)."""
    web = node(WEB)
    foreign = "table inet eterna_test_foreign"
    web.check_output(f"nft 'add {foreign}; add chain inet eterna_test_foreign probe'")
    try:
        web.check_output("systemctl restart nftables")
        tables = web.check_output("nft list tables").splitlines()
        assert foreign in tables
        assert "table inet eterna_filter" in tables
        assert "policy drop" in web.check_output("nft list table inet eterna_filter")
        assert web.run(f"getent hosts {CLIENT}").rc == 0
        # Stopping removes the role's table and nothing else.
        web.check_output("systemctl stop nftables")
        tables = web.check_output("nft list tables").splitlines()
        assert foreign in tables
        assert "table inet eterna_filter" not in tables
    finally:
        web.run("systemctl start nftables")
        web.run(f"nft delete {foreign}")
    assert web.service("nftables").is_running
    assert "table inet eterna_filter" in web.check_output("nft list tables").splitlines()


def test_ipv6_sources_go_in_an_ip6_rule():
    """The kernel's ruleset holds the mixed rule split by family (nft refused an IPv6 source in an ip set)."""
    rules = node(WEB).check_output("nft list table inet eterna_filter")
    assert 'ip saddr 192.0.2.0/24 tcp dport 8085 accept comment "from both families"' in rules
    assert 'ip6 saddr 2001:db8:5::/48 tcp dport 8085 accept comment "from both families"' in rules


def test_allowed_port_answers_from_allowed_group():
    assert probe(8080)


def test_undeclared_port_is_unreachable():
    assert node(WEB).socket("tcp://0.0.0.0:8081").is_listening
    assert not probe(8081)


def test_source_restriction_holds():
    assert node(WEB).socket("tcp://0.0.0.0:8083").is_listening
    assert not probe(8083)


def test_open_port_answers_from_anywhere():
    assert probe(8084)


def test_ssh_reachable_through_firewall():
    assert probe(22)
