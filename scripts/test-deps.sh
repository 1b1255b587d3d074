#!/usr/bin/env bash
# The Debian packages the tests need besides the virtualenv, installed when missing (`make test` and .ci/run call
# this). Not root or no apt: prints what is missing and exits 0; the tests that need it then report themselves
# skipped with the reason, and scripts/run-tests.sh lists those reasons in its summary.
#   python3-venv make git   the virtualenv and the Makefile
#   debootstrap docker.io   the Molecule scenarios' base image and engine
#   postgresql              the release's PostgreSQL (15 on Debian 12, 17 on 13): tests/migrations (a scratch
#                           server) and tests/unit/test_syntax.py (postgres -C)
#   nftables                tests/unit/test_nftables.py (nft -c checks the base role's ruleset)
#   (the shellcheck package) scripts/scan.sh: actionlint checks the workflows' run: scripts with it
#   prometheus prometheus-alertmanager   promtool and amtool: rule unit tests and routing (test_promql_rules.py,
#                           test_escalation.py)
#   age                     test_tenant_playbooks.py (the export archive is encrypted to an age recipient)
#   nginx rsyslog           test_config_strings.py: each reads its quoted strings back (nginx -t, rsyslogd -N1)
# Their services are not started by the install (a policy-rc.d denies it while apt runs): the tests use the binaries.
set -euo pipefail
packages=(python3-venv make git debootstrap docker.io postgresql nftables shellcheck prometheus prometheus-alertmanager
  age nginx rsyslog openssl)
need=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "test-deps: missing ${need[*]} (run as root on Debian 12 or 13 to install them); the tests that need them will be skipped" >&2
  exit 0
fi
echo "test-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
policy=/usr/sbin/policy-rc.d
if [ -e "$policy" ]; then
  apt-get install -y -qq "${need[@]}" >/dev/null
else
  printf '#!/bin/sh\n# scripts/test-deps.sh: no service starts while the test packages install\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  trap 'rm -f "$policy"' EXIT
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
