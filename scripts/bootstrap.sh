#!/usr/bin/env bash
# Make .venv (Python 3.10+) with sendmail-fleet, its test and lint tools, then run the given command inside it.
# Cheap when nothing changed: pip runs again only when pyproject.toml changes.
# --engine (first): the command needs the Docker engine (`make demo`). Where maillab would install Debian's (as root on
# Debian or Ubuntu, none installed), its packages are installed beside the venv and pip instead of after them: both
# are mostly one core's work, about 10 s and 18 s one after the other on a new machine here.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "bootstrap: error: $PY is missing or older than 3.10; set PYTHON=/path/to/python3.10+" >&2
  exit 1
fi
engine_pid=""
# A bootstrap that fails while the engine's apt runs waits for it rather than leave it running unseen.
trap 'if [ -n "$engine_pid" ]; then wait "$engine_pid" 2>/dev/null || true; fi' EXIT
if [ "${1:-}" = --engine ]; then
  shift
  if ! command -v dockerd >/dev/null && [ "$(id -u)" = 0 ]; then
    mkdir -p .lab/logs
    engine_log=.lab/logs/bootstrap-engine.log
    echo "bootstrap: installing Docker's engine from Debian's packages beside pip (log: $engine_log)" >&2
    # The standard library only (sendmail_fleet.engine imports the Docker SDK when it first connects).
    PYTHONPATH=src "$PY" -m sendmail_fleet.engine install >"$engine_log" 2>&1 &
    engine_pid=$!
  fi
fi
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv" >&2
  "$PY" -m venv .venv || { echo "bootstrap: error: venv failed; on Debian: apt-get install python3-venv" >&2; exit 1; }
fi
stamp=.venv/.sendmail-fleet-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # pip's own output (and any warnings of this machine's pip configuration) go to a log, shown when pip fails.
  mkdir -p .lab/logs
  log=.lab/logs/bootstrap-pip.log
  echo "bootstrap: installing sendmail-fleet with its test and lint tools and Mitogen into .venv (log: $log)" >&2
  if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e '.[test,lint,fast]'; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "bootstrap: error: pip install failed; the whole output is in $log" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
# Before anything else runs apt (the fail2ban package below): one apt at a time.
if [ -n "$engine_pid" ]; then
  if ! wait "$engine_pid"; then
    tail -n 5 "$engine_log" >&2
    echo "bootstrap: warning: installing Docker's engine failed (above; all of it in $engine_log): maillab tries again" >&2
  fi
  engine_pid=""
fi
# fail2ban's own fail2ban-regex checks the roles' filters in the unit tests: Debian's package, fetched from this host's
# apt mirror and unpacked (not installed) into the lab's cache once, here, so that the tests need no network.
f2b=.lab/cache/fail2ban
if [ ! -x "$f2b/tree/usr/bin/fail2ban-regex" ] && command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then
  mkdir -p "$f2b"
  if ! (cd "$f2b" && apt-get download -q fail2ban >/dev/null 2>&1); then
    # A new machine has no package lists yet: root can fetch them.
    [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 && (cd "$f2b" && apt-get download -q fail2ban >/dev/null 2>&1)
  fi
  deb=$(ls "$f2b"/fail2ban_*.deb 2>/dev/null | tail -n 1)
  if [ -n "$deb" ]; then
    rm -rf "$f2b/tree" && dpkg-deb -x "$deb" "$f2b/tree"
  else
    echo "bootstrap: warning: could not fetch Debian's fail2ban package (apt-get download fail2ban): the unit tests of" \
         "the fail2ban filters will say so" >&2
  fi
fi
# This checkout is the Ansible collection sendmail_fleet.mail: ansible.cfg's collections_path finds it here.
link=.collections/ansible_collections/sendmail_fleet/mail
if [ "$(readlink "$link" 2>/dev/null)" != "../../.." ]; then
  mkdir -p "$(dirname "$link")"
  ln -sfn ../../.. "$link"
fi
if [ $# -gt 0 ]; then
  exec "$@"
fi
