#!/usr/bin/env bash
# The container image's base (tests/e2e/test_container_image.py): a debootstrap'd Debian with
# python3, made once (~3 min) and cached outside the repo, then imported into podman.
set -euo pipefail
exec bash "$(dirname "$0")/../../infra/build-image.sh" base
