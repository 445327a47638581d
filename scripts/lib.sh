# Shared by scripts/dev and scripts/test: a venv with the project installed, and local Postgres and
# Redis up. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
export DATABASE_URL="${DATABASE_URL:-postgres://root@127.0.0.1:5432/scrm}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"

say() { printf '\033[1;32m==>\033[0m %s\n' "$*"; }
die() { printf '\033[1;31mxx\033[0m %s\n' "$*" >&2; exit 1; }

ensure_venv() {
  local python="${PYTHON:-python3}"
  command -v "$python" >/dev/null || die "Python 3.11+ is needed: install python3 and python3-venv."
  "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || die "Python 3.11+ is needed (found $("$python" --version))."
  if [ ! -x "$PY" ]; then
    say "creating the virtualenv in .venv"
    "$python" -m venv "$VENV"
  fi
  # Re-install only when pyproject.toml changed since the last install.
  local stamp="$VENV/.installed-$(sha1sum "$ROOT/pyproject.toml" | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    say "installing the project and its dependencies"
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q -e "$ROOT[dev]"
    rm -f "$VENV"/.installed-* && touch "$stamp"
  fi
}

ensure_node_assets() {
  # Chart.js and friends come from the npm registry (package-lock.json) and are served locally, no CDN.
  local stamp="$ROOT/node_modules/.installed-$(sha1sum "$ROOT/package-lock.json" | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    command -v npm >/dev/null \
      || die "npm is needed for the dashboard's static assets: install Node.js 18+ (apt-get install nodejs npm)."
    say "installing the front-end assets (npm ci)"
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
    rm -f "$ROOT"/node_modules/.installed-* && touch "$stamp"
  fi
}

_pg_host_port() {
  "$PY" - <<'PYEOF'
import os
from urllib.parse import urlparse
u = urlparse(os.environ["DATABASE_URL"])
print(u.hostname or "127.0.0.1", u.port or 5432, u.username or "", (u.path or "/scrm").lstrip("/"))
PYEOF
}

ensure_postgres() {
  read -r host port user dbname < <(_pg_host_port)
  if ! pg_isready -q -h "$host" -p "$port" 2>/dev/null; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
      say "starting PostgreSQL"
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
      for _ in $(seq 1 30); do pg_isready -q -h "$host" -p "$port" && break; sleep 0.5; done
    fi
  fi
  pg_isready -q -h "$host" -p "$port" 2>/dev/null \
    || die "PostgreSQL is not reachable at $host:$port. Install it (apt-get install postgresql) or set DATABASE_URL."
  local -a auth=(-h "$host" -p "$port")
  [ -n "$user" ] && auth+=(-U "$user")
  if ! psql "${auth[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$dbname'" | grep -q 1; then
    say "creating database $dbname"
    createdb "${auth[@]}" "$dbname"
  fi
}

ensure_redis() {
  if ! "$PY" -c "import redis, os; redis.Redis.from_url(os.environ['REDIS_URL'], socket_connect_timeout=1).ping()" 2>/dev/null; then
    if command -v redis-server >/dev/null; then
      say "starting Redis"
      mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
      redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
      sleep 0.5
    fi
  fi
  "$PY" -c "import redis, os; redis.Redis.from_url(os.environ['REDIS_URL'], socket_connect_timeout=1).ping()" 2>/dev/null \
    || die "Redis is not reachable at $REDIS_URL. Install it (apt-get install redis-server) or set REDIS_URL."
}
