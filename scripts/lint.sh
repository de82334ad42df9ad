#!/usr/bin/env bash
# The lint gate: ruff (Python), yamllint (every YAML file), ansible-lint (production profile). Needs no Docker and
# stops at the first tool that finds something. Configured in pyproject.toml, .yamllint and .ansible-lint.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
echo "lint: ruff" >&2
ruff check .
echo "lint: yamllint" >&2
yamllint --strict .
echo "lint: ansible-lint (production profile)" >&2
ANSIBLE_CONFIG="$PWD/ansible.cfg" ansible-lint --nocolor -q
echo "lint: clean" >&2
