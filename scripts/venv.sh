#!/usr/bin/env bash
# Source me: makes ./.venv (Python 3.11+) and installs the pinned requirements file "$1" into it,
# again only when that file changed since the last install.
set -euo pipefail
req="${1:-requirements.txt}"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "Switchboard needs Python 3.11 or newer ($py is $("$py" --version 2>&1))" >&2; exit 1; }
  "$py" -m venv .venv
fi
stamp=".venv/.installed-$(basename "$req")"
want="$(cat requirements*.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --disable-pip-version-check -q -r "$req"
  echo "$want" > "$stamp"
fi
