# Strata: the two set-up commands are `make run` and `make test`.
GO       ?= go
BIN      := bin/strata
ARGS     ?=
KAFKA_NODES ?= 1
# Where `make kafka-up` writes the bootstrap address of the local cluster.
KAFKA_STATE ?= $(or $(STRATA_KAFKA_STATE),/tmp/strata-kafka)

.PHONY: all build run test test-short vet fmt-check schema-check fuzz test-kafka bench bench-kafka bench-micro up down clean console-screenshot

all: build

build:
	$(GO) build -o $(BIN) ./cmd/strata

## run: Strata on its embedded Kafka broker, data under ./.strata (Ctrl-C stops)
run: build
	./$(BIN) dev $(ARGS)

## test: formatting, vet, the schema gate, and the whole suite with the race
## detector on the embedded broker
test: fmt-check vet schema-check
	$(GO) test -race -count=1 ./...

## schema-check: every schema version satisfies its compatibility mode
schema-check:
	$(GO) run ./cmd/strata schema check --dir schemas

## fuzz: each fuzz target for FUZZTIME executions; crashers land in
## testdata/fuzz and become regression tests. A count, not a duration: Go
## 1.26's fuzz coordinator can fail a duration-bound run with a spurious
## "context deadline exceeded" on a loaded machine (golang/go#75804).
FUZZTIME ?= 100000x
# Every decoder of outside bytes: Avro events and commands, the schema
# files, the HTTP command body, position tokens, stored records, the config
# file and the token file.
FUZZ_TARGETS := \
	./schemas:FuzzDecode ./schemas:FuzzLoad \
	./internal/codec:FuzzDecodeEvents ./internal/codec:FuzzCommandAvro ./internal/codec:FuzzCommandJSON \
	./internal/httpapi:FuzzCommandBody ./internal/httpapi:FuzzParseTokens \
	./internal/config:FuzzParse ./internal/position:FuzzParse ./internal/store:FuzzEventDecode
fuzz:
	@set -e; start=$$(date +%s); for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME); \
	done; echo "== $(words $(FUZZ_TARGETS)) fuzz targets took $$(( $$(date +%s) - start ))s"

## test-short: the suite without the race detector (quicker while editing)
test-short:
	$(GO) test -count=1 ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

-include compose/kafka.mk
## sinks-up / sinks-down / test-sinks: private Redis, PostgreSQL,
## OpenSearch and Elasticsearch on 127.0.0.1 for the view sinks' tests
## (compose/sinks.mk)
-include compose/sinks.mk

## test-kafka: start a local Apache Kafka (KAFKA_NODES=1 or 3), run the
## end-to-end suite against it, stop it (also on failure)
test-kafka:
	@set -e; \
	$(MAKE) --no-print-directory kafka-up KAFKA_NODES=$(KAFKA_NODES); \
	brokers=$$(cat $(KAFKA_STATE)/bootstrap); \
	echo "== end-to-end suite against Apache Kafka at $$brokers"; \
	start=$$(date +%s); \
	status=0; STRATA_TEST_BROKERS=$$brokers $(GO) test -count=1 -timeout 15m ./internal/e2e/ || status=$$?; \
	STRATA_TEST_BROKERS=$$brokers $(GO) test -count=1 -timeout 10m -run 'TestCrash' ./cmd/strata/ || status=$$?; \
	echo "== suite took $$(( $$(date +%s) - start ))s against $(KAFKA_NODES) node(s)"; \
	$(MAKE) --no-print-directory kafka-down; \
	exit $$status

## up / down: the 3-broker Kafka cluster and Strata in containers (needs Docker)
up:
	docker compose -f compose/docker-compose.yml up -d --build

down:
	docker compose -f compose/docker-compose.yml down

## bench: strata bench on the embedded broker (restore: 100k aggregates, 1M events)
bench: build
	./$(BIN) bench $(ARGS)

## bench-kafka: the same against a local Apache Kafka
bench-kafka: build
	@set -e; $(MAKE) --no-print-directory kafka-up KAFKA_NODES=1; \
	status=0; ./$(BIN) bench --brokers $$(cat $(KAFKA_STATE)/bootstrap) $(ARGS) || status=$$?; \
	$(MAKE) --no-print-directory kafka-down; exit $$status
## soak: the chaos soak on the embedded broker, about a minute of load and
## then the checks (strata soak): strata serve processes SIGKILLed, paused and
## cut off from a restarted broker under load; fails when a command was lost
## or applied twice, or an instance serves what a replay of the events topic
## does not give. ARGS go to strata soak (--duration 10m --seed N --keep ...).
.PHONY: soak soak-kafka
soak: build
	./$(BIN) soak --duration 60s $(ARGS)

## soak-kafka: the same against a local 3-node Apache Kafka (RF 3), killing
## and restarting its nodes; stops the cluster afterwards when the soak
## passed, and leaves it running for inspection when it failed (stop it
## with make kafka-down)
SOAK_KAFKA_DURATION ?= 2m
soak-kafka: build
	@set -e; $(MAKE) --no-print-directory kafka-up KAFKA_NODES=3; \
	status=0; ./$(BIN) soak --duration $(SOAK_KAFKA_DURATION) --brokers $$(cat $(KAFKA_STATE)/bootstrap) --replication-factor 3 \
		--broker-kill-cmd 'bash compose/kafka-kill-node.sh {node}' --broker-start-cmd 'bash compose/kafka-start-node.sh {node}' \
		$(ARGS) || status=$$?; \
	if [ $$status -eq 0 ]; then $(MAKE) --no-print-directory kafka-down; \
	else echo "soak-kafka: the soak failed; Kafka is left running at $$(cat $(KAFKA_STATE)/bootstrap) with the run's topics, for inspection; make kafka-down stops it and deletes its data"; fi; \
	exit $$status

## bench-micro: the go test micro-benchmarks of the hot paths (Avro encode and
## decode, upcasting, Decide/Evolve, the state store), no broker
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## console-screenshot: regenerate docs/console.png, the README's picture of
## the console, from the console's end-to-end test in headless Chromium
console-screenshot:
	STRATA_CONSOLE_SCREENSHOT=$(CURDIR)/docs/console.png $(GO) test -count=1 -run '^TestConsole$$' ./internal/e2e/

clean:
	rm -rf bin .strata
