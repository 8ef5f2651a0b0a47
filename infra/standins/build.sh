#!/usr/bin/env bash
# Builds the look-alikes of compose.yaml's third-party images (Containerfile says why) and
# prints the variables that make compose use them:
#   eval "$(infra/standins/build.sh)" && podman-compose -f infra/compose.yaml up
# Needs what infra/build-image.sh needs, plus the Kafka jars of tests/peers/kafka.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build_image="$here/../build-image.sh"
CONTAINERS_CONF="${CONTAINERS_CONF:-$(bash "$build_image" containers-conf)}"
export CONTAINERS_CONF
bash "$build_image" base
bash "$here/../../tests/peers/kafka.sh"
jars="${KAFKA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/erp-gateway/kafka-4.4.0}/lib"
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$here/Containerfile" "$here/kafka-entry.sh" "$context/"
cp -r "$jars" "$context/kafka-libs"
base="localhost/erp-gateway-base:$(. /etc/os-release && echo "$VERSION_CODENAME")"
for name in valkey kafka nginx; do
  podman build --quiet --network host --build-arg "BASE_IMAGE=$base" --target "$name" \
    --tag "localhost/erp-standin-$name:dev" "$context" > /dev/null
  echo "export ${name^^}_IMAGE=localhost/erp-standin-$name:dev"
done
