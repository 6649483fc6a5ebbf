#!/usr/bin/env bash
# Install (once) and run the whole test suite: lint, types, then pytest (which also checks the
# import direction between the layers, tests/test_layers.py). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements-dev.txt
# PostgreSQL-backed tests: use TEST_POSTGRES_URL, or a local server (started or installed when
# CI is set). Without one they skip with the reason.
source scripts/postgres.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# Four workers on two cores: most tests wait on emulators, processes and databases rather than
# compute. TEST_WORKERS=0 runs them in this process (e.g. to debug one test).
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-4}" "$@"
