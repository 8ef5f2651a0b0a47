#!/usr/bin/env bash
# A real Apache Kafka broker for the event tests: the official jars of
# org.apache.kafka:kafka_2.13 and their runtime dependencies, resolved by Maven from its
# default repository into a cache outside the repository. Idempotent: when the jars are
# there (a marker written last), this only checks for java. tests/kafka_broker.py runs them.
#
#   KAFKA_HOME   where the jars go (default ~/.cache/erp-gateway/kafka-<version>); lib/*.jar
set -euo pipefail
VERSION=4.4.0
HOME_DIR="${KAFKA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/erp-gateway/kafka-$VERSION}"
MARKER="$HOME_DIR/lib/.complete"

for tool in java mvn; do
  command -v "$tool" >/dev/null 2>&1 || { echo "kafka peer: '$tool' is missing (Java 17+ and Maven)" >&2; exit 1; }
done
[[ -e "$MARKER" ]] && exit 0

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The broker logs through SLF4J; without a 2.x API and a binding it logs nothing at all
# (../shared/NOTES.md), so the pom pins slf4j-api 2.x and adds log4j2 as the binding.
cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>erp.gateway.tests</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.17</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.25.2</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.25.2</version></dependency>
  </dependencies>
</project>
POM
mkdir -p "$HOME_DIR"
rm -rf "$HOME_DIR/lib.partial"
mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$HOME_DIR/lib.partial"
rm -rf "$HOME_DIR/lib"
mv "$HOME_DIR/lib.partial" "$HOME_DIR/lib"
touch "$MARKER"
echo "kafka peer: $(ls "$HOME_DIR/lib" | wc -l) jars in $HOME_DIR/lib"
