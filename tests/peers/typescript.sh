#!/usr/bin/env bash
# Node packages the suite runs: openapi-typescript, openapi-fetch and tsc for the typed client
# (clients/typescript), Redocly CLI to lint the OpenAPI document. Installed by npm from the
# committed package-lock.json into clients/typescript/node_modules (git-ignored); nothing to
# do when that install is current.
set -euo pipefail
cd "$(dirname "$0")/../../clients/typescript"
command -v npm >/dev/null || { echo "npm is missing (tests/peers/apt.txt installs it)" >&2; exit 1; }
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
