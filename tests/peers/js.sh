#!/usr/bin/env bash
# npm packages into clients/js/node_modules (git-ignored): GraphiQL and React, which the gateway serves
# at GET /graphql, and the JS clients the GraphQL tests run (graphql-http's audit, graphql-ws).
# Idempotent: does nothing when every pinned version of clients/js/package.json is already installed.
set -euo pipefail
cd "$(dirname "$0")/../../clients/js"
command -v npm >/dev/null || { echo "tests/peers/js.sh: npm is missing (Debian package npm)" >&2; exit 1; }
node -e '
  const deps = require("./package.json").dependencies;
  for (const [name, version] of Object.entries(deps)) {
    if (require(`./node_modules/${name}/package.json`).version !== version) process.exit(1);
  }' 2>/dev/null && exit 0
# No lockfile: the pins above are exact, and a lockfile would write the registry host into the repo.
npm install --no-package-lock --no-audit --no-fund --loglevel=error
