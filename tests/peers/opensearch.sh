#!/usr/bin/env bash
# A real OpenSearch node for the log-shipping tests: the distribution zip
# org.opensearch.distribution.integ-test-zip:opensearch, resolved by Maven from its default
# repository and unpacked into a cache outside the repository. 3.x needs Java 21+ (the
# machine's second JDK); without one, 2.19 on Java 17. Idempotent: when the unpacked node is
# there (a marker written last), this only checks for a JDK. tests/opensearch_node.py runs it.
#
#   OPENSEARCH_CACHE  where it goes (default /var/tmp/erp-gateway-peers: OpenSearch refuses to
#                     run as root, and the unprivileged user it runs as must read it)
# Writes $OPENSEARCH_CACHE/opensearch/{home -> opensearch-<version>, java_home}.
set -euo pipefail
CACHE="${OPENSEARCH_CACHE:-/var/tmp/erp-gateway-peers}/opensearch"

java_major() { "$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
JAVA_HOME_21=""
for jdk in /usr/lib/jvm/*/; do
  jdk="${jdk%/}"
  [[ -x "$jdk/bin/java" && ! -L "$jdk" ]] || continue
  major="$(java_major "$jdk")"
  if [[ -n "$major" && "$major" -ge 21 ]]; then JAVA_HOME_21="$jdk"; break; fi
done
if [[ -n "$JAVA_HOME_21" ]]; then
  VERSION=3.6.0 JAVA="$JAVA_HOME_21"
else
  VERSION=2.19.6 JAVA="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
  [[ "$(java_major "$JAVA")" -ge 17 ]] || { echo "opensearch peer: no Java 17+ found" >&2; exit 1; }
fi
command -v mvn >/dev/null 2>&1 || { echo "opensearch peer: 'mvn' is missing (Maven)" >&2; exit 1; }
command -v unzip >/dev/null 2>&1 || { echo "opensearch peer: 'unzip' is missing" >&2; exit 1; }

HOME_DIR="$CACHE/opensearch-$VERSION"
if [[ ! -e "$HOME_DIR/.complete" ]]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  mvn -q -B dependency:copy \
      -Dartifact="org.opensearch.distribution.integ-test-zip:opensearch:$VERSION:zip" \
      -DoutputDirectory="$work"
  mkdir -p "$CACHE"
  rm -rf "$HOME_DIR.partial"
  mkdir "$HOME_DIR.partial"
  unzip -q "$work/opensearch-$VERSION.zip" -d "$HOME_DIR.partial"
  rm -rf "$HOME_DIR"
  mv "$HOME_DIR.partial/opensearch-$VERSION" "$HOME_DIR"
  rmdir "$HOME_DIR.partial"
  touch "$HOME_DIR/.complete"
fi
chmod -R a+rX "${OPENSEARCH_CACHE:-/var/tmp/erp-gateway-peers}"
ln -sfn "$HOME_DIR" "$CACHE/home"
echo "$JAVA" > "$CACHE/java_home"
echo "opensearch peer: $VERSION in $HOME_DIR, Java $(java_major "$JAVA") at $JAVA"
