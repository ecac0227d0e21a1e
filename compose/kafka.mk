# Makefile fragment for the local Kafka used by tests. In the main Makefile:
#   include compose/kafka.mk
# Targets:
#   make kafka-up [KAFKA_NODES=3]     start (or reuse) a KRaft cluster; prints the bootstrap
#                                     (default 1 node; without KAFKA_NODES a running
#                                     cluster of any size is reused)
#   make kafka-down                   stop it and delete its data
#   make kafka-kill-node NODE=2       SIGKILL one node      (chaos helpers)
#   make kafka-start-node NODE=2      restart it
STRATA_COMPOSE_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
NODE ?=

.PHONY: kafka-up kafka-down kafka-kill-node kafka-start-node

kafka-up:
	@$(if $(KAFKA_NODES),KAFKA_NODES=$(KAFKA_NODES)) bash "$(STRATA_COMPOSE_DIR)/kafka-up.sh"

kafka-down:
	@bash "$(STRATA_COMPOSE_DIR)/kafka-down.sh"

kafka-kill-node:
	@bash "$(STRATA_COMPOSE_DIR)/kafka-kill-node.sh" $(NODE)

kafka-start-node:
	@bash "$(STRATA_COMPOSE_DIR)/kafka-start-node.sh" $(NODE)
