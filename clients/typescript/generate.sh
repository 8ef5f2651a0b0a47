#!/usr/bin/env bash
# Regenerate the client's types from the gateway's OpenAPI document:
#   bash clients/typescript/generate.sh            -> src/schema.d.ts (committed)
#   bash clients/typescript/generate.sh OUT.d.ts   -> elsewhere (the suite compares the two)
# The document comes from the handler registry (`gw openapi`), the same one /openapi.json serves.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(realpath -m "${1:-$here/src/schema.d.ts}")"
python="${PYTHON:-$here/../../.venv/bin/python}"
cd "$here"
[[ -d node_modules ]] || npm ci --no-audit --no-fund --loglevel=error
"$python" -m emulator.cli openapi -o openapi.json
npx --no-install openapi-typescript openapi.json --output "$out" --alphabetize --default-non-nullable false >/dev/null
