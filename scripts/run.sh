#!/usr/bin/env bash
# Install (once) and run the bot. With no platform tokens configured it opens the console chat
# on the embedded SQLite database. Arguments go to `python -m bot`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements.txt
exec .venv/bin/python -m bot "$@"
