#!/usr/bin/env bash
# The reference app's own unit tests (examples/eterna_home_app/tests: SQLite in memory, S3 stub) in a
# venv of their own, build/app-venv, made from the app's pinned requirements.txt and
# requirements-test.txt. The venv is reused while both files are unchanged (their SHA-256 is kept in
# build/app-venv/.requirements.sha256). Extra arguments go to pytest.
#   scripts/app-tests.sh            all app tests
#   scripts/app-tests.sh -k token   a subset
set -euo pipefail
cd "$(dirname "$0")/.."
app=examples/eterna_home_app
venv=build/app-venv
want=$(cat "$app/requirements.txt" "$app/requirements-test.txt" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --require-virtualenv -r "$app/requirements.txt" -r "$app/requirements-test.txt"
  echo "$want" >"$venv/.requirements.sha256"
fi
cd "$app"
exec "../../$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
