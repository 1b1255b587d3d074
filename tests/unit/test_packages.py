"""dpkg_missing (filter_plugins/packages.py): which packages a role still hands to apt, from dpkg-query's output.

The output samples are what ``dpkg-query --show --showformat='${db:Status-Abbrev} ${Package}\\n'`` prints on Debian 12
and 13 (installed, held, config files only, half-installed, reinstall required); a name it does not know is not
printed at all.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from module_loader import ROOT, load_file

packages = load_file("filter_plugins/packages.py", "packages")
dpkg_missing = packages.dpkg_missing

QUERY = "ii  chrony\nhi  nftables\nrc  apt-listchanges\niU  sudo\niiR logrotate\nun  telnet\n"


def test_installed_and_held_packages_are_not_missing() -> None:
    assert dpkg_missing(["chrony", "nftables"], QUERY) == []


@pytest.mark.parametrize("name", ["apt-listchanges", "sudo", "logrotate", "telnet", "never-installed"])
def test_packages_not_fully_installed_are_missing(name: str) -> None:
    # config files only, unpacked, reinstall required, unknown, and a name dpkg-query did not print
    assert dpkg_missing(["chrony", name], QUERY) == [name]


def test_order_is_kept_and_empty_output_means_all_missing() -> None:
    assert dpkg_missing(["sudo", "chrony", "telnet"], QUERY) == ["sudo", "telnet"]
    assert dpkg_missing(["chrony", "nftables"], "") == ["chrony", "nftables"]


@pytest.mark.parametrize("spec", ["chrony=4.3-2", "chrony>=4", "chron*", "chrony/bookworm-backports"])
def test_versions_and_patterns_are_left_to_apt(spec: str) -> None:
    assert dpkg_missing([spec], QUERY) == [spec]


def test_architecture_suffix_is_compared_without_it() -> None:
    assert dpkg_missing(["chrony:amd64", "sudo:amd64"], QUERY) == ["sudo:amd64"]


@pytest.mark.parametrize(
    ("pkgs", "output"), [("chrony", QUERY), (["chrony", ""], QUERY), (["chrony", 3], QUERY), (["chrony"], None)]
)
def test_bad_input_is_refused(pkgs: object, output: object) -> None:
    with pytest.raises(packages.AnsibleFilterError, match="dpkg_missing"):
        dpkg_missing(pkgs, output)


def _role_query_formats() -> dict[str, str]:
    """{task file: the --showformat its dpkg-query task passes}, for every role task file that runs dpkg-query."""
    formats = {}
    for path in sorted((ROOT / "roles").glob("*/tasks/*.yml")):
        match = re.search(r"\['dpkg-query', '--show', '--showformat=(.*?)'\]", path.read_text())
        if match:
            # The YAML double-quoted scalar holds "\\n"; Jinja's string literal turns it into a newline.
            formats[str(path.relative_to(ROOT))] = match.group(1).replace("\\\\n", "\n")
    return formats


def test_every_role_query_prints_what_the_filter_reads() -> None:
    formats = _role_query_formats()
    assert len(formats) >= 14, formats  # base, hardening, node_exporter, rsyslog, backup and the service roles
    assert set(formats.values()) == {"${db:Status-Abbrev} ${Package}\n"}, formats


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs dpkg-query (Debian)")
def test_the_query_the_roles_run_on_this_host() -> None:
    # The roles' query (above) on this host: dpkg itself is installed wherever dpkg-query runs.
    showformat = next(iter(_role_query_formats().values()))
    result = subprocess.run(
        ["dpkg-query", "--show", f"--showformat={showformat}", "dpkg", "no-such-package-here"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1  # the unknown name; the roles fail only above 1
    assert result.stdout.startswith("ii  dpkg\n"), result.stdout
    assert dpkg_missing(["dpkg", "no-such-package-here"], result.stdout) == ["no-such-package-here"]
