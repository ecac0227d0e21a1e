# Makefile fragment for the servers the view sinks' tests write to (Redis,
# PostgreSQL, OpenSearch, Elasticsearch; see compose/README.md). In the main Makefile:
#   include compose/sinks.mk
# Targets:
#   make sinks-up      start (or reuse) them; prints the STRATA_TEST_* env lines
#   make sinks-down    stop them and delete their data
#   make test-sinks    sinks-up, the sink and projection tests with the env
#                      lines set, sinks-down (also on failure); exits with the
#                      tests' status
STRATA_SINKS_COMPOSE_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
# Where sinks-up.sh writes the env lines of the running servers.
SINKS_STATE ?= $(or $(STRATA_SINKS_STATE),/tmp/strata-sinks)
# internal/sinks/... only once it exists (go test fails on a pattern that
# matches no directory).
SINKS_TEST_PKGS ?= $(if $(wildcard $(STRATA_SINKS_COMPOSE_DIR)/../internal/sinks),./internal/sinks/...) ./projections/...

.PHONY: sinks-up sinks-down test-sinks

sinks-up:
	@bash "$(STRATA_SINKS_COMPOSE_DIR)/sinks-up.sh"

sinks-down:
	@bash "$(STRATA_SINKS_COMPOSE_DIR)/sinks-down.sh"

test-sinks:
	@set -e; \
	bash "$(STRATA_SINKS_COMPOSE_DIR)/sinks-up.sh" >/dev/null; \
	vars=$$(cat "$(SINKS_STATE)/env"); \
	echo "== sink tests against: $$(echo $$vars)"; \
	start=$$(date +%s); \
	status=0; env $$vars $(GO) test -race -count=1 $(SINKS_TEST_PKGS) || status=$$?; \
	echo "== sink tests took $$(( $$(date +%s) - start ))s"; \
	bash "$(STRATA_SINKS_COMPOSE_DIR)/sinks-down.sh"; \
	exit $$status
