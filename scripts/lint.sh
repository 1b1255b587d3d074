#!/usr/bin/env bash
# One command runs every linter: yamllint, ansible-lint (production profile), ruff (lint + format),
# and the argument_specs/defaults consistency check.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
rc=0
yamllint -s . || rc=1
ruff check . || rc=1
ruff format --check . || rc=1
python3 scripts/check-argument-specs.py || rc=1
ansible-lint -q || rc=1
exit $rc
