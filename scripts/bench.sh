#!/usr/bin/env bash
# Install (once) and run one benchmark: ./scripts/bench.sh store|compare_adk|e2e|workers|flood|context|memory_search|alerts [ARGS].
# Arguments after the name go to bench/NAME.py. Benchmarks print figures; they are never tests.
# The emulators the benchmarks drive live in testkit/ (shared with tests/) and need the test
# requirements, so those are installed.
# `store --postgres` and `memory_search --postgres` measure the PostgreSQL store on a database
# created for the run (and dropped after it); `workers` needs PostgreSQL too. They find the
# server as the tests do (TEST_POSTGRES_URL, or a server on 127.0.0.1:5432). `alerts` takes `--database URL` for a
# PostgreSQL run (default: a fresh SQLite file).
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:-}"
case "$name" in
  store|compare_adk|e2e|workers|flood|context|memory_search|alerts) shift ;;
  *) echo "usage: ./scripts/bench.sh store|compare_adk|e2e|workers|flood|context|memory_search|alerts [ARGS]" >&2; exit 2 ;;
esac
source scripts/venv.sh requirements-dev.txt
source scripts/postgres.sh
if { [ "$name" = store ] || [ "$name" = memory_search ]; } && [ "${1:-}" = --postgres ]; then
  shift
  exec .venv/bin/python "bench/$name.py" --fresh-postgres "$@"
fi
exec .venv/bin/python "bench/$name.py" "$@"
