#!/usr/bin/env bash
# Run a Kafka CLI tool from the same Maven classpath as the brokers, e.g.
#   compose/kafka-cli.sh topics --bootstrap-server 127.0.0.1:9092 --list
#   compose/kafka-cli.sh console-consumer --bootstrap-server 127.0.0.1:9092 --topic t --from-beginning
#   compose/kafka-cli.sh metadata-quorum --bootstrap-server 127.0.0.1:9092 describe --status
# First argument: a short name below or a fully qualified main class.
set -euo pipefail

COMPOSE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=kafka/lib.sh
source "$COMPOSE_DIR/kafka/lib.sh"

tool="${1:-}"
[[ -n "$tool" ]] || die "usage: $0 TOOL [ARGS...]   (topics, console-producer, console-consumer, consumer-groups, transactions, configs, get-offsets, broker-api-versions, metadata-quorum, storage, or a main class)"
shift
case "$tool" in
  topics)              cls=org.apache.kafka.tools.TopicCommand ;;
  console-producer)    cls=org.apache.kafka.tools.ConsoleProducer ;;
  console-consumer)    cls=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
  consumer-groups)     cls=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  transactions)        cls=org.apache.kafka.tools.TransactionsCommand ;;
  configs)             cls=org.apache.kafka.tools.ConfigCommand ;;
  get-offsets)         cls=org.apache.kafka.tools.GetOffsetShell ;;
  broker-api-versions) cls=org.apache.kafka.tools.BrokerApiVersionsCommand ;;
  metadata-quorum)     cls=org.apache.kafka.tools.MetadataQuorumCommand ;;
  storage)             cls=kafka.tools.StorageTool ;;
  *.*)                 cls="$tool" ;;
  *) die "unknown tool '$tool'" ;;
esac

require_cmds java mvn
if [[ -s "$STATE_DIR/classpath" ]]; then cp="$(cat "$STATE_DIR/classpath")"; else cp="$(resolve_classpath)"; fi
exec java "${TOOL_JVM_OPTS[@]}" -cp "$cp" "$cls" "$@"
