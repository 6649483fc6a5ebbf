#!/usr/bin/env bash
# Source me: exports TEST_POSTGRES_URL when a PostgreSQL server is (or can be made) reachable.
# Under CI it starts the machine's server, or installs one from Debian's packages, if needed.
pg_up() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  if ! pg_up && [ -n "${CI:-}" ]; then
    if ! command -v pg_ctlcluster >/dev/null && [ "$(id -u)" = 0 ]; then
      echo "installing PostgreSQL from Debian's packages for the tests..." >&2
      (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql) >&2
    fi
    if command -v pg_ctlcluster >/dev/null; then
      for v in $(ls /etc/postgresql 2>/dev/null); do
        pg_ctlcluster --skip-systemctl-redirect "$v" main start >&2 || true
      done
      for _ in $(seq 1 30); do pg_up && break; sleep 1; done
    fi
  fi
  if pg_up; then
    export TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:5432/postgres"
  fi
fi
if [ -n "${CI:-}" ] && [ -z "${TEST_POSTGRES_URL:-}" ]; then
  echo "CI is set but no PostgreSQL server could be reached or started" >&2
  exit 1
fi
