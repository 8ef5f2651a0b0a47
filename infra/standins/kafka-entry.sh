#!/usr/bin/env bash
# The Kafka look-alike's entry point: server.properties from KAFKA_* variables (as apache/kafka
# does), small-machine defaults from ../shared notes, storage formatted once, then the broker.
set -euo pipefail
data=/tmp/kraft-combined-logs
config=/tmp/server.properties
{
  echo "log.dirs=$data"
  echo "log.cleaner.dedupe.buffer.size=16777216"   # the 128 MiB default does not fit a 256 MiB heap
  echo "offsets.topic.num.partitions=1"
  echo "group.initial.rebalance.delay.ms=0"
  while IFS='=' read -r name value; do
    [[ "$name" == KAFKA_* && "$name" != KAFKA_HEAP_OPTS && "$name" != KAFKA_CLUSTER_ID ]] || continue
    key="${name#KAFKA_}"; key="${key,,}"; echo "${key//_/.}=$value"
  done < <(env)
} > "$config"
java=(java ${KAFKA_HEAP_OPTS:--Xms128m -Xmx256m} -XX:+UseSerialGC -cp '/opt/kafka/libs/*')
if [[ ! -e "$data/meta.properties" ]]; then
  "${java[@]}" kafka.tools.StorageTool format -t "${KAFKA_CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}" -c "$config" >/dev/null
fi
exec "${java[@]}" kafka.Kafka "$config"
