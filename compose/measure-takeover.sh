#!/bin/bash
# measure-takeover.sh NAMESPACE [strata serve flags]
#
# How long a process replacing a SIGKILLed one on an EMPTY data directory
# takes to answer its first command, against the local Kafka started by
# `make kafka-up` (bootstrap in /tmp/strata-kafka/bootstrap). It runs
# `strata serve` under load of deposits to 8 accounts, kills it with -9
# after 3 s, starts another on a fresh directory with the same flags, and
# prints the time from that start to the first command answered 200.
#
#   make build kafka-up
#   bash compose/measure-takeover.sh takea                    # a new identity
#   bash compose/measure-takeover.sh takeb --instance-id pod-0 # the same one
#   make kafka-down
#
# NAMESPACE: lower-case letters, digits and '-'; use a new one per run.
set -u
NS=$1; shift
B=$(cat /tmp/strata-kafka/bootstrap)
BIN=$(dirname "$0")/../bin/strata
PORT=18181
start() { local d=$1; shift; $BIN serve --brokers "$B" --namespace "$NS" --data "$d" --http 127.0.0.1:$PORT --log-level warn "$@" > /tmp/takeover-$NS.log 2>&1 & echo $!; }
send() { curl -s -m 15 -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' -d "$2" http://127.0.0.1:$PORT/v1/commands/account/$1; }
rm -rf /tmp/to-$NS-*
pid=$(start /tmp/to-$NS-1 "$@")
for n in $(seq 1 150); do curl -s -m 1 -o /dev/null -w "%{http_code}" http://127.0.0.1:$PORT/readyz | grep -q 200 && break; sleep 0.2; done
for i in $(seq 1 8); do send acc-$i '{"type":"OpenAccount","data":{"owner":"o","initial_balance":0}}' >/dev/null; done
( while true; do for i in $(seq 1 8); do send acc-$i '{"type":"Deposit","data":{"amount":1}}' >/dev/null; done; done ) & load=$!
sleep 3
kill -9 $pid; kill $load 2>/dev/null; wait $load 2>/dev/null
t0=$(date +%s.%N)
pid=$(start /tmp/to-$NS-2 "$@")
until [ "$(send acc-1 '{"type":"Deposit","data":{"amount":1}}')" = 200 ]; do sleep 0.2; done
t1=$(date +%s.%N)
echo "$NS $*: first command answered $(echo "$t1 - $t0" | bc) s after the restart on an empty data directory (log: /tmp/takeover-$NS.log)"
kill $pid; wait $pid 2>/dev/null
