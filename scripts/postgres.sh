#!/usr/bin/env bash
# Source me (scripts/test.sh does): exports TEST_POSTGRES_URL for the PostgreSQL-backed tests.
# - TEST_POSTGRES_URL already set: used as is.
# - A server on 127.0.0.1:5432 that lets user postgres in: that one (this is the quiet path).
# - CI set (a fresh Debian machine): start the installed server, or install it from Debian's
#   packages when we are root, and give user postgres a password for TCP logins (Debian's
#   pg_hba.conf asks for one on 127.0.0.1). pg_hba.conf itself is never edited.
# Without a server the tests skip with the reason; with CI set they must run, so we fail here.
_pg_host=127.0.0.1
_pg_port=5432
_pg_password=switchboard-ci

_pg_ready() { command -v pg_isready >/dev/null && pg_isready -q -h "$_pg_host" -p "$_pg_port"; }

# Can we log in with this URL? psql when installed, else asyncpg from the project's venv.
_pg_login() {
  if command -v psql >/dev/null; then
    PGCONNECT_TIMEOUT=3 psql -w "$1" -XAtqc 'SELECT 1' >/dev/null 2>&1
  elif [ -x .venv/bin/python ]; then
    .venv/bin/python - "$1" >/dev/null 2>&1 <<'PY'
import asyncio, sys
import asyncpg
async def main() -> None:
    conn = await asyncpg.connect(sys.argv[1], timeout=3)
    await conn.close()
asyncio.run(main())
PY
  else
    return 1
  fi
}

_pg_find_url() {
  local plain="postgresql://postgres@$_pg_host:$_pg_port/postgres"
  local secret="postgresql://postgres:$_pg_password@$_pg_host:$_pg_port/postgres"
  if _pg_login "$plain"; then echo "$plain"; elif _pg_login "$secret"; then echo "$secret"; fi
}

_pg_provision() {
  if ! command -v pg_ctlcluster >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "postgres.sh: installing PostgreSQL from Debian's packages for the tests..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) \
      >/dev/null || echo "postgres.sh: apt-get install postgresql failed" >&2
  fi
  command -v pg_ctlcluster >/dev/null || return 0
  if ! _pg_ready; then
    # Start the installed cluster(s) on our port that are down (Debian: "15 main 5432 down").
    local version cluster port status
    while read -r version cluster port status _; do
      if [ "$port" = "$_pg_port" ] && [ "$status" = down ]; then
        pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start >&2 || true
      fi
    done < <(pg_lsclusters -h 2>/dev/null)
    for _ in $(seq 1 30); do _pg_ready && break; sleep 1; done
  fi
  # Local socket logins are "peer" on Debian: as root we can act as postgres and set the
  # password the TCP login needs. Only done when a password-less login is refused.
  if _pg_ready && [ -z "$(_pg_find_url)" ] && [ "$(id -u)" = 0 ] && command -v runuser >/dev/null
  then
    runuser -u postgres -- psql -p "$_pg_port" -d postgres -XAtqc \
      "ALTER USER postgres PASSWORD '$_pg_password'" >/dev/null \
      || echo "postgres.sh: could not set a password for user postgres" >&2
  fi
}

if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  _pg_url="$(_pg_find_url)"
  if [ -z "$_pg_url" ] && [ -n "${CI:-}" ]; then
    _pg_provision
    _pg_url="$(_pg_find_url)"
  fi
  if [ -n "$_pg_url" ]; then
    export TEST_POSTGRES_URL="$_pg_url"
  fi
  unset _pg_url
fi
if [ -n "${CI:-}" ] && [ -z "${TEST_POSTGRES_URL:-}" ]; then
  echo "postgres.sh: CI is set but no PostgreSQL server could be reached, started or installed" >&2
  exit 1
fi
