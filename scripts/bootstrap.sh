#!/usr/bin/env bash
# Make .venv (Python 3.10+) with sendmail-fleet and its dependencies installed, then run the given
# command inside it. Cheap when nothing changed: pip runs again only when pyproject.toml changes.
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
  echo "bootstrap: installing sendmail-fleet and its dependencies into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -e . >&2
  echo "$want" > "$stamp"
fi
[ $# -gt 0 ] && exec "$@"
