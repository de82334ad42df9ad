#!/usr/bin/env bash
# The execution environment's build context, offline: the collection built from this checkout (ansible-galaxy), then
# ansible-builder's context from execution-environment.yml. Build the image from it with podman or docker.
#   scripts/ee-context.sh [CONTEXT]    (default .ee/context)
set -euo pipefail
cd "$(dirname "$0")/.."
context="${1:-.ee/context}"
bin="$(dirname "$(readlink -f "${PYTHON:-.venv/bin/python}")")"
[ -x .venv/bin/ansible-builder ] && bin=.venv/bin
mkdir -p .ee
rm -f .ee/sendmail_fleet-mail-*.tar.gz
"$bin/ansible-galaxy" collection build --force --output-path .ee . >/dev/null
# One name whatever the version: the EE's requirements install it by this path (ansible-galaxy reads the version
# from the archive's MANIFEST.json).
mv .ee/sendmail_fleet-mail-*.tar.gz .ee/sendmail_fleet-mail.tar.gz
"$bin/ansible-builder" create --file execution-environment.yml --context "$context" --output-filename Containerfile
echo "build context: $context (collection: .ee/sendmail_fleet-mail.tar.gz)"
