#!/usr/bin/env bash
# Known vulnerabilities in the dependencies (`make audit`; the security workflow). Needs the
# vulnerability service: --strict makes a package that could not be looked up a failure, never a
# silent pass. Audits the reference app's pinned requirements (the virtualenv deployed on the app
# hosts is built from them) and the tools' virtualenv (.venv, from pyproject.toml).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
export PATH="$PWD/.venv/bin:$PATH"
rc=0
echo "=== pip-audit --strict: examples/eterna_home_app/requirements.txt"
pip-audit --strict --progress-spinner off -r examples/eterna_home_app/requirements.txt || rc=1
echo "=== pip-audit --strict: the tools' virtualenv (.venv)"
pip-audit --strict --progress-spinner off --local --skip-editable || rc=1
exit $rc
