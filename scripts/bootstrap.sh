#!/usr/bin/env bash
# Make .venv (Python 3.10+) with sendmail-fleet, its test and lint tools, then run the given command inside it.
# Cheap when nothing changed: pip runs again only when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "bootstrap: error: $PY is missing or older than 3.10; set PYTHON=/path/to/python3.10+" >&2
  exit 1
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
# This checkout is the Ansible collection sendmail_fleet.mail: ansible.cfg's collections_path finds it here.
link=.collections/ansible_collections/sendmail_fleet/mail
if [ "$(readlink "$link" 2>/dev/null)" != "../../.." ]; then
  mkdir -p "$(dirname "$link")"
  ln -sfn ../../.. "$link"
fi
[ $# -gt 0 ] && exec "$@"
