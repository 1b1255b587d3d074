#!/usr/bin/env bash
# Prints the Python that `make venv` builds the controller's virtualenv with: ansible-core 2.21 (pinned in
# pyproject.toml) runs on Python 3.12 or newer. The first that is new enough of: $PYTHON, python3 (Debian 13's is
# 3.13), python3.14/3.13/3.12 on PATH, then the newest 3.12+ that pyenv has installed. Exits 1 naming what to do.
set -euo pipefail
new_enough() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }
candidates=("${PYTHON:-}" python3 python3.14 python3.13 python3.12)
if command -v pyenv >/dev/null 2>&1 || [ -d "${PYENV_ROOT:-$HOME/.pyenv}/versions" ]; then
  root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  # Newest first: 3.14.x before 3.13.x before 3.12.x.
  while IFS= read -r dir; do candidates+=("$dir/bin/python3"); done < <(
    find "$root/versions" -mindepth 1 -maxdepth 1 -name '3.1[2-9]*' 2>/dev/null | sort -rV)
fi
for c in "${candidates[@]}"; do
  [ -n "$c" ] || continue
  path=$(command -v "$c" 2>/dev/null) || continue
  if new_enough "$path"; then
    echo "$path"
    exit 0
  fi
done
echo "controller-python: ansible-core 2.21 needs Python 3.12 or newer on the controller and none was found" \
  "(python3 is $(python3 --version 2>&1 || echo missing)). Use Debian 13's python3, 'pyenv install 3.13'," \
  "or name one: make venv PYTHON=/path/to/python3.13" >&2
exit 1
